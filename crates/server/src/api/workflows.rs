//! Workflow versions as the operator console shows them (scope
//! `workflows:read`): `GET /v1/workflows/{id}/versions/{version}` answers
//! one version's YAML source, its graph (computed from the parsed workflow
//! in gangway-core, so it never disagrees with what runs) and how many of
//! its sessions run and how they ended; `GET /v1/workflows/counts` the same
//! counts for every version of every workflow (or one), in one GROUP BY.

use super::AppState;
use super::auth::{ApiKey, scope};
use super::error::Problem;
use crate::runtime::workflows::Error;
use crate::store::SessionCount;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use gangway_core::Outcome;
use serde::Deserialize;
use serde_json::{Map, Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/workflows/counts", get(counts))
        .route("/v1/workflows/{id}/versions/{version}", get(version))
}

/// A workflow id is at most this long (and `[a-z0-9_-]`, checked by the
/// parser when it was stored): a longer one cannot name a workflow.
const MAX_ID: usize = 255;

fn check_id(id: &str) -> Result<(), Problem> {
    let valid = !id.is_empty()
        && id.len() <= MAX_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(Problem::validation(
            "a workflow id is 1 to 255 lowercase letters, digits, `-` or `_`",
        ))
    }
}

async fn version(
    State(st): State<AppState>,
    _key: ApiKey<scope::WorkflowsRead>,
    Path((id, version)): Path<(String, String)>,
) -> Result<Json<Value>, Problem> {
    check_id(&id)?;
    let version: u32 = version
        .parse()
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| Problem::validation("`version` must be a positive integer"))?;
    let found = st
        .engine
        .workflow_with_source(&id, version)
        .await
        .map_err(|e| match e {
            Error::Store(e) => e.into(),
            other => {
                tracing::error!(workflow = %id, version, error = %other, "a stored workflow version does not load");
                Problem::unavailable("this workflow version is stored but does not load on this node")
            }
        })?;
    let Some((wf, source)) = found else {
        return Err(Problem::not_found(format!(
            "no workflow `{id}` version {version}; GET /v1/workflows lists them"
        )));
    };
    let latest = st.engine.latest_workflow(&id).map(|w| w.version);
    let counts = st.engine.session_counts(Some(&id)).await?;
    let mine: Vec<SessionCount> = counts
        .into_iter()
        .filter(|c| c.version == version)
        .collect();
    Ok(Json(json!({
        "id": wf.id,
        "version": wf.version,
        "description": wf.description,
        "latest": latest == Some(version),
        "start": wf.start,
        "source": source,
        "graph": gangway_core::workflow::graph_of(&wf),
        "counts": counts_json(&mine),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CountsQuery {
    workflow: Option<String>,
}

async fn counts(
    State(st): State<AppState>,
    _key: ApiKey<scope::WorkflowsRead>,
    query: Result<Query<CountsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let Query(q) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    if let Some(w) = &q.workflow {
        check_id(w)?;
    }
    let rows = st.engine.session_counts(q.workflow.as_deref()).await?;
    // Grouped by version in the order GET /v1/workflows lists them.
    let mut keys: Vec<(String, u32)> = rows
        .iter()
        .map(|r| (r.workflow.clone(), r.version))
        .collect();
    keys.sort();
    keys.dedup();
    let data: Vec<Value> = keys
        .into_iter()
        .map(|(workflow, version)| {
            let mine: Vec<SessionCount> = rows
                .iter()
                .filter(|r| r.workflow == workflow && r.version == version)
                .cloned()
                .collect();
            json!({"workflow": workflow, "version": version, "counts": counts_json(&mine)})
        })
        .collect();
    Ok(Json(json!({"data": data})))
}

/// `{running, waiting, ended: {<each outcome>: n}, total}`; every outcome
/// is present (0 when none), so a reader need not know which can occur.
fn counts_json(rows: &[SessionCount]) -> Value {
    let of = |status: &str| -> i64 {
        rows.iter()
            .filter(|r| r.status == status)
            .map(|r| r.count)
            .sum()
    };
    let mut ended = Map::new();
    for o in Outcome::ALL {
        let n: i64 = rows
            .iter()
            .filter(|r| r.status == "ended" && r.outcome.as_deref() == Some(o.as_str()))
            .map(|r| r.count)
            .sum();
        ended.insert(o.as_str().to_string(), json!(n));
    }
    json!({
        "running": of("running"),
        "waiting": of("waiting"),
        "ended": ended,
        "total": rows.iter().map(|r| r.count).sum::<i64>(),
    })
}
