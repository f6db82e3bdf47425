//! `gigascale serve`: a local web server over the library — binary uploads, a job queue with
//! cancel, Server-Sent Events for progress, downloads with Range, and deep-zoom tiles read
//! straight from the pyramid TIFF (feature `serve`).
//!
//! Shape (as axum's examples): one state struct (`state.rs`) shared by small handlers
//! (`api.rs`, `deepzoom.rs`, `page.rs`, with `download.rs` for files and `reply.rs` for
//! errors, `uploads.rs` for uploads); cross-cutting concerns are layers (`guard.rs`: Host
//! allow-list from `hosts.rs`, token, CSRF, security headers, JSON errors); `router` puts
//! them together, and `listen.rs` accepts connections under a cap and deadlines. Jobs run on their own
//! threads (`runner.rs`), each under its share of `--max-memory`; their records live in
//! `--work-dir` and survive a restart. The server uses the library's public API only.

mod api;
mod deepzoom;
mod download;
mod guard;
mod hosts;
mod listen;
mod page;
mod reply;
mod runner;
mod state;
mod uploads;

use crate::error::{Error, Result};
use axum::routing::{get, post};
use axum::Router;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use state::AppState;

/// The application: routes, then the guard's layers around them.
fn router(state: Arc<AppState>) -> Router {
    let routes = Router::new()
        .route("/api/uploads", post(uploads::upload))
        .route("/api/uploads/{id}", axum::routing::delete(uploads::delete_upload))
        .route("/api/jobs", post(api::create_job).get(api::list_jobs))
        .route("/api/jobs/{id}", get(api::get_job).delete(api::delete_job))
        .route("/api/jobs/{id}/result", get(api::result))
        .route("/api/jobs/{id}/input", get(api::input))
        .route("/api/jobs/{id}/faces", get(api::faces))
        .route("/api/jobs/{id}/dz/image.dzi", get(deepzoom::descriptor))
        .route("/api/jobs/{id}/dz/image_files/{level}/{tile}", get(deepzoom::tile))
        .route("/api/events", get(api::events))
        .route("/api/capabilities", get(api::capabilities))
        .route("/", get(page::index))
        .route("/static/{file}", get(page::asset))
        .route("/static/osd/{*path}", get(page::osd))
        .with_state(state.clone());
    guard::layers(routes, state)
}

/// What `gigascale serve` is given.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeOptions {
    /// Address to listen on (loopback unless `allow_remote`).
    pub listen: SocketAddr,
    /// Where uploads, jobs and results live (kept across restarts).
    pub work_dir: PathBuf,
    /// Budget for everything: running jobs share most of it, uploads and tiles the rest.
    pub max_memory: u64,
    /// Largest upload accepted, in bytes.
    pub max_upload: u64,
    /// Largest input accepted, in pixels.
    pub max_pixels: u64,
    /// Largest result a job may make, in bytes of samples (width x height x channels);
    /// larger requests are refused with 413.
    pub max_output: u64,
    /// Jobs run at once.
    pub jobs: usize,
    /// Jobs waiting at most (beyond that, 503).
    pub queue: usize,
    /// The access token; `None` (`--no-token`) only on loopback.
    pub token: Option<String>,
    /// Allow a non-loopback `listen` (the token stays mandatory).
    pub allow_remote: bool,
    /// Further names the server answers to (`--allow-host`, e.g. a reverse proxy's).
    pub allow_hosts: Vec<String>,
    /// Threads each job uses (0 = one per CPU).
    pub threads: usize,
    /// The face restorer jobs may ask for (`"restore_faces": true`), configured here and
    /// never named by a client (`serve --faces MODEL.onnx`).
    pub faces: Option<crate::faces::RestoreOptions>,
    /// Test hook: while true, every record write fails as on a full disk (ENOSPC).
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub fail_records: Arc<std::sync::atomic::AtomicBool>,
}

impl ServeOptions {
    /// Defaults: 127.0.0.1:8580, `work_dir`, 1 GiB, 2 GiB uploads, results up to 8 GiB of
    /// samples, one job at a time, a queue of 16, a fresh random token.
    pub fn new(work_dir: PathBuf) -> Result<ServeOptions> {
        Ok(ServeOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 8580)),
            work_dir,
            max_memory: 1 << 30,
            max_upload: 2 << 30,
            max_pixels: crate::limits::DEFAULT_MAX_PIXELS,
            max_output: 8 << 30,
            jobs: 1,
            queue: 16,
            token: Some(new_token()?),
            allow_remote: false,
            allow_hosts: Vec::new(),
            threads: 0,
            faces: None,
            #[cfg(feature = "testing")]
            fail_records: Arc::default(),
        })
    }

    /// Checks the options before anything starts.
    pub fn validate(&self) -> Result<()> {
        if !self.listen.ip().is_loopback() && !self.allow_remote {
            return Err(Error::usage(format!(
                "--listen {}: not a loopback address; add --allow-remote to serve other machines (the token stays required)",
                self.listen
            )));
        }
        if self.token.is_none() && !self.listen.ip().is_loopback() {
            return Err(Error::usage("--no-token is only allowed on a loopback address"));
        }
        if self.jobs == 0 || self.queue == 0 {
            return Err(Error::usage("--jobs and --queue must be at least 1"));
        }
        if self.max_memory < (64 << 20) * self.jobs as u64 {
            return Err(Error::usage(format!(
                "--max-memory {}: too small for {} job(s); allow at least 64M per job",
                self.max_memory, self.jobs
            )));
        }
        Ok(())
    }
}

/// A 128-bit random token, as 32 hex digits.
pub fn new_token() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| Error::Internal(format!("no randomness for the token: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// A server running on its own threads (for embedding and tests).
#[non_exhaustive]
pub struct Server {
    /// The address it listens on (the port resolved when 0 was asked).
    pub addr: SocketAddr,
    /// The page's address with the token, as `serve` prints it first.
    pub url: String,
    /// Every address the page is reachable at (with `--allow-remote` on a wildcard address,
    /// one per network interface), `url` first.
    pub urls: Vec<String>,
    state: Arc<AppState>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

impl Server {
    /// Binds, loads the jobs kept in the work directory, and starts serving.
    pub fn start(opts: ServeOptions) -> Result<Server> {
        opts.validate()?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("tokio runtime: {e}")))?;
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(opts.listen))
            .map_err(|e| Error::io(format!("{}", opts.listen), e))?;
        let addr = listener.local_addr().map_err(|e| Error::io(format!("{}", opts.listen), e))?;
        let state = AppState::open(opts, addr)?;
        runner::start(&state);
        let urls = state.page_urls();
        let url = urls.first().cloned().unwrap_or_default();
        let app = router(state.clone());
        let stop = state.clone();
        let cap = listen::max_connections(state.connection_budget());
        let thread = std::thread::spawn(move || {
            rt.block_on(listen::serve(listener, app, cap, stop.stop_signal()));
            // Jobs' threads and blocking reads may still hold the runtime; they end on stop.
            rt.shutdown_timeout(std::time::Duration::from_millis(500));
            Ok(())
        });
        Ok(Server { addr, url, urls, state, thread: Some(thread) })
    }

    /// Stops: SSE streams end, running jobs are cancelled (resumable on the next start),
    /// the listener closes. Returns once the server thread has ended.
    pub fn shutdown(mut self) -> Result<()> {
        self.state.stop();
        runner::stop(&self.state);
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(Error::Internal("the server thread panicked".into())),
            None => Ok(()),
        }
    }

    /// Waits until SIGINT or SIGTERM, then shuts down (what `gigascale serve` does).
    pub fn run_until_signal(self) -> Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("tokio runtime: {e}")))?;
        rt.block_on(async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .map_err(|e| Error::io("SIGTERM handler", e))?;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
            Ok::<(), Error>(())
        })?;
        self.shutdown()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.state.stop();
            runner::stop(&self.state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn remote_listening_and_no_token_are_opt_in_and_loopback_only() {
        let mut o = ServeOptions::new(PathBuf::from("w")).unwrap();
        assert_eq!(o.token.as_ref().map(|t| t.len()), Some(32), "128 bits as hex");
        assert_ne!(o.token, ServeOptions::new(PathBuf::from("w")).unwrap().token, "a fresh token each time");
        o.validate().unwrap();
        o.listen = "0.0.0.0:8580".parse().unwrap();
        assert!(o.validate().unwrap_err().to_string().contains("--allow-remote"));
        o.allow_remote = true;
        o.validate().unwrap();
        o.token = None;
        assert!(o.validate().unwrap_err().to_string().contains("--no-token"));
        o.listen = "[::1]:8580".parse().unwrap();
        o.validate().unwrap();
    }
}
