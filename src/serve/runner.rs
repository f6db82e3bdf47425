//! Job threads: each takes the next queued job, runs [`crate::upscale`] on it under its share
//! of the budget (journaled, so that a job interrupted by a shutdown resumes on the next
//! start), and reports its progress as events. "done" is sent only after the output was
//! renamed into place (`upscale` returns only then).

use super::state::{AppState, Job, JobState, Upload};
use crate::error::{Error, Result};
use crate::Event;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Starts `--jobs` job threads.
pub(super) fn start(state: &Arc<AppState>) {
    let mut threads = state.threads.lock().unwrap_or_else(|p| p.into_inner());
    for _ in 0..state.opts.jobs {
        let s = state.clone();
        threads.push(std::thread::spawn(move || worker(&s)));
    }
}

/// Waits for the job threads to end (after [`AppState::stop`]).
pub(super) fn stop(state: &Arc<AppState>) {
    let threads = std::mem::take(&mut *state.threads.lock().unwrap_or_else(|p| p.into_inner()));
    for t in threads {
        let _ = t.join();
    }
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

fn worker(state: &Arc<AppState>) {
    loop {
        let (id, cancel) = {
            let mut book = state.book();
            loop {
                if state.stopping() {
                    return;
                }
                if let Some(id) = book.queue.pop_front() {
                    let cancel = Arc::new(AtomicBool::new(false));
                    book.running.insert(id.clone(), cancel.clone());
                    break (id, cancel);
                }
                book = state.wake.wait(book).unwrap_or_else(|p| p.into_inner());
            }
        };
        run_one(state, &id, cancel);
        state.book().running.remove(&id);
        // Queue positions moved.
        state.emit("queue", "", serde_json::json!(state.book().queue));
    }
}

fn run_one(state: &Arc<AppState>, id: &str, cancel: Arc<AtomicBool>) {
    let (mut job, upload) = {
        let book = state.book();
        let Some(job) = book.jobs.get(id).cloned() else { return };
        let Some(upload) = book.uploads.get(&job.request.upload).cloned() else { return };
        (job, upload)
    };
    job.state = JobState::Running;
    job.started = Some(now());
    state.save_job(&job, "running");
    let result = execute(state, &mut job, &upload, cancel);
    match result {
        Ok(()) => {
            job.state = JobState::Done;
            job.progress = 1.0;
            job.eta_s = Some(0.0);
        }
        Err(Error::Interrupted { .. }) if state.stopping() => {
            // Left resumable: queued again on the next start.
            job.state = JobState::Queued;
        }
        Err(Error::Interrupted { .. }) => {
            job.state = JobState::Cancelled;
            remove_partial(state, &job);
        }
        Err(e) => {
            job.state = JobState::Failed;
            job.error = Some(state.scrub(&e.to_string()));
            remove_partial(state, &job);
        }
    }
    let event = match job.state {
        JobState::Done => "done",
        JobState::Cancelled => "cancelled",
        JobState::Failed => "failed",
        _ => "interrupted",
    };
    state.save_job(&job, event);
}

fn remove_partial(state: &AppState, job: &Job) {
    crate::remove_partial(&state.output_path(job));
}

fn execute(state: &Arc<AppState>, job: &mut Job, upload: &Upload, cancel: Arc<AtomicBool>) -> Result<()> {
    let mut r = job.request.library_request(&state.opts)?;
    (r.cancel, r.temp_dir) = (Some(cancel), Some(state.job_dir(&job.id)));
    let o = r.options()?;
    let input = state.upload_dir(&upload.id).join("input");
    let output = state.output_path(job);
    // TIFF results are journaled (a job cut off resumes); PNG and JPEG ones start over.
    let resume = matches!(job.request.extension(), Ok("tif"));
    let files = crate::Files { overwrite: true, resume };
    let t0 = Instant::now();
    let mut last = Instant::now();
    let has_model = o.model.is_some();
    let mut progress = |e: &Event| {
        let library = serde_json::to_value(e).unwrap_or_default();
        let p = match e {
            Event::Neural { done, total, pass, passes } => {
                let pass_part = (*pass - 1) as f64 + *done as f64 / (*total).max(1) as f64;
                0.5 * pass_part / (*passes).max(1) as f64
            }
            Event::Tiles { done, total, .. } => {
                let t = *done as f64 / (*total).max(1) as f64;
                if has_model {
                    0.5 + 0.5 * t
                } else {
                    t
                }
            }
            // Other library events (start, backend, decode, neural_start, warnings) pass on as
            // they are; `done` is the server's own, after the job's record is saved.
            Event::Done { .. } => return,
            _ => return state.emit("library", &job.id, library),
        };
        // At most ten progress updates a second reach the event stream.
        if last.elapsed().as_millis() < 100 && p < 1.0 {
            return;
        }
        last = Instant::now();
        job.progress = p;
        let el = t0.elapsed().as_secs_f64();
        job.eta_s = (p > 0.01).then(|| el * (1.0 - p) / p);
        state.set_progress(&job.id, p, job.eta_s);
        state.emit("progress", &job.id, serde_json::json!({"progress": p, "eta_s": job.eta_s, "library": library}));
    };
    crate::upscale(&input, &output, &o, files, &mut progress)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&output, std::fs::Permissions::from_mode(0o600)).map_err(|e| Error::io(&output, e))
}
