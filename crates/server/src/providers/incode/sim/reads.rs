//! Reads of an interview: onboarding status, score, finish status, OCR data,
//! on the `/0/` paths (token alone) and the `/omni/` paths (key, or an
//! executive token naming the interview with `?id=`).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::data::{ocr_json, score_json};
use super::errors::{ApiError, incode_error};
use super::tokens::{Gate, bad_key};
use super::{ID_VALIDATION_FINISHED, IncodeSim};
use crate::sim::SimRef;

/// `{body}` with the interview named for the request log.
pub(super) fn with_ref(id: String, body: Value) -> Response {
    (StatusCode::OK, Extension(SimRef(id)), Json(body)).into_response()
}

/// `?id=<interviewId>` (optional with a session token).
#[derive(Debug, Default, Deserialize)]
pub(super) struct IdQuery {
    id: Option<String>,
}

/// The query, or a 400 for Incode's body (axum's own rejection is plain text).
pub(super) fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("Invalid query: {}", e.body_text()),
        )
    })
}

/// The interview the request may read, or Incode's error.
fn reader(
    sim: &IncodeSim,
    headers: &HeaderMap,
    q: Result<Query<IdQuery>, QueryRejection>,
    gate: Gate,
) -> Result<String, ApiError> {
    let q = query(q)?;
    sim.interview_for(headers, q.id.as_deref(), gate)
}

fn status_of(sim: &IncodeSim, id: String, path: &str) -> Response {
    match sim.session(&id) {
        Some(s) => with_ref(id, json!({ "onboardingStatus": s.onboarding_status })),
        None => ApiError::new(StatusCode::UNAUTHORIZED, "Invalid token").incode(path),
    }
}

fn score_of(sim: &IncodeSim, id: String, path: &str) -> Response {
    let score = {
        let st = sim.lock();
        st.interviews
            .get(&id)
            .map(|iv| score_json(&id, iv.verdict.as_ref(), iv.manual))
    };
    match score {
        Some(score) => with_ref(id, score),
        None => ApiError::new(StatusCode::UNAUTHORIZED, "Invalid token").incode(path),
    }
}

/// `GET /0/omni/get/onboarding/status[?id=]`.
pub(super) async fn onboarding_status_token(
    State(sim): State<IncodeSim>,
    uri: Uri,
    headers: HeaderMap,
    q: Result<Query<IdQuery>, QueryRejection>,
) -> Response {
    match reader(&sim, &headers, q, Gate::Token) {
        Ok(id) => status_of(&sim, id, uri.path()),
        Err(e) => e.incode(uri.path()),
    }
}

/// `GET /omni/get/onboarding/status?id=`.
pub(super) async fn onboarding_status_key(
    State(sim): State<IncodeSim>,
    uri: Uri,
    headers: HeaderMap,
    q: Result<Query<IdQuery>, QueryRejection>,
) -> Response {
    match reader(&sim, &headers, q, Gate::KeyOrExecutive) {
        Ok(id) => status_of(&sim, id, uri.path()),
        Err(e) => e.incode(uri.path()),
    }
}

/// `GET /0/omni/get/score[?id=]`.
pub(super) async fn score_token(
    State(sim): State<IncodeSim>,
    uri: Uri,
    headers: HeaderMap,
    q: Result<Query<IdQuery>, QueryRejection>,
) -> Response {
    match reader(&sim, &headers, q, Gate::Token) {
        Ok(id) => score_of(&sim, id, uri.path()),
        Err(e) => e.incode(uri.path()),
    }
}

/// `GET /omni/get/score?id=`.
pub(super) async fn score_key(
    State(sim): State<IncodeSim>,
    uri: Uri,
    headers: HeaderMap,
    q: Result<Query<IdQuery>, QueryRejection>,
) -> Response {
    match reader(&sim, &headers, q, Gate::KeyOrExecutive) {
        Ok(id) => score_of(&sim, id, uri.path()),
        Err(e) => e.incode(uri.path()),
    }
}

/// `GET /omni/finish-status` (key + session token): the current status, no effect.
pub(super) async fn finish_status(
    State(sim): State<IncodeSim>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if !sim.api_key_ok(&headers) {
        return bad_key().incode(uri.path());
    }
    match sim.session_token(&headers) {
        Ok(id) => status_of(&sim, id, uri.path()),
        Err(e) => e.incode(uri.path()),
    }
}

/// `GET /omni/get/ocr-data?id=` (key + executive token).
pub(super) async fn ocr_data(
    State(sim): State<IncodeSim>,
    uri: Uri,
    headers: HeaderMap,
    q: Result<Query<IdQuery>, QueryRejection>,
) -> Response {
    let path = uri.path();
    let q = match query(q) {
        Ok(q) => q,
        Err(e) => return e.incode(path),
    };
    if !sim.api_key_ok(&headers) {
        return bad_key().incode(path);
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
