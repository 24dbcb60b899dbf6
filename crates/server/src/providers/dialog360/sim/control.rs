//! The control API (simulator only): knobs, reset, seed, channels and
//! webhooks sent, key permission, forced statuses and events.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Dialog360Knobs, Dialog360Sim, Inner, SimChannel, SimClient, lock, random_id};
use crate::sim::error_response;

pub(super) async fn get_knobs(State(sim): State<Dialog360Sim>) -> Json<Dialog360Knobs> {
    Json(lock(&sim.shared.inner).knobs.clone())
}

pub(super) async fn set_knobs(State(sim): State<Dialog360Sim>, body: Bytes) -> Response {
    let patch: Value = match serde_json::from_slice(&body) {
        Ok(Value::Object(m)) => Value::Object(m),
        _ => return error_response(StatusCode::BAD_REQUEST, "knobs must be a JSON object"),
    };
    let mut inner = lock(&sim.shared.inner);
    let Ok(Value::Object(mut merged)) = serde_json::to_value(&inner.knobs) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if let Value::Object(p) = patch {
        merged.extend(p);
    }
    match serde_json::from_value::<Dialog360Knobs>(Value::Object(merged)) {
        Ok(k) => {
            inner.knobs = k.clone();
            Json(k).into_response()
        }
        Err(e) => error_response(StatusCode::BAD_REQUEST, format!("bad knobs: {e}")),
    }
}

pub(super) async fn reset(State(sim): State<Dialog360Sim>) -> Json<Value> {
    {
        let mut inner = lock(&sim.shared.inner);
        let epoch = inner.epoch + 1;
        *inner = Inner {
            epoch,
            ..Inner::default()
        };
    }
    sim.shared.faults.reset();
    Json(json!({"reset": true}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SeedBody {
    partner_id: String,
    #[serde(default = "one")]
    channels: usize,
    #[serde(default)]
    status: Option<String>,
}

fn one() -> usize {
    1
}

/// Creates a client and channels of any partner (e.g. another partner's, for
/// "channel belongs to nobody of ours" tests).
pub(super) async fn seed(State(sim): State<Dialog360Sim>, Json(b): Json<SeedBody>) -> Response {
    if b.channels > 20 {
        return error_response(StatusCode::BAD_REQUEST, "at most 20 channels");
    }
    let client = random_id(10);
    lock(&sim.shared.inner).clients.insert(
        client.clone(),
        SimClient {
            id: client.clone(),
            partner_id: b.partner_id.clone(),
            email: format!("{}@seed.example", client.to_lowercase()),
            name: "Seeded Client".into(),
            partner_payload: None,
            key_permission: true,
        },
    );
    let channels: Vec<String> = (0..b.channels)
        .map(|i| {
            let id = sim.new_channel(&client, &b.partner_id, &format!("+1555000{i:04}"));
            if let Some(s) = &b.status
                && let Some(c) = lock(&sim.shared.inner).channels.get_mut(&id)
            {
                c.status = s.clone();
            }
            id
        })
        .collect();
    Json(json!({"client_id": client, "channels": channels})).into_response()
}

pub(super) async fn list_channels(State(sim): State<Dialog360Sim>) -> Json<Value> {
    let inner = lock(&sim.shared.inner);
    let channels: Vec<&SimChannel> = inner.channels.values().collect();
    let clients: Vec<&SimClient> = inner.clients.values().collect();
    Json(json!({"channels": channels, "clients": clients}))
}

pub(super) async fn list_webhooks(State(sim): State<Dialog360Sim>) -> Json<Value> {
    Json(json!({"webhooks": lock(&sim.shared.inner).webhooks.clone()}))
}

#[derive(Deserialize)]
pub(super) struct PermissionBody {
    allowed: bool,
}

pub(super) async fn set_permission(
    State(sim): State<Dialog360Sim>,
    Path(client): Path<String>,
    Json(b): Json<PermissionBody>,
) -> Response {
    match lock(&sim.shared.inner).clients.get_mut(&client) {
        Some(c) => {
            c.key_permission = b.allowed;
            Json(json!({"client_id": client, "key_permission": b.allowed})).into_response()
        }
        None => error_response(StatusCode::NOT_FOUND, "unknown client"),
    }
}

pub(super) async fn force_status(
    State(sim): State<Dialog360Sim>,
    Path((channel, status)): Path<(String, String)>,
) -> Response {
    let ok = !status.is_empty()
        && status.len() <= 40
        && status.chars().all(|c| c.is_ascii_lowercase() || c == '_');
    if !ok {
        return error_response(
            StatusCode::BAD_REQUEST,
            "status must be lowercase letters or `_`",
        );
    }
    if status == "revoked"
        && let Some(c) = lock(&sim.shared.inner).channels.get_mut(&channel)
    {
        c.revoked = true;
    }
    match sim.set_status(&channel, &status) {
        Some(_) => Json(json!({"channel_id": channel, "status": status})).into_response(),
        None => error_response(StatusCode::NOT_FOUND, "unknown channel"),
    }
}

pub(super) async fn send_event_handler(
    State(sim): State<Dialog360Sim>,
    Path((channel, event)): Path<(String, String)>,
) -> Response {
    let client = lock(&sim.shared.inner)
        .channels
        .get(&channel)
        .map(|c| c.client_id.clone());
    match client {
        Some(client) => {
            sim.send_event(&event, Some(&channel), &client);
            Json(json!({"channel_id": channel, "event": event})).into_response()
        }
        None => error_response(StatusCode::NOT_FOUND, "unknown channel"),
    }
}
