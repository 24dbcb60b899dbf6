//! Callbacks from Open Integration Hub flows (providers.md 5.2):
//! `POST /v1/callbacks/oih/{token}`. The token is per run, stored only as a
//! hash; a wrong one gets 401 and nothing is stored. The callback must name
//! a request id of that same run, which must still be running (409
//! otherwise, no side effects). Each `(requestId, seq)` is stored once; the
//! run's workflow decides what a progress, result or error means.

use super::client::{NAMESPACE, TOKEN_NAMESPACE};
use crate::api::AppState;
use crate::api::auth::{ClientAddr, auth_failed};
use crate::api::error::Problem;
use crate::ids;
use crate::store::NewEvent;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use gangway_core::SessionStatus;
use serde_json::{Value, json};

/// Longest `message` kept from a callback (it is shown in a chat).
const MAX_MESSAGE: usize = 2000;

/// A flow's callback, read.
#[derive(Debug)]
pub struct Callback {
    pub request_id: String,
    pub seq: u64,
    /// `progress`, `result` or `error`.
    pub kind: &'static str,
    pub data: Value,
    pub message: Option<String>,
}

/// Reads a callback's body (pure: fuzzed in `fuzz/`).
pub fn parse_callback(body: &[u8]) -> Result<Callback, Problem> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Problem::bad_request(format!("malformed JSON: {e}")))?;
    let request_id = v
        .get("requestId")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty() && r.len() <= 64)
        .ok_or_else(|| Problem::validation("the callback needs a string field `requestId`"))?;
    let seq = v
        .get("seq")
        .and_then(Value::as_u64)
        .filter(|s| (1..=100_000).contains(s))
        .ok_or_else(|| {
            Problem::validation(
                "the callback needs `seq`, a positive integer counting its messages",
            )
        })?;
    let kind = match v.get("type").and_then(Value::as_str) {
        Some("progress") => "progress",
        Some("result") => "result",
        Some("error") => "error",
        _ => {
            return Err(Problem::validation(
                "the callback needs `type`: progress, result or error",
            ));
        }
    };
    let data = match v.get("data") {
        None | Some(Value::Null) => json!({}),
        Some(d @ Value::Object(_)) => d.clone(),
        Some(_) => return Err(Problem::validation("`data` must be a JSON object")),
    };
    let message = match v.get("message") {
        None | Some(Value::Null) => None,
        Some(Value::String(m)) => Some(m.chars().take(MAX_MESSAGE).collect::<String>()),
        Some(_) => return Err(Problem::validation("`message` must be a string")),
    };
    Ok(Callback {
        request_id: request_id.to_string(),
        seq,
        kind,
        data,
        message,
    })
}

pub async fn callback(
    State(st): State<AppState>,
    ClientAddr(source): ClientAddr,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, Problem> {
    let engine = &st.engine;
    let by_token = if token.is_empty() || token.len() > 200 {
        None
    } else {
        engine
            .session_for_reference(TOKEN_NAMESPACE, &ids::hash_secret(&token))
            .await?
    };
    let Some(session_id) = by_token else {
        metrics::counter!("gangway_inbound_rejected_total", "source" => "oih").increment(1);
        tracing::debug!(%source, "OIH callback rejected: unknown callback token");
        return Err(auth_failed(
            &st,
            source,
            "callback:oih",
            Problem::unauthorized("unknown callback token"),
        ));
    };
    let Callback {
        request_id,
        seq,
        kind,
        data,
        message,
    } = parse_callback(&body)?;
    let request_id = request_id.as_str();
    let owner = engine.session_for_reference(NAMESPACE, request_id).await?;
    if owner.as_deref() != Some(session_id.as_str()) {
        return Err(Problem::conflict(
            "no run with this request id belongs to this callback URL",
        ));
    }
    let Some(row) = engine.session(&session_id).await? else {
        return Err(Problem::conflict("the run no longer exists"));
    };
    if row.state.status == SessionStatus::Ended {
        return Err(Problem::conflict(
            "the run has already ended; later callbacks are refused",
        ));
    }
    let ingested = engine
        .ingest(NewEvent {
            source: "oih".into(),
            event_key: format!("{request_id}:{seq}"),
            namespace: NAMESPACE.into(),
            reference: request_id.to_string(),
            name: format!("oih.{kind}"),
            data: json!({"request_id": request_id, "seq": seq, "type": kind, "message": message, "data": data}),
            received_at: ids::now_ms(),
        })
        .await?;
    Ok(Json(json!({
        "received": true,
        "duplicate": ingested.duplicate,
    })))
}
