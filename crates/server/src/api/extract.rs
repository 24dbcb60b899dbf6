//! Extractors: JSON bodies with problem-JSON rejections and a session's
//! client secret (the customer's API key is in auth.rs).

use super::AppState;
use super::error::Problem;
use crate::ids;
use crate::store::SessionRow;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// `Json<T>` whose rejections are problem JSON (400/415/422), naming the field.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(JsonBody(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(Problem::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "send the body as JSON with `Content-Type: application/json`",
            )),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(Problem::bad_request(format!(
                "malformed JSON: {}",
                e.body_text()
            ))),
            Err(JsonRejection::JsonDataError(e)) => Err(Problem::validation(e.body_text())),
            Err(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => Err(Problem::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
                format!("the body is larger than {} bytes", super::BODY_LIMIT),
            )),
            Err(e) => Err(Problem::bad_request(e.body_text())),
        }
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Checks a client secret against the session it claims; the secret comes
/// from `Authorization: Bearer` or, for EventSource, `?client_secret=`.
pub async fn client_session(
    state: &AppState,
    parts: &Parts,
    session_id: &str,
) -> Result<SessionRow, Problem> {
    let from_query = parts.uri.query().and_then(|q| {
        url_params(q)
            .into_iter()
            .find(|(k, _)| k == "client_secret")
            .map(|(_, v)| v)
    });
    let secret = bearer(parts).map(str::to_string).or(from_query);
    let Some(secret) = secret else {
        return Err(Problem::unauthorized(
            "send the session's client secret as `Authorization: Bearer <client_secret>`",
        ));
    };
    let source = super::auth::client_address(state, parts);
    check_client_secret(state, source, session_id, &secret).await
}

/// The session, if `secret` is its client secret and has not expired.
/// From an address locked out after failed authentications: 429 before
/// anything is read; a wrong secret counts as a failure of `source`; a
/// right one counts against the session's `rate_limits.client_secret`.
pub async fn check_client_secret(
    state: &AppState,
    source: std::net::IpAddr,
    session_id: &str,
    secret: &str,
) -> Result<SessionRow, Problem> {
    state.limits.check_lockout(source)?;
    let row = state.engine.session(session_id).await?;
    // The same answer for "no such session" and "wrong secret": a secret
    // must not reveal which sessions exist.
    let matches = row.as_ref().is_some_and(|row| {
        ids::secure_eq(
            ids::hash_secret(secret).as_bytes(),
            row.client_secret_hash.as_bytes(),
        )
    });
    let (Some(row), true) = (row, matches) else {
        return Err(super::auth::auth_failed(
            state,
            source,
            "client_secret",
            Problem::unauthorized("client secret does not match this session"),
        ));
    };
    if row.client_secret_expires_at <= ids::now_ms() {
        // Its own type, so that the SDK can tell the page "expired" from
        // "wrong" (the secret matched: this reveals nothing new).
        return Err(Problem::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "client-secret-expired",
            "Client secret expired",
            "client secret expired; ask the customer backend for a new session link",
        ));
    }
    state.limits.check_client_secret(&row.id)?;
    Ok(row)
}

pub fn url_params(q: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://x/?{q}"))
        .map(|u| {
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}
