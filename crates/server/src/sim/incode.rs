//! Simulator of Incode Omni (providers.md 2), mounted under `/sim/incode/`.
//!
//! Provider paths (wrapped by the [`Faults`] layer; every call needs
//! `api-version: 1.0`, else 400; every answer carries `Processing-Time`;
//! errors use Incode's body `{timestamp, status, error, message, path}`):
//! - `POST /omni/start` (`x-api-key`, else 403): a new interview, or with
//!   `interviewId` a fresh token for an existing one (`existingSession: true`);
//! - `GET /0/omni/onboarding-url`, `GET /0/omni/get/onboarding/status`,
//!   `GET /0/omni/get/score` (session token in `X-Incode-Hardware-Id`, else 401);
//! - `GET /omni/finish-status` (key + session token): the current status, no effect;
//! - `POST /executive/log-in` (key; any non-empty `email`/`password` (A)): an
//!   executive token valid 24 h; `GET /omni/get/ocr-data?id=` and
//!   `DELETE /omni/interviews` `{"ids": [...]}` (key + executive token).
//!
//! The hosted flow `GET /flow/{interviewId}` (the `url` handed out) is neither
//! faulted nor logged; its four buttons call `POST control/{interviewId}/finish`.
//!
//! Control paths (simulator only, no auth, never faulted or logged), below `control/`:
//! - `POST /{interviewId}/finish` `{"result": "pass"|"fail"|"review"|"abandon"|"expire"}`;
//! - `POST /{interviewId}/review` `{"decision": "approve"|"reject"}`;
//! - `POST /{interviewId}/expire-token`: revokes the interview's tokens;
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

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::faults::{Faults, FaultsConfig};
use super::{SimRef, error_response, now_rfc3339};

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

/// Timeout of every outgoing request (webhooks, OAuth2 token).
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause before Incode's single webhook retry.
const RETRY_PAUSE: Duration = Duration::from_millis(250);
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

/// How the simulator authenticates its webhooks (providers.md 2.4).
#[derive(Clone)]
pub enum IncodeWebhookAuth {
    /// Client credentials at `token_url`, then `Authorization: Bearer <access_token>`.
    OAuth2 {
        token_url: String,
        client_id: String,
        client_secret: String,
    },
    /// A static header, e.g. `X-Gangway-Webhook-Secret: <value>`.
    Header { name: String, value: String },
}

impl std::fmt::Debug for IncodeWebhookAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IncodeWebhookAuth::OAuth2 {
                token_url,
                client_id,
                ..
            } => f
                .debug_struct("OAuth2")
                .field("token_url", token_url)
                .field("client_id", client_id)
                .field("client_secret", &"<redacted>")
                .finish(),
            IncodeWebhookAuth::Header { name, .. } => f
                .debug_struct("Header")
                .field("name", name)
                .field("value", &"<redacted>")
                .finish(),
        }
    }
}

#[derive(Clone)]
pub struct IncodeSimConfig {
    /// Expected in `x-api-key` on `/omni/*` (403 otherwise).
    pub api_key: String,
    /// Where webhooks go, e.g. `http://127.0.0.1:8080/v1/webhooks/incode`.
    pub webhook_url: String,
    pub webhook_auth: IncodeWebhookAuth,
    /// The simulator's base URL as browsers reach it, e.g.
    /// `http://127.0.0.1:8080/sim/incode`; the hosted flow is `{public_url}/flow/{interviewId}`.
    pub public_url: String,
    /// Origins allowed to frame the hosted page (CSP `frame-ancestors`); empty: `'self'` only.
    pub frame_ancestors: Vec<String>,
}

impl std::fmt::Debug for IncodeSimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncodeSimConfig")
            .field("api_key", &"<redacted>")
            .field("webhook_url", &self.webhook_url)
            .field("webhook_auth", &self.webhook_auth)
            .field("public_url", &self.public_url)
            .field("frame_ancestors", &self.frame_ancestors)
            .finish()
    }
}

/// Global knobs (`/control/knobs`; a POST merges the given fields, `null`
/// clears the nullable ones). Also usable from `[sim.incode]` config.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IncodeKnobs {
    /// Pause between the statuses of a pass/fail/review walk.
    pub step_delay_ms: u64,
    /// Permute the three middle statuses of a walk.
    pub shuffle_statuses: bool,
    /// `overall.status` after `review`: `WARN`, `MANUAL` or `MANUAL_PENDING`.
    pub review_status: String,
    /// After `abandon`, `EXPIRED` this much later (0: at once; null: never).
    pub abandon_expire_ms: Option<u64>,
    /// Lifetime of session tokens issued from now on.
    pub token_ttl_s: u64,
    /// Extra copies of every webhook.
    pub duplicate: u32,
    /// A new interview is finished (`pass`, webhooks sent) before its start call answers.
    pub early: bool,
    /// Each webhook is held back and sent after the next one (a terminal
    /// status is never held: it is sent, then the held one).
    pub reorder: bool,
    /// Webhooks are never sent.
    pub drop: bool,
    /// Webhooks leave this much after their status changed (the control call does not wait).
    pub delay_ms: Option<u64>,
    /// Wrong bearer token (OAuth2) or wrong header value.
    pub bad_auth: bool,
}

impl Default for IncodeKnobs {
    fn default() -> Self {
        IncodeKnobs {
            step_delay_ms: 0,
            shuffle_statuses: false,
            review_status: "WARN".into(),
            abandon_expire_ms: None,
            token_ttl_s: 3600,
            duplicate: 0,
            early: false,
            reorder: false,
            drop: false,
            delay_ms: None,
            bad_auth: false,
        }
    }
}

const REVIEW_STATUSES: [&str; 3] = ["WARN", "MANUAL", "MANUAL_PENDING"];

/// One status change of an interview.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusChange {
    pub status: String,
    pub at: String,
}

/// One webhook copy, after its last attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WebhookRecord {
    pub status: String,
    pub at: String,
    /// Delivery attempts for this copy (1, or 2 with Incode's retry); an
    /// OAuth2 token refetch after a 401 stays within its attempt.
    pub attempts: u32,
    /// Status of the last answer, if any.
    pub http_status: Option<u16>,
    pub delivered: bool,
}

/// A simulated interview, as shown by `GET /control/sessions/{interviewId}`.
/// Tokens are never part of it.
#[derive(Clone, Debug, Serialize)]
pub struct IncodeInterview {
    pub interview_id: String,
    pub interview_code: String,
    pub configuration_id: String,
    pub country_code: String,
    pub language: String,
    pub external_customer_id: Option<String>,
    pub redirection_url: Option<String>,
    pub custom_fields: Option<Value>,
    pub onboarding_status: String,
    /// Every status change, oldest first (`UNKNOWN` at creation).
    pub history: Vec<StatusChange>,
    /// The score's `overall.status`.
    pub score_status: String,
    /// The last accepted finish result.
    pub result: Option<String>,
    /// `approve` or `reject`, once reviewed.
    pub review_decision: Option<String>,
    pub created_at: String,
    /// `POST /omni/start` calls for this interview (creation and renewals).
    pub starts: u64,
    pub tokens_issued: u64,
    /// Webhook copies sent (each with up to two attempts).
    pub webhooks_sent: u64,
    /// Delivery attempts made for webhooks (see [`WebhookRecord::attempts`]).
    pub webhook_attempts: u64,
    /// Webhook copies answered with 2xx.
    pub webhooks_delivered: u64,
    /// Webhook copies not sent because of the `drop` knob.
    pub webhooks_dropped: u64,
    pub webhooks: Vec<WebhookRecord>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Verdict {
    Ok,
    Fail,
    /// `overall.status` of a review (the `review_status` knob).
    Review(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FinishResult {
    Pass,
    Fail,
    Review,
    Abandon,
    Expire,
}

impl FinishResult {
    fn parse(s: &str) -> Option<FinishResult> {
        Some(match s {
            "pass" => FinishResult::Pass,
            "fail" => FinishResult::Fail,
            "review" => FinishResult::Review,
            "abandon" => FinishResult::Abandon,
            "expire" => FinishResult::Expire,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            FinishResult::Pass => "pass",
            FinishResult::Fail => "fail",
            FinishResult::Review => "review",
            FinishResult::Abandon => "abandon",
            FinishResult::Expire => "expire",
        }
    }
}

/// One webhook (with its copies) waiting in an interview's outbox.
struct Outgoing {
    generation: u64,
    status: String,
    body: Vec<u8>,
    copies: u32,
    bad_auth: bool,
    due: Option<Instant>,
    /// Signalled once every copy was attempted.
    done: Option<oneshot::Sender<()>>,
}

struct Interview {
    record: IncodeInterview,
    /// The applied verdict (set at `ONBOARDING_FINISHED`).
    verdict: Option<Verdict>,
    /// The verdict of the walk in progress.
    pending_verdict: Option<Verdict>,
    /// Manual review decision: approve = true.
    manual: Option<bool>,
    /// Bumped by every accepted control action; stale background steps stop.
    epoch: u64,
    /// A pass/fail/review walk is in progress.
    walking: bool,
    /// The status whose webhook `reorder` holds back.
    held: Option<String>,
    outbox: mpsc::UnboundedSender<Outgoing>,
}

impl Interview {
    fn score_status(&self) -> String {
        match (self.manual, &self.verdict) {
            (Some(true), _) => "MANUAL_OK".into(),
            (Some(false), _) => "MANUAL_FAIL".into(),
            (None, Some(Verdict::Ok)) => "OK".into(),
            (None, Some(Verdict::Fail)) => "FAIL".into(),
            (None, Some(Verdict::Review(s))) => s.clone(),
            (None, None) => UNKNOWN.into(),
        }
    }

    /// Queues the webhook(s) for `status` as the knobs say. Returns what to
    /// await for "sent" when the caller should wait (no `delay_ms`).
    fn emit(
        &mut self,
        status: &str,
        knobs: &IncodeKnobs,
        generation: u64,
    ) -> Option<oneshot::Receiver<()>> {
        let copies = knobs.duplicate.saturating_add(1);
        if knobs.drop {
            self.record.webhooks_dropped += u64::from(copies);
            return None;
        }
        let held = self.held.take();
        let mut batch = Vec::with_capacity(2);
        match held {
            None if knobs.reorder && !is_terminal(status) => {
                self.held = Some(status.to_owned());
                return None;
            }
            None => batch.push(status.to_owned()),
            Some(h) if knobs.reorder => {
                batch.push(status.to_owned());
                batch.push(h);
            }
            Some(h) => {
                batch.push(h);
                batch.push(status.to_owned());
            }
        }
        let due = knobs
            .delay_ms
            .map(|ms| Instant::now() + Duration::from_millis(ms));
        let mut last = None;
        let n = batch.len();
        for (i, status) in batch.into_iter().enumerate() {
            let (done, rx) = if i + 1 == n {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Some(rx))
            } else {
                (None, None)
            };
            let body = webhook_body(
                &self.record.interview_id,
                &status,
                self.record.external_customer_id.as_deref(),
            );
            let job = Outgoing {
                generation,
                status,
                body,
                copies,
                bad_auth: knobs.bad_auth,
                due,
                done,
            };
            if self.outbox.send(job).is_ok() {
                last = rx;
            }
        }
        if knobs.delay_ms.is_some() { None } else { last }
    }
}

fn webhook_body(interview_id: &str, status: &str, external_id: Option<&str>) -> Vec<u8> {
    let mut body = serde_json::Map::new();
    body.insert("interviewId".into(), Value::from(interview_id));
    body.insert("onboardingStatus".into(), Value::from(status));
    if let Some(ext) = external_id {
        body.insert("externalId".into(), Value::from(ext));
    }
    serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
}

#[derive(Clone, Debug)]
enum TokenKind {
    Session(String),
    Executive,
}

#[derive(Clone, Debug)]
struct TokenRecord {
    kind: TokenKind,
    /// Unix seconds.
    expires_at: i64,
    revoked: bool,
}

/// Result of applying one status.
enum Step {
    /// The interview is gone or another control action superseded this one.
    Stale,
    Applied(Option<oneshot::Receiver<()>>),
}

/// An OAuth2 access token and when to stop using it.
struct CachedToken {
    token: String,
    until: Instant,
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
    knobs: IncodeKnobs,
}

impl std::fmt::Debug for IncodeSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncodeSim")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// A failed provider or control call: status and message.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// Incode's error body, for provider paths.
    fn incode(&self, path: &str) -> Response {
        incode_error(self.status, &self.message, path)
    }

    /// `{"error": ...}`, for control paths.
    fn control(&self) -> Response {
        error_response(self.status, self.message.clone())
    }
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn now_unix_ms() -> i64 {
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

fn incode_error(status: StatusCode, message: &str, path: &str) -> Response {
    (status, Json(incode_error_body(status, message, path))).into_response()
}

/// Body of injected fault statuses (the fault layer does not know the path).
fn fault_error_body(status: StatusCode) -> Value {
    incode_error_body(status, status.canonical_reason().unwrap_or("Error"), "")
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A CSP source expression that cannot break out of the directive.
fn valid_source(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
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
            if valid_source(origin) {
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
            error_body: fault_error_body,
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
            .route("/omni/start", post(start))
            .route("/0/omni/onboarding-url", get(onboarding_url))
            .route("/0/omni/get/onboarding/status", get(onboarding_status))
            .route("/0/omni/get/score", get(get_score))
            .route("/omni/finish-status", get(finish_status))
            .route("/omni/get/ocr-data", get(ocr_data))
            .route("/omni/interviews", delete(delete_interviews))
            .route("/executive/log-in", post(executive_login))
            .layer(middleware::from_fn(require_api_version))
            .with_state(self.clone());
        let api = self
            .inner
            .faults
            .wrap(api)
            .layer(middleware::from_fn(processing_time));
        let flow = Router::new()
            .route("/flow/{interview_id}", get(hosted_page))
            .with_state(self.clone());
        let control = Router::new()
            .route("/knobs", get(get_knobs).post(set_knobs))
            .route("/reset", post(reset))
            .route("/sessions", get(list_sessions))
            .route("/sessions/{interview_id}", get(get_session))
            .route("/{interview_id}/finish", post(finish_handler))
            .route("/{interview_id}/review", post(review_handler))
            .route("/{interview_id}/expire-token", post(expire_token_handler))
            .with_state(self.clone())
            .merge(self.inner.faults.control_router());
        Router::new()
            .nest("/control", control)
            .merge(flow)
            .merge(api)
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

    fn api_key_ok(&self, headers: &HeaderMap) -> bool {
        headers
            .get(API_KEY_HEADER)
            .is_some_and(|v| bool::from(v.as_bytes().ct_eq(self.inner.config.api_key.as_bytes())))
    }

    /// The live token record named by `X-Incode-Hardware-Id`.
    fn token(&self, headers: &HeaderMap) -> Result<TokenKind, ApiError> {
        let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, m);
        let token = headers
            .get(TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorized("Missing X-Incode-Hardware-Id header"))?;
        let st = self.lock();
        let record = st
            .tokens
            .get(&token_hash(token))
            .ok_or_else(|| unauthorized("Invalid token"))?;
        if record.revoked {
            return Err(unauthorized("Token revoked"));
        }
        if record.expires_at <= now_unix() {
            return Err(unauthorized("Token expired"));
        }
        if let TokenKind::Session(id) = &record.kind
            && !st.interviews.contains_key(id)
        {
            return Err(unauthorized("Invalid token"));
        }
        Ok(record.kind.clone())
    }

    /// The interview of a valid session token.
    fn session_token(&self, headers: &HeaderMap) -> Result<String, ApiError> {
        match self.token(headers)? {
            TokenKind::Session(id) => Ok(id),
            TokenKind::Executive => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "A session token is required",
            )),
        }
    }

    fn executive_token(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        match self.token(headers)? {
            TokenKind::Executive => Ok(()),
            TokenKind::Session(_) => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "An executive token is required",
            )),
        }
    }

    /// A JWT-shaped token (HS256 under the simulator's key) recorded in `st`.
    fn issue_token(&self, st: &mut SimState, kind: TokenKind, ttl_s: i64) -> String {
        let iat = now_unix();
        let exp = iat.saturating_add(ttl_s);
        let (sub, role) = match &kind {
            TokenKind::Session(id) => (id.as_str(), "ACCESS"),
            TokenKind::Executive => ("executive", "EXECUTIVE"),
        };
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let claims = json!({
            "sub": sub,
            "role": role,
            "iat": iat,
            "exp": exp,
            "jti": hex::encode(rand::random::<[u8; 12]>()),
        });
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{payload}");
        let signature = match Hmac::<Sha256>::new_from_slice(&self.inner.jwt_key) {
            Ok(mut mac) => {
                mac.update(signing_input.as_bytes());
                URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
            }
            // HMAC accepts keys of any length.
            Err(_) => URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()),
        };
        let token = format!("{signing_input}.{signature}");
        st.tokens.insert(
            token_hash(&token),
            TokenRecord {
                kind,
                expires_at: exp,
                revoked: false,
            },
        );
        token
    }

    /// A new interview (and its outbox worker); returns its id and first token.
    fn create_interview(&self, req: StartRequest) -> (String, String, String) {
        let id = hex::encode(rand::random::<[u8; 12]>());
        let code = interview_code();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(outbox_worker(Arc::downgrade(&self.inner), id.clone(), rx));
        let now = now_rfc3339();
        let record = IncodeInterview {
            interview_id: id.clone(),
            interview_code: code.clone(),
            configuration_id: req.configuration_id,
            country_code: req.country_code.unwrap_or_else(|| "ALL".into()),
            language: req.language.unwrap_or_else(|| "en-US".into()),
            external_customer_id: req.external_customer_id,
            redirection_url: req.redirection_url,
            custom_fields: req.custom_fields,
            onboarding_status: UNKNOWN.into(),
            history: vec![StatusChange {
                status: UNKNOWN.into(),
                at: now.clone(),
            }],
            score_status: UNKNOWN.into(),
            result: None,
            review_decision: None,
            created_at: now,
            starts: 1,
            tokens_issued: 1,
            webhooks_sent: 0,
            webhook_attempts: 0,
            webhooks_delivered: 0,
            webhooks_dropped: 0,
            webhooks: Vec::new(),
        };
        let mut st = self.lock();
        let ttl = i64::try_from(st.knobs.token_ttl_s).unwrap_or(i64::MAX);
        let token = self.issue_token(&mut st, TokenKind::Session(id.clone()), ttl);
        st.interviews.insert(
            id.clone(),
            Interview {
                record,
                verdict: None,
                pending_verdict: None,
                manual: None,
                epoch: 0,
                walking: false,
                held: None,
                outbox: tx,
            },
        );
        (id, code, token)
    }

    /// Sets `status` if `epoch` is still current and queues its webhook(s).
    fn apply(&self, interview_id: &str, epoch: u64, status: &str) -> Step {
        let mut st = self.lock();
        let generation = st.generation;
        let knobs = st.knobs.clone();
        let Some(iv) = st.interviews.get_mut(interview_id) else {
            return Step::Stale;
        };
        if iv.epoch != epoch {
            return Step::Stale;
        }
        iv.record.onboarding_status = status.to_owned();
        iv.record.history.push(StatusChange {
            status: status.to_owned(),
            at: now_rfc3339(),
        });
        if status == ONBOARDING_FINISHED {
            iv.verdict = iv.pending_verdict.take();
        }
        if is_terminal(status) {
            iv.walking = false;
        }
        iv.record.score_status = iv.score_status();
        tracing::debug!(interview = %interview_id, %status, "incode sim: status changed");
        Step::Applied(iv.emit(status, &knobs, generation))
    }

    /// [`Self::apply`], then waits until the webhooks were sent (unless delayed).
    /// False when stale.
    async fn step(&self, interview_id: &str, epoch: u64, status: &str) -> bool {
        match self.apply(interview_id, epoch, status) {
            Step::Stale => false,
            Step::Applied(wait) => {
                if let Some(rx) = wait {
                    let _ = rx.await;
                }
                true
            }
        }
    }

    /// Walks `statuses`: the first at once, the others `step_delay_ms` apart
    /// (in the background when that is not 0).
    async fn walk(
        &self,
        interview_id: &str,
        epoch: u64,
        statuses: Vec<&'static str>,
        step_delay_ms: u64,
    ) {
        let mut rest = statuses.into_iter();
        if let Some(first) = rest.next()
            && !self.step(interview_id, epoch, first).await
        {
            return;
        }
        if step_delay_ms == 0 {
            for status in rest {
                if !self.step(interview_id, epoch, status).await {
                    return;
                }
            }
            return;
        }
        let sim = self.clone();
        let id = interview_id.to_owned();
        let rest: Vec<&'static str> = rest.collect();
        tokio::spawn(async move {
            for status in rest {
                tokio::time::sleep(Duration::from_millis(step_delay_ms)).await;
                if matches!(sim.apply(&id, epoch, status), Step::Stale) {
                    return;
                }
            }
        });
    }

    /// The finish of the hosted flow (or of a test). `immediate` ignores
    /// `step_delay_ms` (used by `early`). Returns the status afterwards.
    async fn finish(
        &self,
        interview_id: &str,
        result: FinishResult,
        immediate: bool,
    ) -> Result<String, ApiError> {
        let (epoch, knobs) = {
            let mut st = self.lock();
            let knobs = st.knobs.clone();
            let iv = st
                .interviews
                .get_mut(interview_id)
                .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "interview not found"))?;
            let status = &iv.record.onboarding_status;
            if is_terminal(status) {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("the interview is already {status}"),
                ));
            }
            if iv.walking && result != FinishResult::Expire {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "the interview is already finishing",
                ));
            }
            iv.epoch += 1;
            iv.record.result = Some(result.as_str().into());
            iv.pending_verdict = match result {
                FinishResult::Pass => Some(Verdict::Ok),
                FinishResult::Fail => Some(Verdict::Fail),
                FinishResult::Review => Some(Verdict::Review(knobs.review_status.clone())),
                FinishResult::Abandon | FinishResult::Expire => None,
            };
            iv.walking = iv.pending_verdict.is_some();
            (iv.epoch, knobs)
        };
        match result {
            FinishResult::Pass | FinishResult::Fail | FinishResult::Review => {
                let mut middle = [
                    POST_PROCESSING_FINISHED,
                    FACE_VALIDATION_FINISHED,
                    GOVERNMENT_VALIDATION_FINISHED,
                ];
                if knobs.shuffle_statuses {
                    middle.shuffle(&mut rand::rng());
                }
                let mut statuses = vec![ID_VALIDATION_FINISHED];
                statuses.extend(middle);
                statuses.push(ONBOARDING_FINISHED);
                let delay = if immediate { 0 } else { knobs.step_delay_ms };
                self.walk(interview_id, epoch, statuses, delay).await;
            }
            FinishResult::Abandon => match knobs.abandon_expire_ms {
                None => {}
                Some(0) => {
                    self.step(interview_id, epoch, EXPIRED).await;
                }
                Some(ms) => {
                    let sim = self.clone();
                    let id = interview_id.to_owned();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        sim.apply(&id, epoch, EXPIRED);
                    });
                }
            },
            FinishResult::Expire => {
                self.step(interview_id, epoch, EXPIRED).await;
            }
        }
        Ok(self
            .session(interview_id)
            .map(|s| s.onboarding_status)
            .unwrap_or_default())
    }

    /// A manual review decision on a finished interview.
    async fn review(&self, interview_id: &str, approve: bool) -> Result<String, ApiError> {
        let (epoch, status) = {
            let mut st = self.lock();
            let iv = st
                .interviews
                .get_mut(interview_id)
                .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "interview not found"))?;
            if iv.record.onboarding_status != ONBOARDING_FINISHED {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!(
                        "only an ONBOARDING_FINISHED interview can be reviewed (it is {})",
                        iv.record.onboarding_status
                    ),
                ));
            }
            iv.epoch += 1;
            iv.manual = Some(approve);
            iv.record.review_decision = Some(if approve { "approve" } else { "reject" }.into());
            let status = if approve {
                MANUAL_REVIEW_APPROVED
            } else {
                MANUAL_REVIEW_REJECTED
            };
            (iv.epoch, status)
        };
        self.step(interview_id, epoch, status).await;
        Ok(status.to_owned())
    }

    /// Records one webhook copy.
    fn record_webhook(&self, interview_id: &str, generation: u64, record: WebhookRecord) {
        let mut st = self.lock();
        if st.generation != generation {
            return;
        }
        if let Some(iv) = st.interviews.get_mut(interview_id) {
            iv.record.webhooks_sent += 1;
            iv.record.webhook_attempts += u64::from(record.attempts);
            if record.delivered {
                iv.record.webhooks_delivered += 1;
            }
            iv.record.webhooks.push(record);
        }
    }

    fn still_there(&self, interview_id: &str, generation: u64) -> bool {
        let st = self.lock();
        st.generation == generation && st.interviews.contains_key(interview_id)
    }

    /// One webhook copy with Incode's single retry: (attempts, last HTTP status, delivered).
    async fn deliver(
        &self,
        interview_id: &str,
        status: &str,
        body: &[u8],
        bad_auth: bool,
    ) -> (u32, Option<u16>, bool) {
        let url = &self.inner.config.webhook_url;
        let mut last = None;
        for attempt in 1..=2u32 {
            match self.post_webhook(body, bad_auth).await {
                Ok(code) if (200..300).contains(&code) => {
                    tracing::debug!(interview = %interview_id, %status, code, "incode sim: webhook delivered");
                    return (attempt, Some(code), true);
                }
                Ok(code) => {
                    last = Some(code);
                    tracing::warn!(interview = %interview_id, %status, %url, code, attempt, "incode sim: webhook rejected");
                }
                Err(e) => {
                    tracing::warn!(interview = %interview_id, %status, %url, error = %e, attempt, "incode sim: webhook delivery failed");
                }
            }
            if attempt == 1 {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
        tracing::warn!(interview = %interview_id, %status, %url, "incode sim: webhook given up after one retry");
        (2, last, false)
    }

    /// One HTTP request (OAuth2: plus one token refetch on 401); the answer's status.
    async fn post_webhook(&self, body: &[u8], bad_auth: bool) -> Result<u16, String> {
        match &self.inner.config.webhook_auth {
            IncodeWebhookAuth::Header { name, value } => {
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|e| format!("invalid webhook header name: {e}"))?;
                let value = if bad_auth {
                    format!("{value}-wrong")
                } else {
                    value.clone()
                };
                let mut value = HeaderValue::from_str(&value)
                    .map_err(|_| "invalid webhook header value".to_owned())?;
                value.set_sensitive(true);
                self.send_webhook(body, name, value).await
            }
            IncodeWebhookAuth::OAuth2 { .. } => {
                if bad_auth {
                    let wrong = format!("sim-wrong-{}", hex::encode(rand::random::<[u8; 16]>()));
                    return self.send_bearer(body, &wrong).await;
                }
                let token = self.oauth_token(false).await?;
                let code = self.send_bearer(body, &token).await?;
                if code != StatusCode::UNAUTHORIZED.as_u16() {
                    return Ok(code);
                }
                tracing::info!("incode sim: webhook bearer refused; fetching a new token");
                let token = self.oauth_token(true).await?;
                self.send_bearer(body, &token).await
            }
        }
    }

    async fn send_bearer(&self, body: &[u8], token: &str) -> Result<u16, String> {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| "the access token is not a valid header value".to_owned())?;
        value.set_sensitive(true);
        self.send_webhook(body, header::AUTHORIZATION, value).await
    }

    async fn send_webhook(
        &self,
        body: &[u8],
        name: HeaderName,
        value: HeaderValue,
    ) -> Result<u16, String> {
        let resp = self
            .inner
            .http
            .post(&self.inner.config.webhook_url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(name, value)
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "timed out".to_owned()
                } else {
                    format!("request failed: {e}")
                }
            })?;
        Ok(resp.status().as_u16())
    }

    /// The cached OAuth2 access token, fetched (client credentials) when
    /// absent, expired or `refresh`.
    async fn oauth_token(&self, refresh: bool) -> Result<String, String> {
        let IncodeWebhookAuth::OAuth2 {
            token_url,
            client_id,
            client_secret,
        } = &self.inner.config.webhook_auth
        else {
            return Err("not in OAuth2 mode".into());
        };
        let mut cache = self.inner.oauth.lock().await;
        if !refresh
            && let Some(cached) = cache.as_ref()
            && cached.until > Instant::now()
        {
            return Ok(cached.token.clone());
        }
        *cache = None;
        let resp = self
            .inner
            .http
            .post(token_url)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .basic_auth(client_id, Some(client_secret))
            .body("grant_type=client_credentials")
            .send()
            .await
            .map_err(|e| format!("token request failed: {e}"))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("token endpoint answered {status}"));
        }
        let body: Value = resp
            .json()
            .await
            .map_err(|e| format!("token endpoint answered unreadable JSON: {e}"))?;
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or("token endpoint answered without access_token")?
            .to_owned();
        let expires_in = body
            .get("expires_in")
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .unwrap_or(0);
        if expires_in > 0 {
            *cache = Some(CachedToken {
                token: token.clone(),
                until: Instant::now() + Duration::from_secs(expires_in),
            });
        }
        Ok(token)
    }
}

/// Sends the webhooks of one interview in order; ends when the interview is
/// forgotten (its sender dropped) or the simulator is gone.
async fn outbox_worker(
    weak: Weak<Inner>,
    interview_id: String,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
) {
    while let Some(job) = rx.recv().await {
        if let Some(due) = job.due {
            tokio::time::sleep_until(due).await;
        }
        let Some(inner) = weak.upgrade() else {
            return;
        };
        let sim = IncodeSim { inner };
        for _ in 0..job.copies {
            if !sim.still_there(&interview_id, job.generation) {
                break;
            }
            let (attempts, http_status, delivered) = sim
                .deliver(&interview_id, &job.status, &job.body, job.bad_auth)
                .await;
            sim.record_webhook(
                &interview_id,
                job.generation,
                WebhookRecord {
                    status: job.status.clone(),
                    at: now_rfc3339(),
                    attempts,
                    http_status,
                    delivered,
                },
            );
        }
        drop(sim);
        if let Some(done) = job.done {
            let _ = done.send(());
        }
    }
}

/// Six uppercase letters and digits.
fn interview_code() -> String {
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..6)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
}

// ---------------------------------------------------------------------------
// Middleware

async fn require_api_version(req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get("api-version")
        .is_some_and(|v| v.as_bytes() == API_VERSION.as_bytes());
    if !ok {
        return incode_error(
            StatusCode::BAD_REQUEST,
            "Missing or unsupported api-version header (expected 1.0)",
            req.uri().path(),
        );
    }
    next.run(req).await
}

async fn processing_time(req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let mut resp = next.run(req).await;
    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    resp.headers_mut()
        .insert("processing-time", HeaderValue::from(ms));
    resp
}

// ---------------------------------------------------------------------------
// Provider handlers

/// The fields of `POST /omni/start` the simulator uses.
#[derive(Debug, Default)]
struct StartRequest {
    configuration_id: String,
    country_code: Option<String>,
    language: Option<String>,
    external_customer_id: Option<String>,
    redirection_url: Option<String>,
    custom_fields: Option<Value>,
    interview_id: Option<String>,
}

fn parse_start(body: &[u8]) -> Result<StartRequest, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("Invalid JSON body: {e}"))?;
    let Value::Object(map) = value else {
        return Err("The body must be a JSON object".into());
    };
    let string = |field: &str| -> Result<Option<String>, String> {
        match map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("{field} must be a string")),
        }
    };
    let configuration_id = string("configurationId")?
        .filter(|s| !s.trim().is_empty())
        .ok_or("Missing required parameter: configurationId")?;
    let redirection_url = match string("redirectionUrl")? {
        Some(url) => Some(url),
        None => string("redirectUrl")?,
    };
    Ok(StartRequest {
        configuration_id,
        country_code: string("countryCode")?,
        language: string("language")?,
        external_customer_id: string("externalCustomerId")?,
        redirection_url,
        custom_fields: map.get("customFields").filter(|v| !v.is_null()).cloned(),
        interview_id: string("interviewId")?.filter(|s| !s.is_empty()),
    })
}

async fn start(
    State(sim): State<IncodeSim>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    if !sim.api_key_ok(&headers) {
        return incode_error(StatusCode::FORBIDDEN, "Invalid or missing x-api-key", path);
    }
    let req = match parse_start(&body) {
        Ok(r) => r,
        Err(message) => return incode_error(StatusCode::BAD_REQUEST, &message, path),
    };
    // Incode documents no idempotency header: every call counts.
    if let Some(id) = req.interview_id.clone() {
        let renewed = {
            let mut st = sim.lock();
            let ttl = i64::try_from(st.knobs.token_ttl_s).unwrap_or(i64::MAX);
            let code = st.interviews.get_mut(&id).map(|iv| {
                iv.record.starts += 1;
                iv.record.tokens_issued += 1;
                iv.record.interview_code.clone()
            });
            code.map(|code| {
                let token = sim.issue_token(&mut st, TokenKind::Session(id.clone()), ttl);
                (code, token)
            })
        };
        let Some((code, token)) = renewed else {
            return incode_error(StatusCode::NOT_FOUND, "Interview not found", path);
        };
        return start_response(&id, &code, &token, true);
    }
    let (id, code, token) = sim.create_interview(req);
    if sim.knobs().early {
        // The interview is finished (webhooks sent) before its id is revealed.
        if let Err(e) = sim.finish(&id, FinishResult::Pass, true).await {
            tracing::warn!(interview = %id, error = %e.message, "incode sim: early finish failed");
        }
    }
    start_response(&id, &code, &token, false)
}

fn start_response(id: &str, code: &str, token: &str, existing: bool) -> Response {
    (
        StatusCode::OK,
        Extension(SimRef(id.to_owned())),
        Json(json!({
            "token": token,
            "interviewId": id,
            "interviewCode": code,
            "flowType": "flow",
            "clientId": CLIENT_ID,
            "env": "demo",
            "existingSession": existing,
        })),
    )
        .into_response()
}

/// `{body}` with the interview named for the request log.
fn with_ref(id: String, body: Value) -> Response {
    (StatusCode::OK, Extension(SimRef(id)), Json(body)).into_response()
}

async fn onboarding_url(State(sim): State<IncodeSim>, uri: Uri, headers: HeaderMap) -> Response {
    match sim.session_token(&headers) {
        Ok(id) => {
            let url = format!("{}/flow/{id}", sim.inner.config.public_url);
            with_ref(id, json!({ "url": url }))
        }
        Err(e) => e.incode(uri.path()),
    }
}

async fn onboarding_status(State(sim): State<IncodeSim>, uri: Uri, headers: HeaderMap) -> Response {
    let status = sim
        .session_token(&headers)
        .and_then(|id| match sim.session(&id) {
            Some(s) => Ok((id, s.onboarding_status)),
            None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "Invalid token")),
        });
    match status {
        Ok((id, status)) => with_ref(id, json!({ "onboardingStatus": status })),
        Err(e) => e.incode(uri.path()),
    }
}

async fn get_score(State(sim): State<IncodeSim>, uri: Uri, headers: HeaderMap) -> Response {
    let score = sim.session_token(&headers).and_then(|id| {
        let st = sim.lock();
        match st.interviews.get(&id) {
            Some(iv) => Ok((id.clone(), score_json(&id, iv.verdict.as_ref(), iv.manual))),
            None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "Invalid token")),
        }
    });
    match score {
        Ok((id, score)) => with_ref(id, score),
        Err(e) => e.incode(uri.path()),
    }
}

async fn finish_status(State(sim): State<IncodeSim>, uri: Uri, headers: HeaderMap) -> Response {
    if !sim.api_key_ok(&headers) {
        return incode_error(
            StatusCode::FORBIDDEN,
            "Invalid or missing x-api-key",
            uri.path(),
        );
    }
    let status = sim
        .session_token(&headers)
        .and_then(|id| match sim.session(&id) {
            Some(s) => Ok((id, s.onboarding_status)),
            None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "Invalid token")),
        });
    match status {
        Ok((id, status)) => with_ref(id, json!({ "onboardingStatus": status })),
        Err(e) => e.incode(uri.path()),
    }
}

#[derive(Deserialize)]
struct LoginRequest {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

async fn executive_login(
    State(sim): State<IncodeSim>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    if !sim.api_key_ok(&headers) {
        return incode_error(StatusCode::FORBIDDEN, "Invalid or missing x-api-key", path);
    }
    let req: LoginRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return incode_error(
                StatusCode::BAD_REQUEST,
                &format!("Invalid JSON body: {e}"),
                path,
            );
        }
    };
    if req.email.trim().is_empty() || req.password.is_empty() {
        return incode_error(
            StatusCode::BAD_REQUEST,
            "Missing required parameter: email, password",
            path,
        );
    }
    let token = {
        let mut st = sim.lock();
        sim.issue_token(&mut st, TokenKind::Executive, EXECUTIVE_TOKEN_TTL_S)
    };
    Json(json!({ "token": token })).into_response()
}

#[derive(Deserialize)]
struct OcrQuery {
    id: Option<String>,
}

async fn ocr_data(
    State(sim): State<IncodeSim>,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<OcrQuery>,
) -> Response {
    let path = uri.path();
    if !sim.api_key_ok(&headers) {
        return incode_error(StatusCode::FORBIDDEN, "Invalid or missing x-api-key", path);
    }
    if let Err(e) = sim.executive_token(&headers) {
        return e.incode(path);
    }
    let Some(id) = q.id.filter(|s| !s.is_empty()) else {
        return incode_error(
            StatusCode::BAD_REQUEST,
            "Missing required parameter: id",
            path,
        );
    };
    let Some(record) = sim.session(&id) else {
        return incode_error(StatusCode::NOT_FOUND, "Interview not found", path);
    };
    let captured = record
        .history
        .iter()
        .any(|c| c.status == ID_VALIDATION_FINISHED);
    let body = if captured { ocr_json(&id) } else { json!({}) };
    with_ref(id, body)
}

#[derive(Deserialize)]
struct DeleteRequest {
    ids: Vec<String>,
}

async fn delete_interviews(
    State(sim): State<IncodeSim>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    if !sim.api_key_ok(&headers) {
        return incode_error(StatusCode::FORBIDDEN, "Invalid or missing x-api-key", path);
    }
    if let Err(e) = sim.executive_token(&headers) {
        return e.incode(path);
    }
    let req: DeleteRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return incode_error(StatusCode::BAD_REQUEST, &format!("Invalid body: {e}"), path);
        }
    };
    let mut deleted = 0;
    {
        let mut st = sim.lock();
        for id in &req.ids {
            if st.interviews.remove(id).is_some() {
                deleted += 1;
            }
        }
        st.tokens
            .retain(|_, t| !matches!(&t.kind, TokenKind::Session(id) if req.ids.contains(id)));
    }
    Json(json!({ "success": true, "deleted": deleted })).into_response()
}

// ---------------------------------------------------------------------------
// Generated data

/// The score object of providers.md 2.3; values derive from sha256(interviewId).
fn score_json(interview_id: &str, verdict: Option<&Verdict>, manual: Option<bool>) -> Value {
    let Some(verdict) = verdict else {
        let unknown = json!({ "status": UNKNOWN });
        return json!({
            "idValidation": {
                "photoSecurityAndQuality": [],
                "idSpecific": [],
                "customFields": [],
                "overall": unknown,
            },
            "liveness": { "overall": unknown },
            "faceRecognition": { "overall": unknown },
            "idOcrConfidence": { "overallConfidence": unknown },
            "overall": { "value": "0.0", "status": UNKNOWN },
        });
    };
    let h = Sha256::digest(interview_id.as_bytes());
    let tenths = |base: f64, span: u8, b: u8| format!("{:.1}", base + f64::from(b % span) / 10.0);
    let ok = |key: &str, value: &str| json!({ "key": key, "value": value, "status": "OK" });
    let (tamper, screen, id_status, id_value, overall_status, overall_value) = match verdict {
        Verdict::Ok => (
            ok("tamperCheck", "PASSED"),
            ok("screenIdLiveness", "PASSED"),
            "OK",
            "100.0".to_owned(),
            "OK".to_owned(),
            tenths(90.0, 100, h[0]),
        ),
        Verdict::Fail => (
            json!({ "key": "tamperCheck", "value": "FAILED", "status": "FAIL" }),
            ok("screenIdLiveness", "PASSED"),
            "FAIL",
            "0.0".to_owned(),
            "FAIL".to_owned(),
            tenths(0.0, 250, h[0]),
        ),
        Verdict::Review(status) => (
            ok("tamperCheck", "PASSED"),
            json!({ "key": "screenIdLiveness", "value": "WARNING", "status": "WARN" }),
            "WARN",
            tenths(60.0, 250, h[1]),
            status.clone(),
            tenths(60.0, 250, h[0]),
        ),
    };
    let overall_status = match manual {
        Some(true) => "MANUAL_OK".to_owned(),
        Some(false) => "MANUAL_FAIL".to_owned(),
        None => overall_status,
    };
    let liveness = tenths(90.0, 100, h[2]);
    json!({
        "idValidation": {
            "photoSecurityAndQuality": [
                tamper,
                ok("postitCheck", "PASSED"),
                ok("alignment", "PASSED"),
                ok("fakeCheck", "PASSED"),
                screen,
                ok("paperIdLiveness", "PASSED"),
                ok("balancedLightFront", "PASSED"),
                ok("sharpnessFront", "PASSED"),
            ],
            "idSpecific": [
                ok("documentClassification", "100"),
                ok("visiblePhotoFeatures", "PASSED"),
                ok("issueDateValidity", "100"),
                ok("documentExpired", "100"),
                ok("birthDateValidity", "100"),
                ok("expirationDateValidity", "100"),
            ],
            "customFields": [],
            "overall": { "value": id_value, "status": id_status },
        },
        "liveness": {
            "overall": { "value": liveness, "status": "OK" },
            "photoQuality": { "value": tenths(60.0, 250, h[3]) },
            "livenessScore": { "value": liveness, "status": "OK" },
        },
        "faceRecognition": {
            "existingUser": false,
            "maskCheck": { "value": "0.0", "status": "OK" },
            "nameMatch": { "value": "100.0", "status": "OK" },
            "overall": { "value": tenths(85.0, 150, h[4]), "status": "OK" },
        },
        "idOcrConfidence": {
            "overallConfidence": { "value": tenths(90.0, 100, h[5]), "status": "OK" },
        },
        "overall": { "value": overall_value, "status": overall_status },
    })
}

/// OCR data of providers.md 2.1; values derive from sha256(interviewId).
fn ocr_json(interview_id: &str) -> Value {
    const FIRST: [&str; 8] = [
        "Ana", "Jonas", "Maria", "Pieter", "Sofia", "Liam", "Emma", "Noah",
    ];
    const LAST: [&str; 8] = [
        "Jansen", "Garcia", "de Vries", "Smith", "Rossi", "Kowalski", "Silva", "Bakker",
    ];
    const COUNTRIES: [&str; 4] = ["NLD", "USA", "MEX", "ESP"];
    let h = Sha256::digest(interview_id.as_bytes());
    let first = FIRST[usize::from(h[0]) % FIRST.len()];
    let last = LAST[usize::from(h[1]) % LAST.len()];
    // Born between 1950 and ~2005 (ms since the epoch).
    let days = i64::from(u16::from_be_bytes([h[2], h[3]]) % 20_000) - 7_300;
    let birth_ms = days * 86_400_000;
    json!({
        "name": {
            "fullName": format!("{first} {last}"),
            "firstName": first,
            "paternalLastName": last,
            "maternalLastName": "",
        },
        "birthDate": birth_ms,
        "gender": if h[4] % 2 == 0 { "F" } else { "M" },
        "documentNumber": format!("X{}", hex::encode_upper(&h[5..9])),
        "typeOfId": if h[9] % 2 == 0 { "ID" } else { "Passport" },
        "issuingCountry": COUNTRIES[usize::from(h[10]) % COUNTRIES.len()],
    })
}

// ---------------------------------------------------------------------------
// Hosted page

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An http(s) URL the page may navigate to at the end.
fn safe_redirect(url: &str) -> Option<&str> {
    let lower = url.trim().to_ascii_lowercase();
    ((lower.starts_with("https://") || lower.starts_with("http://")) && !url.contains(['\n', '\r']))
        .then_some(url.trim())
}

fn html_response(sim: &IncodeSim, status: StatusCode, nonce: &str, html: String) -> Response {
    let csp = format!(
        "default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; \
         connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
         frame-ancestors {}",
        sim.inner.frame_ancestors
    );
    let mut resp = (status, html).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    match HeaderValue::from_str(&csp) {
        Ok(v) => {
            headers.insert(header::CONTENT_SECURITY_POLICY, v);
        }
        Err(_) => {
            // Cannot happen (validated sources); never serve the page without a CSP.
            return (StatusCode::INTERNAL_SERVER_ERROR, "invalid CSP").into_response();
        }
    }
    resp
}

async fn hosted_page(State(sim): State<IncodeSim>, Path(interview_id): Path<String>) -> Response {
    let nonce = STANDARD.encode(rand::random::<[u8; 16]>());
    let Some(record) = sim.session(&interview_id) else {
        let html = NOT_FOUND_PAGE
            .replace("{{STYLE}}", PAGE_STYLE)
            .replace("{{NONCE}}", &nonce);
        return html_response(&sim, StatusCode::NOT_FOUND, &nonce, html);
    };
    let redirect = record
        .redirection_url
        .as_deref()
        .and_then(safe_redirect)
        .unwrap_or_default();
    let endpoint = format!("../control/{}/finish", record.interview_id);
    let html = FLOW_PAGE
        .replace("{{STYLE}}", PAGE_STYLE)
        .replace("{{NONCE}}", &nonce)
        .replace("{{ENDPOINT}}", &html_escape(&endpoint))
        .replace("{{REDIRECT}}", &html_escape(redirect))
        .replace("{{CODE}}", &html_escape(&record.interview_code));
    html_response(&sim, StatusCode::OK, &nonce, html)
}

const PAGE_STYLE: &str = r#"
:root { --ink: #101828; --muted: #667085; --line: #e4e7ec; --brand: #1d5bd8; }
* { box-sizing: border-box; }
html, body { height: 100%; }
body { margin: 0; display: flex; align-items: center; justify-content: center; padding: 16px;
  background: linear-gradient(160deg, #eef3ff 0%, #f8fafc 60%); color: var(--ink);
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
.card { width: 100%; max-width: 440px; background: #fff; border-radius: 20px; padding: 28px;
  box-shadow: 0 12px 32px rgba(16, 24, 40, .08), 0 1px 3px rgba(16, 24, 40, .06); }
.brand { display: flex; align-items: center; gap: 10px; font-weight: 650; letter-spacing: -.01em; }
.logo { width: 28px; height: 28px; border-radius: 8px; background: linear-gradient(135deg, #1d5bd8, #7a9cff); }
.badge { margin-left: auto; font-size: 12px; font-weight: 600; color: #b54708; background: #fffaeb;
  border: 1px solid #fedf89; border-radius: 999px; padding: 2px 10px; }
h1 { font-size: 22px; line-height: 1.3; margin: 22px 0 4px; letter-spacing: -.015em; }
.lead { color: var(--muted); margin: 0 0 20px; }
.steps { list-style: none; padding: 0; margin: 0 0 22px; display: grid; gap: 12px; }
.step { display: flex; gap: 14px; align-items: center; padding: 14px; border: 1px solid var(--line); border-radius: 14px; }
.icon { width: 44px; height: 44px; flex: none; border-radius: 12px; display: grid; place-items: center; background: #eef3ff; }
.icon svg { width: 24px; height: 24px; stroke: var(--brand); fill: none; stroke-width: 1.8; stroke-linecap: round; stroke-linejoin: round; }
.step b { display: block; font-weight: 600; }
.step span { color: var(--muted); font-size: 14px; }
.hint { font-size: 13px; color: var(--muted); text-align: center; margin: 0 0 10px; }
.actions { display: grid; grid-template-columns: 1fr 1fr; gap: 10px; }
button { font: inherit; font-weight: 600; border: 0; border-radius: 12px; padding: 12px; cursor: pointer;
  transition: filter .15s ease, transform .05s ease; }
button:hover { filter: brightness(.94); }
button:active { transform: translateY(1px); }
button:disabled { opacity: .5; cursor: default; filter: none; }
button:focus-visible { outline: 3px solid #a4bcfd; outline-offset: 2px; }
.pass { background: #12b76a; color: #fff; }
.fail { background: #f04438; color: #fff; }
.review { background: #f79009; color: #fff; }
.abandon { background: #f2f4f7; color: #344054; }
.error { color: #b42318; font-size: 14px; margin: 14px 0 0; text-align: center; }
.done { text-align: center; padding: 8px 0 4px; }
.check { width: 64px; height: 64px; border-radius: 50%; margin: 18px auto 4px; display: grid; place-items: center; background: #ecfdf3; }
.check svg { width: 32px; height: 32px; stroke: #12b76a; fill: none; stroke-width: 2.5; stroke-linecap: round; stroke-linejoin: round; }
.ref { margin: 20px 0 0; font-size: 12px; color: var(--muted); text-align: center; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
[hidden] { display: none !important; }
"#;

const FLOW_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Verify your identity</title>
<style nonce="{{NONCE}}">{{STYLE}}</style>
</head>
<body data-endpoint="{{ENDPOINT}}" data-redirect="{{REDIRECT}}">
<main class="card">
  <div class="brand"><span class="logo" aria-hidden="true"></span>Incode Omni<span class="badge">Simulator</span></div>
  <section id="flow">
    <h1>Verify your identity</h1>
    <p class="lead">Two quick steps. It takes about a minute.</p>
    <ol class="steps">
      <li class="step">
        <span class="icon" aria-hidden="true"><svg viewBox="0 0 24 24"><rect x="3" y="5" width="18" height="14" rx="2"/><circle cx="9" cy="11" r="2"/><path d="M6.5 16c.6-1.5 1.5-2.2 2.5-2.2s1.9.7 2.5 2.2M14 10h4M14 13h3"/></svg></span>
        <div><b>Photograph your ID</b><span>Front and back, on a flat surface, in good light.</span></div>
      </li>
      <li class="step">
        <span class="icon" aria-hidden="true"><svg viewBox="0 0 24 24"><circle cx="12" cy="10" r="4"/><path d="M4 20c1.5-3.3 4.4-5 8-5s6.5 1.7 8 5M3 7V4h3M21 7V4h-3"/></svg></span>
        <div><b>Take a selfie</b><span>Look straight at the camera; no glasses or hat.</span></div>
      </li>
    </ol>
    <p class="hint">Simulated capture: choose how this verification ends.</p>
    <div class="actions">
      <button type="button" class="pass" data-result="pass">Pass</button>
      <button type="button" class="fail" data-result="fail">Fail</button>
      <button type="button" class="review" data-result="review">Review</button>
      <button type="button" class="abandon" data-result="abandon">Abandon</button>
    </div>
    <p id="error" class="error" role="alert" hidden></p>
  </section>
  <section id="done" class="done" hidden aria-live="polite">
    <div class="check" aria-hidden="true"><svg viewBox="0 0 24 24"><path d="M5 12.5l4.5 4.5L19 7.5"/></svg></div>
    <h1 id="done-title">All done</h1>
    <p class="lead" id="done-text">You can close this window.</p>
  </section>
  <p class="ref">Session <code>{{CODE}}</code></p>
</main>
<script nonce="{{NONCE}}">
(function () {
  "use strict";
  var endpoint = document.body.getAttribute("data-endpoint");
  var redirect = document.body.getAttribute("data-redirect");
  var buttons = Array.prototype.slice.call(document.querySelectorAll("button[data-result]"));
  var error = document.getElementById("error");
  var texts = {
    pass: ["All done", "Your identity was submitted. You can close this window."],
    fail: ["All done", "Your verification was submitted. You can close this window."],
    review: ["All done", "Your verification was submitted for review."],
    abandon: ["Verification stopped", "You left the verification."]
  };
  function setBusy(busy) { buttons.forEach(function (b) { b.disabled = busy; }); }
  function done(title, text) {
    document.getElementById("flow").hidden = true;
    document.getElementById("done-title").textContent = title;
    document.getElementById("done-text").textContent = text;
    document.getElementById("done").hidden = false;
    if (redirect && window.top === window.self) {
      setTimeout(function () { window.location.assign(redirect); }, 1200);
    }
  }
  function finish(result) {
    setBusy(true);
    error.hidden = true;
    fetch(endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ result: result }),
      credentials: "omit",
      cache: "no-store"
    }).then(function (r) {
      if (r.status === 409) { done("Already finished", "This verification was already finished."); return; }
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      done(texts[result][0], texts[result][1]);
    }).catch(function (e) {
      error.textContent = "Something went wrong (" + e.message + "). Please try again.";
      error.hidden = false;
      setBusy(false);
    });
  }
  buttons.forEach(function (b) {
    b.addEventListener("click", function () { finish(b.getAttribute("data-result")); });
  });
})();
</script>
</body>
</html>
"#;

const NOT_FOUND_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Session not found</title>
<style nonce="{{NONCE}}">{{STYLE}}</style>
</head>
<body>
<main class="card">
  <div class="brand"><span class="logo" aria-hidden="true"></span>Incode Omni<span class="badge">Simulator</span></div>
  <h1>Session not found</h1>
  <p class="lead">This verification link is unknown or no longer valid. Please start again from the page that sent you here.</p>
</main>
</body>
</html>
"#;

// ---------------------------------------------------------------------------
// Control handlers

#[derive(Deserialize)]
struct FinishBody {
    result: String,
}

#[derive(Deserialize)]
struct ReviewBody {
    decision: String,
}

fn parse_control<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("invalid body: {e}"))
}

async fn finish_handler(
    State(sim): State<IncodeSim>,
    Path(interview_id): Path<String>,
    body: Bytes,
) -> Response {
    let req: FinishBody = match parse_control(&body) {
        Ok(r) => r,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, e),
    };
    let Some(result) = FinishResult::parse(&req.result) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "result must be one of pass, fail, review, abandon, expire",
        );
    };
    match sim.finish(&interview_id, result, false).await {
        Ok(status) => Json(json!({
            "interviewId": interview_id,
            "result": result.as_str(),
            "onboardingStatus": status,
        }))
        .into_response(),
        Err(e) => e.control(),
    }
}

async fn review_handler(
    State(sim): State<IncodeSim>,
    Path(interview_id): Path<String>,
    body: Bytes,
) -> Response {
    let req: ReviewBody = match parse_control(&body) {
        Ok(r) => r,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, e),
    };
    let approve = match req.decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "decision must be approve or reject",
            );
        }
    };
    match sim.review(&interview_id, approve).await {
        Ok(status) => {
            Json(json!({ "interviewId": interview_id, "onboardingStatus": status })).into_response()
        }
        Err(e) => e.control(),
    }
}

async fn expire_token_handler(
    State(sim): State<IncodeSim>,
    Path(interview_id): Path<String>,
) -> Response {
    let mut st = sim.lock();
    if !st.interviews.contains_key(&interview_id) {
        return error_response(StatusCode::NOT_FOUND, "interview not found");
    }
    let mut revoked = 0;
    for record in st.tokens.values_mut() {
        if matches!(&record.kind, TokenKind::Session(id) if *id == interview_id) && !record.revoked
        {
            record.revoked = true;
            revoked += 1;
        }
    }
    Json(json!({ "interviewId": interview_id, "revoked": revoked })).into_response()
}

async fn get_knobs(State(sim): State<IncodeSim>) -> Response {
    Json(sim.knobs()).into_response()
}

/// Merges the given knobs into the current ones (`null` clears a nullable knob).
async fn set_knobs(State(sim): State<IncodeSim>, body: Bytes) -> Response {
    let patch: serde_json::Map<String, Value> = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, format!("invalid body: {e}")),
    };
    let Ok(Value::Object(mut merged)) = serde_json::to_value(sim.knobs()) else {
        return error_response(StatusCode::INTERNAL_SERVER_ERROR, "knobs not serializable");
    };
    for (key, value) in patch {
        if !merged.contains_key(&key) {
            return error_response(StatusCode::BAD_REQUEST, format!("unknown knob {key}"));
        }
        merged.insert(key, value);
    }
    let knobs: IncodeKnobs = match serde_json::from_value(Value::Object(merged)) {
        Ok(k) => k,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, format!("invalid knobs: {e}")),
    };
    if let Err(e) = sim.set_knobs(knobs.clone()) {
        return error_response(StatusCode::BAD_REQUEST, e);
    }
    Json(knobs).into_response()
}

async fn reset(State(sim): State<IncodeSim>) -> Response {
    sim.reset();
    Json(json!({ "reset": true })).into_response()
}

async fn list_sessions(State(sim): State<IncodeSim>) -> Response {
    let mut sessions: Vec<IncodeInterview> = sim
        .lock()
        .interviews
        .values()
        .map(|i| i.record.clone())
        .collect();
    sessions.sort_by(|a, b| {
        a.created_at
            .cmp(&b.created_at)
            .then(a.interview_id.cmp(&b.interview_id))
    });
    Json(sessions).into_response()
}

async fn get_session(State(sim): State<IncodeSim>, Path(interview_id): Path<String>) -> Response {
    match sim.session(&interview_id) {
        Some(s) => Json(s).into_response(),
        None => error_response(StatusCode::NOT_FOUND, "interview not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_parsing() {
        assert!(parse_start(b"{}").is_err());
        assert!(parse_start(b"[]").is_err());
        assert!(parse_start(br#"{"configurationId": 5}"#).is_err());
        let r = parse_start(br#"{"configurationId": "f", "redirectUrl": "https://x"}"#);
        assert_eq!(
            r.ok().and_then(|r| r.redirection_url).as_deref(),
            Some("https://x")
        );
    }

    #[test]
    fn score_is_deterministic() {
        let a = score_json("abc", Some(&Verdict::Ok), None);
        assert_eq!(a, score_json("abc", Some(&Verdict::Ok), None));
        assert_eq!(a["overall"]["status"], "OK");
        let f = score_json("abc", Some(&Verdict::Fail), Some(true));
        assert_eq!(f["overall"]["status"], "MANUAL_OK");
        assert_eq!(score_json("abc", None, None)["overall"]["status"], UNKNOWN);
    }

    #[test]
    fn reorder_swaps_pairs_and_flushes_on_terminal() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut iv = Interview {
            record: IncodeInterview {
                interview_id: "i".into(),
                interview_code: "C".into(),
                configuration_id: "f".into(),
                country_code: "ALL".into(),
                language: "en-US".into(),
                external_customer_id: None,
                redirection_url: None,
                custom_fields: None,
                onboarding_status: UNKNOWN.into(),
                history: Vec::new(),
                score_status: UNKNOWN.into(),
                result: None,
                review_decision: None,
                created_at: String::new(),
                starts: 1,
                tokens_issued: 1,
                webhooks_sent: 0,
                webhook_attempts: 0,
                webhooks_delivered: 0,
                webhooks_dropped: 0,
                webhooks: Vec::new(),
            },
            verdict: None,
            pending_verdict: None,
            manual: None,
            epoch: 0,
            walking: false,
            held: None,
            outbox: tx,
        };
        let knobs = IncodeKnobs {
            reorder: true,
            ..IncodeKnobs::default()
        };
        for s in [
            ID_VALIDATION_FINISHED,
            POST_PROCESSING_FINISHED,
            FACE_VALIDATION_FINISHED,
            GOVERNMENT_VALIDATION_FINISHED,
            ONBOARDING_FINISHED,
        ] {
            iv.emit(s, &knobs, 0);
        }
        let mut order = Vec::new();
        while let Ok(job) = rx.try_recv() {
            order.push(job.status);
        }
        assert_eq!(
            order,
            vec![
                POST_PROCESSING_FINISHED,
                ID_VALIDATION_FINISHED,
                GOVERNMENT_VALIDATION_FINISHED,
                FACE_VALIDATION_FINISHED,
                ONBOARDING_FINISHED,
            ]
        );
    }

    #[test]
    fn sources_are_validated() {
        assert!(valid_source("https://app.example.com"));
        assert!(valid_source("'self'"));
        assert!(!valid_source("https://a; script-src *"));
        assert!(!valid_source(""));
    }
}
