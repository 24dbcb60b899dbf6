//! `POST /v1/workflows/{id}/dry-run`: runs the workflow's current version in
//! an isolated sandbox against the built-in simulators (never a real
//! provider) and returns the trace as JSON: steps, calls, state changes,
//! rule evaluations, waits and the scripted events that ended them.

use super::AppState;
use super::error::Problem;
use super::extract::{ApiKey, JsonBody};
use crate::sandbox::{Sandbox, ScriptEvent, script};
use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::LazyLock;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Dry runs each start an engine; a few at a time is plenty.
static DRY_RUNS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(2));
const MAX_TIMEOUT_S: u64 = 60;
const MAX_EVENTS: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DryRunBody {
    #[serde(default = "empty_object")]
    input: Value,
    #[serde(default)]
    events: Vec<ScriptEvent>,
    /// Seconds to wait for the end (default 10, at most 60).
    #[serde(default)]
    timeout_s: Option<u64>,
}

fn empty_object() -> Value {
    json!({})
}

pub(super) async fn dry_run(
    State(st): State<AppState>,
    _key: ApiKey,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<DryRunBody>,
) -> Result<Json<Value>, Problem> {
    let Some(wf) = st.engine.workflows.latest(&id) else {
        return Err(Problem::not_found(format!(
            "unknown workflow `{id}`; GET /v1/workflows lists them"
        )));
    };
    if !body.input.is_object() {
        return Err(Problem::validation("`input` must be a JSON object"));
    }
    if body.events.len() > MAX_EVENTS {
        return Err(Problem::validation(format!(
            "at most {MAX_EVENTS} events per dry run"
        )));
    }
    script::check(&body.events).map_err(Problem::validation)?;
    let lookup = |id: &str| st.engine.workflows.latest(id);
    if let Some(ev) = body
        .events
        .iter()
        .find(|e| !crate::sandbox::step_known(&wf, &e.at, &lookup))
    {
        return Err(Problem::validation(format!(
            "an event waits for step `{}`, which neither `{id}` nor a workflow it runs has",
            ev.at
        )));
    }
    let timeout_s = body.timeout_s.unwrap_or(10);
    if !(1..=MAX_TIMEOUT_S).contains(&timeout_s) {
        return Err(Problem::validation(format!(
            "`timeout_s` must be 1 to {MAX_TIMEOUT_S}"
        )));
    }
    let Ok(_permit) = DRY_RUNS.try_acquire() else {
        return Err(Problem::unavailable(
            "other dry runs are in progress; retry in a moment",
        ));
    };
    // Every workflow's current version: the one run, and any child it runs.
    let latest: std::collections::HashMap<String, u32> = st
        .engine
        .workflows
        .list()
        .into_iter()
        .map(|(id, v, _, _)| (id, v))
        .collect();
    let files: Vec<(String, String)> = st
        .engine
        .store
        .workflow_versions()
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "dry run: cannot read workflow sources");
            Problem::unavailable("the workflow sources cannot be read right now")
        })?
        .into_iter()
        .filter(|(wid, v, _)| latest.get(wid) == Some(v))
        .map(|(wid, _, source)| (format!("{wid}.yaml"), source))
        .collect();
    let sandbox = Sandbox::start(&files).await.map_err(|e| {
        tracing::error!(error = %e, "dry run could not start");
        Problem::unavailable("the dry run could not start; retry in a moment")
    })?;
    let mut trace = Vec::new();
    let result = sandbox
        .run(
            &id,
            body.input,
            body.events,
            Duration::from_secs(timeout_s),
            |item| trace.push(item.to_json()),
        )
        .await;
    // The answer need not wait for the sandbox to drain.
    tokio::spawn(sandbox.stop());
    match result {
        Ok(f) => Ok(Json(json!({
            "workflow": wf.id,
            "version": wf.version,
            "ended": f.ended,
            "session": f.session,
            "trace": trace,
        }))),
        Err(crate::sandbox::Error::Event(msg)) | Err(crate::sandbox::Error::Refused(msg)) => {
            Err(Problem::validation(format!("the dry run stopped: {msg}")))
        }
        Err(e) => {
            tracing::error!(error = %e, "dry run failed");
            Err(Problem::unavailable(
                "the dry run failed; retry in a moment",
            ))
        }
    }
}
