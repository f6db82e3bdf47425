//! The JSON API: jobs, events, downloads (uploads are in `uploads.rs`).

use super::download::serve_file;
use super::reply::{busy, fail, not_found};
use super::state::{new_id, private_dir, valid_id, AppState, Job, JobRequest, JobState};
use super::uploads::storage_failed;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use std::sync::Arc;

type St = State<Arc<AppState>>;

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
        Err(e) => return fail(StatusCode::UNPROCESSABLE_ENTITY, s.scrub(&e.to_string())),
    };
    let (w, h) = match opts.output_size(upload.width, upload.height) {
        Ok(v) => v,
        Err(e) => return fail(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    };
    let samples = w as u64 * h as u64 * upload.channels as u64;
    if samples > s.opts.max_output {
        let msg = format!(
            "the result would be {w}x{h} ({}), over this server's limit of {} (--max-output)",
            crate::format_size(samples),
            crate::format_size(s.opts.max_output)
        );
        return fail(StatusCode::PAYLOAD_TOO_LARGE, msg);
    }
    let position = s.book().queue.len();
    if position >= s.opts.queue {
        return busy("the queue is full", "30");
    }
    let Ok(id) = new_id() else { return fail(StatusCode::INTERNAL_SERVER_ERROR, "no id") };
    let scale = w as f64 / upload.width as f64;
    let job = Job {
        id: id.clone(),
        file_name: format!(
            "{}_{}x_{}.{}",
            upload.name,
            (scale * 100.0).round() / 100.0,
            opts.filter.name(),
            r.extension().unwrap_or("tif")
        ),
        request: r,
        state: JobState::Queued,
        progress: 0.0,
        eta_s: None,
        error: None,
        output: [w, h],
        bytes_estimate: w as u64 * h as u64 * upload.channels as u64 * 4 / 3,
        started: None,
    };
    // 202 only once the record is durably written; nothing is left when it cannot be.
    let dir = s.job_dir(&id);
    let (s2, j2, d2) = (s.clone(), job.clone(), dir.clone());
    let persisted = tokio::task::spawn_blocking(move || private_dir(&d2).and_then(|()| s2.persist_job(&j2))).await;
    let failure = match persisted {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(e) => Some(e.to_string()),
    };
    if let Some(why) = failure {
        let _ = tokio::fs::remove_dir_all(&dir).await;
        return storage_failed(&s, &why);
    }
    s.book().jobs.insert(id.clone(), job.clone());
    s.emit("queued", &id, serde_json::to_value(&job).unwrap_or_default());
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

/// `GET /api/capabilities`: what this server can do beyond the basics (the page shows the
/// face-restoration toggle only where there is a restorer).
pub(super) async fn capabilities(State(s): St) -> Response {
    Json(serde_json::json!({ "restore_faces": s.opts.faces.is_some() })).into_response()
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
    let mime = match j.request.extension() {
        Ok("png") => "image/png",
        Ok("jpg") => "image/jpeg",
        Ok("webp") => "image/webp",
        _ => "image/tiff",
    };
    serve_file(&path, &headers, &j.file_name, mime).await
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

/// `GET /api/jobs/{id}/faces`: the faces in the job's input (`gigascale faces`, as JSON:
/// width, height, faces), found once under an eighth of the server's budget, one detection
/// per tile-rendering slot, then kept beside the upload.
pub(super) async fn faces(State(s): St, Path(id): Path<String>) -> Response {
    let Some(j) = s.job(&id) else { return not_found() };
    let Some(u) = s.book().uploads.get(&j.request.upload).cloned() else { return not_found() };
    let (dir, cache) = (s.upload_dir(&u.id), s.upload_dir(&u.id).join("faces.json"));
    if let Ok(Ok(v)) = tokio::fs::read(&cache).await.map(|b| serde_json::from_slice::<serde_json::Value>(&b)) {
        return Json(v).into_response();
    }
    let Ok(_permit) = s.tiles_gate.acquire().await else { return fail(StatusCode::SERVICE_UNAVAILABLE, "stopping") };
    let mut opts: crate::faces::DetectOptions = Default::default();
    (opts.max_memory, opts.threads, opts.temp_dir) = (s.opts.max_memory / 8, s.opts.threads, Some(dir.clone()));
    let s2 = s.clone();
    let found = tokio::task::spawn_blocking(move || {
        let d = crate::faces::detect_file(&dir.join("input"), &opts, &mut |_, _| {})?;
        let v = serde_json::json!({ "width": d.width, "height": d.height, "faces": d.faces });
        s2.write_record(&cache, &v)?;
        Ok::<_, crate::Error>(v)
    })
    .await;
    match found {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => fail(StatusCode::UNPROCESSABLE_ENTITY, s.scrub(&e.to_string())),
        Err(e) => fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
