//! The simulated provider API: create, retrieve, cancel and redact
//! VerificationSessions, with Stripe's authentication, idempotency and
//! error bodies.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use super::{Session, StripeSim, now_unix, stripe_id};
use crate::sim::SimRef;

/// Stripe's error body.
pub(super) fn stripe_error(
    status: StatusCode,
    kind: &str,
    code: Option<&str>,
    message: &str,
) -> Response {
    let mut error = json!({"type": kind, "message": message});
    if let Some(code) = code {
        error["code"] = json!(code);
    }
    (status, Json(json!({ "error": error }))).into_response()
}

/// The error body of an injected fault.
pub(super) fn fault_error_body(status: StatusCode) -> Value {
    let kind = if status.is_server_error() {
        "api_error"
    } else {
        "invalid_request_error"
    };
    json!({"error": {"type": kind, "message": format!("simulated HTTP {}", status.as_u16())}})
}

pub(super) async fn not_found() -> Response {
    stripe_error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        None,
        "Unrecognized request URL. Please see https://stripe.com/docs or we can help at https://support.stripe.com/.",
    )
}

/// The secret key as a bearer token, or as the user of Basic auth (how
/// Stripe's libraries and `curl -u sk_…:` send it).
/// `None` when the caller presented the secret key; else Stripe's 401.
fn refused(sim: &StripeSim, headers: &HeaderMap) -> Option<Response> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            if let Some(t) = v.strip_prefix("Bearer ") {
                return Some(t.trim().to_owned());
            }
            let b = v.strip_prefix("Basic ")?;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()?;
            let text = String::from_utf8(raw).ok()?;
            Some(
                text.split_once(':')
                    .map_or(text.clone(), |(u, _)| u.to_owned()),
            )
        });
    let expected = sim.inner.config.secret_key.as_bytes();
    match given {
        Some(g) if crate::ids::secure_eq(g.as_bytes(), expected) => None,
        Some(_) => Some(stripe_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            None,
            "Invalid API Key provided.",
        )),
        None => Some(stripe_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            None,
            "You did not provide an API key. You need to provide your API key in the Authorization header.",
        )),
    }
}

fn missing(id: &str) -> Response {
    stripe_error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        Some("resource_missing"),
        &format!("No such verification session: '{id}'"),
    )
}

/// `POST /v1/identity/verification_sessions`.
pub(super) async fn create(
    State(sim): State<StripeSim>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = refused(&sim, &headers) {
        return r;
    }
    let form: Vec<(String, String)> = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(_) => {
            return stripe_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                None,
                "The request body must be application/x-www-form-urlencoded.",
            );
        }
    };
    let get = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    match get("type").as_deref() {
        Some("document") => {}
        Some(other) => {
            return stripe_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some("parameter_invalid_string"),
                &format!("The simulator supports type=document only, not `{other}`."),
            );
        }
        None => {
            return stripe_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some("parameter_missing"),
                "Missing required param: type.",
            );
        }
    }
    let selfie = match get("options[document][require_matching_selfie]").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return stripe_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some("parameter_invalid_boolean"),
                "Invalid boolean: options[document][require_matching_selfie].",
            );
        }
    };
    let metadata: serde_json::Map<String, Value> = form
        .iter()
        .filter_map(|(k, v)| {
            let key = k.strip_prefix("metadata[")?.strip_suffix(']')?;
            Some((key.to_owned(), json!(v)))
        })
        .collect();
    let digest = crate::ids::digest(&body);
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut st = sim.lock();
    if let Some(key) = &key
        && let Some((seen, id)) = st.idempotency.get(key)
    {
        if *seen != digest {
            return stripe_error(
                StatusCode::BAD_REQUEST,
                "idempotency_error",
                None,
                "Keys for idempotent requests can only be used with the same parameters they were first used with.",
            );
        }
        let id = id.clone();
        let object = st
            .sessions
            .get(&id)
            .map(|s| s.object(&sim.inner.config.public_url, false));
        drop(st);
        return match object {
            Some(o) => (axum::Extension(SimRef(id)), Json(o)).into_response(),
            None => missing(&id),
        };
    }
    let id = stripe_id("vs");
    let token = stripe_id("test");
    let session = Session {
        id: id.clone(),
        client_secret: format!("{id}_secret_{}", &stripe_id("s")[2..]),
        token: token.clone(),
        created: now_unix(),
        status: "requires_input".into(),
        last_error: None,
        report: None,
        metadata,
        client_reference_id: get("client_reference_id"),
        require_matching_selfie: selfie,
        return_url: get("return_url"),
        redaction: None,
    };
    let object = session.object(&sim.inner.config.public_url, false);
    st.sessions.insert(id.clone(), session);
    st.tokens.insert(token, id.clone());
    if let Some(key) = key {
        st.idempotency.insert(key, (digest, id.clone()));
    }
    (axum::Extension(SimRef(id)), Json(object)).into_response()
}

/// `GET /v1/identity/verification_sessions/{id}`.
pub(super) async fn retrieve(
    State(sim): State<StripeSim>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = refused(&sim, &headers) {
        return r;
    }
    let expand: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or_default()).unwrap_or_default();
    let outputs = expand
        .iter()
        .any(|(k, v)| k.starts_with("expand[") && v == "verified_outputs");
    let st = sim.lock();
    match st.sessions.get(&id) {
        Some(s) => Json(s.object(&sim.inner.config.public_url, outputs)).into_response(),
        None => missing(&id),
    }
}

/// `POST …/{id}/cancel`: only while the session waits for the user.
pub(super) async fn cancel(
    State(sim): State<StripeSim>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = refused(&sim, &headers) {
        return r;
    }
    match sim.cancel_session(&id) {
        Ok(object) => Json(object).into_response(),
        Err(r) => *r,
    }
}

/// `POST …/{id}/redact`.
pub(super) async fn redact(
    State(sim): State<StripeSim>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = refused(&sim, &headers) {
        return r;
    }
    let (answer, events) = {
        let mut st = sim.lock();
        let Some(s) = st.sessions.get_mut(&id) else {
            return missing(&id);
        };
        if s.status == "processing" {
            return stripe_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some("session_invalid_state"),
                "This VerificationSession is processing and cannot be redacted yet.",
            );
        }
        let mut events = Vec::new();
        if s.redaction.is_none() {
            if s.status == "requires_input" {
                s.status = "canceled".into();
                events.push("canceled");
            }
            s.redaction = Some("processing");
        }
        let answer = s.object(&sim.inner.config.public_url, false);
        // Stripe finishes the redaction later; the simulator at once, after
        // the answer was built.
        if s.redaction == Some("processing") {
            s.redaction = Some("redacted");
            events.push("redacted");
        }
        (answer, events)
    };
    sim.send_events(&id, events);
    Json(answer).into_response()
}

impl StripeSim {
    /// Cancels a session waiting for the user (API and control).
    pub(super) fn cancel_session(&self, id: &str) -> Result<Value, Box<Response>> {
        let object = {
            let mut st = self.lock();
            let Some(s) = st.sessions.get_mut(id) else {
                return Err(Box::new(missing(id)));
            };
            if s.status != "requires_input" {
                return Err(Box::new(stripe_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    Some("session_invalid_state"),
                    &format!(
                        "This VerificationSession has status `{}` and can be canceled only in `requires_input`.",
                        s.status
                    ),
                )));
            }
            s.status = "canceled".into();
            s.object(&self.inner.config.public_url, false)
        };
        self.send_events(id, vec!["canceled"]);
        Ok(object)
    }
}
