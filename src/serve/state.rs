//! The server's state: uploads and jobs (kept as JSON records in the work directory), the
//! queue, the event broadcast, and the shutdown signal.

use super::ServeOptions;
use crate::error::{Error, Result};
use crate::Request;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// An uploaded image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Upload {
    pub id: String,
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub channels: u32,
    pub format: String,
    pub bytes: u64,
}

/// What a job is asked to do (the body of `POST /api/jobs`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct JobRequest {
    pub upload: String,
    pub scale: Option<f64>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub filter: Option<String>,
    pub compression: Option<String>,
    pub precision: Option<String>,
    pub model: Option<String>,
    pub pyramid: Option<bool>,
    /// The result's format: `tif` (the default: tiled, a pyramid, deep zoom), `png` or `jpg`.
    #[serde(default)]
    pub format: Option<String>,
    /// JPEG quality, 1-100.
    #[serde(default)]
    pub quality: Option<u8>,
    /// Restore faces with the server's restorer (`serve --faces`).
    #[serde(default)]
    pub restore_faces: Option<bool>,
}

impl JobRequest {
    /// The library's request for this job under the server's options: built-in models only
    /// (no client string reaches the file system), zstd and a pyramid unless asked otherwise,
    /// the job's share of the budget, the server's pixel limit and threads. Validated by
    /// [`Request::options`](crate::Request::options), the one conversion.
    pub(super) fn library_request(&self, opts: &ServeOptions) -> Result<Request> {
        let sized = self.width.is_some() || self.height.is_some();
        if self.scale.is_some() == sized {
            return Err(Error::usage("give scale, or width and/or height"));
        }
        if let Some(p) = self.precision.as_deref().filter(|p| !matches!(*p, "exact" | "rounded")) {
            return Err(Error::usage(format!("precision {p:?}: exact or rounded here")));
        }
        if let Some(m) = self.model.as_deref().filter(|m| !crate::neural::is_builtin(m)) {
            return Err(Error::usage(format!("model {m:?}: not a built-in model")));
        }
        let mut r = Request::default();
        (r.scale, r.width, r.height) = (self.scale, self.width, self.height);
        (r.filter, r.precision, r.model) = (self.filter.clone(), self.precision.clone(), self.model.clone());
        match self.extension()? {
            "tif" => {
                r.compression = Some(self.compression.clone().unwrap_or_else(|| "zstd".into()));
                r.pyramid = Some(self.pyramid.unwrap_or(true));
            }
            _ if self.compression.is_some() || self.pyramid == Some(true) => {
                return Err(Error::usage("compression and pyramid are for format tif"));
            }
            "jpg" | "webp" => r.quality = self.quality,
            _ => {}
        }
        if self.quality.is_some() && r.quality.is_none() {
            return Err(Error::usage("quality is for format jpg (or webp, which it makes lossy)"));
        }
        if self.restore_faces == Some(true) {
            let Some(f) = &opts.faces else {
                return Err(Error::usage(
                    "this server restores no faces (start it with `gigascale serve --faces MODEL.onnx`)",
                ));
            };
            (r.faces, r.face_fidelity, r.onnxruntime) = (Some(f.model.clone()), Some(f.fidelity), f.runtime.clone());
            (r.face_threads, r.face_device) = (Some(f.face_threads), Some(f.device.to_string()));
        }
        r.max_memory = Some((opts.max_memory * 3 / 4 / opts.jobs as u64).to_string());
        r.max_pixels = Some(opts.max_pixels);
        r.threads = (opts.threads > 0).then_some(opts.threads);
        Ok(r)
    }
}

impl JobRequest {
    /// The result's file extension: `tif`, `png`, `jpg` or `webp`.
    pub(super) fn extension(&self) -> Result<&'static str> {
        match self.format.as_deref() {
            None | Some("tif") | Some("tiff") => Ok("tif"),
            Some("png") => Ok("png"),
            Some("jpg") | Some("jpeg") => Ok("jpg"),
            Some("webp") => Ok("webp"),
            Some(f) => Err(Error::usage(format!("format {f:?}: tif, png, jpg or webp"))),
        }
    }

    /// Whether the result has a pyramid (deep zoom reads it).
    pub(super) fn has_pyramid(&self) -> bool {
        matches!(self.extension(), Ok("tif")) && self.pyramid != Some(false)
    }
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum JobState {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

/// A job and what is known of its progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Job {
    pub id: String,
    pub request: JobRequest,
    pub state: JobState,
    /// 0..1.
    pub progress: f64,
    pub eta_s: Option<f64>,
    pub error: Option<String>,
    pub output: [u32; 2],
    pub bytes_estimate: u64,
    /// The download's file name, `{name}_{scale}x_{filter}.tif`.
    pub file_name: String,
    /// Seconds since the epoch when it started running (for the ETA).
    #[serde(default)]
    pub started: Option<f64>,
}

/// Jobs, the queue, and who may be cancelled.
#[derive(Default)]
pub(super) struct Book {
    pub uploads: BTreeMap<String, Upload>,
    pub jobs: BTreeMap<String, Job>,
    pub queue: VecDeque<String>,
    /// Cancel flags of running jobs.
    pub running: BTreeMap<String, Arc<AtomicBool>>,
}

/// Everything the handlers and the job threads share.
pub(super) struct AppState {
    pub opts: ServeOptions,
    /// The Host values this server answers to.
    pub hosts: super::hosts::Hosts,
    book: Mutex<Book>,
    /// Signalled when the queue gains a job or the server stops.
    pub wake: Condvar,
    /// Events for `GET /api/events` (JSON objects).
    pub events: tokio::sync::broadcast::Sender<String>,
    stopping: AtomicBool,
    stop_tx: tokio::sync::watch::Sender<bool>,
    /// Uploads in flight at once, and tile renderings at once.
    pub uploads_gate: tokio::sync::Semaphore,
    pub tiles_gate: tokio::sync::Semaphore,
    /// Job threads, joined on stop.
    pub threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// A server-generated id: 16 hex digits.
pub(super) fn new_id() -> Result<String> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| Error::Internal(format!("no randomness for an id: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Whether `id` has the form of our ids (so that no client string reaches a path otherwise).
pub(super) fn valid_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl AppState {
    /// Opens (creating) the work directory and loads what an earlier run left: uploads, and
    /// jobs — those that were queued or running are queued again (running ones resume).
    pub(super) fn open(mut opts: ServeOptions, addr: SocketAddr) -> Result<Arc<AppState>> {
        private_dir(&opts.work_dir)?;
        opts.work_dir = std::path::absolute(&opts.work_dir).map_err(|e| Error::io(&opts.work_dir, e))?;
        for d in ["uploads", "jobs"] {
            private_dir(&opts.work_dir.join(d))?;
        }
        let mut book = Book::default();
        for (id, dir) in entries(&opts.work_dir.join("uploads"))? {
            match read_json::<Upload>(&dir.join("upload.json")) {
                Some(u) => {
                    remove_leftovers(&dir);
                    book.uploads.insert(id, u);
                }
                // An upload cut off (a crash, kill -9) before its record was written.
                None => remove_dir(&dir),
            }
        }
        for (id, dir) in entries(&opts.work_dir.join("jobs"))? {
            remove_leftovers(&dir);
            let Some(mut j) = read_json::<Job>(&dir.join("job.json")) else {
                remove_dir(&dir);
                continue;
            };
            if matches!(j.state, JobState::Queued | JobState::Running) {
                j.state = JobState::Queued;
                book.queue.push_back(id.clone());
            }
            book.jobs.insert(id, j);
        }
        let (stop_tx, _) = tokio::sync::watch::channel(false);
        let (events, _) = tokio::sync::broadcast::channel(1024);
        let hosts = super::hosts::Hosts::new(addr, opts.allow_remote, &opts.allow_hosts);
        Ok(Arc::new(AppState {
            opts,
            hosts,
            book: Mutex::new(book),
            wake: Condvar::new(),
            events,
            stopping: AtomicBool::new(false),
            stop_tx,
            uploads_gate: tokio::sync::Semaphore::new(2),
            tiles_gate: tokio::sync::Semaphore::new(4),
            threads: Mutex::default(),
        }))
    }

    /// The page's addresses with the token, most useful first.
    pub(super) fn page_urls(&self) -> Vec<String> {
        let token = self.opts.token.as_ref().map_or(String::new(), |t| format!("?token={t}"));
        self.hosts.urls().iter().map(|u| format!("{u}{token}")).collect()
    }

    /// The book, locked (a poisoned lock is taken over: the records stay consistent because
    /// every change is one assignment).
    pub(super) fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The directory of upload `id`.
    pub(super) fn upload_dir(&self, id: &str) -> PathBuf {
        self.opts.work_dir.join("uploads").join(id)
    }

    /// The directory of job `id`.
    pub(super) fn job_dir(&self, id: &str) -> PathBuf {
        self.opts.work_dir.join("jobs").join(id)
    }

    /// Job `id`, if the id is well-formed and known.
    pub(super) fn job(&self, id: &str) -> Option<Job> {
        valid_id(id).then(|| self.book().jobs.get(id).cloned()).flatten()
    }

    /// Where job `j`'s result goes.
    pub(super) fn output_path(&self, j: &Job) -> PathBuf {
        self.job_dir(&j.id).join(format!("result.{}", j.request.extension().unwrap_or("tif")))
    }

    /// Writes job `j`'s record durably.
    pub(super) fn persist_job(&self, j: &Job) -> Result<()> {
        self.write_record(&self.job_dir(&j.id).join("job.json"), j)
    }

    /// Writes a record durably ([`write_json`]), or fails as on a full disk while the test
    /// hook says so.
    pub(super) fn write_record<T: Serialize>(&self, path: &Path, v: &T) -> Result<()> {
        #[cfg(feature = "testing")]
        if self.opts.fail_records.load(Ordering::SeqCst) {
            return Err(Error::io(path, std::io::Error::from_raw_os_error(libc::ENOSPC)));
        }
        write_json(path, v)
    }

    /// Stores job `j` (its record on disk, then the book) and tells the event stream. A
    /// record that cannot be written leaves the book right (the job goes on; a restart
    /// would find the previous record).
    pub(super) fn save_job(&self, j: &Job, event: &str) {
        let _ = self.persist_job(j);
        self.book().jobs.insert(j.id.clone(), j.clone());
        self.emit(event, &j.id, serde_json::to_value(j).unwrap_or_default());
    }

    /// Job `id`'s progress (0..1) and estimate, in the book (`GET /api/jobs/{id}`).
    pub(super) fn set_progress(&self, id: &str, progress: f64, eta_s: Option<f64>) {
        if let Some(j) = self.book().jobs.get_mut(id) {
            (j.progress, j.eta_s) = (progress, eta_s);
        }
    }

    /// `msg` with the work directory's location replaced by `work-dir` (errors sent to
    /// clients never show where the server keeps its files).
    pub(super) fn scrub(&self, msg: &str) -> String {
        let dir = &self.opts.work_dir;
        let mut out = msg.to_string();
        // `work_dir` was made absolute when the state was opened; its canonical form too
        // (symbolic links resolved), longest first.
        for d in [std::fs::canonicalize(dir).ok(), Some(dir.clone())].into_iter().flatten() {
            let d = d.to_string_lossy().into_owned();
            if d.len() > 1 {
                out = out.replace(&d, "work-dir");
            }
        }
        out
    }

    /// Sends `{event, job, data}` to every event stream.
    pub(super) fn emit(&self, event: &str, job: &str, data: serde_json::Value) {
        let msg = serde_json::json!({"event": event, "job": job, "data": data});
        let _ = self.events.send(msg.to_string());
    }

    /// Whether the server is shutting down.
    pub(super) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Starts the shutdown: streams end, job threads stop taking jobs, running jobs cancel.
    pub(super) fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = self.stop_tx.send(true);
        for c in self.book().running.values() {
            c.store(true, Ordering::SeqCst);
        }
        self.wake.notify_all();
    }

    /// A receiver that turns true when [`AppState::stop`] is called.
    pub(super) fn stop_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stop_tx.subscribe()
    }

    /// The part of `--max-memory` open connections may hold: what the jobs' three quarters
    /// leave, less what uploads and tile renderings buffer.
    pub(super) fn connection_budget(&self) -> u64 {
        (self.opts.max_memory / 4).saturating_sub(super::listen::RESERVED)
    }

    /// Resolves once [`AppState::stop`] was called.
    pub(super) async fn stopped(&self) {
        let _ = self.stop_signal().wait_for(|s| *s).await;
    }
}

/// `(name, path)` of the directories in `dir` whose names are valid ids.
fn entries(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    Ok(rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            valid_id(&name).then(|| (name, e.path()))
        })
        .collect())
}

/// A JSON record, if it is there and readable.
pub(super) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Writes a JSON record durably: a temporary file (owner-only), synced, renamed over the
/// record, the directory synced. On failure the temporary file is removed and the old
/// record (if any) stays.
pub(super) fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(v).map_err(|e| Error::Internal(format!("json: {e}")))?;
    let written = private_file(&tmp).and_then(|mut f| f.write_all(&bytes).and_then(|()| f.sync_all()));
    let renamed = written.and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = renamed {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Creates (truncating) a file only the owner can read.
pub(super) fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)
}

/// Creates `dir` (and its parents) if needed and makes it owner-only (0700).
pub(super) fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| Error::io(dir, e))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| Error::io(dir, e))
}

/// Syncs a directory (a rename in it is then durable).
pub(super) fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))
}

/// Removes the temporary records a crash may have left in `dir`.
fn remove_leftovers(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().ends_with(".json.tmp") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Removes a directory of ours that has no record (an upload or job cut off).
fn remove_dir(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}
