//! `run` steps: the jobs that start and cancel child sessions. A child is an
//! ordinary session whose id names its parent (`ses_…-<visit>`); starting
//! it again after a crash finds the same child. When a child ends, the
//! committer hands its ending to the parent as the event `child.ended`.

use super::{CreateRequest, Engine, Error};
use crate::store::Job;
use gangway_core::engine::{CHILD_ENDED, Input};
use serde_json::{Value, json};
use std::sync::Arc;

pub(super) async fn run(engine: &Arc<Engine>, job: Job, action: &str) {
    match action {
        "workflow.start" => start(engine, job).await,
        "workflow.cancel" => cancel(engine, job).await,
        other => {
            tracing::error!(action = other, "unknown workflow action; dropping the job");
            let _ = engine.store.finish_job(job.id).await;
        }
    }
}

async fn start(engine: &Arc<Engine>, job: Job) {
    let visit = job
        .payload
        .get("visit")
        .and_then(Value::as_u64)
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(0);
    let args = job.payload.get("args").cloned().unwrap_or(Value::Null);
    let workflow = args["workflow"].as_str().unwrap_or_default().to_string();
    let child_id = args["session_id"].as_str().unwrap_or_default().to_string();
    let parent = match engine.store.session(&job.session_id).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            let _ = engine.store.finish_job(job.id).await;
            return;
        }
        // The job stays leased and runs again when the lease runs out.
        Err(e) => {
            tracing::warn!(session = %job.session_id, error = %e, "cannot read the parent session; the child starts later");
            return;
        }
    };
    let created = engine
        .create(CreateRequest {
            api_key_id: parent.api_key_id.clone(),
            workflow: workflow.clone(),
            input: args.get("input").cloned().unwrap_or_else(|| json!({})),
            reference: Some(parent.id.clone()),
            idempotency_key: None,
            request_hash: String::new(),
            session_id: Some(child_id.clone()),
        })
        .await;
    match created {
        Ok(c) => {
            // The parent is in its run step, so this input changes nothing
            // but the timeline; the job row goes in the same transaction.
            let record = json!({"session_id": c.row.id, "workflow": c.row.workflow_id, "version": c.row.version, "restarted": c.replayed});
            engine
                .job_result(
                    &job.session_id,
                    job.id,
                    Input::CallSucceeded {
                        visit,
                        result: Value::Null,
                    },
                    Some(("child.created".into(), record)),
                )
                .await;
        }
        Err(Error::UnknownWorkflow(_)) => {
            let reason = format!("the child workflow `{workflow}` is not loaded");
            engine
                .job_result(
                    &job.session_id,
                    job.id,
                    Input::Event {
                        name: CHILD_ENDED.into(),
                        source: format!("workflow:{workflow}"),
                        data: json!({"session_id": child_id, "outcome": "failed", "reason": reason}),
                    },
                    None,
                )
                .await;
        }
        Err(e) => {
            tracing::warn!(session = %job.session_id, error = %e, "child session not started; retried when the job's lease runs out");
        }
    }
}

async fn cancel(engine: &Arc<Engine>, job: Job) {
    let args = job.payload.get("args").cloned().unwrap_or(Value::Null);
    let child = args["session_id"].as_str().unwrap_or_default();
    let reason = args["reason"]
        .as_str()
        .unwrap_or("the parent session stopped waiting")
        .to_string();
    match engine.apply(child, Input::Cancel { reason }).await {
        Ok(_) | Err(Error::NotFound) => {
            let _ = engine.store.finish_job(job.id).await;
        }
        Err(e) => {
            tracing::warn!(session = child, error = %e, "child not canceled yet; retried when the job's lease runs out");
        }
    }
}
