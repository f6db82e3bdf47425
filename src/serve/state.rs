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
        r.compression = Some(self.compression.clone().unwrap_or_else(|| "zstd".into()));
        r.pyramid = Some(self.pyramid.unwrap_or(true));
        r.max_memory = Some((opts.max_memory * 3 / 4 / opts.jobs as u64).to_string());
        r.max_pixels = Some(opts.max_pixels);
        r.threads = (opts.threads > 0).then_some(opts.threads);
        Ok(r)
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
    pub addr: SocketAddr,
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
    pub(super) fn open(opts: ServeOptions, addr: SocketAddr) -> Result<Arc<AppState>> {
        for d in ["uploads", "jobs"] {
            let p = opts.work_dir.join(d);
            std::fs::create_dir_all(&p).map_err(|e| Error::io(&p, e))?;
        }
        let mut book = Book::default();
        for (id, dir) in entries(&opts.work_dir.join("uploads"))? {
            if let Some(u) = read_json::<Upload>(&dir.join("upload.json")) {
                book.uploads.insert(id, u);
            }
        }
        for (id, dir) in entries(&opts.work_dir.join("jobs"))? {
            let Some(mut j) = read_json::<Job>(&dir.join("job.json")) else { continue };
            if matches!(j.state, JobState::Queued | JobState::Running) {
                j.state = JobState::Queued;
                book.queue.push_back(id.clone());
            }
            book.jobs.insert(id, j);
        }
        let (stop_tx, _) = tokio::sync::watch::channel(false);
        let (events, _) = tokio::sync::broadcast::channel(1024);
        Ok(Arc::new(AppState {
            opts,
            addr,
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

    /// The page's address with the token.
    pub(super) fn page_url(&self) -> String {
        let host = if self.addr.ip().is_loopback() { "127.0.0.1".to_string() } else { self.addr.ip().to_string() };
        match &self.opts.token {
            Some(t) => format!("http://{host}:{}/?token={t}", self.addr.port()),
            None => format!("http://{host}:{}/", self.addr.port()),
        }
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
        self.job_dir(&j.id).join("result.tif")
    }

    /// Stores job `j` (its record on disk, then the book) and tells the event stream.
    pub(super) fn save_job(&self, j: &Job, event: &str) {
        let _ = write_json(&self.job_dir(&j.id).join("job.json"), j);
        self.book().jobs.insert(j.id.clone(), j.clone());
        self.emit(event, &j.id, serde_json::to_value(j).unwrap_or_default());
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

    /// Resolves once [`AppState::stop`] was called.
    pub(super) async fn stopped(&self) {
        let mut rx = self.stop_tx.subscribe();
        while !*rx.borrow() {
            if rx.changed().await.is_err() {
                return;
            }
        }
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

/// Writes a JSON record atomically (temporary name, rename).
pub(super) fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(v).map_err(|e| Error::Internal(format!("json: {e}")))?;
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}
