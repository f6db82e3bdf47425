//! Cross-cutting layers: a `Host` allow-list (against DNS rebinding: 403), the token (as
//! `Authorization: Bearer` or the cookie `/?token=` sets: 401 without it), tower-http's CSRF
//! protection on state-changing requests (403), a strict Content-Security-Policy with
//! `nosniff`, an idle deadline on request bodies; no CORS headers. And file downloads with
//! Range and ETag.

use super::api::fail;
use super::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tower_http::set_header::SetResponseHeaderLayer;

const COOKIE: &str = "gigascale_token";
const CSP: &str = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// `router` inside the layers.
pub fn layers(router: Router, state: Arc<AppState>) -> Router {
    let csrf = tower_http::csrf::CsrfLayer::new();
    router
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(std::time::Duration::from_secs(60)))
        .layer(csrf)
        .layer(middleware::from_fn_with_state(state, check))
        .layer(SetResponseHeaderLayer::overriding(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
}

/// Whether `host` (the Host header) names this server: localhost, 127.0.0.1 or [::1] with
/// its port (or, with `--allow-remote`, the address it listens on).
fn host_allowed(s: &AppState, host: &str) -> bool {
    let port = s.addr.port();
    let mut ok = ["localhost", "127.0.0.1", "[::1]"].iter().any(|h| host == format!("{h}:{port}"));
    if s.opts.allow_remote {
        ok |= host == s.addr.to_string();
    }
    ok
}

/// The token the request carries, from the Authorization header or the cookie.
fn token_of(headers: &HeaderMap) -> Option<String> {
    if let Some(b) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return b.strip_prefix("Bearer ").map(str::to_string);
    }
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|c| c.split(';')).find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == COOKIE).then(|| v.to_string())
    })
}

/// Constant-time comparison (the token is a secret).
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn check(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    if !host_allowed(&s, host) {
        return fail(StatusCode::FORBIDDEN, "unknown Host");
    }
    let Some(want) = s.opts.token.clone() else { return next.run(req).await };
    // `/?token=T`: sets the cookie and sends the page on to `/` (keeps the token out of
    // the address bar's history).
    if req.uri().path() == "/" {
        let q = req.uri().query().unwrap_or("");
        if let Some(t) = q.split('&').find_map(|kv| kv.strip_prefix("token=")) {
            if !same(t, &want) {
                return fail(StatusCode::UNAUTHORIZED, "wrong token");
            }
            let rest: Vec<&str> = q.split('&').filter(|kv| !kv.starts_with("token=")).collect();
            let to = if rest.is_empty() { "/".to_string() } else { format!("/?{}", rest.join("&")) };
            let cookie = format!("{COOKIE}={want}; HttpOnly; SameSite=Strict; Path=/");
            return Response::builder()
                .status(StatusCode::SEE_OTHER)
                .header(header::LOCATION, to)
                .header(header::SET_COOKIE, cookie)
                .body(Body::empty())
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
        }
    }
    match token_of(req.headers()) {
        Some(t) if same(&t, &want) => next.run(req).await,
        _ => {
            fail(StatusCode::UNAUTHORIZED, "the token is missing or wrong (open the address `gigascale serve` printed)")
        }
    }
}

/// A single `bytes=a-b` / `bytes=a-` / `bytes=-n` range within `len`, if well-formed.
fn range(h: &str, len: u64) -> Option<(u64, u64)> {
    let spec = h.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => (len.saturating_sub(n.parse().ok()?), len.checked_sub(1)?),
        (a, "") => (a.parse().ok()?, len.checked_sub(1)?),
        (a, b) => (a.parse().ok()?, b.parse::<u64>().ok()?.min(len.checked_sub(1)?)),
    };
    (start <= end && end < len).then_some((start, end))
}

/// Serves `path` with an ETag (size and modification time), `If-None-Match` (304), a single
/// Range (206 / 416), and `Content-Disposition: attachment; filename=name`.
pub async fn serve_file(path: &std::path::Path, headers: &HeaderMap, name: &str, mime: &'static str) -> Response {
    let Ok(mut f) = tokio::fs::File::open(path).await else { return fail(StatusCode::NOT_FOUND, "file gone") };
    let Ok(meta) = f.metadata().await else { return fail(StatusCode::NOT_FOUND, "file gone") };
    let len = meta.len();
    let mtime =
        meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    let etag = format!("\"{len:x}-{mtime:x}\"");
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    let asked = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, end) = match asked.map(|r| range(r, len)) {
        None => (StatusCode::OK, 0, len.saturating_sub(1)),
        Some(Some((a, b))) => (StatusCode::PARTIAL_CONTENT, a, b),
        Some(None) => {
            let mut r = fail(StatusCode::RANGE_NOT_SATISFIABLE, "bad range");
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    if f.seek(std::io::SeekFrom::Start(start)).await.is_err() {
        return fail(StatusCode::INTERNAL_SERVER_ERROR, "seek");
    }
    let count = if len == 0 { 0 } else { end - start + 1 };
    let stream = tokio_read_stream(f.take(count));
    let safe: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || "._- ".contains(*c)).collect();
    let mut b = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, mime)
        .header(header::CONTENT_LENGTH, count)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, etag)
        .header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"{safe}\""));
    if status == StatusCode::PARTIAL_CONTENT {
        b = b.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
    }
    b.body(Body::from_stream(stream)).unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The bytes of `r` as a stream of 256 KiB chunks.
fn tokio_read_stream<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    r: R,
) -> impl futures_util::Stream<Item = std::io::Result<Vec<u8>>> + Send {
    futures_util::stream::unfold(r, |mut r| async move {
        let mut buf = vec![0u8; 256 << 10];
        match r.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(buf), r))
            }
            Err(e) => Some((Err(e), r)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn ranges() {
        assert_eq!(range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(range("bytes=50-500", 100), Some((50, 99)));
        assert_eq!(range("bytes=100-", 100), None);
        assert_eq!(range("bytes=0-1,5-6", 100), None);
        assert_eq!(range("items=0-1", 100), None);
    }
}
