//! The control API (simulator only): submissions, cancels, sessions,
//! events sent, knobs, reset.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::events::Outcome;
use super::{StripeKnobs, StripeSim};
use crate::sim::error_response;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SubmitBody {
    pub result: String,
    #[serde(default)]
    pub code: Option<String>,
}

/// `POST control/sessions/{id}/submit`: what the hosted page's buttons do.
pub(super) async fn submit(
    State(sim): State<StripeSim>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let req: SubmitBody = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, format!("invalid body: {e}")),
    };
    submit_outcome(&sim, &id, &req)
}

pub(super) fn submit_outcome(sim: &StripeSim, id: &str, req: &SubmitBody) -> Response {
    let outcome = match Outcome::parse(&req.result, req.code.as_deref()) {
        Ok(o) => o,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, e),
    };
    if !sim.lock().sessions.contains_key(id) {
        return error_response(StatusCode::NOT_FOUND, format!("no session {id}"));
    }
    match sim.submit(id, outcome) {
        Ok(()) => Json(json!({"id": id, "status": "processing"})).into_response(),
        Err(e) => error_response(StatusCode::CONFLICT, e),
    }
}

/// `POST control/sessions/{id}/cancel`: as a cancel from Stripe's Dashboard.
pub(super) async fn cancel(State(sim): State<StripeSim>, Path(id): Path<String>) -> Response {
    match sim.cancel_session(&id) {
        Ok(object) => Json(object).into_response(),
        Err(r) => *r,
    }
}

pub(super) async fn list_sessions(State(sim): State<StripeSim>) -> Json<Value> {
    let st = sim.lock();
    let mut list: Vec<Value> = st
        .sessions
        .values()
        .map(|s| s.object(&sim.inner.config.public_url, true))
        .collect();
    list.sort_by_key(|o| o["created"].as_i64());
    Json(json!({ "sessions": list }))
}

pub(super) async fn get_session(State(sim): State<StripeSim>, Path(id): Path<String>) -> Response {
    let st = sim.lock();
    match st.sessions.get(&id) {
        Some(s) => Json(s.object(&sim.inner.config.public_url, true)).into_response(),
        None => error_response(StatusCode::NOT_FOUND, format!("no session {id}")),
    }
}

pub(super) async fn list_events(State(sim): State<StripeSim>) -> Json<Value> {
    Json(json!({ "events": sim.lock().events.clone() }))
}

pub(super) async fn get_knobs(State(sim): State<StripeSim>) -> Json<StripeKnobs> {
    Json(sim.knobs())
}

/// `POST control/knobs`: the given fields replace the current ones.
pub(super) async fn set_knobs(State(sim): State<StripeSim>, body: Bytes) -> Response {
    let current = serde_json::to_value(sim.knobs()).unwrap_or_else(|_| json!({}));
    let patch: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return error_response(StatusCode::BAD_REQUEST, "the body must be a JSON object"),
    };
    let mut merged = current;
    if let (Some(m), Some(p)) = (merged.as_object_mut(), patch.as_object()) {
        for (k, v) in p {
            m.insert(k.clone(), v.clone());
        }
    }
    match serde_json::from_value::<StripeKnobs>(merged) {
        Ok(k) => {
            sim.set_knobs(k.clone());
            Json(k).into_response()
        }
        Err(e) => error_response(StatusCode::BAD_REQUEST, format!("invalid knobs: {e}")),
    }
}

pub(super) async fn reset(State(sim): State<StripeSim>) -> Json<Value> {
    sim.reset();
    Json(json!({"reset": true}))
}
