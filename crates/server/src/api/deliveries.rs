//! Customer webhook deliveries across sessions (`/v1/deliveries`): the
//! list (newest first, keyset pagination; filters by status, endpoint,
//! event type and creation time), one delivery sent again now, and a bulk
//! replay of the failed ones after an outage (runtime/redeliver.rs). Each
//! redelivery is audited (`delivery.redelivered`).

use super::AppState;
use super::auth::{ApiKey, scope};
use super::error::Problem;
use super::extract::JsonBody;
use crate::runtime::view;
use crate::store::{Delivery, DeliveryFilter};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/deliveries", get(list))
        .route("/v1/deliveries/redeliver", post(redeliver_matching))
        .route("/v1/deliveries/{id}", get(show))
        .route("/v1/deliveries/{id}/redeliver", post(redeliver))
}

/// The statuses a delivery has.
const STATUSES: &[&str] = &["pending", "delivered", "failed"];
/// Most deliveries one bulk request queues (the rest: another request).
const MAX_BULK: u64 = 10_000;

/// A delivery as the API shows it, with its attempts.
pub fn delivery_json(d: &Delivery) -> Value {
    json!({
        "id": d.id,
        "session_id": d.session_id,
        "endpoint": d.endpoint,
        "event_type": d.event_type,
        "status": d.status,
        "attempts": d.attempts,
        "created_at": view::time_json(Some(d.created_at)),
        "next_attempt_at": view::time_json(d.next_attempt_at),
        "delivered_at": view::time_json(d.delivered_at),
        "attempt_log": d.attempt_log.iter().map(|a| json!({
            "attempt": a.attempt,
            "at": view::time_json(Some(a.at)),
            "status_code": a.status_code,
            "error": a.error,
            "duration_ms": a.duration_ms,
        })).collect::<Vec<_>>(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    endpoint: Option<String>,
    event_type: Option<String>,
    /// RFC 3339: created at or after.
    since: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

/// An RFC 3339 time in milliseconds.
fn time_ms(name: &str, text: &str) -> Result<i64, Problem> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| Problem::validation(format!("`{name}` must be an RFC 3339 time: {e}")))?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .ok()
        .filter(|ms| *ms >= 0)
        .ok_or_else(|| Problem::validation(format!("`{name}` is out of range")))
}

/// A text filter: no stored value has control characters or is that long.
fn text(name: &str, v: Option<String>) -> Result<Option<String>, Problem> {
    match v {
        Some(v) if v.is_empty() || v.len() > 2048 || v.chars().any(char::is_control) => {
            Err(Problem::validation(format!(
                "`{name}` must be 1 to 2048 characters, without control characters"
            )))
        }
        v => Ok(v),
    }
}

fn status(v: Option<String>) -> Result<Option<String>, Problem> {
    match v {
        Some(s) if !STATUSES.contains(&s.as_str()) => Err(Problem::validation(format!(
            "unknown `status` `{s}`; the statuses are {}",
            STATUSES.join(", ")
        ))),
        s => Ok(s),
    }
}

async fn list(
    State(st): State<AppState>,
    _key: ApiKey<scope::SessionsRead>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let Query(q) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(Problem::validation("`limit` must be between 1 and 200"));
    }
    let before = match q.cursor {
        Some(c) if c.starts_with("msg_") && c.len() <= 64 && c.is_ascii() => Some(c),
        Some(_) => {
            return Err(Problem::validation(
                "`cursor` must be a `next_cursor` this API returned",
            ));
        }
        None => None,
    };
    let filter = DeliveryFilter {
        status: status(q.status)?,
        endpoint: text("endpoint", q.endpoint)?,
        event_type: text("event_type", q.event_type)?,
        since: q
            .since
            .as_deref()
            .map(|t| time_ms("since", t))
            .transpose()?,
        before,
        // One more than asked: whether there is a next page.
        limit: limit + 1,
    };
    let rows = st.engine.list_deliveries(&filter).await?;
    let page = usize::try_from(limit).unwrap_or(50);
    let next = (rows.len() > page)
        .then(|| rows.get(page - 1).map(|d| d.id.clone()))
        .flatten();
    let data: Vec<Value> = rows.iter().take(page).map(delivery_json).collect();
    Ok(Json(json!({"data": data, "next_cursor": next})))
}

async fn show(
    State(st): State<AppState>,
    _key: ApiKey<scope::SessionsRead>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let d = st
        .engine
        .delivery(&id)
        .await?
        .ok_or_else(|| Problem::not_found("no delivery with this id"))?;
    Ok(Json(delivery_json(&d)))
}

async fn redeliver(
    State(st): State<AppState>,
    key: ApiKey<scope::SessionsWrite>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let d = st.engine.redeliver(&id, key.actor()).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery_json(&d))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkBody {
    status: String,
    /// RFC 3339: deliveries created at or after.
    since: String,
    endpoint: Option<String>,
    event_type: Option<String>,
    /// At most this many (default and most: `MAX_BULK`).
    max: Option<u64>,
}

async fn redeliver_matching(
    State(st): State<AppState>,
    key: ApiKey<scope::SessionsWrite>,
    JsonBody(body): JsonBody<BulkBody>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    // A replay after an outage: what failed. Delivered ones are sent again
    // one by one, on purpose.
    if body.status != "failed" {
        return Err(Problem::validation(
            "`status` must be `failed`: a bulk redelivery replays failed deliveries",
        ));
    }
    let max = body.max.unwrap_or(MAX_BULK);
    if !(1..=MAX_BULK).contains(&max) {
        return Err(Problem::validation(format!(
            "`max` must be between 1 and {MAX_BULK}"
        )));
    }
    let filter = DeliveryFilter {
        status: Some(body.status),
        endpoint: text("endpoint", body.endpoint)?,
        event_type: text("event_type", body.event_type)?,
        since: Some(time_ms("since", &body.since)?),
        before: None,
        limit: 0,
    };
    let done = st
        .engine
        .redeliver_matching(filter, key.actor(), max)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"queued": done.queued, "more": done.more})),
    ))
}
