//! Provider sessions a Gangway session lets go of. A session that ends
//! `canceled` or `expired` runs no more steps, so a provider session it
//! left open (a Stripe VerificationSession) would stay open at the
//! provider, where the user could still submit and be billed for. The
//! `OnEnd` hook, after the ending transition and in its transaction,
//! enqueues one typed `Task::Release` job per provider session whose
//! provider declares a cancel action (`Registration::release`); the job
//! calls it, retrying transient failures for `WINDOW_MS`, and records the
//! outcome in the timeline. The session's end and its `session.ended`
//! webhook never wait for it.
//!
//! A provider session the workflow closed itself (a step that called the
//! cancel action on it succeeded, e.g. at its deadline) is remembered in
//! `state.released` and left alone. Issue 20's erasure reuses the job as
//! it is: a `Task::Release` with purpose `redact` and the provider's
//! `release.redact` action, one per provider session.

use super::Engine;
use super::committer::{AfterTransition, Change, Out};
use super::executor::{Running, backoff};
use super::job::{Release, Task};
use crate::connectors::CallError;
use crate::ids;
use crate::providers;
use crate::store::SessionRow;
use async_trait::async_trait;
use gangway_core::Outcome;
use gangway_core::engine::{Input, ProviderRef, SessionState};
use gangway_core::workflow::{Step, Workflow};
use serde_json::{Value, json};
use std::sync::Arc;
use tracing::Instrument;

/// How long a release job retries transient failures, from the moment it
/// is enqueued (the provider may be down for a while; a job leased by a
/// node that dies is taken over and keeps the same deadline).
pub(super) const WINDOW_MS: i64 = 10 * 60 * 1000;

/// The release purpose of a session ending `canceled` or `expired`.
pub(super) const CANCEL: &str = "cancel";
/// The release purpose of an erased session (erasure.rs).
pub(super) const REDACT: &str = "redact";

/// After the transition that ends a session `canceled` or `expired`: a
/// release job for each of its open provider sessions whose provider can
/// cancel one.
pub(super) struct OnEnd;

#[async_trait]
impl AfterTransition for OnEnd {
    async fn after_transition(
        &self,
        out: &mut Out<'_>,
        row: &SessionRow,
        change: Change,
    ) -> Result<(), crate::store::Error> {
        let let_go = matches!(
            row.state.outcome,
            Some(Outcome::Canceled | Outcome::Expired)
        );
        if !change.ended_now || !let_go {
            return Ok(());
        }
        for p in open(&row.state) {
            let Some(action) = providers::named(&p.connector)
                .and_then(|r| r.release.as_ref())
                .and_then(|r| r.cancel)
            else {
                continue;
            };
            let task = Task::Release(Release {
                purpose: CANCEL.into(),
                action: action.into(),
                reference: p.provider_session_id.clone(),
                deadline_ms: out.now + WINDOW_MS,
            });
            let lease_until = out.now + out.lease_ms;
            out.run_now(row, task, lease_until).await?;
        }
        Ok(())
    }
}

/// The session's provider sessions, each once, that its workflow did not
/// close itself.
fn open(state: &SessionState) -> Vec<&ProviderRef> {
    let mut open: Vec<&ProviderRef> = Vec::new();
    for p in &state.providers {
        if !state.released.contains(p) && !open.contains(&p) {
            open.push(p);
        }
    }
    open
}

/// The provider session that `input` shows the workflow closed: the
/// success of the current step's call of a provider's release action
/// (cancel or redact) on one of the session's provider sessions (its `id`
/// argument). The committer adds it to `state.released` once applied.
pub(super) fn closed_by(wf: &Workflow, state: &SessionState, input: &Input) -> Option<ProviderRef> {
    let Input::CallSucceeded { visit, .. } = input else {
        return None;
    };
    if *visit != state.visit {
        return None;
    }
    let Some(Step::Call(call)) = state.step.as_deref().and_then(|s| wf.step(s)) else {
        return None;
    };
    let provider = providers::provider_of(&call.action)?;
    let release = provider.release.as_ref()?;
    let action = Some(call.action.as_str());
    if release.cancel != action && release.redact != action {
        return None;
    }
    let id = state.call_args.as_ref()?.get("id")?.as_str()?;
    state
        .providers
        .iter()
        .find(|p| p.connector == provider.name && p.provider_session_id == id)
        .cloned()
}

/// The timeline kinds of a release's success and failure.
fn kinds(purpose: &str) -> (&'static str, &'static str) {
    match purpose {
        CANCEL => ("provider.canceled", "provider.cancel_failed"),
        REDACT => ("provider.redacted", "provider.redact_failed"),
        _ => ("provider.released", "provider.release_failed"),
    }
}

/// Runs a release job: the provider's action on its provider session,
/// transient failures retried until the job's deadline; the outcome goes to
/// the session's timeline in the transaction that deletes the job.
pub(super) async fn run(engine: &Arc<Engine>, job: Running<'_>, r: Release) {
    let args = json!({"id": r.reference});
    // Stable across retries and takeovers: the provider deduplicates.
    let key = format!("{}:{}:{}", job.session_id, r.purpose, r.reference);
    let connector = r.action.split('.').next().unwrap_or_default().to_string();
    let (done, failed) = kinds(&r.purpose);
    let mut attempts: Vec<Value> = Vec::new();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let span = crate::otel::provider_call("release", &r.action, job.session_id, attempt, None);
        let result = engine
            .connectors
            .call(&r.action, &args, &key)
            .instrument(span.clone())
            .await;
        if result.is_err() {
            span.record("otel.status_code", "ERROR");
        }
        drop(span);
        let data = |attempts: Vec<Value>| {
            json!({
                "connector": connector,
                "provider_session_id": r.reference,
                "action": r.action,
                "attempts": attempts,
            })
        };
        match result {
            Ok(out) => {
                attempts.push(out.record);
                let mut data = data(attempts);
                data["result"] = out.result;
                engine.job_record(job.session_id, job.id, done, data).await;
                return;
            }
            Err(CallError {
                transient,
                retry_after,
                message,
                record,
            }) => {
                attempts.push(record);
                let wait = retry_after.unwrap_or_else(|| backoff(attempt));
                let next = ids::now_ms() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
                if transient && engine.is_stopping() {
                    // The job keeps its row; another node (or this one
                    // after a restart) takes it over.
                    return;
                }
                if transient && next < r.deadline_ms {
                    tracing::info!(session_id = %job.session_id, action = %r.action, attempt, error = %message, "provider release failed; retrying");
                    tokio::time::sleep(wait).await;
                    continue;
                }
                let error = if transient {
                    format!("{message} (gave up after {attempt} attempts)")
                } else {
                    message
                };
                tracing::warn!(session_id = %job.session_id, action = %r.action, %error, "provider release failed");
                let mut data = data(attempts);
                data["error"] = Value::String(error);
                engine
                    .job_record(job.session_id, job.id, failed, data)
                    .await;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(c: &str, id: &str) -> ProviderRef {
        ProviderRef {
            connector: c.into(),
            provider_session_id: id.into(),
        }
    }

    #[test]
    fn open_skips_what_the_workflow_closed_and_duplicates() {
        let state = SessionState {
            providers: vec![
                p("stripe", "vs_1"),
                p("stripe", "vs_2"),
                p("stripe", "vs_1"),
            ],
            released: vec![p("stripe", "vs_2")],
            ..SessionState::default()
        };
        assert_eq!(open(&state), vec![&p("stripe", "vs_1")]);
    }

    #[test]
    fn kinds_name_the_purpose() {
        assert_eq!(kinds("cancel").0, "provider.canceled");
        assert_eq!(kinds("redact").1, "provider.redact_failed");
    }
}
