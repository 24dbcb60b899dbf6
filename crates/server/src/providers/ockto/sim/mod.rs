//! Simulator of Ockto (providers.md 3.2–3.5), mounted under `/sim/ockto/`.
//!
//! Provider paths (wrapped by the [`Faults`] layer; `Authorization: Basic`
//! else 401, `X-Ockto-Provider-Code` else 403; errors are
//! `{"error": {"code", "message"}}`):
//! - `GET /sources/availability?ocktoType=P`;
//! - `POST /sessions` → 201 `{sessionId, qrCode}`;
//! - `GET /sessions/{id}/status` → `{sessionId, status, qrCode?}`;
//! - `GET /sessions/{id}/result` → the ODM, 409 before `DATA_AVAILABLE`;
//! - `GET /documents/{documentId}` → the file once, 410 afterwards or after 10 minutes;
//! - `DELETE /sessions/{id}` → 204.
//!
//! The phone page `GET /app/{id}` (the `qrCode` URL) has **Scanned**,
//! **Share data** and **Refuse** buttons. Control paths (no auth, never
//! faulted or logged) below `control/`: `POST /{id}/{scan|share|refuse|expire|error}`
//! (`share` takes an optional `{"profile": "approve"|"decline"|"review"}`),
//! `GET|POST /knobs`, `POST /reset`, `GET /sessions[/{id}]`, `GET /tls`,
//! and the fault routes.
//!
//! With mutual TLS ([`OcktoSim::public_router`] on the plain listener,
//! [`OcktoSim::router`] behind [`crate::sim::tls::MtlsListener`]) the API is
//! reachable only with a client certificate of the simulator's CA.
//!
//! Choices where Ockto is silent (A): our session ids are `ock_` + 24 hex
//! (the `sessionId` sent is kept as `reference`); once rotated, every status
//! answer carries the current `qrCode`; a scripted journey (`testCaseId`)
//! advances one status every `script_step_ms`.

mod api;
mod control;
mod data;
mod page;
pub mod setup;

use crate::sim::faults::{Faults, FaultsConfig};
use crate::sim::now_rfc3339;
use crate::sim::tls::Rejections;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use data::{ODM_VERSION, PROFILES};

pub const CREATED: &str = "CREATED";
pub const SCANNED: &str = "SCANNED";
pub const DATA_AVAILABLE: &str = "DATA_AVAILABLE";
pub const CANCELLED: &str = "CANCELLED";
pub const EXPIRED: &str = "EXPIRED";
pub const ERROR: &str = "ERROR";

pub const PROVIDER_CODE_HEADER: &str = "x-ockto-provider-code";
/// Documents are downloadable once, within this time (providers.md 3.1).
const DOCUMENT_TTL: Duration = Duration::from_secs(600);
const SOURCES: [&str; 5] = ["DIGID", "MIJNOVERHEID", "UWV", "DUO", "PSD2"];
const DOCUMENT_TYPES: [&str; 4] = ["UPO", "UWV", "PSD2", "PDF"];
const TEST_CASES: [&str; 6] = [
    "approve",
    "decline",
    "review",
    "refuse",
    "never_scan",
    "error",
];

fn is_terminal(status: &str) -> bool {
    matches!(status, DATA_AVAILABLE | CANCELLED | EXPIRED | ERROR)
}

#[derive(Clone)]
pub struct OcktoSimConfig {
    pub username: String,
    pub password: String,
    pub provider_code: String,
    /// Where phones reach the simulator, e.g. `http://127.0.0.1:8080/sim/ockto`;
    /// the QR code is `{public_url}/app/{sessionId}`.
    pub public_url: String,
}

impl std::fmt::Debug for OcktoSimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OcktoSimConfig")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// Global knobs (`/control/knobs`; a POST merges the given fields).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OcktoKnobs {
    /// CREATED sessions expire this long after their start (null: never).
    pub scan_timeout_ms: Option<u64>,
    /// SCANNED sessions expire this long after the scan (null: never).
    pub share_timeout_ms: Option<u64>,
    /// After every status change, the next status read answers the previous status once.
    pub stale_status: bool,
    /// Status reads never show SCANNED (CREATED until the data is there).
    pub skip_scanned: bool,
    /// The QR code rotates this often (null: never).
    pub rotate_qr_ms: Option<u64>,
    /// Source codes reported unavailable.
    pub unavailable_sources: Vec<String>,
    /// Results answer 200 with truncated JSON.
    pub malformed_result: bool,
    /// Pace of scripted journeys (`testCaseId`).
    pub script_step_ms: u64,
}

impl Default for OcktoKnobs {
    fn default() -> Self {
        OcktoKnobs {
            scan_timeout_ms: None,
            share_timeout_ms: None,
            stale_status: false,
            skip_scanned: false,
            rotate_qr_ms: None,
            unavailable_sources: Vec::new(),
            malformed_result: false,
            script_step_ms: 100,
        }
    }
}

/// One session as the control API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct OcktoSession {
    #[serde(rename = "sessionId")]
    pub session_id: String,
    /// The `sessionId` the client sent.
    pub reference: String,
    pub status: String,
    /// Every status with its time, oldest first.
    pub history: Vec<(String, String)>,
    #[serde(rename = "testCaseId")]
    pub test_case_id: Option<String>,
    /// The start options as sent (minus `sessionId`).
    pub options: Value,
    /// The data profile chosen on `share`, if any.
    pub profile: Option<String>,
}

struct Session {
    record: OcktoSession,
    created: Instant,
    changed: Instant,
    /// A previous status to answer once (`stale_status`).
    stale: Option<String>,
    documents: Vec<String>,
}

struct Document {
    session: String,
    kind: String,
    created: Instant,
    downloaded: bool,
}

#[derive(Default)]
struct SimState {
    sessions: HashMap<String, Session>,
    documents: HashMap<String, Document>,
    knobs: OcktoKnobs,
}

/// The Ockto simulator. Cheap to clone (shared state).
#[derive(Clone)]
pub struct OcktoSim {
    inner: Arc<Inner>,
}

struct Inner {
    config: OcktoSimConfig,
    faults: Faults,
    rejections: Arc<Rejections>,
    state: Mutex<SimState>,
}

impl std::fmt::Debug for OcktoSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OcktoSim")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Ockto's error body (providers.md 3.2).
pub fn ockto_error_body(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
}

fn ockto_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(ockto_error_body(code, message))).into_response()
}

fn fault_error_body(status: StatusCode) -> Value {
    let code = status
        .canonical_reason()
        .unwrap_or("ERROR")
        .to_ascii_uppercase()
        .replace(' ', "_");
    ockto_error_body(&code, "simulated fault")
}

fn ref_from_path(path: &str) -> Option<String> {
    let mut parts = path.trim_start_matches('/').split('/');
    match (parts.next(), parts.next()) {
        (Some("sessions"), Some(id)) if !id.is_empty() => Some(id.to_string()),
        _ => None,
    }
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", hex::encode(rand::random::<[u8; 12]>()))
}

impl OcktoSim {
    pub fn new(mut config: OcktoSimConfig) -> OcktoSim {
        config.public_url = config.public_url.trim_end_matches('/').to_owned();
        let faults = Faults::new(FaultsConfig {
            ref_from_path,
            error_body: fault_error_body,
            malformed_body: "{\"sessionId\": \"",
        });
        OcktoSim {
            inner: Arc::new(Inner {
                config,
                faults,
                rejections: Arc::default(),
                state: Mutex::new(SimState::default()),
            }),
        }
    }

    /// Everything, relative to the mount: `Router::new().nest("/sim/ockto", sim.router())`.
    pub fn router(&self) -> Router {
        self.public_router().merge(self.api_router())
    }

    /// The phone page and the control API, without the provider API: what
    /// the plain listener serves when the API requires a client certificate.
    pub fn public_router(&self) -> Router {
        let control = Router::new()
            .route("/knobs", get(control::get_knobs).post(control::set_knobs))
            .route("/reset", post(control::reset))
            .route("/tls", get(control::tls_rejections))
            .route("/sessions", get(control::list_sessions))
            .route("/sessions/{id}", get(control::get_session))
            .route("/{id}/{action}", post(control::control_action))
            .with_state(self.clone())
            .merge(self.inner.faults.control_router());
        let page = Router::new()
            .route("/app/{id}", get(page::phone_page))
            .with_state(self.clone());
        Router::new().nest("/control", control).merge(page)
    }

    /// The provider API, faulted and logged.
    pub fn api_router(&self) -> Router {
        let api = Router::new()
            .route("/sources/availability", get(api::sources))
            .route("/sessions", post(api::start))
            .route("/sessions/{id}/status", get(api::status))
            .route("/sessions/{id}/result", get(api::result))
            .route("/sessions/{id}", axum::routing::delete(api::cancel))
            .route("/documents/{id}", get(api::document))
            .layer(middleware::from_fn_with_state(
                self.clone(),
                api::authenticate,
            ))
            .with_state(self.clone());
        self.inner.faults.wrap(api)
    }

    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    /// Handshakes the mutual-TLS listener refused (shared with it).
    pub fn rejections(&self) -> Arc<Rejections> {
        self.inner.rejections.clone()
    }

    pub fn knobs(&self) -> OcktoKnobs {
        self.lock().knobs.clone()
    }

    pub fn set_knobs(&self, knobs: OcktoKnobs) {
        self.lock().knobs = knobs;
    }

    /// A copy of one session, advanced to now.
    pub fn session(&self, id: &str) -> Option<OcktoSession> {
        let mut st = self.lock();
        let knobs = st.knobs.clone();
        let s = st.sessions.get_mut(id)?;
        advance(s, &knobs);
        Some(s.record.clone())
    }

    /// Forgets sessions, documents, knobs, rules and the request log.
    pub fn reset(&self) {
        {
            let mut st = self.lock();
            st.sessions.clear();
            st.documents.clear();
            st.knobs = OcktoKnobs::default();
        }
        self.inner.faults.reset();
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn qr_code(&self, id: &str, generation: u64) -> String {
        let base = format!("{}/app/{id}", self.inner.config.public_url);
        if generation == 0 {
            base
        } else {
            format!("{base}?v={generation}")
        }
    }

    /// Applies a phone or control action; 404 unknown, 409 terminal.
    pub fn act(
        &self,
        id: &str,
        action: &str,
        profile: Option<String>,
    ) -> Result<OcktoSession, (StatusCode, String)> {
        if !["scan", "share", "refuse", "expire", "error"].contains(&action) {
            return Err((
                StatusCode::NOT_FOUND,
                format!("unknown action `{action}`; expected scan, share, refuse, expire or error"),
            ));
        }
        let mut st = self.lock();
        let knobs = st.knobs.clone();
        let s = st
            .sessions
            .get_mut(id)
            .ok_or((StatusCode::NOT_FOUND, format!("no session {id}")))?;
        advance(s, &knobs);
        if is_terminal(&s.record.status) {
            return Err((
                StatusCode::CONFLICT,
                format!("session {id} is already {}", s.record.status),
            ));
        }
        match action {
            "scan" => {
                if s.record.status == CREATED {
                    set_status(s, SCANNED, &knobs);
                }
            }
            "share" => {
                if s.record.status == CREATED {
                    set_status(s, SCANNED, &knobs);
                }
                s.record.profile = profile;
                set_status(s, DATA_AVAILABLE, &knobs);
            }
            "refuse" => set_status(s, CANCELLED, &knobs),
            "expire" => set_status(s, EXPIRED, &knobs),
            "error" => set_status(s, ERROR, &knobs),
            other => {
                return Err((
                    StatusCode::NOT_FOUND,
                    format!(
                        "unknown action `{other}`; expected scan, share, refuse, expire or error"
                    ),
                ));
            }
        }
        Ok(s.record.clone())
    }
}

fn set_status(s: &mut Session, status: &str, knobs: &OcktoKnobs) {
    if s.record.status == status {
        return;
    }
    if knobs.stale_status {
        s.stale = Some(s.record.status.clone());
    }
    s.record.status = status.to_string();
    s.record.history.push((status.to_string(), now_rfc3339()));
    s.changed = Instant::now();
}

/// Moves a session along its script and its timeouts, as time has passed.
fn advance(s: &mut Session, knobs: &OcktoKnobs) {
    let ms = |d: u64| Duration::from_millis(d);
    if let Some(case) = s.record.test_case_id.clone() {
        let step = ms(knobs.script_step_ms);
        let script: &[&str] = match case.as_str() {
            "approve" | "decline" | "review" => &[SCANNED, DATA_AVAILABLE],
            "refuse" => &[SCANNED, CANCELLED],
            "error" => &[ERROR],
            _ => &[],
        };
        for (i, next) in script.iter().enumerate() {
            let due = s.created + step * u32::try_from(i + 1).unwrap_or(u32::MAX);
            if is_terminal(&s.record.status) || Instant::now() < due {
                break;
            }
            if s.record.history.iter().all(|(h, _)| h != next) {
                if *next == DATA_AVAILABLE {
                    s.record.profile = Some(case.clone());
                }
                set_status(s, next, knobs);
            }
        }
    }
    let expired = match s.record.status.as_str() {
        CREATED => knobs
            .scan_timeout_ms
            .is_some_and(|t| s.created.elapsed() >= ms(t)),
        SCANNED => knobs
            .share_timeout_ms
            .is_some_and(|t| s.changed.elapsed() >= ms(t)),
        _ => false,
    };
    if expired {
        set_status(s, EXPIRED, knobs);
    }
}
