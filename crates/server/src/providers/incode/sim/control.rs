//! The control API (simulator only): finish, review, token expiry, knobs,
//! sessions, reset.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::interview::FinishResult;
use super::tokens::TokenKind;
use super::{IncodeInterview, IncodeKnobs, IncodeSim};
use crate::sim::error_response;

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

pub(super) async fn finish_handler(
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

pub(super) async fn review_handler(
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

pub(super) async fn expire_token_handler(
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

pub(super) async fn get_knobs(State(sim): State<IncodeSim>) -> Response {
    Json(sim.knobs()).into_response()
}

/// Merges the given knobs into the current ones (`null` clears a nullable knob).
pub(super) async fn set_knobs(State(sim): State<IncodeSim>, body: Bytes) -> Response {
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

pub(super) async fn reset(State(sim): State<IncodeSim>) -> Response {
    sim.reset();
    Json(json!({ "reset": true })).into_response()
}

pub(super) async fn list_sessions(State(sim): State<IncodeSim>) -> Response {
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

pub(super) async fn get_session(
    State(sim): State<IncodeSim>,
    Path(interview_id): Path<String>,
) -> Response {
    match sim.session(&interview_id) {
        Some(s) => Json(s).into_response(),
        None => error_response(StatusCode::NOT_FOUND, "interview not found"),
    }
}
