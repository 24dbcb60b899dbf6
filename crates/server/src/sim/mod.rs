//! Built-in provider simulators (real HTTP servers), mounted under `/sim/{provider}/`;
//! each lives in its provider's folder, and this module holds what they share.
//!
//! Every simulator serves the provider's paths directly below its mount and its
//! simulator-only control API below `control/` (providers.md 1.5). The fault
//! layer in [`faults`] is shared by all simulators: it holds the fault rules and
//! the request log and wraps a simulator's provider router.

pub mod faults;
pub mod setup;
pub mod tls;

// Each simulator lives in its provider's folder (providers/<name>/sim); the
// shared parts (faults, tls, the request log) stay here.
pub use crate::providers::dialog360::sim as dialog360;
pub use crate::providers::http::sim as score;
pub use crate::providers::incode::sim as incode;
pub use crate::providers::ockto::sim as ockto;
pub use crate::providers::oih::sim as oih;
pub use crate::providers::stripe::sim as stripe;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// One entry of a simulator's request log (`GET …/control/requests`).
///
/// Only the method, the path, the query's parameter names, the provider
/// reference and the W3C `traceparent` are recorded: other headers, bodies
/// and query values, and therefore secrets, never are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestLogEntry {
    /// When the request finished (or, for `hang`/`drop`, when it was given up), RFC 3339.
    pub at: String,
    pub method: String,
    /// The path relative to the simulator's mount, as sent (percent-encoded).
    pub path: String,
    /// The names of the query parameters, in order (never their values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query: Vec<String>,
    /// The final HTTP status; 0 when no response was sent (`hang`, `drop`).
    pub status: u16,
    /// The provider session id named by the path or by the response, if any.
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    /// The request's `traceparent` header (traces on in Gangway), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
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
