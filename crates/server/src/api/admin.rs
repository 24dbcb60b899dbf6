//! Key management over the API (scope `admin`), the same verbs as
//! `gangway keys`: list, create, show, revoke, rotate. A secret is returned
//! once, when created or rotated; every change is logged with the key that
//! made it. A change drops this node's cached keys at once; other nodes
//! hear of it from the database (keys/cache.rs).

use super::AppState;
use super::auth::{ApiKey, scope};
use super::error::Problem;
use super::extract::JsonBody;
use crate::ids;
use crate::keys::{self, DEFAULT_ROTATION_GRACE};
use crate::store::{ApiKeyRow, NewApiKey};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/keys", get(list).post(create))
        .route("/v1/admin/keys/{id}", get(show))
        .route("/v1/admin/keys/{id}/revoke", post(revoke))
        .route("/v1/admin/keys/{id}/rotate", post(rotate))
}

async fn list(
    State(st): State<AppState>,
    _admin: ApiKey<scope::Admin>,
) -> Result<Json<Value>, Problem> {
    let now = ids::now_ms();
    let rows = st.engine.api_keys(now).await?;
    let data: Vec<Value> = rows.iter().map(|k| keys::key_json(k, now)).collect();
    Ok(Json(json!({ "data": data })))
}

async fn find(st: &AppState, id: &str, now: i64) -> Result<ApiKeyRow, Problem> {
    st.engine
        .api_key(id, now)
        .await?
        .ok_or_else(|| Problem::not_found("no API key with this id"))
}

async fn show(
    State(st): State<AppState>,
    _admin: ApiKey<scope::Admin>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let now = ids::now_ms();
    Ok(Json(keys::key_json(&find(&st, &id, now).await?, now)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    #[serde(default)]
    scopes: Vec<String>,
    /// RFC 3339 time.
    expires_at: Option<String>,
    /// A duration from now, e.g. `90d`.
    expires_in: Option<String>,
}

async fn create(
    State(st): State<AppState>,
    admin: ApiKey<scope::Admin>,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    keys::check_name(&body.name).map_err(|m| Problem::validation(format!("`name`: {m}")))?;
    let scopes = keys::parse_scopes(&body.scopes)
        .map_err(|m| Problem::validation(format!("`scopes`: {m}")))?;
    let now = ids::now_ms();
    let expires_at = match (&body.expires_at, &body.expires_in) {
        (Some(_), Some(_)) => {
            return Err(Problem::validation(
                "give `expires_at` or `expires_in`, not both",
            ));
        }
        (Some(t), None) => Some(
            keys::parse_expiry(t, now)
                .map_err(|m| Problem::validation(format!("`expires_at`: {m}")))?,
        ),
        (None, Some(d)) => {
            if humantime::parse_duration(d.trim()).is_err() {
                return Err(Problem::validation(format!(
                    "`expires_in`: `{d}` is not a duration such as 90d or 12h"
                )));
            }
            Some(
                keys::parse_expiry(d, now)
                    .map_err(|m| Problem::validation(format!("`expires_in`: {m}")))?,
            )
        }
        (None, None) => None,
    };
    let secret = ids::new_secret("gw");
    let id = ids::new_id("key");
    st.engine
        .create_api_key(
            &NewApiKey {
                id: id.clone(),
                name: body.name.trim().to_string(),
                key_hash: ids::hash_secret(&secret),
                scopes,
                created_at: now,
                expires_at,
            },
            &admin.actor(),
        )
        .await?;
    tracing::info!(key = %id, name = %body.name.trim(), by_key = %admin.id, by_key_name = %admin.name, "API key created");
    let row = find(&st, &id, now).await?;
    let mut out = keys::key_json(&row, now);
    out["key"] = Value::String(secret);
    Ok((StatusCode::CREATED, Json(out)))
}

async fn revoke(
    State(st): State<AppState>,
    admin: ApiKey<scope::Admin>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let now = ids::now_ms();
    let row = st
        .engine
        .revoke_api_key(&id, now, &admin.actor())
        .await?
        .ok_or_else(|| Problem::not_found("no API key with this id"))?;
    tracing::info!(key = %id, name = %row.name, by_key = %admin.id, by_key_name = %admin.name, "API key revoked");
    Ok(Json(keys::key_json(&row, now)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    /// How long the current secret keeps working, e.g. `1h`.
    grace: Option<String>,
}

async fn rotate(
    State(st): State<AppState>,
    admin: ApiKey<scope::Admin>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, Problem> {
    // The body is optional: an empty one takes the default grace.
    let body: RotateBody = if body.iter().all(u8::is_ascii_whitespace) {
        RotateBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            let detail = format!("the body must be {{\"grace\": \"1h\"}} or empty: {e}");
            if e.is_data() {
                Problem::validation(detail)
            } else {
                Problem::bad_request(detail)
            }
        })?
    };
    let grace = match &body.grace {
        Some(g) => {
            keys::parse_grace(g).map_err(|m| Problem::validation(format!("`grace`: {m}")))?
        }
        None => DEFAULT_ROTATION_GRACE,
    };
    let now = ids::now_ms();
    let current = find(&st, &id, now).await?;
    match keys::status(&current, now) {
        "revoked" => {
            return Err(Problem::conflict(
                "this API key is revoked; create a new one",
            ));
        }
        "expired" => {
            return Err(Problem::conflict(
                "this API key has expired; create a new one",
            ));
        }
        _ => {}
    }
    let secret = ids::new_secret("gw");
    let grace_until = now.saturating_add(i64::try_from(grace.as_millis()).unwrap_or(i64::MAX));
    let row = st
        .engine
        .rotate_api_key(
            &id,
            &ids::hash_secret(&secret),
            now,
            grace_until,
            &admin.actor(),
        )
        .await?
        .ok_or_else(|| Problem::conflict("this API key was revoked meanwhile; create a new one"))?;
    tracing::info!(
        key = %id,
        name = %row.name,
        by_key = %admin.id, by_key_name = %admin.name,
        grace = %humantime::format_duration(grace),
        "API key rotated"
    );
    let mut out = keys::key_json(&row, now);
    out["key"] = Value::String(secret);
    Ok(Json(out))
}
