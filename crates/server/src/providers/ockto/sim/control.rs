//! The simulator-only control API below `control/` (never faulted or
//! logged): phone actions, knobs, reset, sessions, TLS rejections.

use super::{OcktoKnobs, OcktoSession, OcktoSim, PROFILES};
use crate::sim::error_response;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ActionBody {
    profile: Option<String>,
}

pub(super) async fn control_action(
    State(sim): State<OcktoSim>,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let parsed: ActionBody = if body.iter().all(u8::is_ascii_whitespace) {
        ActionBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => {
                return error_response(StatusCode::BAD_REQUEST, format!("invalid body: {e}"));
            }
        }
    };
    if let Some(p) = &parsed.profile
        && !PROFILES.contains(&p.as_str())
    {
        return error_response(
            StatusCode::BAD_REQUEST,
            format!(
                "unknown profile `{p}`; expected one of {}",
                PROFILES.join(", ")
            ),
        );
    }
    match sim.act(&id, &action, parsed.profile) {
        Ok(s) => Json(s).into_response(),
        Err((status, m)) => error_response(status, m),
    }
}

pub(super) async fn get_knobs(State(sim): State<OcktoSim>) -> Response {
    Json(sim.knobs()).into_response()
}

pub(super) async fn set_knobs(State(sim): State<OcktoSim>, body: Bytes) -> Response {
    let mut current = serde_json::to_value(sim.knobs()).unwrap_or(Value::Null);
    let patch: Value = match serde_json::from_slice(&body) {
        Ok(Value::Object(p)) => Value::Object(p),
        _ => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "body must be a JSON object of knobs",
            );
        }
    };
    if let (Value::Object(c), Value::Object(p)) = (&mut current, patch) {
        for (k, v) in p {
            c.insert(k, v);
        }
    }
    match serde_json::from_value::<OcktoKnobs>(current) {
        Ok(k) => {
            sim.set_knobs(k.clone());
            Json(k).into_response()
        }
        Err(e) => error_response(StatusCode::BAD_REQUEST, format!("invalid knobs: {e}")),
    }
}

pub(super) async fn reset(State(sim): State<OcktoSim>) -> Response {
    sim.reset();
    Json(json!({"reset": true})).into_response()
}

pub(super) async fn tls_rejections(State(sim): State<OcktoSim>) -> Response {
    let r = &sim.inner.rejections;
    Json(json!({"rejected": r.count(), "last_error": r.last()})).into_response()
}

pub(super) async fn list_sessions(State(sim): State<OcktoSim>) -> Response {
    let ids: Vec<String> = sim.lock().sessions.keys().cloned().collect();
    let list: Vec<OcktoSession> = ids.iter().filter_map(|id| sim.session(id)).collect();
    Json(list).into_response()
}

pub(super) async fn get_session(State(sim): State<OcktoSim>, Path(id): Path<String>) -> Response {
    match sim.session(&id) {
        Some(s) => Json(s).into_response(),
        None => error_response(StatusCode::NOT_FOUND, format!("no session {id}")),
    }
}
