//! `POST /v1/admin/workflows` (scope `admin`): deploys workflow files to the
//! running cluster without a restart (`gangway workflows deploy`), or with
//! `dry_run` says what a deploy would change (`gangway workflows diff`).

use super::AppState;
use super::auth::{ApiKey, scope};
use super::error::Problem;
use super::extract::JsonBody;
use crate::runtime::workflows::{Error, Source};
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

/// Bounds one request: a deploy is a handful of files.
const MAX_FILES: usize = 100;
const MAX_NAME: usize = 255;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/admin/workflows", post(deploy))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployBody {
    files: Vec<FileBody>,
    #[serde(default)]
    dry_run: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBody {
    /// The file's name, for `file:line:col` in problems.
    name: String,
    source: String,
}

async fn deploy(
    State(st): State<AppState>,
    admin: ApiKey<scope::Admin>,
    JsonBody(body): JsonBody<DeployBody>,
) -> Result<Json<Value>, Problem> {
    if body.files.is_empty() || body.files.len() > MAX_FILES {
        return Err(Problem::validation(format!(
            "`files` must hold 1 to {MAX_FILES} workflow files"
        )));
    }
    let mut sources = Vec::with_capacity(body.files.len());
    for f in body.files {
        if f.name.is_empty() || f.name.len() > MAX_NAME {
            return Err(Problem::validation(format!(
                "a file's `name` must be 1 to {MAX_NAME} characters"
            )));
        }
        super::shapes::plain_text("a file's `name`", &f.name)?;
        sources.push(Source {
            file: f.name,
            text: f.source,
        });
    }
    match st.engine.deploy_workflows(&sources, body.dry_run).await {
        Ok(done) => {
            if !body.dry_run {
                tracing::info!(key_id = %admin.id, files = done.len(), "workflows deployed");
            }
            Ok(Json(json!({"dry_run": body.dry_run, "data": done})))
        }
        Err(Error::Invalid(text)) => {
            let problems: Vec<&str> = text.lines().collect();
            Err(Problem::validation(format!(
                "the workflows do not validate; nothing was deployed: {}",
                problems.first().copied().unwrap_or_default()
            ))
            .with("problems", problems))
        }
        Err(e @ Error::Changed { .. }) => {
            Err(Problem::conflict(format!("{e}; nothing was deployed")))
        }
        Err(Error::Store(e)) => Err(e.into()),
        Err(e @ Error::Dir { .. }) => {
            tracing::error!(error = %e, "deploy: unexpected directory error");
            Err(Problem::unavailable("the deploy failed; retry in a moment"))
        }
    }
}
