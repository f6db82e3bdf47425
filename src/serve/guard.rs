//! Cross-cutting layers: a `Host` allow-list (against DNS rebinding: 403), the token (as
//! `Authorization: Bearer` or the cookie `/?token=` sets: 401 without it), tower-http's CSRF
//! protection on state-changing requests (403), a strict Content-Security-Policy with
//! `nosniff`, an idle deadline on request bodies; no CORS headers.

use super::reply::fail;
use super::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::sync::Arc;
use tower_http::set_header::SetResponseHeaderLayer;

const COOKIE: &str = "gigascale_token";
const CSP: &str = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// `router` inside the layers.
pub(super) fn layers(router: Router, state: Arc<AppState>) -> Router {
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
