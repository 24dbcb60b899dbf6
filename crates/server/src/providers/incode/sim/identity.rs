//! Identities: `POST /omni/process/approve` turns a finished interview into
//! an identity (its `uuid` and a long-lived customer token); a face login
//! (the Web SDK's `renderLogin`, played by `POST control/identities/{uuid}/login`)
//! yields `transactionId`, `token` and `interviewToken`, which the customer's
//! backend checks with `POST /omni/authentication/verify` (executive token)
//! or `POST /omni/auth-attempt/verify` (API key).
//!
//! Choices where Incode is silent (A): approving an interview that is not
//! finished answers 400; approving it again returns the same `uuid` with
//! `existingCustomer: true` and a fresh token; a verify answers
//! `{"verified": bool}`, `false` for any value that was not issued by one
//! login, and it may be repeated.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::errors::{ApiError, incode_error};
use super::reads::{query, with_ref};
use super::tokens::{Gate, TokenKind, bad_key, token_hash};
use super::{IncodeSim, MANUAL_REVIEW_APPROVED, MANUAL_REVIEW_REJECTED, ONBOARDING_FINISHED};
use crate::sim::{error_response, now_rfc3339};

/// Lifetime of customer tokens: "long lived" in Incode's sample (A: 90 days).
const CUSTOMER_TOKEN_TTL_S: i64 = 90 * 24 * 3600;

/// An identity made from an approved interview.
#[derive(Clone, Debug)]
pub(super) struct Identity {
    pub(super) interview_id: String,
    pub(super) created_at: String,
}

/// One face login, as `renderLogin` reports it: hashes of what it handed out.
#[derive(Clone, Debug)]
pub(super) struct Login {
    token_hash: String,
    interview_token_hash: String,
}

/// `?interviewId=` of `POST /omni/process/approve`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ApproveQuery {
    #[serde(rename = "interviewId")]
    interview_id: Option<String>,
}

/// `POST /omni/process/approve[?interviewId=]`: key + session token, or an
/// executive token. The body (the samples send `{}`) is not read.
pub(super) async fn approve(
    State(sim): State<IncodeSim>,
    uri: Uri,
    headers: HeaderMap,
    q: Result<Query<ApproveQuery>, QueryRejection>,
) -> Response {
    let path = uri.path();
    let q = match query(q) {
        Ok(q) => q,
        Err(e) => return e.incode(path),
    };
    let id = match sim.interview_for(&headers, q.interview_id.as_deref(), Gate::KeyOrExecutive) {
        Ok(id) => id,
        Err(e) => return e.incode(path),
    };
    match sim.approve_interview(&id) {
        Ok(body) => with_ref(id, body),
        Err(e) => e.incode(path),
    }
}

impl IncodeSim {
    /// The identity of a finished interview (made on first approval).
    fn approve_interview(&self, id: &str) -> Result<Value, ApiError> {
        let mut st = self.lock();
        let (existing, total_score) = {
            let iv = st
                .interviews
                .get(id)
                .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "Interview not found"))?;
            let status = iv.record.onboarding_status.as_str();
            if !matches!(
                status,
                ONBOARDING_FINISHED | MANUAL_REVIEW_APPROVED | MANUAL_REVIEW_REJECTED
            ) {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("The onboarding is not finished (it is {status})"),
                ));
            }
            (iv.record.identity_id.clone(), iv.score_status())
        };
        let uuid = match &existing {
            Some(uuid) => uuid.clone(),
            None => {
                let uuid = hex::encode(rand::random::<[u8; 12]>());
                st.identities.insert(
                    uuid.clone(),
                    Identity {
                        interview_id: id.to_owned(),
                        created_at: now_rfc3339(),
                    },
                );
                if let Some(iv) = st.interviews.get_mut(id) {
                    iv.record.identity_id = Some(uuid.clone());
                }
                uuid
            }
        };
        let token = self.issue_token(
            &mut st,
            TokenKind::Customer(uuid.clone()),
            CUSTOMER_TOKEN_TTL_S,
        );
        Ok(json!({
            "success": true,
            "uuid": uuid,
            "token": token,
            "totalScore": total_score,
            "existingCustomer": existing.is_some(),
        }))
    }

    /// A face login of `uuid`: what `renderLogin` hands the page.
    fn face_login(&self, uuid: &str) -> Option<Value> {
        let mut st = self.lock();
        let interview_id = st.identities.get(uuid)?.interview_id.clone();
        if !st.interviews.contains_key(&interview_id) {
            // Deleted (`DELETE /omni/interviews`): nothing left to log in to.
            return None;
        }
        let ttl = i64::try_from(st.knobs.token_ttl_s).unwrap_or(i64::MAX);
        let token = self.issue_token(
            &mut st,
            TokenKind::Customer(uuid.to_owned()),
            CUSTOMER_TOKEN_TTL_S,
        );
        // The login's session: its token reads the identity's interview.
        let interview_token =
            self.issue_token(&mut st, TokenKind::Session(interview_id.clone()), ttl);
        let transaction_id = hex::encode(rand::random::<[u8; 12]>());
        st.logins.insert(
            transaction_id.clone(),
            Login {
                token_hash: token_hash(&token),
                interview_token_hash: token_hash(&interview_token),
            },
        );
        Some(json!({
            "faceMatch": true,
            "customerId": uuid,
            "interviewId": interview_id,
            "transactionId": transaction_id,
            "token": token,
            "interviewToken": interview_token,
        }))
    }

    /// Whether the three values are those one face login handed out.
    fn verify_login(&self, transaction_id: &str, token: &str, interview_token: &str) -> bool {
        let st = self.lock();
        st.logins.get(transaction_id).is_some_and(|login| {
            let a = login
                .token_hash
                .as_bytes()
                .ct_eq(token_hash(token).as_bytes());
            let b = login
                .interview_token_hash
                .as_bytes()
                .ct_eq(token_hash(interview_token).as_bytes());
            bool::from(a & b)
        })
    }
}

/// The body of both verify calls.
fn parse_attempt(body: &[u8]) -> Result<(String, String, String), String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("Invalid JSON body: {e}"))?;
    let field = |name: &str| -> Result<String, String> {
        value
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| format!("Missing required parameter: {name}"))
    };
    Ok((
        field("transactionId")?,
        field("token")?,
        field("interviewToken")?,
    ))
}

fn verify(sim: &IncodeSim, body: &[u8], path: &str) -> Response {
    match parse_attempt(body) {
        Ok((transaction, token, interview_token)) => {
            let verified = sim.verify_login(&transaction, &token, &interview_token);
            Json(json!({ "verified": verified })).into_response()
        }
        Err(message) => incode_error(StatusCode::BAD_REQUEST, &message, path),
    }
}

/// `POST /omni/authentication/verify` (executive token; the key optional).
pub(super) async fn authentication_verify(
    State(sim): State<IncodeSim>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match sim.executive_caller(&headers) {
        Ok(()) => verify(&sim, &body, uri.path()),
        Err(e) => e.incode(uri.path()),
    }
}

/// `POST /omni/auth-attempt/verify` (API key).
pub(super) async fn auth_attempt_verify(
    State(sim): State<IncodeSim>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !sim.api_key_ok(&headers) {
        return bad_key().incode(uri.path());
    }
    verify(&sim, &body, uri.path())
}

/// `POST control/identities/{uuid}/login`: a successful face login.
pub(super) async fn login_handler(
    State(sim): State<IncodeSim>,
    Path(uuid): Path<String>,
) -> Response {
    match sim.face_login(&uuid) {
        Some(body) => Json(body).into_response(),
        None => error_response(StatusCode::NOT_FOUND, "identity not found"),
    }
}

/// `GET control/identities`: uuid, interview and creation time of each.
pub(super) async fn list_identities(State(sim): State<IncodeSim>) -> Response {
    let st = sim.lock();
    let mut list: Vec<Value> = st
        .identities
        .iter()
        .map(|(uuid, i)| {
            json!({ "uuid": uuid, "interviewId": i.interview_id, "createdAt": i.created_at })
        })
        .collect();
    list.sort_by(|a, b| a["createdAt"].as_str().cmp(&b["createdAt"].as_str()));
    Json(list).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_parsing() {
        assert!(parse_attempt(b"{}").is_err());
        assert!(parse_attempt(b"nope").is_err());
        let e = parse_attempt(br#"{"transactionId": "t", "token": "a"}"#);
        assert_eq!(
            e.err().as_deref(),
            Some("Missing required parameter: interviewToken")
        );
        let ok = parse_attempt(br#"{"transactionId": "t", "token": "a", "interviewToken": "b"}"#);
        assert_eq!(ok.ok(), Some(("t".into(), "a".into(), "b".into())));
    }
}
