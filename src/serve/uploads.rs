//! Uploads: raw request bodies streamed to `uploads/<id>/input` (owner-only), checked as they
//! arrive (size, image type, a minimum rate), then probed; `201` only once the input and its
//! record are durably on disk. Whatever fails is removed; `DELETE` removes an upload that no
//! waiting or running job needs.

use super::reply::{busy, fail, not_found};
use super::state::{new_id, private_file, sync_dir, valid_id, AppState, JobState, Upload};
use crate::error::Error;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

type St = State<Arc<AppState>>;

/// A body may start slowly for this long; after it, it must keep up [`MIN_RATE`] on average.
const GRACE: Duration = Duration::from_secs(10);
/// The least average rate of an upload after [`GRACE`], in bytes per second (64 kbit/s): a
/// client trickling a byte at a time cannot hold an upload slot.
const MIN_RATE: u64 = 8 << 10;

#[derive(serde::Deserialize)]
pub(super) struct UploadQuery {
    name: Option<String>,
}

/// The image type from its first bytes (`jpeg`, `png`, `tiff`).
fn sniff(head: &[u8]) -> Option<&'static str> {
    crate::source::signature(head).map(crate::Format::name)
}

/// A display name: the client's file name without any directory or extension, letters,
/// digits (any script), `-`, `_` and spaces only, at most 80 characters.
pub(super) fn clean_name(name: Option<String>) -> String {
    let n = name.unwrap_or_default();
    let base = n.rsplit(['/', '\\']).next().unwrap_or("");
    let stem = base.rsplit_once('.').map_or(base, |(s, _)| s);
    let clean: String = stem
        .chars()
        .filter(|c| c.is_alphanumeric() || "-_ ".contains(*c))
        .take(80)
        .collect::<String>()
        .trim()
        .to_string();
    if clean.is_empty() {
        "image".into()
    } else {
        clean
    }
}

/// `POST /api/uploads?name=NAME`: the body is the image file.
pub(super) async fn upload(State(s): St, Query(q): Query<UploadQuery>, headers: HeaderMap, body: Body) -> Response {
    // A declared length over the limit is refused before a byte is stored (what the client
    // is still sending is read and dropped for a moment, so that it sees the refusal).
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > s.opts.max_upload) {
        let mut body = body;
        linger(&mut body).await;
        return fail(StatusCode::PAYLOAD_TOO_LARGE, format!("uploads are limited to {} bytes", s.opts.max_upload));
    }
    let Ok(_permit) = s.uploads_gate.try_acquire() else { return busy("too many uploads at once; try again", "10") };
    let Ok(id) = new_id() else { return fail(StatusCode::INTERNAL_SERVER_ERROR, "no id") };
    let dir = s.upload_dir(&id);
    let stored = match receive(&s, &dir, body).await {
        Ok(v) => store(&s, &id, q.name, v).await,
        Err(resp) => Err(resp),
    };
    match stored {
        Ok(u) => {
            s.book().uploads.insert(id, u.clone());
            (StatusCode::CREATED, Json(u)).into_response()
        }
        Err(resp) => {
            let _ = tokio::fs::remove_dir_all(&dir).await;
            resp
        }
    }
}

/// Probes the received input (`bytes` of `format`) and writes its record.
async fn store(
    s: &Arc<AppState>,
    id: &str,
    name: Option<String>,
    (bytes, format): (u64, &str),
) -> Result<Upload, Response> {
    let dir = s.upload_dir(id);
    let (path, max_pixels) = (dir.join("input"), s.opts.max_pixels);
    let info = tokio::task::spawn_blocking(move || crate::source::open(&path, 64 << 20).map(|src| src.info().clone()))
        .await
        .map_err(|e| Error::Internal(e.to_string()))
        .and_then(|r| r)
        .map_err(|e| fail(StatusCode::UNSUPPORTED_MEDIA_TYPE, s.scrub(&e.to_string())))?;
    if max_pixels > 0 && info.width as u64 * info.height as u64 > max_pixels {
        let msg = format!("{}x{} is over {max_pixels} pixels", info.width, info.height);
        return Err(fail(StatusCode::PAYLOAD_TOO_LARGE, msg));
    }
    let u = Upload {
        id: id.to_string(),
        name: clean_name(name),
        width: info.width,
        height: info.height,
        channels: info.layout.channels.count() as u32,
        format: format.into(),
        bytes,
    };
    let record = dir.join("upload.json");
    let (u2, s2) = (u.clone(), s.clone());
    let written = tokio::task::spawn_blocking(move || s2.write_record(&record, &u2)).await;
    match written {
        Ok(Ok(())) => Ok(u),
        Ok(Err(e)) => Err(storage_failed(s, &e.to_string())),
        Err(e) => Err(storage_failed(s, &e.to_string())),
    }
}

/// 507: the work directory could not take a file (full, read-only, ...).
pub(super) fn storage_failed(s: &AppState, why: &str) -> Response {
    fail(StatusCode::INSUFFICIENT_STORAGE, format!("the server could not store it: {}", s.scrub(why)))
}

/// Streams the body into `dir/input` (owner-only), counting bytes; refuses what is too large
/// (413), not an image (415) or too slow (408) as soon as that is known; syncs the file.
async fn receive(s: &AppState, dir: &std::path::Path, body: Body) -> Result<(u64, &'static str), Response> {
    let io = |e: std::io::Error| storage_failed(s, &e.to_string());
    tokio::fs::DirBuilder::new().mode(0o700).create(dir).await.map_err(io)?;
    let input = dir.join("input");
    let file = tokio::task::spawn_blocking(move || private_file(&input)).await.map_err(|e| io(e.into()))?;
    let mut f = tokio::fs::File::from_std(file.map_err(io)?);
    let (mut body, mut n, mut head, mut format) = (body, 0u64, Vec::new(), None);
    let start = tokio::time::Instant::now();
    loop {
        // The next bytes must come before the average rate since the grace period falls
        // under MIN_RATE.
        let deadline = start + GRACE + Duration::from_secs_f64(n as f64 / MIN_RATE as f64);
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(_) => {
                let msg =
                    format!("the upload is too slow (under {} KiB/s after {} s)", MIN_RATE >> 10, GRACE.as_secs());
                return Err(fail(StatusCode::REQUEST_TIMEOUT, msg));
            }
        };
        let frame = frame.map_err(|e| fail(StatusCode::BAD_REQUEST, format!("upload interrupted: {e}")))?;
        let Ok(data) = frame.into_data() else { continue };
        n += data.len() as u64;
        if n > s.opts.max_upload {
            linger(&mut body).await;
            let msg = format!("uploads are limited to {} bytes", s.opts.max_upload);
            return Err(fail(StatusCode::PAYLOAD_TOO_LARGE, msg));
        }
        if format.is_none() {
            head.extend_from_slice(&data[..data.len().min(8 - head.len().min(8))]);
            if head.len() >= 8 {
                format = Some(
                    sniff(&head).ok_or_else(|| fail(StatusCode::UNSUPPORTED_MEDIA_TYPE, "not a JPEG, PNG or TIFF"))?,
                );
            }
        }
        f.write_all(&data).await.map_err(io)?;
    }
    f.flush().await.map_err(io)?;
    f.sync_all().await.map_err(io)?;
    let format = format.ok_or_else(|| fail(StatusCode::UNSUPPORTED_MEDIA_TYPE, "not a JPEG, PNG or TIFF"))?;
    Ok((n, format))
}

/// Reads and drops what is left of a refused body — at most 4 MiB, for at most 2 s — so that
/// a client still sending sees the refusal instead of a reset connection (a "lingering
/// close", RFC 9112 §9.6); a larger or slower remainder is cut off.
pub(super) async fn linger(body: &mut Body) {
    let mut left = 4u64 << 20;
    let drain = async {
        while let Some(Ok(frame)) = body.frame().await {
            let n = frame.data_ref().map_or(0, |d| d.len() as u64);
            left = left.saturating_sub(n);
            if left == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
}

/// `DELETE /api/uploads/{id}`: 204, or 409 while a queued or running job reads it.
pub(super) async fn delete_upload(State(s): St, Path(id): Path<String>) -> Response {
    if !valid_id(&id) {
        return not_found();
    }
    {
        let mut book = s.book();
        if !book.uploads.contains_key(&id) {
            return not_found();
        }
        let busy = book
            .jobs
            .values()
            .any(|j| j.request.upload == id && matches!(j.state, JobState::Queued | JobState::Running));
        if busy {
            return fail(StatusCode::CONFLICT, "a queued or running job uses this upload; cancel it first");
        }
        book.uploads.remove(&id);
    }
    let dir = s.upload_dir(&id);
    let _ = tokio::fs::remove_dir_all(&dir).await;
    if let Some(parent) = dir.parent().map(|p| p.to_path_buf()) {
        let _ = tokio::task::spawn_blocking(move || sync_dir(&parent)).await;
    }
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_letters_of_any_script_and_lose_directories() {
        assert_eq!(clean_name(Some("../../etc/Café Noël.final.jpg".into())), "Café Noëlfinal");
        assert_eq!(clean_name(Some("C:\\x\\東京 夜景.png".into())), "東京 夜景");
        assert_eq!(clean_name(Some("<script>.png".into())), "script");
        assert_eq!(clean_name(None), "image");
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n"), Some("png"));
        assert_eq!(sniff(b"GIF89a.."), None);
    }
}
