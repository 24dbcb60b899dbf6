//! The simulator-only control API below `control/` (never faulted or logged):
//!
//! - `GET /flows`: every flow, HMAC keys masked;
//! - `PUT /flows/{flowId}`: adds or replaces a flow (body as in config; the
//!   path names it);
//! - `POST /flows/{flowId}/start|stop`: flips its status (stopped: 404);
//! - `GET|POST /knobs`: the global knobs (POST merges the given fields);
//! - `GET /callbacks`: the callbacks sent (token masked);
//! - `GET /secrets`: the Secret Service's secrets, without tokens;
//! - `POST /reset`: back to the configured flows and knobs, everything else forgotten;
//! - `POST|GET|DELETE /faults`, `GET /requests`: see [`crate::sim::faults`].

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::flow::{FlowStatus, OihKnobs, SimFlow};
use super::{OihSim, oih_error};

pub(super) async fn list_flows(State(sim): State<OihSim>) -> Response {
    let flows: Vec<Value> = sim.lock().flows.values().map(SimFlow::masked).collect();
    Json(json!({ "flows": flows })).into_response()
}

pub(super) async fn put_flow(
    State(sim): State<OihSim>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let mut flow: SimFlow = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return oih_error(StatusCode::BAD_REQUEST, format!("invalid flow: {e}")),
    };
    if !flow.id.is_empty() && flow.id != id {
        return oih_error(
            StatusCode::BAD_REQUEST,
            format!("the body names flow `{}`, the path `{id}`", flow.id),
        );
    }
    flow.id = id;
    let shown = flow.masked();
    match sim.put_flow(flow) {
        Ok(()) => Json(shown).into_response(),
        Err(e) => oih_error(StatusCode::BAD_REQUEST, e),
    }
}

pub(super) async fn flow_action(
    State(sim): State<OihSim>,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    let status = match action.as_str() {
        "start" => FlowStatus::Active,
        "stop" => FlowStatus::Inactive,
        other => {
            return oih_error(
                StatusCode::NOT_FOUND,
                format!("unknown action `{other}`; expected start or stop"),
            );
        }
    };
    if !sim.set_status(&id, status) {
        return oih_error(StatusCode::NOT_FOUND, format!("no flow {id}"));
    }
    Json(json!({ "id": id, "status": status })).into_response()
}

pub(super) async fn get_knobs(State(sim): State<OihSim>) -> Response {
    Json(sim.knobs()).into_response()
}

pub(super) async fn set_knobs(State(sim): State<OihSim>, body: Bytes) -> Response {
    let patch = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(p)) => p,
        _ => return oih_error(StatusCode::BAD_REQUEST, "knobs must be a JSON object"),
    };
    let mut merged = match serde_json::to_value(sim.knobs()) {
        Ok(Value::Object(m)) => m,
        _ => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    merged.extend(patch);
    match serde_json::from_value::<OihKnobs>(Value::Object(merged)) {
        Ok(k) => {
            sim.set_knobs(k.clone());
            Json(k).into_response()
        }
        Err(e) => oih_error(StatusCode::BAD_REQUEST, format!("invalid knobs: {e}")),
    }
}

pub(super) async fn list_callbacks(State(sim): State<OihSim>) -> Response {
    Json(json!({ "callbacks": sim.callbacks() })).into_response()
}

pub(super) async fn list_secrets(State(sim): State<OihSim>) -> Response {
    Json(json!({ "secrets": sim.lock().hub.summaries() })).into_response()
}

pub(super) async fn reset(State(sim): State<OihSim>) -> Response {
    sim.reset();
    Json(json!({ "reset": true })).into_response()
}
