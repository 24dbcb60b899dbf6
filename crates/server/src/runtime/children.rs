//! `run` steps: the jobs that start and cancel child sessions. A child is an
//! ordinary session whose id names its parent (`ses_…-<visit>`); starting
//! it again after a crash finds the same child. When a child ends, the
//! committer hands its ending to the parent as the event `child.ended`.

use super::committer::{AfterTransition, Change, Out};
use super::executor::Running;
use super::job::{Cancel, Child};
use super::{CreateRequest, Engine, Error};
use crate::store::{NewEvent, SessionRow};
use async_trait::async_trait;
use gangway_core::engine::{self, CHILD_ENDED, Input};
use serde_json::{Value, json};
use std::sync::Arc;

/// After a child's transition: its ending goes to its parent as the event
/// `child.ended` (stored, deduplicated by the child's id, applied if the
/// parent still waits for this child); while the parent waits in its `run`
/// step, its browser presents what the child presents (the QR code, the
/// iframe), as the parent's client secret is the only one the browser has.
pub(super) struct ToParent;

#[async_trait]
impl AfterTransition for ToParent {
    async fn after_transition(
        &self,
        out: &mut Out<'_>,
        child: &SessionRow,
        change: Change,
    ) -> Result<(), crate::store::Error> {
        let Some(parent) = engine::parent_of(&child.id) else {
            return Ok(());
        };
        if change.ended_now {
            out.ingest(NewEvent {
                source: format!("workflow:{}", child.workflow_id),
                event_key: child.id.clone(),
                namespace: "session".into(),
                reference: parent.to_string(),
                name: CHILD_ENDED.into(),
                data: json!({
                    "session_id": child.id,
                    "outcome": child.state.outcome,
                    "reason": child.state.reason,
                    "output": child.state.output,
                    "state": child.state.vars,
                }),
                received_at: out.now,
            });
        } else if change.view_changed {
            let Some(mut row) = out.tx.lock_session(parent).await? else {
                return Ok(());
            };
            if row.state.child.as_deref() != Some(child.id.as_str()) {
                return Ok(());
            }
            let before = super::view::client_json(&row);
            row.state.present = child.state.present.clone();
            if out.client_view(&mut row, before) {
                row.updated_at = out.now;
                out.tx.update_session(&row).await?;
            }
        }
        Ok(())
    }
}

/// The `workflow.start` job: starts the child (again, after a crash: it
/// finds the same one).
pub(super) async fn start(engine: &Arc<Engine>, job: Running<'_>, visit: u32, child: Child) {
    let Child {
        workflow,
        session_id: child_id,
        input,
    } = child;
    let parent = match engine.store.session(job.session_id).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            let _ = engine.store.finish_job(job.id).await;
            return;
        }
        // The job stays leased and runs again when the lease runs out.
        Err(e) => {
            tracing::warn!(session_id = %job.session_id, error = %e, "cannot read the parent session; the child starts later");
            return;
        }
    };
    let created = engine
        .create(CreateRequest {
            api_key_id: parent.api_key_id.clone(),
            workflow: workflow.clone(),
            input,
            reference: Some(parent.id.clone()),
            idempotency_key: None,
            request_hash: String::new(),
            session_id: Some(child_id.clone()),
            trace: parent.state.trace.clone(),
        })
        .await;
    match created {
        Ok(c) => {
            // The parent is in its run step, so this input changes nothing
            // but the timeline; the job row goes in the same transaction.
            let record = json!({"session_id": c.row.id, "workflow": c.row.workflow_id, "version": c.row.version, "restarted": c.replayed});
            engine
                .job_result(
                    job.session_id,
                    job.id,
                    Input::CallSucceeded {
                        visit,
                        result: Value::Null,
                    },
                    Some(("child.created".into(), record)),
                )
                .await;
        }
        Err(e @ (Error::UnknownWorkflow(_) | Error::InvalidInput { .. })) => {
            // Starting again would fail the same way: the child ends now.
            let reason = match e {
                Error::InvalidInput { errors, .. } => format!(
                    "the child workflow `{workflow}` refused its input: {}",
                    errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                _ => format!("the child workflow `{workflow}` is not loaded"),
            };
            engine
                .job_result(
                    job.session_id,
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
            tracing::warn!(session_id = %job.session_id, error = %e, "child session not started; retried when the job's lease runs out");
        }
    }
}

/// The `workflow.cancel` job.
pub(super) async fn cancel(engine: &Arc<Engine>, job: Running<'_>, cancel: Cancel) {
    let child = cancel.session_id.as_str();
    let reason = cancel
        .reason
        .unwrap_or_else(|| "the parent session stopped waiting".to_string());
    match engine.apply(child, Input::Cancel { reason }).await {
        Ok(_) | Err(Error::NotFound) => {
            let _ = engine.store.finish_job(job.id).await;
        }
        Err(e) => {
            tracing::warn!(session_id = child, error = %e, "child not canceled yet; retried when the job's lease runs out");
        }
    }
}
