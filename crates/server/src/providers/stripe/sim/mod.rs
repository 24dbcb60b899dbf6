//! Simulator of Stripe Identity's VerificationSessions, mounted under
//! `/sim/stripe/`.
//!
//! Provider paths (wrapped by the [`Faults`] layer; the secret key as
//! `Authorization: Bearer sk_…` or as Basic user, else 401; errors in
//! Stripe's body `{"error": {"type", "code", "message"}}`):
//! - `POST /v1/identity/verification_sessions` (form-encoded, `type=document`
//!   only): a session in `requires_input` with a hosted `url` and a
//!   `client_secret`; `Idempotency-Key` answers a repeat with the same
//!   session, and a repeat with other parameters with 400 `idempotency_error`;
//! - `GET /v1/identity/verification_sessions/{id}` (`expand[]=verified_outputs`
//!   adds the verified outputs);
//! - `POST …/{id}/cancel` (only in `requires_input`, else 400);
//! - `POST …/{id}/redact` (in `requires_input` (canceled first), `verified` or
//!   `canceled`; `processing`: 400): `redaction.status` is `processing` in the
//!   answer, then `redacted` with personal fields `[redacted]`, metadata
//!   erased, and the `…redacted` event.
//!
//! The hosted page `GET /start/{token}` (the `url`; not faulted, not logged)
//! submits a verification: verified, or failed with any `last_error.code`
//! Stripe documents; or cancels the session. A submission goes to
//! `processing` (event), then after `processing_ms` to `verified` or back to
//! `requires_input` with `last_error` and a new `last_verification_report`.
//!
//! Webhooks: events `identity.verification_session.{processing, verified,
//! requires_input, canceled, redacted}` (Stripe's event object, the session
//! without verified outputs as `data.object`) posted to Gangway signed as
//! Stripe signs them: `Stripe-Signature: t=…,v1=…`, one `v1` per signing
//! secret. One retry on failure; the events of one submission leave in order.
//!
//! Control paths (simulator only, no auth, never faulted or logged), below
//! `control/`: `POST /sessions/{id}/submit` `{"result": "verified"} |
//! {"result": "requires_input", "code": "<last_error.code>"}`;
//! `POST /sessions/{id}/cancel`; `GET /sessions`, `GET /sessions/{id}`;
//! `GET /events` (events sent); `GET|POST /knobs` ([`StripeKnobs`]);
//! `POST|GET|DELETE /faults`, `GET /requests` ([`Faults`]); `POST /reset`.

mod api;
mod control;
mod events;
mod page;
pub mod setup;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::sim::faults::{Faults, FaultsConfig};

/// How the simulator is wired.
#[derive(Clone)]
pub struct StripeSimConfig {
    /// The secret key callers must present.
    pub secret_key: String,
    /// Where events go, e.g. `http://127.0.0.1:8080/v1/webhooks/stripe`.
    pub webhook_url: String,
    /// The endpoint's signing secrets: each event carries one `v1` per secret.
    pub webhook_secrets: Vec<String>,
    /// The simulator's base URL as browsers reach it (`…/sim/stripe`).
    pub public_url: String,
    /// Origins allowed to frame the hosted page; empty: `'self'` only.
    pub frame_ancestors: Vec<String>,
}

impl std::fmt::Debug for StripeSimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeSimConfig")
            .field("webhook_url", &self.webhook_url)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// The simulator's outcome and delivery knobs (`POST control/knobs` merges).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StripeKnobs {
    /// How long a submission stays `processing`.
    pub processing_ms: u64,
    /// Send no webhooks (Gangway must poll).
    pub drop: bool,
    /// Send every webhook twice (same event id).
    pub duplicate: bool,
    /// Wait this long before each webhook.
    pub delay_ms: u64,
}

/// One VerificationSession as the simulator keeps it.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub id: String,
    pub token: String,
    pub client_secret: String,
    pub created: i64,
    pub status: String,
    pub last_error: Option<(String, String)>,
    pub report: Option<String>,
    pub metadata: serde_json::Map<String, Value>,
    pub client_reference_id: Option<String>,
    pub require_matching_selfie: bool,
    pub return_url: Option<String>,
    pub redaction: Option<&'static str>,
}

impl Session {
    /// The VerificationSession object; `outputs`: `verified_outputs` expanded.
    pub fn object(&self, public_url: &str, outputs: bool) -> Value {
        let redacted = self.redaction == Some("redacted");
        let waiting = self.status == "requires_input" && !redacted;
        let mut o = json!({
            "id": self.id,
            "object": "identity.verification_session",
            "client_reference_id": if redacted { json!("[redacted]") } else { json!(self.client_reference_id) },
            "client_secret": if waiting { json!(self.client_secret) } else { Value::Null },
            "created": self.created,
            "last_error": self.last_error.as_ref().map(|(code, reason)| json!({"code": code, "reason": reason})),
            "last_verification_report": self.report,
            "livemode": false,
            "metadata": if redacted { json!({}) } else { Value::Object(self.metadata.clone()) },
            "options": {"document": {"require_matching_selfie": self.require_matching_selfie}},
            "redaction": self.redaction.map(|s| json!({"status": s})),
            "related_customer": null,
            "status": self.status,
            "type": "document",
            "url": if waiting { json!(format!("{public_url}/start/{}", self.token)) } else { Value::Null },
        });
        if outputs {
            o["verified_outputs"] = if redacted {
                json!({"first_name": "[redacted]", "last_name": "[redacted]", "dob": null,
                       "address": null, "id_number_type": null, "email": null, "phone": null})
            } else if self.status == "verified" {
                json!({
                    "first_name": "Jenny", "last_name": "Rosen",
                    "dob": {"day": 1, "month": 2, "year": 1990},
                    "address": {"line1": "1 Main Street", "line2": null, "city": "Amsterdam",
                                "postal_code": "1011 AB", "state": null, "country": "NL"},
                    "id_number_type": null, "email": null, "phone": null,
                })
            } else {
                Value::Null
            };
        }
        o
    }
}

/// The Stripe Identity simulator. Cheap to clone (shared state).
#[derive(Clone)]
pub struct StripeSim {
    inner: Arc<Inner>,
}

struct Inner {
    config: StripeSimConfig,
    frame_ancestors: String,
    faults: Faults,
    http: reqwest::Client,
    state: Mutex<SimState>,
}

#[derive(Default)]
struct SimState {
    /// Bumped by reset: events of forgotten sessions are not sent.
    generation: u64,
    sessions: HashMap<String, Session>,
    /// Hosted-page token -> session id.
    tokens: HashMap<String, String>,
    /// Idempotency-Key -> (digest of the request, session id).
    idempotency: HashMap<String, (String, String)>,
    /// Events sent (or given up), oldest first.
    events: Vec<Value>,
    knobs: StripeKnobs,
}

impl std::fmt::Debug for StripeSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeSim")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl StripeSim {
    pub fn new(mut config: StripeSimConfig) -> StripeSim {
        config.public_url = config.public_url.trim_end_matches('/').to_owned();
        let sources: Vec<String> = config
            .frame_ancestors
            .iter()
            .map(|o| o.trim().to_owned())
            .filter(|o| {
                let ok = page::valid_source(o);
                if !ok {
                    tracing::warn!(origin = %o, "stripe sim: ignoring an invalid frame-ancestors origin");
                }
                ok
            })
            .collect();
        let frame_ancestors = if sources.is_empty() {
            "'self'".to_owned()
        } else {
            sources.join(" ")
        };
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "stripe sim: building the HTTP client failed; using defaults");
                reqwest::Client::new()
            });
        let faults = Faults::new(FaultsConfig {
            ref_from_path,
            error_body: api::fault_error_body,
            malformed_body: "{\"id\": \"vs_",
        });
        StripeSim {
            inner: Arc::new(Inner {
                config,
                frame_ancestors,
                faults,
                http,
                state: Mutex::new(SimState::default()),
            }),
        }
    }

    /// Paths relative to the mount: `Router::new().nest("/sim/stripe", sim.router())`.
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/v1/identity/verification_sessions", post(api::create))
            .route(
                "/v1/identity/verification_sessions/{id}",
                get(api::retrieve),
            )
            .route(
                "/v1/identity/verification_sessions/{id}/cancel",
                post(api::cancel),
            )
            .route(
                "/v1/identity/verification_sessions/{id}/redact",
                post(api::redact),
            )
            .method_not_allowed_fallback(api::not_found)
            .with_state(self.clone());
        let api = self.inner.faults.wrap(api);
        let pages = Router::new()
            .route("/start/{token}", get(page::hosted_page))
            .route("/start/{token}/submit", post(page::submit))
            .with_state(self.clone());
        let control = Router::new()
            .route("/knobs", get(control::get_knobs).post(control::set_knobs))
            .route("/reset", post(control::reset))
            .route("/sessions", get(control::list_sessions))
            .route("/sessions/{id}", get(control::get_session))
            .route("/sessions/{id}/submit", post(control::submit))
            .route("/sessions/{id}/cancel", post(control::cancel))
            // The shape dry runs and `gangway sandbox` scripts call:
            // `control/{provider session}/{action}`.
            .route("/{id}/submit", post(control::submit))
            .route("/{id}/cancel", post(control::cancel))
            .route("/events", get(control::list_events))
            .with_state(self.clone())
            .merge(self.inner.faults.control_router());
        Router::new()
            .nest("/control", control)
            .merge(pages)
            .merge(api)
            .fallback(api::not_found)
    }

    /// The fault rules and request log of this simulator.
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    pub fn knobs(&self) -> StripeKnobs {
        self.lock().knobs.clone()
    }

    pub fn set_knobs(&self, knobs: StripeKnobs) {
        self.lock().knobs = knobs;
    }

    /// Forgets sessions, events, knobs, rules and the request log.
    pub fn reset(&self) {
        {
            let mut st = self.lock();
            let generation = st.generation + 1;
            *st = SimState {
                generation,
                ..SimState::default()
            };
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

/// The VerificationSession a provider path names, for fault rules and the log.
fn ref_from_path(path: &str) -> Option<String> {
    path.strip_prefix("/v1/identity/verification_sessions/")
        .and_then(|rest| rest.split('/').next())
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

/// A random id with Stripe's prefix and 24 letters and digits.
pub(crate) fn stripe_id(prefix: &str) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..24)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}_{tail}")
}

pub(crate) fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A human reason for a `last_error.code`, as Stripe gives one.
pub(crate) fn reason_for(code: &str) -> String {
    match code {
        "abandoned" => "The user did not finish the verification.".into(),
        "consent_declined" => "The user declined to be verified by Stripe.".into(),
        "document_expired" => "The provided identity document has expired.".into(),
        "selfie_face_mismatch" => {
            "The captured face image does not match the document's face.".into()
        }
        "under_supported_age" => "The user is under the supported age.".into(),
        other => format!("Verification failed: {}.", other.replace('_', " ")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_name_their_session() {
        assert_eq!(
            super::ref_from_path("/v1/identity/verification_sessions/vs_1/cancel").as_deref(),
            Some("vs_1")
        );
        assert_eq!(
            super::ref_from_path("/v1/identity/verification_sessions"),
            None
        );
    }
}
