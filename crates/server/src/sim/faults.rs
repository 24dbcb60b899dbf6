//! Fault injection and request logging shared by every simulator (providers.md 1.5).
//!
//! A [`Faults`] value holds the installed fault rules and the request log. A
//! simulator wraps its *provider* router with [`Faults::wrap`] (never its
//! control router) and merges [`Faults::control_router`] into its `control/`
//! router, which serves:
//!
//! - `POST /faults` `{"rules": [...]}`: append rules;
//! - `GET /faults`: the rules still armed, `times` being what is left;
//! - `DELETE /faults`: clear the rules;
//! - `GET /requests`: the request log (method, path, the names of the query
//!   parameters, status, provider reference).
//!
//! A rule applies to the first `times` (default 1) requests it matches; when
//! several rules match, the first installed one that is still armed is used.
//! Semantics of the fault (the first applicable of these wins):
//!
//! | fault | behaviour |
//! |---|---|
//! | `delay_ms` | sleeps that long first; alone it gives the correct answer, late |
//! | `hang` | never answers (logged with status 0) |
//! | `drop` | the connection is closed without a response (logged with status 0), see below |
//! | `status` (+ `retry_after`, `location`) | that status with the simulator's error body (and `Retry-After`, `Location`: a redirect) |
//! | `malformed` | 200 with truncated JSON |
//!
//! Without `after_effect`, the simulator's handler does not run for `hang`,
//! `drop`, `status` and `malformed` (nothing happens at the provider). With
//! `after_effect: true` (accepted inside `fault` or next to it in the rule) the
//! real handler runs first (its side effect happens), then `delay_ms` is waited
//! and the response is replaced by the fault's; `malformed` then truncates the
//! real body.
//!
//! **`drop`** is approximated inside axum/hyper: the response carries a body
//! stream whose first poll fails. Hyper then aborts the connection before the
//! buffered response head is flushed, so the client sees the connection closed
//! with no response at all (reqwest: "connection closed before message
//! completed"). No panic is involved.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{RequestLogEntry, SimRef, error_response, now_rfc3339};

/// Entries kept in the request log; the oldest are forgotten beyond this.
pub const REQUEST_LOG_CAPACITY: usize = 10_000;

/// Largest real response body that `after_effect` + `malformed` truncates.
const MAX_BODY: usize = 1 << 20;

/// Which requests a rule applies to. Absent fields match anything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleMatch {
    /// HTTP method, case-insensitive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Path relative to the simulator mount; `*` matches exactly one segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Provider reference named by the request path (see [`FaultsConfig::ref_from_path`]).
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

impl RuleMatch {
    /// Whether a request with this method, path and path reference matches.
    pub fn matches(&self, method: &str, path: &str, reference: Option<&str>) -> bool {
        if let Some(m) = &self.method
            && !m.eq_ignore_ascii_case(method)
        {
            return false;
        }
        if let Some(p) = &self.path
            && !path_matches(p, path)
        {
            return false;
        }
        if let Some(r) = &self.reference
            && reference != Some(r.as_str())
        {
            return false;
        }
        true
    }
}

/// Exact match, or `*` standing for exactly one (non-empty) path segment.
pub fn path_matches(pattern: &str, path: &str) -> bool {
    let mut pat = pattern.split('/');
    let mut segs = path.split('/');
    loop {
        match (pat.next(), segs.next()) {
            (None, None) => return true,
            (Some("*"), Some(s)) if !s.is_empty() => {}
            (Some(p), Some(s)) if p == s => {}
            _ => return false,
        }
    }
}

/// What happens to a matched request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Answer with this status and the simulator's error body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `Retry-After` seconds sent with `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// `Location` sent with `status` (a redirect: `{"status": 302,
    /// "location": "http://elsewhere/"}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Wait this long before answering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Never answer.
    #[serde(default, skip_serializing_if = "is_false")]
    pub hang: bool,
    /// Close the connection without a response.
    #[serde(default, skip_serializing_if = "is_false")]
    pub drop: bool,
    /// 200 with truncated JSON.
    #[serde(default, skip_serializing_if = "is_false")]
    pub malformed: bool,
    /// Run the real handler (its side effect happens), then fail the response.
    #[serde(default, skip_serializing_if = "is_false")]
    pub after_effect: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Fault {
    /// Whether the response is replaced (as opposed to only delayed).
    fn fails_response(&self) -> bool {
        self.hang || self.drop || self.status.is_some() || self.malformed
    }
}

fn default_times() -> u32 {
    1
}

/// One fault rule: `{"match": {...}, "times": 2, "fault": {...}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    #[serde(rename = "match", default)]
    pub matcher: RuleMatch,
    /// How many matching requests this rule still applies to.
    #[serde(default = "default_times")]
    pub times: u32,
    pub fault: Fault,
    /// Same as `fault.after_effect`; accepted next to `fault` too.
    #[serde(default, skip_serializing_if = "is_false")]
    pub after_effect: bool,
}

/// The simulator-specific parts of the fault layer.
#[derive(Clone, Copy, Debug)]
pub struct FaultsConfig {
    /// The provider reference a request path names, if any (used for rule
    /// matching and the request log).
    pub ref_from_path: fn(&str) -> Option<String>,
    /// The provider's error body for an injected status.
    pub error_body: fn(StatusCode) -> serde_json::Value,
    /// Body of a `malformed` answer when no real body exists (no `after_effect`).
    pub malformed_body: &'static str,
}

impl Default for FaultsConfig {
    fn default() -> Self {
        FaultsConfig {
            ref_from_path: |_| None,
            error_body: default_error_body,
            malformed_body: "{\"id\": \"",
        }
    }
}

/// `{"error": "<reason phrase, lowercase>"}`.
pub fn default_error_body(status: StatusCode) -> serde_json::Value {
    let reason = status
        .canonical_reason()
        .map(str::to_ascii_lowercase)
        .unwrap_or_else(|| format!("error {}", status.as_u16()));
    serde_json::json!({ "error": reason })
}

/// Fault rules and request log of one simulator. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Faults {
    inner: Arc<Inner>,
}

struct Inner {
    config: FaultsConfig,
    state: Mutex<FaultState>,
}

#[derive(Default)]
struct FaultState {
    rules: Vec<FaultRule>,
    log: VecDeque<RequestLogEntry>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults::new(FaultsConfig::default())
    }
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.lock();
        f.debug_struct("Faults")
            .field("rules", &st.rules.len())
            .field("log", &st.log.len())
            .finish()
    }
}

/// Body of `POST …/control/faults`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InstallRequest {
    rules: Vec<FaultRule>,
}

impl Faults {
    pub fn new(config: FaultsConfig) -> Faults {
        Faults {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(FaultState::default()),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, FaultState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends rules (validated: `status` must be a valid HTTP status).
    pub fn add_rules(&self, rules: Vec<FaultRule>) -> Result<(), String> {
        for rule in &rules {
            if let Some(s) = rule.fault.status
                && StatusCode::from_u16(s).is_err()
            {
                return Err(format!("invalid status {s}"));
            }
        }
        self.lock().rules.extend(rules);
        Ok(())
    }

    /// Removes every rule; returns how many there were.
    pub fn clear_rules(&self) -> usize {
        let mut st = self.lock();
        let n = st.rules.len();
        st.rules.clear();
        n
    }

    /// The rules still armed (`times` is what is left).
    pub fn rules(&self) -> Vec<FaultRule> {
        self.lock().rules.clone()
    }

    /// A copy of the request log, oldest first.
    pub fn requests(&self) -> Vec<RequestLogEntry> {
        self.lock().log.iter().cloned().collect()
    }

    /// Forgets rules and log.
    pub fn reset(&self) {
        let mut st = self.lock();
        st.rules.clear();
        st.log.clear();
    }

    /// Appends an entry to the request log.
    pub fn record(&self, method: &str, path: &str, status: u16, reference: Option<String>) {
        self.record_request(
            &Line {
                method: method.to_owned(),
                path: path.to_owned(),
                query: Vec::new(),
                traceparent: None,
            },
            status,
            reference,
        );
    }

    fn record_request(&self, line: &Line, status: u16, reference: Option<String>) {
        let entry = RequestLogEntry {
            at: now_rfc3339(),
            method: line.method.clone(),
            path: line.path.clone(),
            query: line.query.clone(),
            status,
            reference,
            traceparent: line.traceparent.clone(),
        };
        let mut st = self.lock();
        if st.log.len() >= REQUEST_LOG_CAPACITY {
            st.log.pop_front();
        }
        st.log.push_back(entry);
    }

    /// Consumes one application of the first armed rule matching the request.
    /// The returned fault has `after_effect` merged from the rule level.
    pub fn take_fault(&self, method: &str, path: &str, reference: Option<&str>) -> Option<Fault> {
        let mut st = self.lock();
        let idx = st
            .rules
            .iter()
            .position(|r| r.times > 0 && r.matcher.matches(method, path, reference))?;
        let rule = &mut st.rules[idx];
        rule.times -= 1;
        let mut fault = rule.fault.clone();
        fault.after_effect |= rule.after_effect;
        if rule.times == 0 {
            st.rules.remove(idx);
        }
        Some(fault)
    }

    /// Wraps a simulator's provider router: every request is checked against
    /// the rules and logged. Do not wrap control routes.
    pub fn wrap(&self, provider: Router) -> Router {
        provider.layer(middleware::from_fn_with_state(
            self.clone(),
            fault_middleware,
        ))
    }

    /// `/faults` and `/requests`, to be merged into a simulator's control router.
    pub fn control_router(&self) -> Router {
        Router::new()
            .route(
                "/faults",
                get(list_rules_handler)
                    .post(install_rules_handler)
                    .delete(clear_rules_handler),
            )
            .route("/requests", get(requests_handler))
            .with_state(self.clone())
    }

    /// Builds the faulty response, logs it, and (for `hang`) never returns.
    /// `real` is the handler's response when `after_effect` ran it.
    async fn fail(
        &self,
        line: &Line,
        reference: Option<String>,
        fault: &Fault,
        real: Option<Response>,
    ) -> Response {
        let (method, path) = (line.method.as_str(), line.path.as_str());
        if fault.hang {
            self.record_request(line, 0, reference);
            tracing::debug!(method, path, "sim fault: hang");
            return std::future::pending::<Response>().await;
        }
        if fault.drop {
            self.record_request(line, 0, reference);
            tracing::debug!(method, path, "sim fault: drop");
            return dropped_connection();
        }
        let response = if let Some(code) = fault.status {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let mut resp = (status, Json((self.inner.config.error_body)(status))).into_response();
            if let Some(secs) = fault.retry_after {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            if let Some(location) = fault
                .location
                .as_deref()
                .and_then(|l| HeaderValue::from_str(l).ok())
            {
                resp.headers_mut().insert(header::LOCATION, location);
            }
            resp
        } else if fault.malformed {
            let body = match real {
                Some(real) => {
                    let bytes = axum::body::to_bytes(real.into_body(), MAX_BODY)
                        .await
                        .unwrap_or_default();
                    truncate_json(&bytes)
                }
                None => Bytes::from_static(self.inner.config.malformed_body.as_bytes()),
            };
            let mut resp = (StatusCode::OK, body).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        } else {
            // after_effect with only a delay: the real answer.
            real.unwrap_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())
        };
        self.record_request(line, response.status().as_u16(), reference);
        response
    }
}

/// What the request log keeps of a request: no header but `traceparent`,
/// never bodies, and of the query only the parameter names (values may be
/// secrets).
struct Line {
    method: String,
    path: String,
    query: Vec<String>,
    traceparent: Option<String>,
}

/// The first half of a JSON body (always invalid JSON for an object or array).
fn truncate_json(bytes: &[u8]) -> Bytes {
    if bytes.len() < 2 {
        return Bytes::from_static(b"{\"");
    }
    Bytes::copy_from_slice(&bytes[..bytes.len() / 2])
}

/// A response whose body fails on its first poll: hyper aborts the connection
/// without flushing the response head.
fn dropped_connection() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("simulated connection drop"))
    });
    Response::new(Body::from_stream(stream))
}

async fn fault_middleware(State(faults): State<Faults>, req: Request, next: Next) -> Response {
    let line = Line {
        method: req.method().as_str().to_owned(),
        path: req.uri().path().to_owned(),
        query: req
            .uri()
            .query()
            .and_then(|q| reqwest::Url::parse(&format!("http://sim/?{q}")).ok())
            .map(|u| u.query_pairs().map(|(k, _)| k.into_owned()).collect())
            .unwrap_or_default(),
        traceparent: req
            .headers()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    };
    let (method, path) = (line.method.as_str(), line.path.as_str());
    let path_ref = (faults.inner.config.ref_from_path)(path);

    let Some(fault) = faults.take_fault(method, path, path_ref.as_deref()) else {
        let resp = next.run(req).await;
        let reference = path_ref.or_else(|| response_ref(&resp));
        faults.record_request(&line, resp.status().as_u16(), reference);
        return resp;
    };
    tracing::debug!(%method, %path, ?fault, "sim fault rule applied");

    if fault.after_effect {
        let real = next.run(req).await;
        let reference = path_ref.or_else(|| response_ref(&real));
        if let Some(ms) = fault.delay_ms {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        return faults.fail(&line, reference, &fault, Some(real)).await;
    }

    if let Some(ms) = fault.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if fault.fails_response() {
        return faults.fail(&line, path_ref, &fault, None).await;
    }
    let resp = next.run(req).await;
    let reference = path_ref.or_else(|| response_ref(&resp));
    faults.record_request(&line, resp.status().as_u16(), reference);
    resp
}

fn response_ref(resp: &Response) -> Option<String> {
    resp.extensions().get::<SimRef>().map(|r| r.0.clone())
}

async fn list_rules_handler(State(faults): State<Faults>) -> Response {
    Json(serde_json::json!({ "rules": faults.rules() })).into_response()
}

async fn install_rules_handler(State(faults): State<Faults>, body: Bytes) -> Response {
    let req: InstallRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, format!("invalid rules: {e}")),
    };
    let installed = req.rules.len();
    if let Err(e) = faults.add_rules(req.rules) {
        return error_response(StatusCode::BAD_REQUEST, e);
    }
    Json(serde_json::json!({ "installed": installed, "rules": faults.rules() })).into_response()
}

async fn clear_rules_handler(State(faults): State<Faults>) -> Response {
    let cleared = faults.clear_rules();
    Json(serde_json::json!({ "cleared": cleared })).into_response()
}

async fn requests_handler(State(faults): State<Faults>) -> Response {
    Json(faults.requests()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_patterns() {
        assert!(path_matches("/v1/sessions", "/v1/sessions"));
        assert!(!path_matches("/v1/sessions", "/v1/sessions/x"));
        assert!(path_matches(
            "/v1/sessions/*/score",
            "/v1/sessions/sc_1/score"
        ));
        assert!(!path_matches("/v1/sessions/*/score", "/v1/sessions//score"));
        assert!(!path_matches(
            "/v1/sessions/*/score",
            "/v1/sessions/a/b/score"
        ));
        assert!(!path_matches("/v1/*", "/v1"));
    }

    #[test]
    fn rules_are_consumed_in_order() {
        let faults = Faults::default();
        let rules: Vec<FaultRule> = serde_json::from_value(serde_json::json!([
            {"match": {"method": "post", "path": "/a"}, "times": 2, "fault": {"status": 503}},
            {"match": {"path": "/a"}, "fault": {"malformed": true}, "after_effect": true}
        ]))
        .unwrap_or_default();
        assert_eq!(rules.len(), 2);
        assert!(faults.add_rules(rules).is_ok());
        assert_eq!(faults.take_fault("GET", "/b", None), None);
        for _ in 0..2 {
            let f = faults.take_fault("POST", "/a", None);
            assert_eq!(f.and_then(|f| f.status), Some(503));
        }
        let f = faults.take_fault("POST", "/a", None);
        assert!(f.is_some_and(|f| f.malformed && f.after_effect));
        assert_eq!(faults.take_fault("POST", "/a", None), None);
        assert!(faults.rules().is_empty());
    }

    #[test]
    fn ref_matching() {
        let m = RuleMatch {
            reference: Some("sc_1".into()),
            ..RuleMatch::default()
        };
        assert!(m.matches("GET", "/x", Some("sc_1")));
        assert!(!m.matches("GET", "/x", Some("sc_2")));
        assert!(!m.matches("GET", "/x", None));
    }

    #[test]
    fn bad_status_rejected() {
        let faults = Faults::default();
        let rule = FaultRule {
            matcher: RuleMatch::default(),
            times: 1,
            fault: Fault {
                status: Some(42),
                ..Fault::default()
            },
            after_effect: false,
        };
        assert!(faults.add_rules(vec![rule]).is_err());
    }
}
