//! Connections, bounded: the server accepts them itself (hyper's HTTP/1 connection under
//! axum's router) so that every one has limits a hostile client cannot stretch:
//!
//! - a **cap** on open connections, from the memory budget (each may hold a 64 KiB read
//!   buffer and its task; a request head is at most 32 KiB and 100 fields, else 431) and the file-descriptor limit; when it is reached, the oldest
//!   connection that has not yet carried an authorised request is closed to make room, and
//!   if every one has, the newcomer is answered 503 at once and closed (no queue of sockets);
//! - a **header deadline**: a request's headers must arrive within [`HEADER_TIMEOUT`], and a
//!   kept-alive connection that sends nothing for as long is closed (hyper's header read
//!   timeout covers both);
//! - request bodies: a **minimum rate** (see `api::upload`), not an idle timer a byte can reset;
//! - **shutdown** in bounded time: connections are asked to finish what they are sending, and
//!   whatever is still open after [`DRAIN`] is dropped.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tower_service::Service;

/// How long a request's headers (and a kept-alive connection's silence) may take.
pub(super) const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for connections to finish their replies.
pub(super) const DRAIN: Duration = Duration::from_secs(2);
/// The most a connection buffers of what the client sends.
const READ_BUFFER: usize = 64 << 10;
/// The largest request head (start line and headers); larger ones are answered 431.
const MAX_HEAD: usize = 32 << 10;
/// The most header fields a request may have (431 beyond).
const MAX_HEADERS: usize = 100;
/// Memory one open connection may hold: its read buffer, a reply's write buffer, hyper's
/// state and the task.
pub(super) const CONNECTION_BYTES: u64 = 64 << 10;
/// What the server's quarter of the budget keeps for other things than connections: two
/// uploads' and four tile renderings' buffers.
pub(super) const RESERVED: u64 = 48 << 20;

/// Whether a connection has carried an authorised request (set by the guard): such a
/// connection is not closed to make room for others.
#[derive(Clone, Debug, Default)]
pub(super) struct Trust(Arc<AtomicBool>);

impl Trust {
    /// Marks the connection as the token holder's.
    pub(super) fn grant(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// An open connection as the registry sees it.
struct Slot {
    trust: Trust,
    close: Arc<Notify>,
}

/// Open connections by age (ids increase).
type Registry = Arc<Mutex<BTreeMap<u64, Slot>>>;

fn lock(r: &Registry) -> std::sync::MutexGuard<'_, BTreeMap<u64, Slot>> {
    r.lock().unwrap_or_else(|p| p.into_inner())
}

/// The most connections open at once: what `budget` bytes hold, within half the process's
/// file-descriptor limit (jobs and stores need the rest), at least 16.
pub(super) fn max_connections(budget: u64) -> usize {
    // SAFETY: getrlimit writes the limit into the struct it is given, which lives across the
    // call.
    let fds = unsafe {
        let mut l = std::mem::zeroed::<libc::rlimit>();
        match libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) {
            0 => l.rlim_cur,
            _ => 1024,
        }
    };
    let by_memory = budget / CONNECTION_BYTES;
    by_memory.min(fds as u64 / 2).max(16) as usize
}

/// Serves `app` on `listener` until `stopped` is true, at most `cap` connections at once.
pub(super) async fn serve(listener: TcpListener, app: Router, cap: usize, mut stopped: watch::Receiver<bool>) {
    let registry: Registry = Arc::default();
    let (finish_tx, finish_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let mut next = 0u64;
    loop {
        let accepted = tokio::select! {
            _ = async { stopped.wait_for(|s| *s).await.is_ok() } => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            // Out of file descriptors (or another transient failure): make room, pause.
            Err(_) => {
                evict_untrusted(&registry);
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if !make_room(&registry, &mut tasks, cap).await {
            refuse(stream);
            continue;
        }
        let (trust, close) = (Trust::default(), Arc::new(Notify::new()));
        lock(&registry).insert(next, Slot { trust: trust.clone(), close: close.clone() });
        let open = Open { id: next, registry: registry.clone() };
        tasks.spawn(connection(stream, peer, app.clone(), trust, close, open, finish_rx.clone()));
        next += 1;
    }
    drop(listener);
    let _ = finish_tx.send(true);
    let drained = tokio::time::timeout(DRAIN, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tasks.abort_all();
    }
}

/// Brings the open connections under `cap` before one more is taken: closes the oldest
/// without an authorised request and waits for its task to end — counting tasks, not
/// registry entries, because an evicted connection's descriptor stays open until its task
/// has dropped it (under load that lag let descriptors pile up past the cap, and a job then
/// found none to create its files with). False when nothing can be closed in time.
async fn make_room(registry: &Registry, tasks: &mut tokio::task::JoinSet<()>, cap: usize) -> bool {
    while tasks.len() >= cap {
        if lock(registry).len() >= cap && !evict_untrusted(registry) {
            return false;
        }
        match tokio::time::timeout(Duration::from_secs(1), tasks.join_next()).await {
            Ok(Some(_)) => {}
            _ => return false,
        }
    }
    true
}

/// Closes the oldest connection without an authorised request; whether there was one.
fn evict_untrusted(registry: &Registry) -> bool {
    let mut r = lock(registry);
    let oldest = r.iter().find(|(_, s)| !s.trust.0.load(Ordering::Relaxed)).map(|(&id, _)| id);
    match oldest.and_then(|id| r.remove(&id)) {
        Some(slot) => {
            slot.close.notify_one();
            true
        }
        None => false,
    }
}

/// Answers 503 without reading the request, and closes (never waits on the client).
fn refuse(stream: TcpStream) {
    const BODY: &str = "{\"error\":\"too many connections; try again\"}\n";
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 5\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = stream.try_write(head.as_bytes());
}

/// A connection's place in the registry, given up when its task ends (however it ends).
struct Open {
    id: u64,
    registry: Registry,
}

impl Drop for Open {
    fn drop(&mut self) {
        lock(&self.registry).remove(&self.id);
    }
}

/// Runs one connection until it ends, is closed to make room, or shutdown's drain.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    trust: Trust,
    close: Arc<Notify>,
    _open: Open,
    mut finish: watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ConnectInfo(peer));
        req.extensions_mut().insert(trust.clone());
        let mut app = app.clone();
        async move { app.call(req).await }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(READ_BUFFER)
        .max_header_size(MAX_HEAD)
        .max_headers(MAX_HEADERS)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = close.notified() => {}
        _ = async { finish.wait_for(|f| *f).await.is_ok() } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
