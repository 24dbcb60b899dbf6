//! The review queue (`/v1/reviews`): list the sessions waiting in a
//! `review` step, oldest first; claim one; decide it. API keys with
//! `reviews:read` / `reviews:decide` (or `admin`) act as reviewers today;
//! `Reviewer` (runtime/reviews.rs): an API key or a signed-in operator.

use super::AppState;
use super::auth::{ApiKey, scope};
use super::error::Problem;
use super::extract::JsonBody;
use crate::ids;
use crate::runtime::view;
use crate::store::{ReviewFilter, ReviewRow};
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use gangway_core::engine::Decision;
use serde::Deserialize;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/reviews", get(list))
        .route("/v1/reviews/{id}", get(show))
        .route("/v1/reviews/{id}/claim", post(claim))
        .route("/v1/reviews/{id}/decide", post(decide))
}

/// How long a claim lasts unless the request says otherwise, and at most.
const DEFAULT_CLAIM_S: i64 = 15 * 60;
const MAX_CLAIM_S: i64 = 3600;
/// Longest decision note, in characters.
const MAX_NOTE: usize = 2000;

/// A review as the API shows it.
pub fn review_json(r: &ReviewRow, now: i64) -> Value {
    // An expired claim is no claim: anyone may take it.
    let claim = r.holder(now).map(|holder| {
        let (kind, id) = holder.split_once(':').unwrap_or(("api_key", holder));
        json!({
            "by": {"kind": kind, "id": id},
            "expires_at": view::time_json(Some(r.claim_until)),
        })
    });
    json!({
        "session_id": r.session_id,
        "workflow": r.workflow_id,
        "version": r.version,
        "reference": r.reference,
        "step": r.step,
        "group": r.group,
        // As in the timeline: a fact under a secret-looking key (a token the
        // workflow copied by mistake) is shown `[redacted]`.
        "facts": crate::connectors::redact(&r.facts),
        "since": view::time_json(Some(r.since_ms)),
        "deadline": view::time_json(Some(r.deadline_ms)),
        "claim": claim,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    workflow: Option<String>,
    group: Option<String>,
    /// Only reviews waiting at least this many seconds.
    min_age_s: Option<i64>,
    cursor: Option<String>,
    limit: Option<i64>,
}

/// A page's cursor: the last review's `since_ms.session_id`.
fn cursor_of(r: &ReviewRow) -> String {
    format!("{}.{}", r.since_ms, r.session_id)
}

fn parse_cursor(text: &str) -> Result<(i64, String), Problem> {
    text.split_once('.')
        .and_then(|(since, id)| Some((since.parse::<i64>().ok()?, id.to_string())))
        .filter(|(_, id)| !id.is_empty())
        .ok_or_else(|| Problem::validation("`cursor` must be a `next_cursor` this API returned"))
}

async fn list(
    State(st): State<AppState>,
    _key: ApiKey<scope::ReviewsRead>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let Query(q) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(Problem::validation("`limit` must be between 1 and 200"));
    }
    let now = ids::now_ms();
    let since_at_most = match q.min_age_s {
        None => None,
        Some(s) if (0..=10 * 365 * 86_400).contains(&s) => Some(now - s * 1000),
        Some(_) => {
            return Err(Problem::validation(
                "`min_age_s` must be between 0 and 315360000 seconds",
            ));
        }
    };
    let after = q.cursor.as_deref().map(parse_cursor).transpose()?;
    let rows = st
        .engine
        .reviews(&ReviewFilter {
            workflow: q.workflow,
            group: q.group,
            since_at_most,
            after,
            limit: limit + 1,
        })
        .await?;
    let page = usize::try_from(limit).unwrap_or(50);
    let next = (rows.len() > page)
        .then(|| rows.get(page - 1).map(cursor_of))
        .flatten();
    let data: Vec<Value> = rows
        .iter()
        .take(page)
        .map(|r| review_json(r, now))
        .collect();
    Ok(Json(json!({"data": data, "next_cursor": next})))
}

async fn show(
    State(st): State<AppState>,
    _key: ApiKey<scope::ReviewsRead>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    match st.engine.review(&id).await {
        Ok(review) => Ok(Json(review_json(&review, ids::now_ms()))),
        // Reading, not acting: a session without an open review is not found here.
        Err(crate::runtime::Error::Review(why)) => {
            Err(Problem::not_found(why.to_string()).with("reason", why.code()))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ClaimBody {
    ttl_s: Option<i64>,
}

async fn claim(
    State(st): State<AppState>,
    key: ApiKey<scope::ReviewsDecide>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, Problem> {
    // The body is optional: an empty one takes the default claim.
    let body: ClaimBody = if body.iter().all(u8::is_ascii_whitespace) {
        ClaimBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            if e.is_data() {
                Problem::validation(e.to_string())
            } else {
                Problem::bad_request(format!("malformed JSON: {e}"))
            }
        })?
    };
    let ttl_s = body.ttl_s.unwrap_or(DEFAULT_CLAIM_S);
    if !(1..=MAX_CLAIM_S).contains(&ttl_s) {
        return Err(Problem::validation(format!(
            "`ttl_s` must be between 1 and {MAX_CLAIM_S} seconds"
        )));
    }
    let review = st
        .engine
        .claim_review(&id, &key.reviewer(), ttl_s * 1000)
        .await?;
    Ok(Json(review_json(&review, ids::now_ms())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideBody {
    decision: Decision,
    note: String,
}

async fn decide(
    State(st): State<AppState>,
    key: ApiKey<scope::ReviewsDecide>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<DecideBody>,
) -> Result<Json<Value>, Problem> {
    let note = body.note.trim();
    if note.is_empty() {
        return Err(Problem::validation(
            "`note` is required: say why you decided so",
        ));
    }
    if note.chars().count() > MAX_NOTE {
        return Err(Problem::validation(format!(
            "`note` must be at most {MAX_NOTE} characters"
        )));
    }
    if note
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Problem::validation(
            "`note` must not hold control characters other than newlines and tabs",
        ));
    }
    let row = st
        .engine
        .decide_review(&id, key.reviewer(), body.decision, note.to_string())
        .await?;
    Ok(Json(view::session_json(&row)))
}
