//! The customer backend's session API (API key).

use super::AppState;
use super::auth::{ApiKey, scope};
use super::error::Problem;
use super::extract::JsonBody;
use crate::ids;
use crate::runtime::{CreateRequest, view};
use crate::store::SessionFilter;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use gangway_core::SessionStatus;
use gangway_core::engine::Input;
use serde::Deserialize;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/sessions", post(create).get(list))
        .route("/v1/sessions/{id}", get(show))
        .route("/v1/sessions/{id}/cancel", post(cancel))
        .route("/v1/sessions/{id}/data", delete(erase))
        .route("/v1/sessions/{id}/timeline", get(timeline))
        .route("/v1/sessions/{id}/deliveries", get(deliveries))
        .route(
            "/v1/sessions/{id}/secrets",
            get(crate::providers::dialog360::webhook::secrets),
        )
        .route("/v1/workflows", get(workflows))
        .route("/v1/workflows/validate", post(super::validate::validate))
        .route("/v1/workflows/{id}/dry-run", post(super::dry_run::dry_run))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    workflow: String,
    #[serde(default = "empty_object")]
    input: Value,
    reference: Option<String>,
}

fn empty_object() -> Value {
    json!({})
}

const MAX_REFERENCE: usize = 256;
const MAX_IDEMPOTENCY_KEY: usize = 255;

async fn create(
    State(st): State<AppState>,
    key: ApiKey<scope::SessionsWrite>,
    headers: HeaderMap,
    trace: Option<axum::Extension<crate::otel::RequestTrace>>,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<impl IntoResponse, Problem> {
    if key.role.is_some() {
        // A session belongs to the API key that created it (idempotency,
        // its children); the customer's backend creates them, not a person.
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "api-key-required",
            "API key required",
            "sessions are created by your backend with an API key, not from a console session",
        ));
    }
    if st.engine.is_stopping() {
        return Err(Problem::unavailable(
            "the server is shutting down; retry on another node",
        ));
    }
    if !body.input.is_object() {
        return Err(Problem::validation("`input` must be a JSON object"));
    }
    if let Some(r) = &body.reference {
        if r.is_empty() || r.len() > MAX_REFERENCE {
            return Err(Problem::validation(format!(
                "`reference` must be 1 to {MAX_REFERENCE} characters"
            )));
        }
        super::shapes::plain_text("`reference`", r)?;
    }
    let idempotency_key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let k = v
                .to_str()
                .map_err(|_| Problem::bad_request("Idempotency-Key must be visible ASCII"))?;
            if k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY {
                return Err(Problem::validation(format!(
                    "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters"
                )));
            }
            super::shapes::plain_text("Idempotency-Key", k)?;
            Some(k.to_string())
        }
    };
    let fingerprint =
        json!({"workflow": body.workflow, "input": body.input, "reference": body.reference});
    let created = st
        .engine
        .create(CreateRequest {
            api_key_id: key.id,
            workflow: body.workflow,
            input: body.input,
            reference: body.reference,
            idempotency_key,
            request_hash: ids::digest(fingerprint.to_string().as_bytes()),
            session_id: None,
            // Traces on: the session's later work continues this request's trace.
            trace: trace.map(|t| t.0.0),
        })
        .await?;
    let mut out = view::session_json(&created.row);
    out["client_secret"] = Value::String(created.client_secret);
    out["client_secret_expires_at"] = view::time_json(Some(created.row.client_secret_expires_at));
    let status = if created.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(out)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShowQuery {
    /// Long poll: answer at the session's next change, or after this long.
    wait: Option<String>,
    /// With `wait`: the `updated_at` the caller has seen.
    after: Option<String>,
}

async fn show(
    State(st): State<AppState>,
    _key: ApiKey<scope::SessionsRead>,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Result<Json<Value>, Problem> {
    let row = st
        .engine
        .session(&id)
        .await?
        .ok_or_else(|| Problem::not_found("no session with this id"))?;
    let Some(wait) = q.wait.as_deref() else {
        if q.after.is_some() {
            return Err(Problem::bad_request("`after` needs `wait`"));
        }
        return Ok(Json(view::session_json(&row)));
    };
    let wait = super::long_poll::parse_wait(wait, st.engine.config().limits.long_poll_max_wait)?;
    let after = q
        .after
        .as_deref()
        .map(super::long_poll::parse_after)
        .transpose()?;
    let row = super::long_poll::wait_for_change(&st, row, wait, after).await?;
    Ok(Json(view::session_json(&row)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    workflow: Option<String>,
    reference: Option<String>,
    outcome: Option<String>,
    /// RFC 3339, inclusive.
    created_since: Option<String>,
    /// RFC 3339, exclusive.
    created_until: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

async fn list(
    State(st): State<AppState>,
    _key: ApiKey<scope::SessionsRead>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let Query(q) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    if let Some(s) = &q.status {
        s.parse::<SessionStatus>().map_err(Problem::validation)?;
    }
    if let Some(o) = &q.outcome
        && !gangway_core::Outcome::ALL.iter().any(|x| x.as_str() == o)
    {
        return Err(Problem::validation(
            "`outcome` must be one of approved, declined, review, failed, canceled, expired",
        ));
    }
    // No stored value holds a control character (PostgreSQL text cannot
    // even hold a NUL): such a filter is a mistake, said as one.
    for (name, v) in [
        ("`workflow`", &q.workflow),
        ("`reference`", &q.reference),
        ("`cursor`", &q.cursor),
    ] {
        if let Some(v) = v {
            if v.len() > MAX_REFERENCE {
                return Err(Problem::validation(format!(
                    "{name} must be at most {MAX_REFERENCE} characters"
                )));
            }
            super::shapes::plain_text(name, v)?;
        }
    }
    let created_since = q
        .created_since
        .as_deref()
        .map(|t| rfc3339_ms("created_since", t))
        .transpose()?;
    let created_until = q
        .created_until
        .as_deref()
        .map(|t| rfc3339_ms("created_until", t))
        .transpose()?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(Problem::validation("`limit` must be between 1 and 200"));
    }
    let rows = st
        .engine
        .sessions(&SessionFilter {
            status: q.status,
            workflow: q.workflow,
            reference: q.reference,
            outcome: q.outcome,
            created_since,
            created_until,
            before: q.cursor,
            limit: limit + 1,
        })
        .await?;
    let more = rows.len() as i64 > limit;
    let page: Vec<_> = rows
        .iter()
        .take(usize::try_from(limit).unwrap_or(50))
        .collect();
    let next = if more {
        page.last().map(|r| r.id.clone())
    } else {
        None
    };
    Ok(Json(json!({
        "data": page.iter().map(|r| view::session_json(r)).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}

/// An RFC 3339 time as Unix milliseconds.
fn rfc3339_ms(name: &str, text: &str) -> Result<i64, Problem> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| Problem::validation(format!("`{name}` must be an RFC 3339 time: {e}")))?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| Problem::validation(format!("`{name}` is out of range")))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    reason: Option<String>,
}

async fn cancel(
    State(st): State<AppState>,
    key: ApiKey<scope::SessionsWrite>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, Problem> {
    let body: CancelBody = if body.iter().all(u8::is_ascii_whitespace) {
        CancelBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| Problem::bad_request(format!("malformed JSON: {e}")))?
    };
    let row = st
        .engine
        .session(&id)
        .await?
        .ok_or_else(|| Problem::not_found("no session with this id"))?;
    if row.state.status == SessionStatus::Ended {
        return Err(Problem::conflict(format!(
            "the session already ended with outcome `{}`",
            row.state.outcome.map(|o| o.as_str()).unwrap_or("unknown")
        )));
    }
    let reason = body
        .reason
        .unwrap_or_else(|| "canceled by the customer".into());
    if reason.len() > 1000 {
        return Err(Problem::validation(
            "`reason` must be at most 1000 characters",
        ));
    }
    // The reason is the customer's text: it stays in the timeline (which
    // erasure clears), not in the audit log.
    let audit = crate::audit::session(
        crate::audit::action::SESSION_CANCELED,
        &key.actor(),
        &id,
        crate::ids::now_ms(),
        json!({}),
    );
    let row = st
        .engine
        .apply_audited(&id, Input::Cancel { reason }, Some(audit))
        .await?;
    Ok(Json(view::session_json(&row)))
}

/// `DELETE /v1/sessions/{id}/data`: erases the session's personal data
/// (runtime/erasure.rs), canceling it first if it still runs; answers the
/// tombstone. Again for an erased session: the same tombstone.
async fn erase(
    State(st): State<AppState>,
    key: ApiKey<scope::SessionsErase>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    // Audited (`session.erased`, and `session.canceled` for a session
    // still running) in the transactions that do it.
    let actor = key.actor();
    let row = st.engine.erase_on_request(&id, &actor).await?;
    tracing::info!(session_id = %id, key_id = %key.id, "session data erased on request");
    Ok(Json(view::session_json(&row)))
}

async fn timeline(
    State(st): State<AppState>,
    _key: ApiKey<scope::SessionsRead>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let row = st
        .engine
        .session(&id)
        .await?
        .ok_or_else(|| Problem::not_found("no session with this id"))?;
    let entries = st.engine.timeline(&id).await?;
    let mut prev = row.created_at;
    let entries: Vec<Value> = entries
        .into_iter()
        .map(|e| {
            let v = json!({
                "seq": e.seq,
                "at": view::time_json(Some(e.at)),
                "elapsed_ms": e.at - row.created_at,
                "since_previous_ms": e.at - prev,
                "kind": e.kind,
                "step": e.step,
                "data": crate::connectors::redact(&e.data),
            });
            prev = e.at;
            v
        })
        .collect();
    Ok(Json(
        json!({"session": view::session_json(&row), "entries": entries}),
    ))
}

async fn deliveries(
    State(st): State<AppState>,
    _key: ApiKey<scope::SessionsRead>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    st.engine
        .session(&id)
        .await?
        .ok_or_else(|| Problem::not_found("no session with this id"))?;
    let list = st.engine.deliveries(&id).await?;
    let data: Vec<Value> = list.iter().map(super::deliveries::delivery_json).collect();
    Ok(Json(json!({"data": data})))
}

async fn workflows(State(st): State<AppState>, _key: ApiKey<scope::WorkflowsRead>) -> Json<Value> {
    let data: Vec<Value> = st
        .engine
        .workflow_list()
        .into_iter()
        .map(|(id, version, description, versions)| {
            // The latest version's: the one a new session is checked against.
            let input_schema = st
                .engine
                .workflow(&id, version)
                .and_then(|w| w.input.as_ref().map(|i| i.schema().clone()));
            json!({"id": id, "version": version, "description": description, "versions": versions, "input_schema": input_schema})
        })
        .collect();
    Json(json!({"data": data}))
}
