//! Error replies: every error the API answers is `{"error": message}` with its status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An error reply: status and `{"error": message}`.
pub(super) fn fail(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({"error": msg.into()}))).into_response()
}

/// 404 for an unknown (or malformed) upload or job id.
pub(super) fn not_found() -> Response {
    fail(StatusCode::NOT_FOUND, "no such upload or job")
}
