//! Error replies: every error the API answers is `{"error": message}` with its status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An error reply: status and `{"error": message}`.
pub(super) fn fail(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({"error": msg.into()}))).into_response()
}

/// 503 with a `Retry-After` of `seconds`.
pub(super) fn busy(msg: &str, seconds: &'static str) -> Response {
    let mut r = fail(StatusCode::SERVICE_UNAVAILABLE, msg);
    r.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static(seconds));
    r
}

/// 404 for an unknown (or malformed) upload or job id.
pub(super) fn not_found() -> Response {
    fail(StatusCode::NOT_FOUND, "no such upload or job")
}
