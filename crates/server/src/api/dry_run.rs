//! `POST /v1/workflows/{id}/dry-run`: runs the workflow's current version in
//! an isolated sandbox against the built-in simulators (never a real
//! provider) and returns the trace as JSON: steps, calls, state changes,
//! rule evaluations, waits and the scripted events that ended them. With a
//! `source`, the draft in it runs instead of the current version (the
//! console's studio tries a workflow before deploying it); it must validate
//! and declare the workflow id of the path, which need not be deployed yet.

use super::AppState;
use super::auth::{ApiKey, scope};
use super::error::Problem;
use super::extract::JsonBody;
use crate::sandbox::{Sandbox, ScriptEvent, script};
use axum::Json;
use axum::extract::{Path, State};
use gangway_core::workflow::Workflow;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;

const MAX_TIMEOUT_S: u64 = 60;
const MAX_EVENTS: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DryRunBody {
    #[serde(default = "empty_object")]
    input: Value,
    #[serde(default)]
    events: Vec<ScriptEvent>,
    /// Seconds to wait for the end (default 10, at most 60); `null` is
    /// refused rather than taken as the default.
    #[serde(default, deserialize_with = "present")]
    timeout_s: Option<u64>,
    /// A draft of the workflow to run instead of its current version.
    #[serde(default, deserialize_with = "present_text")]
    source: Option<String>,
}

/// Like `present`, for text.
fn present_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    String::deserialize(d).map(Some)
}

/// A field that may be left out but, when given, must be a number.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    u64::deserialize(d).map(Some)
}

fn empty_object() -> Value {
    json!({})
}

pub(super) async fn dry_run(
    State(st): State<AppState>,
    _key: ApiKey<scope::WorkflowsDryRun>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<DryRunBody>,
) -> Result<Json<Value>, Problem> {
    let wf = match &body.source {
        Some(source) => Arc::new(draft(&st, &id, source)?),
        None => st.engine.latest_workflow(&id).ok_or_else(|| {
            Problem::not_found(format!(
                "unknown workflow `{id}`; GET /v1/workflows lists them"
            ))
        })?,
    };
    if !body.input.is_object() {
        return Err(Problem::validation("`input` must be a JSON object"));
    }
    if let Some(schema) = &wf.input
        && let Err(errors) = schema.check(&body.input)
    {
        return Err(Problem::invalid_input(&wf.id, wf.version, &errors));
    }
    if body.events.len() > MAX_EVENTS {
        return Err(Problem::validation(format!(
            "at most {MAX_EVENTS} events per dry run"
        )));
    }
    script::check(&body.events).map_err(Problem::validation)?;
    let lookup = |id: &str| st.engine.latest_workflow(id);
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
    // Each dry run starts an engine: `limits.dry_runs` at a time.
    let Ok(permit) = st.dry_runs.clone().try_acquire_owned() else {
        return Err(Problem::unavailable(
            "other dry runs are in progress; retry in a moment",
        ));
    };
    // Every workflow's current version: the one run, and any child it runs.
    let latest: std::collections::HashMap<String, u32> = st
        .engine
        .workflow_list()
        .into_iter()
        .map(|(id, v, _, _)| (id, v))
        .collect();
    let mut files: Vec<(String, String)> = st
        .engine
        .workflow_versions()
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "dry run: cannot read workflow sources");
            Problem::unavailable("the workflow sources cannot be read right now")
        })?
        .into_iter()
        .filter(|(wid, v, _)| latest.get(wid) == Some(v))
        // A draft stands in for its workflow's current version.
        .filter(|(wid, _, _)| body.source.is_none() || *wid != id)
        .map(|(wid, _, source)| (format!("{wid}.yaml"), source))
        .collect();
    if let Some(source) = body.source {
        files.push((format!("{id}.yaml"), source));
    }
    let sandbox = Sandbox::start(&files).await.map_err(|e| {
        tracing::error!(error = %e, "dry run could not start");
        Problem::unavailable("the dry run could not start; retry in a moment")
    })?;
    let running = Running {
        sandbox,
        permit: Some(permit),
    };
    let mut trace = Vec::new();
    let result = running
        .sandbox
        .run(
            &id,
            body.input,
            body.events,
            Duration::from_secs(timeout_s),
            |item| trace.push(with_qr_svg(item.to_json())),
        )
        .await;
    // The answer need not wait for the sandbox to drain: `running` stops
    // it on its own task when dropped, here or wherever the handler ends.
    drop(running);
    match result {
        Ok(f) => Ok(Json(json!({
            "workflow": wf.id,
            "version": wf.version,
            "input_schema": wf.input.as_ref().map(|i| i.schema()),
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

/// A QR code the browser would show, also drawn (`data.svg`) for the
/// console's studio, as `gangway sandbox` draws it in the terminal. The
/// payload is the sandbox's own simulator's, never a real provider's.
fn with_qr_svg(mut item: Value) -> Value {
    if item["kind"] == "browser.presents"
        && let Some(svg) =
            crate::runtime::qr::payload(&item["data"]).and_then(crate::runtime::qr::svg)
    {
        item["data"]["svg"] = Value::String(svg);
    }
    item
}

/// The draft of a dry run, checked as `POST /v1/workflows/validate` does:
/// its problems (with line and column) make a 422.
fn draft(st: &AppState, id: &str, source: &str) -> Result<Workflow, Problem> {
    super::validate::check_size(source)?;
    let wf = super::validate::check_draft(st, source).map_err(|problems| {
        let first = problems
            .first()
            .map(|d| format!("{}:{}: {}", d.line, d.col, d.message))
            .unwrap_or_default();
        Problem::validation(format!("the draft does not validate: {first}"))
            .with("diagnostics", super::validate::diagnostics_json(&problems))
    })?;
    if wf.id != id {
        return Err(Problem::validation(format!(
            "the draft declares workflow `{}`, not `{id}`: dry-run it at /v1/workflows/{}/dry-run",
            wf.id, wf.id
        )));
    }
    Ok(wf)
}

/// A started sandbox and its permit. Dropped when the handler returns, and
/// also when its future is dropped midway (the client went away): either way
/// the sandbox is stopped on a task of its own and the permit is given back
/// only once the sandbox's engine has drained and closed, so the number of
/// engines alive never exceeds `limits.dry_runs`.
struct Running {
    sandbox: Sandbox,
    permit: Option<OwnedSemaphorePermit>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let stopped = self.sandbox.stopping();
        let permit = self.permit.take();
        // Without a runtime (never in a handler) the engine still stops:
        // its server ends on its own.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                stopped.await;
                drop(permit);
            });
        }
    }
}
