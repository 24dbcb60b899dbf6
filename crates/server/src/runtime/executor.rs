//! Runs jobs: provider calls (retried until the step's deadline), polls,
//! timers and customer webhook deliveries. Results go back to the committer;
//! a job row is deleted only in the transaction that records its result, so
//! a crash in between runs it again (at least once, idempotency key stable).

use super::Engine;
use crate::connectors::CallError;
use crate::ids;
use crate::store::{Job, JobKind};
use gangway_core::engine::Input;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

pub(super) fn spawn(engine: Arc<Engine>, job: Job) {
    tokio::spawn(async move {
        let Ok(_permit) = engine.inflight.acquire().await else {
            return;
        };
        let id = job.id;
        let run = async {
            match job.kind {
                JobKind::Call => run_call(&engine, job).await,
                JobKind::Poll => run_poll(&engine, job).await,
                JobKind::Timer => run_timer(&engine, job).await,
                JobKind::Deliver => super::delivery::run(&engine, job).await,
            }
        };
        hold_lease(&engine, id, run).await;
    });
}

/// Runs a job, renewing its lease while it runs longer than half a lease
/// (a call retried until its deadline), so that no other node takes it
/// over meanwhile. Jobs that finish sooner cost no write.
async fn hold_lease(engine: &Engine, id: i64, run: impl std::future::Future<Output = ()>) {
    let lease = engine.config.engine.lease;
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(30_000);
    let every = (lease / 2).max(Duration::from_millis(100));
    let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tokio::pin!(run);
    loop {
        tokio::select! {
            () = &mut run => return,
            _ = renew.tick() => {
                match engine.store.extend_lease(id, ids::now_ms() + lease_ms).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(job = id, "lost the lease of a running job"),
                    Err(e) => tracing::warn!(job = id, error = %e, "cannot renew a job lease"),
                }
            }
        }
    }
}

fn visit_of(job: &Job) -> u32 {
    job.payload
        .get("visit")
        .and_then(Value::as_u64)
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(0)
}

/// Exponential backoff with jitter: 200 ms doubling to at most 5 s.
fn backoff(attempt: u32) -> Duration {
    let base = 200u64.saturating_mul(1 << attempt.min(5)).min(5_000);
    let jitter = rand::random::<u64>() % (base / 4 + 1);
    Duration::from_millis(base + jitter)
}

async fn run_call(engine: &Arc<Engine>, job: Job) {
    let visit = visit_of(&job);
    let action = job
        .payload
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if action.starts_with("workflow.") {
        return super::children::run(engine, job, &action).await;
    }
    if action == "chat.run" {
        return super::chat::run_job(engine, job).await;
    }
    let args = job.payload.get("args").cloned().unwrap_or(Value::Null);
    let deadline = job
        .payload
        .get("deadline_ms")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let key = format!("{}:{}", job.session_id, visit);
    let mut attempts: Vec<Value> = Vec::new();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let result = engine.connectors.call(&action, &args, &key).await;
        match result {
            Ok(out) => {
                attempts.push(out.record);
                let record = json!({"action": action, "attempts": attempts});
                engine
                    .job_result(
                        &job.session_id,
                        job.id,
                        Input::CallSucceeded {
                            visit,
                            result: out.result,
                        },
                        Some(("provider.call".into(), record)),
                    )
                    .await;
                return;
            }
            Err(CallError {
                transient,
                retry_after,
                message,
                record,
            }) => {
                attempts.push(record);
                let now = ids::now_ms();
                let wait = retry_after.unwrap_or_else(|| backoff(attempt));
                let next = now + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
                if transient && engine.is_stopping() {
                    // Shutting down: the job keeps its row, its lease is
                    // freed at shutdown and another node retries it.
                    tracing::info!(session = %job.session_id, %action, "shutting down; leaving the call to another node");
                    return;
                }
                if transient && next < deadline {
                    tracing::info!(session = %job.session_id, %action, attempt, error = %message, "provider call failed; retrying");
                    tokio::time::sleep(wait).await;
                    continue;
                }
                let error = if transient {
                    format!("{message} (gave up after {attempt} attempts at the step's deadline)")
                } else {
                    message
                };
                let record = json!({"action": action, "attempts": attempts, "error": error});
                engine
                    .job_result(
                        &job.session_id,
                        job.id,
                        Input::CallFailed { visit, error },
                        Some(("provider.call".into(), record)),
                    )
                    .await;
                return;
            }
        }
    }
}

async fn run_poll(engine: &Arc<Engine>, job: Job) {
    let visit = visit_of(&job);
    let action = job
        .payload
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let args = job.payload.get("args").cloned().unwrap_or(Value::Null);
    let key = format!("{}:{}:poll", job.session_id, visit);
    metrics::counter!("gangway_polls_total").increment(1);
    match engine.connectors.call(&action, &args, &key).await {
        Ok(out) => {
            engine
                .job_result(
                    &job.session_id,
                    job.id,
                    Input::PollResult {
                        visit,
                        result: out.result,
                    },
                    Some(("provider.poll".into(), out.record)),
                )
                .await;
        }
        Err(e) => {
            // A failed poll is not an event: try again later, backing off.
            let attempts = job.attempts + 1;
            let delay = 5_000i64.saturating_mul(1 << attempts.min(4)).min(60_000);
            tracing::info!(session = %job.session_id, error = %e.message, "poll failed; backing off");
            if let Err(err) = engine
                .store
                .reschedule_job(job.id, ids::now_ms() + delay, attempts)
                .await
            {
                tracing::error!(error = %err, "could not reschedule poll");
            }
        }
    }
}

async fn run_timer(engine: &Arc<Engine>, job: Job) {
    let visit = visit_of(&job);
    engine
        .job_result(&job.session_id, job.id, Input::Timeout { visit }, None)
        .await;
}
