//! Incode's onboarding-status webhook and the OAuth2 token endpoint Incode
//! calls first (providers.md 2.4). Credentials are checked before the body
//! is parsed; the body only names the interview and its status, so it
//! triggers a server-side read and is never evidence.

use super::client::event_for_status;
use crate::api::AppState;
use crate::api::auth::{ClientAddr, auth_failed};
use crate::api::error::Problem;
use crate::ids;
use crate::store::NewEvent;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const TOKEN_TTL_S: i64 = 3600;

/// A stateless bearer token: expiry plus an HMAC under the webhook client
/// secret, so every node can check it without a shared table.
pub fn issue_token(secret: &str, exp: i64) -> String {
    format!("gwit_{exp}_{}", token_mac(secret, exp))
}

fn token_mac(secret: &str, exp: i64) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(format!("incode-webhook:{exp}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

pub fn token_valid(secret: &str, token: &str, now_s: i64) -> bool {
    let Some(rest) = token.strip_prefix("gwit_") else {
        return false;
    };
    let Some((exp, mac)) = rest.split_once('_') else {
        return false;
    };
    let Ok(exp) = exp.parse::<i64>() else {
        return false;
    };
    exp > now_s && ids::secure_eq(token_mac(secret, exp).as_bytes(), mac.as_bytes())
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    // RFC 6749 section 5.2: the format the token client expects.
    let mut r = (status, Json(json!({"error": error}))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"gangway\""),
        );
    }
    r
}

/// `POST /v1/webhooks/incode/token`: OAuth2 client credentials.
pub async fn token(
    State(st): State<AppState>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(cfg) = st.engine.config().section::<super::config::IncodeConfig>() else {
        return Problem::not_found("the incode connector is not configured").into_response();
    };
    let (Some(id), Some(secret)) = (
        cfg.webhook_client_id.as_deref(),
        cfg.webhook_client_secret.as_deref(),
    ) else {
        return Problem::not_found("Incode webhooks use header authentication here, not OAuth2")
            .into_response();
    };
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let ok = client_credentials_ok(auth, id, secret);
    if !ok {
        tracing::debug!(%source, "incode token endpoint: wrong client credentials");
        if let Err(refused) = st.limits.failed(source, "incode_token") {
            return Problem::from(refused).into_response();
        }
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if !client_credentials_grant(&body) {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let exp = ids::now_ms() / 1000 + TOKEN_TTL_S;
    Json(json!({"access_token": issue_token(secret, exp), "token_type": "Bearer", "expires_in": TOKEN_TTL_S})).into_response()
}

/// `POST /v1/webhooks/incode`: authenticate, store (deduplicated on
/// interviewId + status), answer `{"success": true}`.
pub async fn webhook(
    State(st): State<AppState>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, Problem> {
    let Some(cfg) = st.engine.config().section::<super::config::IncodeConfig>() else {
        return Err(Problem::not_found("the incode connector is not configured"));
    };
    let now_s = ids::now_ms() / 1000;
    let authenticated = webhook_credentials_ok(
        cfg.webhook_client_secret.as_deref(),
        cfg.webhook_header_secret.as_deref(),
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
        headers
            .get("x-gangway-webhook-secret")
            .and_then(|v| v.to_str().ok()),
        now_s,
    );
    if !authenticated {
        metrics::counter!("gangway_inbound_rejected_total", "source" => "incode").increment(1);
        tracing::debug!(%source, "incode webhook rejected: missing or wrong credentials");
        return Err(auth_failed(
            &st,
            source,
            "webhook:incode",
            Problem::unauthorized("missing or wrong webhook credentials"),
        ));
    }
    let Some(IncodeEvent {
        interview,
        status,
        name,
    }) = parse_webhook(&body)?
    else {
        return Ok(Json(json!({"success": true})));
    };
    st.engine
        .ingest(NewEvent {
            source: "incode".into(),
            event_key: format!("{interview}:{status}"),
            namespace: "incode".into(),
            reference: interview,
            name: name.to_string(),
            data: json!({"onboarding_status": status}),
            received_at: ids::now_ms(),
        })
        .await?;
    Ok(Json(json!({"success": true})))
}

/// `Authorization: Basic <base64 id:secret>` naming exactly `id` and
/// `secret`, compared in constant time (pure: fuzzed in `fuzz/`).
pub fn client_credentials_ok(authorization: Option<&str>, id: &str, secret: &str) -> bool {
    let given = authorization
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok());
    given
        .as_deref()
        .and_then(|g| g.split_once(':'))
        .is_some_and(|(gi, gs)| {
            ids::secure_eq(gi.as_bytes(), id.as_bytes())
                & ids::secure_eq(gs.as_bytes(), secret.as_bytes())
        })
}

/// The token request's form asks for `grant_type=client_credentials`.
pub fn client_credentials_grant(body: &[u8]) -> bool {
    let form = crate::api::extract::url_params(std::str::from_utf8(body).unwrap_or_default());
    form.iter()
        .any(|(k, v)| k == "grant_type" && v == "client_credentials")
}

/// A webhook's credentials: a bearer token from the token endpoint (under
/// `client_secret`) or the shared header secret (pure: fuzzed in `fuzz/`).
pub fn webhook_credentials_ok(
    client_secret: Option<&str>,
    header_secret: Option<&str>,
    authorization: Option<&str>,
    given_header: Option<&str>,
    now_s: i64,
) -> bool {
    let bearer_ok = match (client_secret, authorization) {
        (Some(secret), Some(auth)) => auth
            .strip_prefix("Bearer ")
            .is_some_and(|t| token_valid(secret, t.trim(), now_s)),
        _ => false,
    };
    let header_ok = match (header_secret, given_header) {
        (Some(expected), Some(given)) => ids::secure_eq(expected.as_bytes(), given.as_bytes()),
        _ => false,
    };
    bearer_ok || header_ok
}

/// What an authenticated Incode webhook names.
#[derive(Debug)]
pub struct IncodeEvent {
    pub interview: String,
    pub status: String,
    /// The workflow event the status stands for.
    pub name: &'static str,
}

/// Reads an authenticated Incode webhook's body (pure: fuzzed in `fuzz/`):
/// `None` for a status that means nothing to a workflow.
pub fn parse_webhook(body: &[u8]) -> Result<Option<IncodeEvent>, Problem> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Problem::bad_request(format!("malformed JSON: {e}")))?;
    let interview = v
        .get("interviewId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 64);
    let status = v
        .get("onboardingStatus")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 64);
    let (Some(interview), Some(status)) = (interview, status) else {
        return Err(Problem::validation(
            "the webhook needs string fields `interviewId` and `onboardingStatus`",
        ));
    };
    let Some(name) = event_for_status(status) else {
        return Ok(None);
    };
    if name == "incode.progress" && !known_progress(status) {
        tracing::info!(
            status,
            "incode webhook with an unknown status, treated as progress"
        );
    }
    Ok(Some(IncodeEvent {
        interview: interview.to_string(),
        status: status.to_string(),
        name,
    }))
}

fn known_progress(status: &str) -> bool {
    matches!(
        status,
        "ID_VALIDATION_FINISHED"
            | "ID_VALIDATION_FINISHED_SECOND_ID"
            | "POST_PROCESSING_FINISHED"
            | "FACE_VALIDATION_FINISHED"
            | "GOVERNMENT_VALIDATION_FINISHED"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_expire_and_bind_to_the_secret() {
        let t = issue_token("a-long-client-secret", 1000);
        assert!(token_valid("a-long-client-secret", &t, 999));
        assert!(!token_valid("a-long-client-secret", &t, 1000));
        assert!(!token_valid("another-secret-0000", &t, 999));
        assert!(!token_valid("a-long-client-secret", "gwit_5000_00", 999));
    }
}
