//! The audit log over the API (scope `admin`): `GET /v1/admin/audit` pages
//! through it newest first with filters; `GET /v1/admin/audit/export`
//! streams the matching entries oldest first as JSON lines, for a SIEM or
//! an archive. Reading the log is not itself audited (it holds no secrets
//! and would only log itself).

use super::AppState;
use super::auth::{ApiKey, scope};
use super::error::Problem;
use crate::audit::{action, entry_json};
use crate::store::AuditFilter;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

/// Entries read per page of the export.
const EXPORT_PAGE: u32 = 500;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/audit", get(list))
        .route("/v1/admin/audit/export", get(export))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    action: Option<String>,
    actor: Option<String>,
    session_id: Option<String>,
    target: Option<String>,
    /// RFC 3339, inclusive.
    since: Option<String>,
    /// RFC 3339, exclusive.
    until: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

/// The filter a query asks for, checked.
fn filter(q: AuditQuery, ascending: bool, limit: u32) -> Result<AuditFilter, Problem> {
    // No stored value has control characters (PostgreSQL text cannot even
    // hold a NUL): such a filter is a mistake, said as one.
    for (name, v) in [
        ("actor", &q.actor),
        ("session_id", &q.session_id),
        ("target", &q.target),
    ] {
        if v.as_deref()
            .is_some_and(|v| v.chars().any(char::is_control) || v.len() > 256)
        {
            return Err(Problem::validation(format!(
                "`{name}` must be at most 256 characters, without control characters"
            )));
        }
    }
    if let Some(a) = &q.action
        && !action::ALL.contains(&a.as_str())
    {
        return Err(Problem::validation(format!(
            "unknown `action` `{a}`; the actions are {}",
            action::ALL.join(", ")
        )));
    }
    let time = |name: &str, v: &Option<String>| -> Result<Option<i64>, Problem> {
        v.as_deref()
            .map(|t| {
                let t =
                    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                        .map_err(|e| {
                            Problem::validation(format!("`{name}` must be an RFC 3339 time: {e}"))
                        })?;
                i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
                    .map_err(|_| Problem::validation(format!("`{name}` is out of range")))
            })
            .transpose()
    };
    let since = time("since", &q.since)?;
    let until = time("until", &q.until)?;
    let after_id = q
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
                Problem::validation("`cursor` must be a `next_cursor` this route returned")
            })
        })
        .transpose()?;
    Ok(AuditFilter {
        action: q.action,
        actor: q.actor,
        session_id: q.session_id,
        target: q.target,
        since,
        until,
        after_id,
        ascending,
        limit,
    })
}

fn parse(
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<AuditQuery, Problem> {
    query
        .map(|Query(q)| q)
        .map_err(|e| Problem::bad_request(e.body_text()))
}

async fn list(
    State(st): State<AppState>,
    _admin: ApiKey<scope::Admin>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let q = parse(query)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Problem::validation("`limit` must be between 1 and 1000"));
    }
    let limit = u32::try_from(limit).unwrap_or(100);
    // One more than asked: whether there is a next page.
    let rows = st
        .engine
        .audit_entries(&filter(q, false, limit + 1)?)
        .await?;
    let more = rows.len() > limit as usize;
    let page = &rows[..rows.len().min(limit as usize)];
    let next = more
        .then(|| page.last().map(|r| r.id.to_string()))
        .flatten();
    Ok(Json(json!({
        "data": page.iter().map(entry_json).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}

/// Every matching entry, oldest first, one JSON object per line. Read in
/// pages and streamed, so a long log is never held in memory at once.
async fn export(
    State(st): State<AppState>,
    _admin: ApiKey<scope::Admin>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let q = parse(query)?;
    if q.limit.is_some() {
        return Err(Problem::validation(
            "the export has no `limit`; narrow it with `since`, `until` or `cursor`",
        ));
    }
    let first = filter(q, true, EXPORT_PAGE)?;
    // The first page is read before the answer starts, so that a database
    // failure is a problem response rather than a cut stream.
    let rows = st.engine.audit_entries(&first).await?;
    let engine = st.engine.clone();
    let stream = futures::stream::unfold(Some((rows, first)), move |state| {
        let engine = engine.clone();
        async move {
            let (rows, mut filter) = state?;
            if rows.is_empty() {
                return None;
            }
            let mut chunk = String::new();
            for r in &rows {
                chunk.push_str(&entry_json(r).to_string());
                chunk.push('\n');
            }
            let full = rows.len() == EXPORT_PAGE as usize;
            filter.after_id = rows.last().map(|r| r.id);
            let next = if full {
                match engine.audit_entries(&filter).await {
                    Ok(rows) => Some((rows, filter)),
                    Err(e) => {
                        // The stream is cut short; the client sees an
                        // incomplete last line or a missing end.
                        tracing::error!(error = %e, "audit export cut short");
                        return Some((Err(std::io::Error::other("audit export cut short")), None));
                    }
                }
            } else {
                None
            };
            Some((Ok::<_, std::io::Error>(chunk), next))
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/jsonl")],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}
