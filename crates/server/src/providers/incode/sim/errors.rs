//! Incode's error body, on every error the simulator's provider paths answer.

use axum::Json;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::sim::error_response;

/// A failed provider or control call: status and message.
#[derive(Debug)]
pub(super) struct ApiError {
    pub(super) status: StatusCode,
    pub(super) message: String,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// Incode's error body, for provider paths.
    pub(super) fn incode(&self, path: &str) -> Response {
        incode_error(self.status, &self.message, path)
    }

    /// `{"error": ...}`, for control paths.
    pub(super) fn control(&self) -> Response {
        error_response(self.status, self.message.clone())
    }
}

pub(super) fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub(super) fn now_unix_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or_default()
}

/// Incode's error body.
pub fn incode_error_body(status: StatusCode, message: &str, path: &str) -> Value {
    json!({
        "timestamp": now_unix_ms(),
        "status": status.as_u16(),
        "error": status.canonical_reason().unwrap_or("Error"),
        "message": message,
        "path": path,
    })
}

pub(super) fn incode_error(status: StatusCode, message: &str, path: &str) -> Response {
    (status, Json(incode_error_body(status, message, path))).into_response()
}

/// Body of injected fault statuses (the fault layer does not know the path).
pub(super) fn fault_error_body(status: StatusCode) -> Value {
    incode_error_body(status, status.canonical_reason().unwrap_or("Error"), "")
}

/// Any path under the mount that the simulator does not serve.
pub(super) async fn not_found(method: Method, uri: Uri) -> Response {
    incode_error(
        StatusCode::NOT_FOUND,
        &format!("No endpoint {method} {}", uri.path()),
        uri.path(),
    )
}

/// A served path called with another method.
pub(super) async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    incode_error(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("Request method '{method}' is not supported"),
        uri.path(),
    )
}
