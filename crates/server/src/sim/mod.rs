//! Built-in provider simulators (real HTTP servers), mounted under `/sim/{provider}/`.
//!
//! Every simulator serves the provider's paths directly below its mount and its
//! simulator-only control API below `control/` (providers.md 1.5). The fault
//! layer in [`faults`] is shared by all simulators: it holds the fault rules and
//! the request log and wraps a simulator's provider router.

pub mod dialog360;
pub mod faults;
pub mod incode;
pub mod ockto;
pub mod oih;
pub mod score;
pub mod setup;
pub mod tls;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// One entry of a simulator's request log (`GET …/control/requests`).
///
/// Only the method, the path (no query string) and the provider reference are
/// recorded: headers and bodies, and therefore secrets, never are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestLogEntry {
    /// When the request finished (or, for `hang`/`drop`, when it was given up), RFC 3339.
    pub at: String,
    pub method: String,
    /// The path relative to the simulator's mount.
    pub path: String,
    /// The final HTTP status; 0 when no response was sent (`hang`, `drop`).
    pub status: u16,
    /// The provider session id named by the path or by the response, if any.
    #[serde(rename = "ref")]
    pub reference: Option<String>,
}

/// Response extension a simulator handler attaches to name the provider
/// reference its response reveals (e.g. the id of a session it just created),
/// so the request log can record it. Add it as `Extension(SimRef(id))` in the
/// handler's response tuple.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimRef(pub String);

/// The current time as RFC 3339 (UTC).
pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// `status` with body `{"error": message}`.
pub(crate) fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}
