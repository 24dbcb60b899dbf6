//! Extractors: JSON bodies with problem-JSON rejections, the customer's API
//! key, and a session's client secret.

use super::AppState;
use super::error::Problem;
use crate::ids;
use crate::store::SessionRow;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
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

/// The authenticated customer backend: its API key id.
pub struct ApiKey(pub String);

impl FromRequestParts<AppState> for ApiKey {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(key) = bearer(parts) else {
            return Err(Problem::unauthorized(
                "send your API key as `Authorization: Bearer <key>`",
            ));
        };
        let hash = ids::hash_secret(key);
        if let Some(id) = state
            .key_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&hash)
        {
            return Ok(ApiKey(id.clone()));
        }
        match state.engine.store.api_key_by_hash(&hash).await? {
            Some(id) => {
                state
                    .key_cache
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(hash, id.clone());
                Ok(ApiKey(id))
            }
            None => Err(Problem::unauthorized("unknown API key")),
        }
    }
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
    check_client_secret(state, session_id, &secret).await
}

/// The session, if `secret` is its client secret and has not expired.
pub async fn check_client_secret(
    state: &AppState,
    session_id: &str,
    secret: &str,
) -> Result<SessionRow, Problem> {
    let row = state.engine.store.session(session_id).await?;
    // The same answer for "no such session" and "wrong secret": a secret
    // must not reveal which sessions exist.
    let Some(row) = row else {
        return Err(Problem::unauthorized(
            "client secret does not match this session",
        ));
    };
    if !ids::secure_eq(
        ids::hash_secret(secret).as_bytes(),
        row.client_secret_hash.as_bytes(),
    ) {
        return Err(Problem::unauthorized(
            "client secret does not match this session",
        ));
    }
    if row.client_secret_expires_at <= ids::now_ms() {
        return Err(Problem::unauthorized(
            "client secret expired; ask the customer backend for a new session link",
        ));
    }
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
