//! `POST /v1/workflows/validate` (scope `workflows:dry-run` or `admin`):
//! checks a draft workflow as `gangway validate` does and answers every
//! problem with its line and column, so the console's studio can show them
//! as the operator types, and a valid draft's graph (as a deployed
//! version's is drawn). A draft that does not validate is a normal
//! answer here (200, `valid: false`), not a refused request: the request
//! was fine, the workflow is what has problems.

use super::AppState;
use super::auth::{ApiKey, scope};
use super::error::Problem;
use super::extract::JsonBody;
use axum::Json;
use axum::extract::State;
use gangway_core::workflow::{self, Diagnostic, Workflow};
use serde::Deserialize;
use serde_json::{Value, json};

/// A draft is one workflow file; a bigger one is not a draft being typed.
pub(super) const MAX_SOURCE: usize = 256 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ValidateBody {
    source: String,
}

/// Parses a draft as `gangway validate` does, then checks what only the
/// running server knows: that every workflow a `run` step names is loaded
/// (or is the draft itself). Problems in source order.
pub(super) fn check_draft(st: &AppState, source: &str) -> Result<Workflow, Vec<Diagnostic>> {
    let wf = workflow::parse(source, crate::providers::catalog()).map_err(|d| d.0)?;
    let mut problems: Vec<Diagnostic> = wf
        .steps
        .iter()
        .filter_map(|(name, step)| match step {
            workflow::Step::Run(run)
                if run.workflow != wf.id && st.engine.latest_workflow(&run.workflow).is_none() =>
            {
                Some(Diagnostic {
                    line: run.at.0,
                    col: run.at.1,
                    message: format!(
                        "step `{name}` runs workflow `{}`, which is not deployed here",
                        run.workflow
                    ),
                })
            }
            _ => None,
        })
        .collect();
    if problems.is_empty() {
        Ok(wf)
    } else {
        problems.sort_by_key(|d| (d.line, d.col));
        Err(problems)
    }
}

/// Refuses a draft too large to be one (422, as an over-long field).
pub(super) fn check_size(source: &str) -> Result<(), Problem> {
    if source.len() > MAX_SOURCE {
        return Err(Problem::validation(format!(
            "`source` must be at most {MAX_SOURCE} bytes"
        )));
    }
    Ok(())
}

pub(super) fn diagnostics_json(problems: &[Diagnostic]) -> Value {
    problems
        .iter()
        .map(|d| json!({"line": d.line, "col": d.col, "message": d.message}))
        .collect()
}

pub(super) async fn validate(
    State(st): State<AppState>,
    _key: ApiKey<scope::DryRunOrAdmin>,
    JsonBody(body): JsonBody<ValidateBody>,
) -> Result<Json<Value>, Problem> {
    check_size(&body.source)?;
    Ok(Json(match check_draft(&st, &body.source) {
        Ok(wf) => {
            // What a deploy would make of it: the version new sessions use
            // now, so the studio can offer the next one.
            let latest = st.engine.latest_workflow(&wf.id).map(|w| w.version);
            json!({
                "valid": true,
                "diagnostics": [],
                "workflow": {
                    "id": wf.id,
                    "version": wf.version,
                    "steps": wf.steps.len(),
                    "latest_version": latest,
                },
                // As GET /v1/workflows/{id}/versions/{version} draws a
                // deployed one: the studio redraws it as the operator types.
                "graph": gangway_core::workflow::graph_of(&wf),
            })
        }
        Err(problems) => json!({
            "valid": false,
            "diagnostics": diagnostics_json(&problems),
            "workflow": null,
            "graph": null,
        }),
    }))
}
