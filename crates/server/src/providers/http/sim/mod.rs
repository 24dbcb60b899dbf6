//! Simulator of the "score" provider, mounted under `/sim/score/`.
//!
//! Provider paths (Bearer API key; wrapped by the [`Faults`] layer):
//! - `POST /v1/sessions` `{"reference": "..."}` → 201 `{"id", "reference"}`;
//! - `GET /v1/sessions/{id}/score` → 200 `{"id", "score", "status"}`.
//!
//! Control paths (simulator only, no auth, never faulted or logged):
//! - `POST /control/{id}/complete` `{"score"?, "duplicate"?, "never_send"?,
//!   "drop"? (alias of never_send), "delay_ms"?, "bad_auth"?, "stale_reads"?}`
//!   (`stale_reads`: the next N score reads still answer `pending`, as a
//!   provider whose read lags behind its webhook; `"retries": n` re-sends a
//!   webhook that got no 2xx up to n times, backing off from
//!   `retry_every_ms` (default 200) to at most 2 s, in the background, as
//!   a provider whose receiver was down);
//! - `GET|POST /control/knobs` `{"early"?, "auto_complete_ms"?}` (POST merges;
//!   `"auto_complete_ms": null` clears it);
//! - `POST|GET|DELETE /control/faults`, `GET /control/requests` (see [`Faults`]);
//! - `POST /control/reset`;
//! - `GET /control/sessions` (all records) and `GET /control/sessions/{id}`.
//!
//! Webhook: `POST <webhook_url>` with body `{"id":"<id>","status":"completed"}`,
//! `X-Score-Timestamp: <unix seconds>` and
//! `X-Score-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`
//! (see [`signature`]). One attempt per copy unless `retries` is given.

pub mod setup;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::sim::faults::{Faults, FaultsConfig};
use crate::sim::{SimRef, error_response, now_rfc3339};

/// Header carrying the webhook's unix timestamp (seconds).
pub const TIMESTAMP_HEADER: &str = "X-Score-Timestamp";
/// Header carrying `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "X-Score-Signature";

/// Timeout of outgoing webhook deliveries.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct ScoreSimConfig {
    /// Expected as `Authorization: Bearer <api_key>` on provider paths.
    pub api_key: String,
    /// Where webhooks go, e.g. `http://127.0.0.1:8080/v1/webhooks/http/score`.
    pub webhook_url: String,
    /// HMAC key for outgoing webhooks.
    pub webhook_secret: String,
}

/// `sha256=<lowercase hex HMAC-SHA256(secret, "<timestamp>.<body>")>`, the
/// value of [`SIGNATURE_HEADER`].
pub fn signature(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The score of a session, derived from its id (reproducible runs): the first
/// byte of `sha256(id)` modulo 101.
pub fn score_for(id: &str) -> u8 {
    Sha256::digest(id.as_bytes())[0] % 101
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Pending,
    Completed,
}

/// A simulated session, as shown by `GET /control/sessions/{id}`.
#[derive(Clone, Debug, Serialize)]
pub struct ScoreSession {
    pub id: String,
    pub reference: String,
    pub score: u8,
    pub status: SessionStatus,
    pub created_at: String,
    pub completed_at: Option<String>,
    /// Webhook copies sent (attempts).
    pub webhooks_sent: u64,
    /// Webhook copies answered with 2xx.
    pub webhooks_delivered: u64,
    /// Score reads that will still answer `pending` although completed.
    pub stale_reads: u32,
}

/// Global knobs (`/control/knobs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScoreKnobs {
    /// Complete new sessions and send their webhook before answering the create call.
    #[serde(default)]
    pub early: bool,
    /// Complete each new session by itself after this many ms (with its webhook).
    #[serde(default)]
    pub auto_complete_ms: Option<u64>,
}

/// Options of one completion (`POST /control/{id}/complete`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompleteRequest {
    #[serde(default)]
    score: Option<i64>,
    #[serde(default)]
    duplicate: u32,
    #[serde(default)]
    never_send: bool,
    /// providers.md 1.5 spelling of `never_send`.
    #[serde(default)]
    drop: bool,
    #[serde(default)]
    delay_ms: Option<u64>,
    #[serde(default)]
    bad_auth: bool,
    /// The next this many score reads still answer `pending`.
    #[serde(default)]
    stale_reads: u32,
    /// Re-sends of a webhook that got no 2xx (0: one attempt only).
    #[serde(default)]
    retries: u32,
    /// First pause between re-sends; doubles up to [`MAX_RETRY_PAUSE`].
    #[serde(default)]
    retry_every_ms: Option<u64>,
}

/// The longest pause between two re-sends of one webhook.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(2);

/// How one completion's webhooks are sent.
#[derive(Clone, Copy, Debug)]
struct Sending {
    copies: u32,
    bad_auth: bool,
    retries: u32,
    first_pause: Duration,
}

#[derive(Debug, Deserialize)]
struct CreateRequest {
    reference: String,
}

#[derive(Serialize)]
struct WebhookBody<'a> {
    id: &'a str,
    status: &'a str,
}

/// The score simulator. Cheap to clone (shared state).
#[derive(Clone)]
pub struct ScoreSim {
    inner: Arc<Inner>,
}

struct Inner {
    config: ScoreSimConfig,
    faults: Faults,
    http: reqwest::Client,
    state: Mutex<SimState>,
}

#[derive(Default)]
struct SimState {
    sessions: HashMap<String, ScoreSession>,
    /// `Idempotency-Key` -> session id: a retried create returns the same session.
    idempotency: HashMap<String, String>,
    knobs: ScoreKnobs,
}

impl std::fmt::Debug for ScoreSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScoreSim")
            .field("webhook_url", &self.inner.config.webhook_url)
            .finish_non_exhaustive()
    }
}

/// `/v1/sessions/{id}...` names session `id`.
fn ref_from_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v1/sessions/")?;
    let id = rest.split('/').next()?;
    (!id.is_empty()).then(|| id.to_owned())
}

fn error_body(status: StatusCode) -> serde_json::Value {
    if status == StatusCode::SERVICE_UNAVAILABLE {
        serde_json::json!({ "error": "service unavailable" })
    } else {
        crate::sim::faults::default_error_body(status)
    }
}

impl ScoreSim {
    pub fn new(config: ScoreSimConfig) -> ScoreSim {
        let http = reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            .build()
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "score sim: building the webhook client failed; using defaults");
                reqwest::Client::new()
            });
        let faults = Faults::new(FaultsConfig {
            ref_from_path,
            error_body,
            malformed_body: "{\"id\": \"sc_",
        });
        ScoreSim {
            inner: Arc::new(Inner {
                config,
                faults,
                http,
                state: Mutex::new(SimState::default()),
            }),
        }
    }

    /// Paths relative to the mount: `Router::new().nest("/sim/score", sim.router())`.
    pub fn router(&self) -> Router {
        let provider = Router::new()
            .route("/v1/sessions", post(create_session))
            .route("/v1/sessions/{id}/score", get(get_score))
            .with_state(self.clone());
        let provider = self.inner.faults.wrap(provider);
        let control = Router::new()
            .route("/knobs", get(get_knobs).post(set_knobs))
            .route("/reset", post(reset))
            .route("/sessions", get(list_sessions))
            .route("/sessions/{id}", get(get_session))
            .route("/{id}/complete", post(complete_session))
            .with_state(self.clone())
            .merge(self.inner.faults.control_router());
        Router::new().nest("/control", control).merge(provider)
    }

    /// The fault rules and request log of this simulator.
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    pub fn knobs(&self) -> ScoreKnobs {
        self.lock().knobs
    }

    /// Sets the global knobs (e.g. from `[sim.score]` config).
    pub fn set_knobs(&self, knobs: ScoreKnobs) {
        self.lock().knobs = knobs;
    }

    /// A copy of one session record.
    pub fn session(&self, id: &str) -> Option<ScoreSession> {
        self.lock().sessions.get(id).cloned()
    }

    /// Forgets sessions, rules, knobs and the request log.
    pub fn reset(&self) {
        {
            let mut st = self.lock();
            st.sessions.clear();
            st.idempotency.clear();
            st.knobs = ScoreKnobs::default();
        }
        self.inner.faults.reset();
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return false;
        };
        let Some(token) = value.as_bytes().strip_prefix(b"Bearer ") else {
            return false;
        };
        bool::from(token.ct_eq(self.inner.config.api_key.as_bytes()))
    }

    /// Marks the session completed (idempotent; `score` overrides) and returns its record.
    fn mark_completed(
        &self,
        id: &str,
        score: Option<u8>,
        stale_reads: u32,
    ) -> Option<ScoreSession> {
        let mut st = self.lock();
        let session = st.sessions.get_mut(id)?;
        if let Some(score) = score {
            session.score = score;
        }
        session.stale_reads = stale_reads;
        if session.status != SessionStatus::Completed {
            session.status = SessionStatus::Completed;
            session.completed_at = Some(now_rfc3339());
        }
        Some(session.clone())
    }

    /// Sends `copies` webhooks for `id` sequentially, each re-sent up to
    /// `retries` times until it gets a 2xx; returns how many were sent
    /// (attempts). Stops early if the session was forgotten (reset).
    async fn send_webhooks(&self, id: &str, how: Sending) -> u64 {
        let mut sent = 0;
        for _ in 0..how.copies {
            let mut pause = how.first_pause;
            for attempt in 0..=how.retries {
                if !self.lock().sessions.contains_key(id) {
                    return sent;
                }
                if attempt > 0 {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_RETRY_PAUSE);
                }
                let delivered = self.send_webhook(id, how.bad_auth).await;
                sent += 1;
                if let Some(s) = self.lock().sessions.get_mut(id) {
                    s.webhooks_sent += 1;
                    if delivered {
                        s.webhooks_delivered += 1;
                    }
                }
                if delivered {
                    break;
                }
            }
        }
        sent
    }

    /// One delivery attempt; true on a 2xx answer.
    async fn send_webhook(&self, id: &str, bad_auth: bool) -> bool {
        let body = match serde_json::to_vec(&WebhookBody {
            id,
            status: "completed",
        }) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "score sim: serializing the webhook failed");
                return false;
            }
        };
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
        let secret = if bad_auth {
            format!("{}-wrong", self.inner.config.webhook_secret)
        } else {
            self.inner.config.webhook_secret.clone()
        };
        let sig = signature(secret.as_bytes(), &timestamp, &body);
        let url = &self.inner.config.webhook_url;
        let result = self
            .inner
            .http
            .post(url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, &timestamp)
            .header(SIGNATURE_HEADER, sig)
            .body(body)
            .send()
            .await;
        match result {
            Ok(resp) if resp.status().is_success() => {
                tracing::debug!(%id, status = %resp.status(), "score sim: webhook delivered");
                true
            }
            Ok(resp) => {
                tracing::warn!(%id, %url, status = %resp.status(), "score sim: webhook rejected");
                false
            }
            Err(e) => {
                tracing::warn!(%id, %url, error = %e, "score sim: webhook delivery failed");
                false
            }
        }
    }

    /// Completes the session and sends its webhook(s) as `opts` says. With
    /// `delay_ms` or `retries`, sending happens in a background task and 0
    /// is returned.
    async fn complete(&self, id: &str, opts: &CompleteRequest) -> Option<(ScoreSession, u64)> {
        let score = opts.score.and_then(|s| u8::try_from(s).ok());
        let session = self.mark_completed(id, score, opts.stale_reads)?;
        let how = Sending {
            copies: opts.duplicate.saturating_add(1),
            bad_auth: opts.bad_auth,
            retries: opts.retries,
            first_pause: Duration::from_millis(opts.retry_every_ms.unwrap_or(200)),
        };
        if opts.never_send || opts.drop {
            return Some((session, 0));
        }
        if opts.delay_ms.is_some() || opts.retries > 0 {
            let sim = self.clone();
            let id = id.to_owned();
            let delay = Duration::from_millis(opts.delay_ms.unwrap_or(0));
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                sim.send_webhooks(&id, how).await;
            });
            return Some((session, 0));
        }
        let sent = self.send_webhooks(id, how).await;
        Some((session, sent))
    }
}

async fn create_session(State(sim): State<ScoreSim>, headers: HeaderMap, body: Bytes) -> Response {
    if !sim.authorized(&headers) {
        return error_response(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let req: CreateRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, format!("invalid body: {e}")),
    };
    // Like well-behaved provider APIs, a create retried with the same
    // Idempotency-Key answers with the session it already made.
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let id = format!("sc_{}", hex::encode(rand::random::<[u8; 8]>()));
    let session = ScoreSession {
        id: id.clone(),
        reference: req.reference.clone(),
        score: score_for(&id),
        status: SessionStatus::Pending,
        created_at: now_rfc3339(),
        completed_at: None,
        webhooks_sent: 0,
        webhooks_delivered: 0,
        stale_reads: 0,
    };
    // The lookup and the insert under one lock: two creates with one key
    // at the same moment (a call taken over by another node while the
    // first is still in flight) make one session, as at a real provider.
    let knobs = {
        let mut st = sim.lock();
        if let Some(existing) = key.as_ref().and_then(|k| st.idempotency.get(k).cloned()) {
            let reference = st
                .sessions
                .get(&existing)
                .map(|s| s.reference.clone())
                .unwrap_or_default();
            drop(st);
            return (
                StatusCode::CREATED,
                Extension(SimRef(existing.clone())),
                Json(serde_json::json!({ "id": existing, "reference": reference })),
            )
                .into_response();
        }
        st.sessions.insert(id.clone(), session);
        if let Some(key) = key {
            st.idempotency.insert(key, id.clone());
        }
        st.knobs
    };
    if knobs.early {
        sim.complete(&id, &CompleteRequest::default()).await;
    }
    if let Some(ms) = knobs.auto_complete_ms {
        let sim = sim.clone();
        let id = id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            sim.complete(&id, &CompleteRequest::default()).await;
        });
    }
    (
        StatusCode::CREATED,
        Extension(SimRef(id.clone())),
        Json(serde_json::json!({ "id": id, "reference": req.reference })),
    )
        .into_response()
}

async fn get_score(
    State(sim): State<ScoreSim>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !sim.authorized(&headers) {
        return error_response(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let read = {
        let mut st = sim.lock();
        st.sessions.get_mut(&id).map(|s| {
            // A read that lags behind the completion (and its webhook).
            let lagging = s.status == SessionStatus::Completed && s.stale_reads > 0;
            if lagging {
                s.stale_reads -= 1;
            }
            let status = if lagging {
                SessionStatus::Pending
            } else {
                s.status
            };
            serde_json::json!({ "id": s.id, "score": s.score, "status": status })
        })
    };
    match read {
        Some(body) => Json(body).into_response(),
        None => error_response(StatusCode::NOT_FOUND, "session not found"),
    }
}

async fn complete_session(
    State(sim): State<ScoreSim>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let opts: CompleteRequest = if body.iter().all(u8::is_ascii_whitespace) {
        CompleteRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(o) => o,
            Err(e) => {
                return error_response(StatusCode::BAD_REQUEST, format!("invalid body: {e}"));
            }
        }
    };
    if let Some(score) = opts.score
        && !(0..=100).contains(&score)
    {
        return error_response(StatusCode::BAD_REQUEST, "score must be within 0..=100");
    }
    match sim.complete(&id, &opts).await {
        Some((s, sent)) => Json(serde_json::json!({
            "id": s.id,
            "score": s.score,
            "status": s.status,
            "webhooks_sent": sent,
        }))
        .into_response(),
        None => error_response(StatusCode::NOT_FOUND, "session not found"),
    }
}

async fn get_knobs(State(sim): State<ScoreSim>) -> Response {
    Json(sim.knobs()).into_response()
}

/// Merges the given knobs; `"auto_complete_ms": null` clears that knob.
async fn set_knobs(State(sim): State<ScoreSim>, body: Bytes) -> Response {
    let map: serde_json::Map<String, serde_json::Value> = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, format!("invalid body: {e}")),
    };
    let mut knobs = sim.knobs();
    for (key, value) in map {
        match (key.as_str(), value) {
            ("early", serde_json::Value::Bool(b)) => knobs.early = b,
            ("auto_complete_ms", serde_json::Value::Null) => knobs.auto_complete_ms = None,
            ("auto_complete_ms", v) => match v.as_u64() {
                Some(ms) => knobs.auto_complete_ms = Some(ms),
                None => {
                    return error_response(
                        StatusCode::BAD_REQUEST,
                        "auto_complete_ms must be a non-negative integer or null",
                    );
                }
            },
            ("early", _) => return error_response(StatusCode::BAD_REQUEST, "early must be a bool"),
            (other, _) => {
                return error_response(StatusCode::BAD_REQUEST, format!("unknown knob {other}"));
            }
        }
    }
    sim.set_knobs(knobs);
    Json(knobs).into_response()
}

async fn reset(State(sim): State<ScoreSim>) -> Response {
    sim.reset();
    Json(serde_json::json!({ "reset": true })).into_response()
}

async fn list_sessions(State(sim): State<ScoreSim>) -> Response {
    let mut sessions: Vec<ScoreSession> = sim.lock().sessions.values().cloned().collect();
    sessions.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    Json(sessions).into_response()
}

async fn get_session(State(sim): State<ScoreSim>, Path(id): Path<String>) -> Response {
    match sim.session(&id) {
        Some(s) => Json(s).into_response(),
        None => error_response(StatusCode::NOT_FOUND, "session not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_from_paths() {
        assert_eq!(ref_from_path("/v1/sessions"), None);
        assert_eq!(ref_from_path("/v1/sessions/"), None);
        assert_eq!(
            ref_from_path("/v1/sessions/sc_1/score").as_deref(),
            Some("sc_1")
        );
    }

    #[test]
    fn score_is_deterministic_and_bounded() {
        assert_eq!(
            score_for("sc_0123456789abcdef"),
            score_for("sc_0123456789abcdef")
        );
        assert!(score_for("sc_x") <= 100);
    }

    #[test]
    fn signature_shape() {
        let s = signature(b"k", "1", b"{}");
        assert!(s.starts_with("sha256="));
        assert_eq!(s.len(), "sha256=".len() + 64);
    }
}
