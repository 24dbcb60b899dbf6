//! Incode's provider API: the middleware of every provider path, start,
//! onboarding URL, executive login and deletion (reads are in `reads.rs`,
//! identities in `identity.rs`).

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::errors::incode_error;
use super::interview::FinishResult;
use super::reads::with_ref;
use super::tokens::TokenKind;
use super::{API_VERSION, CLIENT_ID, EXECUTIVE_TOKEN_TTL_S, IncodeSim};
use crate::sim::SimRef;

// ---------------------------------------------------------------------------
// Middleware

pub(super) async fn require_api_version(req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get("api-version")
        .is_some_and(|v| v.as_bytes() == API_VERSION.as_bytes());
    if !ok {
        return incode_error(
            StatusCode::BAD_REQUEST,
            "Missing or unsupported api-version header (expected 1.0)",
            req.uri().path(),
        );
    }
    next.run(req).await
}

pub(super) async fn processing_time(req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let mut resp = next.run(req).await;
    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    resp.headers_mut()
        .insert("processing-time", HeaderValue::from(ms));
    resp
}

// ---------------------------------------------------------------------------
// Provider handlers

/// The fields of `POST /omni/start` the simulator uses.
#[derive(Debug, Default)]
pub(super) struct StartRequest {
    pub(super) configuration_id: String,
    pub(super) country_code: Option<String>,
    pub(super) language: Option<String>,
    pub(super) external_customer_id: Option<String>,
    pub(super) redirection_url: Option<String>,
    pub(super) custom_fields: Option<Value>,
    pub(super) interview_id: Option<String>,
}

fn parse_start(body: &[u8]) -> Result<StartRequest, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("Invalid JSON body: {e}"))?;
    let Value::Object(map) = value else {
        return Err("The body must be a JSON object".into());
    };
    let string = |field: &str| -> Result<Option<String>, String> {
        match map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("{field} must be a string")),
        }
    };
    let configuration_id = string("configurationId")?
        .filter(|s| !s.trim().is_empty())
        .ok_or("Missing required parameter: configurationId")?;
    let redirection_url = match string("redirectionUrl")? {
        Some(url) => Some(url),
        None => string("redirectUrl")?,
    };
    Ok(StartRequest {
        configuration_id,
        country_code: string("countryCode")?,
        language: string("language")?,
        external_customer_id: string("externalCustomerId")?,
        redirection_url,
        custom_fields: map.get("customFields").filter(|v| !v.is_null()).cloned(),
        interview_id: string("interviewId")?.filter(|s| !s.is_empty()),
    })
}

pub(super) async fn start(
    State(sim): State<IncodeSim>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    if !sim.api_key_ok(&headers) {
        return incode_error(StatusCode::FORBIDDEN, "Invalid or missing x-api-key", path);
    }
    let req = match parse_start(&body) {
        Ok(r) => r,
        Err(message) => return incode_error(StatusCode::BAD_REQUEST, &message, path),
    };
    // Incode documents no idempotency header: every call counts.
    if let Some(id) = req.interview_id.clone() {
        let renewed = {
            let mut st = sim.lock();
            let ttl = i64::try_from(st.knobs.token_ttl_s).unwrap_or(i64::MAX);
            let code = st.interviews.get_mut(&id).map(|iv| {
                iv.record.starts += 1;
                iv.record.tokens_issued += 1;
                iv.record.interview_code.clone()
            });
            code.map(|code| {
                let token = sim.issue_token(&mut st, TokenKind::Session(id.clone()), ttl);
                (code, token)
            })
        };
        let Some((code, token)) = renewed else {
            return incode_error(StatusCode::NOT_FOUND, "Interview not found", path);
        };
        return start_response(&id, &code, &token, true);
    }
    let (id, code, token) = sim.create_interview(req);
    if sim.knobs().early {
        // The interview is finished (webhooks sent) before its id is revealed.
        if let Err(e) = sim.finish(&id, FinishResult::Pass, true).await {
            tracing::warn!(interview = %id, error = %e.message, "incode sim: early finish failed");
        }
    }
    start_response(&id, &code, &token, false)
}

fn start_response(id: &str, code: &str, token: &str, existing: bool) -> Response {
    (
        StatusCode::OK,
        Extension(SimRef(id.to_owned())),
        Json(json!({
            "token": token,
            "interviewId": id,
            "interviewCode": code,
            "flowType": "flow",
            "clientId": CLIENT_ID,
            "env": "demo",
            "existingSession": existing,
        })),
    )
        .into_response()
}

pub(super) async fn onboarding_url(
    State(sim): State<IncodeSim>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match sim.session_token(&headers) {
        Ok(id) => {
            let url = format!("{}/flow/{id}", sim.inner.config.public_url);
            with_ref(id, json!({ "url": url }))
        }
        Err(e) => e.incode(uri.path()),
    }
}

#[derive(Deserialize)]
struct LoginRequest {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub(super) async fn executive_login(
    State(sim): State<IncodeSim>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    if !sim.api_key_ok(&headers) {
        return incode_error(StatusCode::FORBIDDEN, "Invalid or missing x-api-key", path);
    }
    let req: LoginRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return incode_error(
                StatusCode::BAD_REQUEST,
                &format!("Invalid JSON body: {e}"),
                path,
            );
        }
    };
    if req.email.trim().is_empty() || req.password.is_empty() {
        return incode_error(
            StatusCode::BAD_REQUEST,
            "Missing required parameter: email, password",
            path,
        );
    }
    let token = {
        let mut st = sim.lock();
        sim.issue_token(&mut st, TokenKind::Executive, EXECUTIVE_TOKEN_TTL_S)
    };
    Json(json!({ "token": token })).into_response()
}

#[derive(Deserialize)]
struct DeleteRequest {
    ids: Vec<String>,
}

pub(super) async fn delete_interviews(
    State(sim): State<IncodeSim>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    if !sim.api_key_ok(&headers) {
        return incode_error(StatusCode::FORBIDDEN, "Invalid or missing x-api-key", path);
    }
    if let Err(e) = sim.executive_token(&headers) {
        return e.incode(path);
    }
    let req: DeleteRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return incode_error(StatusCode::BAD_REQUEST, &format!("Invalid body: {e}"), path);
        }
    };
    let mut deleted = 0;
    {
        let mut st = sim.lock();
        for id in &req.ids {
            if st.interviews.remove(id).is_some() {
                deleted += 1;
            }
        }
        st.tokens
            .retain(|_, t| !matches!(&t.kind, TokenKind::Session(id) if req.ids.contains(id)));
    }
    Json(json!({ "success": true, "deleted": deleted })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_parsing() {
        assert!(parse_start(b"{}").is_err());
        assert!(parse_start(b"[]").is_err());
        assert!(parse_start(br#"{"configurationId": 5}"#).is_err());
        let r = parse_start(br#"{"configurationId": "f", "redirectUrl": "https://x"}"#);
        assert_eq!(
            r.ok().and_then(|r| r.redirection_url).as_deref(),
            Some("https://x")
        );
    }
}
