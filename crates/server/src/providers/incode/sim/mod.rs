//! Simulator of Incode Omni (providers.md 2), mounted under `/sim/incode/`.
//!
//! Provider paths (wrapped by the [`Faults`] layer; every call needs
//! `api-version: 1.0`, else 400; every answer carries `Processing-Time`;
//! every error, an unknown path or method included, has Incode's body
//! `{timestamp, status, error, message, path}` as JSON). Credentials per
//! path are in `tokens.rs`: `/0/` paths take the token alone, `/omni/` paths
//! the key with a session token, or an executive token.
//! - `POST /omni/start` (`x-api-key`, else 403): a new interview, or with
//!   `interviewId` a fresh token for an existing one (`existingSession: true`);
//! - `GET /0/omni/onboarding-url` (session token in `X-Incode-Hardware-Id`, else 401);
//! - `GET /0/omni/get/onboarding/status`, `GET /0/omni/get/score`, and the
//!   same without `/0/` (`?id=<interviewId>`; required with an executive token);
//! - `GET /omni/finish-status` (key + session token): the current status, no effect;
//! - `POST /executive/log-in` (key; any non-empty `email`/`password` (A)): an
//!   executive token valid 24 h; `GET /omni/get/ocr-data?id=` and
//!   `DELETE /omni/interviews` `{"ids": [...]}` (key + executive token);
//! - `POST /omni/process/approve?interviewId=`, `POST /omni/authentication/verify`
//!   and `POST /omni/auth-attempt/verify`: identities and face logins (`identity.rs`).
//!
//! Browsers may call the provider paths from any origin (CORS, (A)): Incode's
//! own low-code sample calls them from its page.
//!
//! The hosted flow `GET /flow/{interviewId}` (the `url` handed out) is neither
//! faulted nor logged; its four buttons call `POST control/{interviewId}/finish`.
//!
//! Control paths (simulator only, no auth, never faulted or logged), below `control/`:
//! - `POST /{interviewId}/finish` `{"result": "pass"|"fail"|"review"|"abandon"|"expire"}`;
//! - `POST /{interviewId}/review` `{"decision": "approve"|"reject"}`;
//! - `POST /{interviewId}/expire-token`: revokes the interview's tokens;
//! - `POST /identities/{uuid}/login`: a face login (`renderLogin`'s result);
//!   `GET /identities`;
//! - `GET|POST /knobs` (POST merges, see [`IncodeKnobs`]);
//! - `POST|GET|DELETE /faults`, `GET /requests` (see [`Faults`]);
//! - `POST /reset`; `GET /sessions` and `GET /sessions/{interviewId}`.
//!
//! Webhooks: `POST <webhook_url>` `{"interviewId", "onboardingStatus",
//! "externalId"?}` authenticated as configured ([`IncodeWebhookAuth`]); one
//! retry on timeout, connection error or non-2xx, then given up (logged). The
//! webhooks of one interview leave in order through a per-interview outbox.
//!
//! Choices where Incode is silent (A): a start naming an unknown `interviewId`
//! answers 404; the OCR data is `{}` until the ID was captured; `ref` fault
//! rules never match (no Incode API path names the interview).

mod api;
mod control;
mod data;
mod errors;
mod identity;
mod interview;
mod lifecycle;
mod page;
mod reads;
pub mod setup;
mod tokens;
mod types;
mod webhooks;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::http::{HeaderName, Method};
use axum::middleware;
use axum::routing::{delete, get, post};
use tower_http::cors::{Any, CorsLayer};

use crate::sim::faults::{Faults, FaultsConfig};
use identity::{Identity, Login};
use interview::Interview;
use tokens::TokenRecord;
use webhooks::{CachedToken, HTTP_TIMEOUT};

pub use errors::incode_error_body;
use types::REVIEW_STATUSES;
pub use types::{
    IncodeInterview, IncodeKnobs, IncodeSimConfig, IncodeWebhookAuth, StatusChange, WebhookRecord,
};

/// The only `api-version` the simulator accepts.
pub const API_VERSION: &str = "1.0";
/// Header carrying the API key on `/omni/*` and admin calls.
pub const API_KEY_HEADER: &str = "x-api-key";
/// Header carrying the session (or executive) token.
pub const TOKEN_HEADER: &str = "x-incode-hardware-id";

pub const UNKNOWN: &str = "UNKNOWN";
pub const ID_VALIDATION_FINISHED: &str = "ID_VALIDATION_FINISHED";
pub const POST_PROCESSING_FINISHED: &str = "POST_PROCESSING_FINISHED";
pub const FACE_VALIDATION_FINISHED: &str = "FACE_VALIDATION_FINISHED";
pub const GOVERNMENT_VALIDATION_FINISHED: &str = "GOVERNMENT_VALIDATION_FINISHED";
pub const ONBOARDING_FINISHED: &str = "ONBOARDING_FINISHED";
pub const MANUAL_REVIEW_APPROVED: &str = "MANUAL_REVIEW_APPROVED";
pub const MANUAL_REVIEW_REJECTED: &str = "MANUAL_REVIEW_REJECTED";
pub const EXPIRED: &str = "EXPIRED";

/// Lifetime of executive tokens.
const EXECUTIVE_TOKEN_TTL_S: i64 = 24 * 3600;
/// `clientId` of the simulated organisation.
const CLIENT_ID: &str = "gangway-sim";

/// Whether no further onboarding status follows (for the simulator).
pub fn is_terminal(status: &str) -> bool {
    matches!(
        status,
        ONBOARDING_FINISHED | MANUAL_REVIEW_APPROVED | MANUAL_REVIEW_REJECTED | EXPIRED
    )
}

/// The Incode simulator. Cheap to clone (shared state).
#[derive(Clone)]
pub struct IncodeSim {
    inner: Arc<Inner>,
}

struct Inner {
    config: IncodeSimConfig,
    /// `frame-ancestors` source list (validated).
    frame_ancestors: String,
    faults: Faults,
    http: reqwest::Client,
    /// HMAC key of the JWT-shaped tokens.
    jwt_key: [u8; 32],
    oauth: tokio::sync::Mutex<Option<CachedToken>>,
    state: Mutex<SimState>,
}

#[derive(Default)]
struct SimState {
    /// Bumped by reset: queued webhooks of forgotten interviews are not sent.
    generation: u64,
    interviews: HashMap<String, Interview>,
    /// sha256(token) hex -> record.
    tokens: HashMap<String, TokenRecord>,
    /// uuid -> identity made by `POST /omni/process/approve`.
    identities: HashMap<String, Identity>,
    /// transactionId -> face login.
    logins: HashMap<String, Login>,
    knobs: IncodeKnobs,
}

impl std::fmt::Debug for IncodeSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncodeSim")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl IncodeSim {
    pub fn new(mut config: IncodeSimConfig) -> IncodeSim {
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .build()
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "incode sim: building the HTTP client failed; using defaults");
                reqwest::Client::new()
            });
        config.public_url = config.public_url.trim_end_matches('/').to_owned();
        let mut sources = Vec::new();
        for origin in &config.frame_ancestors {
            let origin = origin.trim();
            if page::valid_source(origin) {
                sources.push(origin.to_owned());
            } else {
                tracing::warn!(%origin, "incode sim: ignoring an invalid frame-ancestors origin");
            }
        }
        let frame_ancestors = if sources.is_empty() {
            "'self'".to_owned()
        } else {
            sources.join(" ")
        };
        let faults = Faults::new(FaultsConfig {
            ref_from_path: |_| None,
            error_body: errors::fault_error_body,
            malformed_body: "{\"interviewId\": \"",
        });
        IncodeSim {
            inner: Arc::new(Inner {
                config,
                frame_ancestors,
                faults,
                http,
                jwt_key: rand::random(),
                oauth: tokio::sync::Mutex::new(None),
                state: Mutex::new(SimState::default()),
            }),
        }
    }

    /// Paths relative to the mount: `Router::new().nest("/sim/incode", sim.router())`.
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/omni/start", post(api::start))
            .route("/0/omni/onboarding-url", get(api::onboarding_url))
            .route(
                "/0/omni/get/onboarding/status",
                get(reads::onboarding_status_token),
            )
            .route(
                "/omni/get/onboarding/status",
                get(reads::onboarding_status_key),
            )
            .route("/0/omni/get/score", get(reads::score_token))
            .route("/omni/get/score", get(reads::score_key))
            .route("/omni/finish-status", get(reads::finish_status))
            .route("/omni/get/ocr-data", get(reads::ocr_data))
            .route("/omni/interviews", delete(api::delete_interviews))
            .route("/omni/process/approve", post(identity::approve))
            .route(
                "/omni/authentication/verify",
                post(identity::authentication_verify),
            )
            .route(
                "/omni/auth-attempt/verify",
                post(identity::auth_attempt_verify),
            )
            .route("/executive/log-in", post(api::executive_login))
            .method_not_allowed_fallback(errors::method_not_allowed)
            .layer(middleware::from_fn(api::require_api_version))
            .with_state(self.clone());
        let api = self
            .inner
            .faults
            .wrap(api)
            .layer(middleware::from_fn(api::processing_time))
            .layer(cors());
        let flow = Router::new()
            .route("/flow/{interview_id}", get(page::hosted_page))
            .method_not_allowed_fallback(errors::method_not_allowed)
            .with_state(self.clone());
        let control = Router::new()
            .route("/knobs", get(control::get_knobs).post(control::set_knobs))
            .route("/reset", post(control::reset))
            .route("/sessions", get(control::list_sessions))
            .route("/sessions/{interview_id}", get(control::get_session))
            .route("/identities", get(identity::list_identities))
            .route("/identities/{uuid}/login", post(identity::login_handler))
            .route("/{interview_id}/finish", post(control::finish_handler))
            .route("/{interview_id}/review", post(control::review_handler))
            .route(
                "/{interview_id}/expire-token",
                post(control::expire_token_handler),
            )
            .with_state(self.clone())
            .merge(self.inner.faults.control_router())
            .method_not_allowed_fallback(errors::method_not_allowed);
        Router::new()
            .nest("/control", control)
            .merge(flow)
            .merge(api)
            .fallback(errors::not_found)
    }

    /// The fault rules and request log of this simulator.
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    pub fn knobs(&self) -> IncodeKnobs {
        self.lock().knobs.clone()
    }

    /// Sets the global knobs (e.g. from `[sim.incode]` config).
    pub fn set_knobs(&self, knobs: IncodeKnobs) -> Result<(), String> {
        if !REVIEW_STATUSES.contains(&knobs.review_status.as_str()) {
            return Err(format!(
                "review_status must be one of {}",
                REVIEW_STATUSES.join(", ")
            ));
        }
        self.lock().knobs = knobs;
        Ok(())
    }

    /// A copy of one interview record.
    pub fn session(&self, interview_id: &str) -> Option<IncodeInterview> {
        self.lock()
            .interviews
            .get(interview_id)
            .map(|i| i.record.clone())
    }

    /// Forgets interviews, tokens, knobs, rules and the request log; webhooks
    /// still queued are not sent.
    pub fn reset(&self) {
        {
            let mut st = self.lock();
            st.generation += 1;
            st.interviews.clear();
            st.tokens.clear();
            st.identities.clear();
            st.logins.clear();
            st.knobs = IncodeKnobs::default();
        }
        if let Ok(mut cache) = self.inner.oauth.try_lock() {
            *cache = None;
        }
        self.inner.faults.reset();
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// CORS of the provider paths: any origin, Incode's headers, no credentials.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            HeaderName::from_static("content-type"),
            HeaderName::from_static("api-version"),
            HeaderName::from_static(API_KEY_HEADER),
            HeaderName::from_static(TOKEN_HEADER),
        ])
        .expose_headers([HeaderName::from_static("processing-time")])
}
