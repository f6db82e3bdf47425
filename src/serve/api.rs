//! The JSON API: uploads (raw request bodies streamed to disk), jobs, events, downloads.

use super::download::serve_file;
use super::reply::{fail, not_found};
use super::state::{new_id, valid_id, write_json, AppState, Job, JobRequest, JobState, Upload};
use crate::error::Error;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

type St = State<Arc<AppState>>;

#[derive(serde::Deserialize)]
pub(super) struct UploadQuery {
    name: Option<String>,
}

/// The image type from its first bytes.
fn sniff(head: &[u8]) -> Option<&'static str> {
    match head {
        [0xFF, 0xD8, 0xFF, ..] => Some("jpeg"),
        [0x89, b'P', b'N', b'G', ..] => Some("png"),
        [b'I', b'I', 42 | 43, 0, ..] | [b'M', b'M', 0, 42 | 43, ..] => Some("tiff"),
        _ => None,
    }
}

/// A display name: the client's file name without any directory, tame characters only.
fn clean_name(name: Option<String>) -> String {
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
    let Ok(_permit) = s.uploads_gate.try_acquire() else {
        return fail(StatusCode::SERVICE_UNAVAILABLE, "too many uploads at once; try again");
    };
    let Ok(id) = new_id() else { return fail(StatusCode::INTERNAL_SERVER_ERROR, "no id") };
    let dir = s.upload_dir(&id);
    let r = receive(&s, &dir, body).await;
    let (bytes, format) = match r {
        Ok(v) => v,
        Err(resp) => {
            let _ = tokio::fs::remove_dir_all(&dir).await;
            return resp;
        }
    };
    let (path, max_pixels) = (dir.join("input"), s.opts.max_pixels);
    let info = tokio::task::spawn_blocking(move || crate::source::open(&path, 64 << 20).map(|src| src.info().clone()))
        .await
        .map_err(|e| Error::Internal(e.to_string()))
        .and_then(|r| r);
    let info = match info {
        Ok(i) if max_pixels > 0 && i.width as u64 * i.height as u64 > max_pixels => {
            let _ = tokio::fs::remove_dir_all(&dir).await;
            return fail(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("{}x{} is over {max_pixels} pixels", i.width, i.height),
            );
        }
        Ok(i) => i,
        Err(e) => {
            let _ = tokio::fs::remove_dir_all(&dir).await;
            return fail(StatusCode::UNSUPPORTED_MEDIA_TYPE, e.to_string());
        }
    };
    let u = Upload {
        id: id.clone(),
        name: clean_name(q.name),
        width: info.width,
        height: info.height,
        channels: info.layout.channels.count() as u32,
        format: format.into(),
        bytes,
    };
    if let Err(e) = write_json(&dir.join("upload.json"), &u) {
        return fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    }
    s.book().uploads.insert(id, u.clone());
    (StatusCode::CREATED, Json(u)).into_response()
}

/// Streams the body into `dir/input`, counting bytes; refuses what is too large (413) or not
/// an image (415) as soon as that is known.
async fn receive(s: &AppState, dir: &std::path::Path, body: Body) -> Result<(u64, &'static str), Response> {
    let io = |e: std::io::Error| fail(StatusCode::INTERNAL_SERVER_ERROR, format!("storing the upload: {e}"));
    tokio::fs::create_dir_all(dir).await.map_err(io)?;
    let mut f = tokio::fs::File::create(dir.join("input")).await.map_err(io)?;
    let (mut body, mut n, mut head, mut format) = (body, 0u64, Vec::new(), None);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| fail(StatusCode::BAD_REQUEST, format!("upload interrupted: {e}")))?;
        let Ok(data) = frame.into_data() else { continue };
        n += data.len() as u64;
        if n > s.opts.max_upload {
            linger(&mut body).await;
            return Err(fail(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("uploads are limited to {} bytes", s.opts.max_upload),
            ));
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
    let format = format.ok_or_else(|| fail(StatusCode::UNSUPPORTED_MEDIA_TYPE, "not a JPEG, PNG or TIFF"))?;
    Ok((n, format))
}

/// Reads and drops what is left of a refused body — at most 4 MiB, for at most 2 s — so that
/// a client still sending sees the refusal instead of a reset connection (a "lingering
/// close", RFC 9112 §9.6); a larger or slower remainder is cut off.
async fn linger(body: &mut Body) {
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
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), drain).await;
}

pub(super) async fn create_job(
    State(s): St,
    body: Result<Json<JobRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let r = match body {
        Ok(Json(r)) => r,
        Err(e) => return fail(e.status(), e.body_text()),
    };
    let upload = match s.book().uploads.get(&r.upload) {
        Some(u) if valid_id(&r.upload) => u.clone(),
        _ => return not_found(),
    };
    let opts = match r.library_request(&s.opts).and_then(|r| r.options()) {
        Ok(o) => o,
        Err(e) => return fail(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    };
    let (w, h) = match opts.output_size(upload.width, upload.height) {
        Ok(v) => v,
        Err(e) => return fail(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    };
    let position = s.book().queue.len();
    if position >= s.opts.queue {
        let mut resp = fail(StatusCode::SERVICE_UNAVAILABLE, "the queue is full");
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
        return resp;
    }
    let Ok(id) = new_id() else { return fail(StatusCode::INTERNAL_SERVER_ERROR, "no id") };
    let scale = w as f64 / upload.width as f64;
    let job = Job {
        id: id.clone(),
        file_name: format!("{}_{}x_{}.tif", upload.name, (scale * 100.0).round() / 100.0, opts.filter.name()),
        request: r,
        state: JobState::Queued,
        progress: 0.0,
        eta_s: None,
        error: None,
        output: [w, h],
        bytes_estimate: w as u64 * h as u64 * upload.channels as u64 * 4 / 3,
        started: None,
    };
    if let Err(e) = std::fs::create_dir_all(s.job_dir(&id)) {
        return fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    }
    s.save_job(&job, "queued");
    s.book().queue.push_back(id.clone());
    s.wake.notify_one();
    let reply =
        serde_json::json!({"id": id, "position": position, "output": [w, h], "bytes_estimate": job.bytes_estimate});
    (StatusCode::ACCEPTED, Json(reply)).into_response()
}

/// A job's record with its queue position.
fn with_position(s: &AppState, j: &Job) -> serde_json::Value {
    let mut v = serde_json::to_value(j).unwrap_or_default();
    let pos = s.book().queue.iter().position(|q| *q == j.id);
    v["position"] = serde_json::json!(pos);
    v
}

/// Every job's record with its queue position.
fn all_jobs(s: &AppState) -> Vec<serde_json::Value> {
    let jobs: Vec<Job> = s.book().jobs.values().cloned().collect();
    jobs.iter().map(|j| with_position(s, j)).collect()
}

pub(super) async fn list_jobs(State(s): St) -> Response {
    Json(all_jobs(&s)).into_response()
}

pub(super) async fn get_job(State(s): St, Path(id): Path<String>) -> Response {
    match s.job(&id) {
        Some(j) => Json(with_position(&s, &j)).into_response(),
        None => not_found(),
    }
}

pub(super) async fn delete_job(State(s): St, Path(id): Path<String>) -> Response {
    let Some(mut j) = s.job(&id) else { return not_found() };
    let running = {
        let mut book = s.book();
        book.queue.retain(|q| *q != id);
        book.running.get(&id).cloned()
    };
    if let Some(cancel) = running {
        // The job thread notices within a tile, removes the partial output and reports.
        cancel.store(true, std::sync::atomic::Ordering::SeqCst);
        for _ in 0..100 {
            if !s.book().running.contains_key(&id) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        return StatusCode::ACCEPTED.into_response();
    }
    if j.state == JobState::Queued {
        j.state = JobState::Cancelled;
        s.save_job(&j, "cancelled");
        return StatusCode::ACCEPTED.into_response();
    }
    // Finished: its files and record go.
    let _ = tokio::fs::remove_dir_all(s.job_dir(&id)).await;
    s.book().jobs.remove(&id);
    s.emit("deleted", &id, serde_json::Value::Null);
    StatusCode::NO_CONTENT.into_response()
}

pub(super) async fn events(State(s): St) -> Response {
    let first = SseEvent::default().event("snapshot").data(serde_json::json!({"jobs": all_jobs(&s)}).to_string());
    let rx = s.events.subscribe();
    let live = futures_util::stream::unfold((rx, s.clone()), |(mut rx, s)| async move {
        loop {
            tokio::select! {
                _ = s.stopped() => return None,
                m = rx.recv() => match m {
                    Ok(m) => return Some((SseEvent::default().event("job").data(m), (rx, s))),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return None,
                },
            }
        }
    });
    let stream = futures_util::stream::once(async { first }).chain(live).map(Ok::<_, std::convert::Infallible>);
    Sse::new(stream).keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(10))).into_response()
}

pub(super) async fn result(State(s): St, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let Some(j) = s.job(&id) else { return not_found() };
    if j.state != JobState::Done {
        return fail(StatusCode::CONFLICT, "the job has not finished");
    }
    let path = s.output_path(&j);
    serve_file(&path, &headers, &j.file_name, "image/tiff").await
}

pub(super) async fn input(State(s): St, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let Some(j) = s.job(&id) else { return not_found() };
    let Some(u) = s.book().uploads.get(&j.request.upload).cloned() else { return not_found() };
    let mime = match u.format.as_str() {
        "jpeg" => "image/jpeg",
        "png" => "image/png",
        _ => "image/tiff",
    };
    let name = format!("{}.{}", u.name, if u.format == "jpeg" { "jpg" } else { &u.format });
    serve_file(&s.upload_dir(&u.id).join("input"), &headers, &name, mime).await
}
