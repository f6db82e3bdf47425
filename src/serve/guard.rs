//! Cross-cutting layers: a `Host` allow-list (against DNS rebinding: 403; exactly one Host,
//! and an absolute-form target's authority checked the same way), the token (as
//! `Authorization: Bearer` or the cookie `/?token=` sets: 401 without it), tower-http's CSRF
//! protection on state-changing requests (403), a strict Content-Security-Policy with
//! `nosniff`, and every error answered as `{"error": message}`; no CORS headers. (Request
//! deadlines and the connection cap are the accept loop's, `listen.rs`; the body's minimum
//! rate is the upload's.)

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
/// The page's Content-Security-Policy: everything from the server itself, no inline script
/// and no inline style — but for the one `<style>` OpenSeadragon 6.1.1 inserts (its rule for
/// touch screens, `@media (hover: none) { .openseadragon-canvas:focus { outline: none
/// !important; } }`), allowed by its SHA-256 (the browser test fails on any violation, so a
/// new vendored version that changes it is noticed).
const CSP: &str = "default-src 'self'; img-src 'self' blob: data:; \
                   style-src 'self' 'sha256-9xTiqzfwFaL2SGb1rmr8gysEwVVjIvqWAgmZgqFqpEE='; script-src 'self'; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// `router` inside the layers.
pub(super) fn layers(router: Router, state: Arc<AppState>) -> Router {
    let csrf = tower_http::csrf::CsrfLayer::new();
    router
        .layer(csrf)
        .layer(middleware::from_fn_with_state(state, check))
        .layer(middleware::from_fn(json_errors))
        .layer(SetResponseHeaderLayer::overriding(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
}

/// Why the request's target does not name this server, if it does not: exactly one Host
/// header, on the allow-list, and an absolute-form target's authority on it too.
fn wrong_host(s: &AppState, req: &Request) -> Option<(StatusCode, &'static str)> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let (Some(host), None) = (hosts.next(), hosts.next()) else {
        return Some((StatusCode::BAD_REQUEST, "exactly one Host header is required"));
    };
    let allowed = |h: &str| s.hosts.allows(h);
    if !host.to_str().is_ok_and(allowed) {
        return Some((StatusCode::FORBIDDEN, "unknown Host (see --allow-host)"));
    }
    if req.uri().authority().is_some_and(|a| !allowed(a.as_str())) {
        return Some((StatusCode::FORBIDDEN, "unknown host in the request target"));
    }
    None
}

/// The token the request carries: a Bearer `Authorization` header's, else the cookie's (an
/// `Authorization` of another scheme, e.g. a proxy's Basic credentials, does not hide it).
fn token_of(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if let Some(t) = auth.and_then(|b| b.strip_prefix("Bearer ")) {
        return Some(t.trim().to_string());
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
    if let Some((status, why)) = wrong_host(&s, &req) {
        return fail(status, why);
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
        Some(t) if same(&t, &want) => {
            // The token holder's connection is not closed to make room for others.
            if let Some(trust) = req.extensions().get::<super::listen::Trust>() {
                trust.grant();
            }
            next.run(req).await
        }
        _ => {
            fail(StatusCode::UNAUTHORIZED, "the token is missing or wrong (open the address `gigascale serve` printed)")
        }
    }
}

/// Gives every error without a JSON body (the router's 404 and 405, the CSRF layer's 403,
/// a rejected extractor's) the documented `{"error": message}` body, keeping its status and
/// headers (`Allow`, `Retry-After`).
async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json =
        resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let message = match status {
        StatusCode::NOT_FOUND => "no such resource",
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed here",
        StatusCode::FORBIDDEN => "cross-site request refused",
        s => s.canonical_reason().unwrap_or("error"),
    };
    let (mut parts, _) = resp.into_parts();
    let body = serde_json::json!({ "error": message }).to_string();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}
