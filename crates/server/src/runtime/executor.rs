//! Runs jobs: provider calls (retried until the step's deadline), polls,
//! timers and customer webhook deliveries. Results go back to the committer;
//! a job row is deleted only in the transaction that records its result, so
//! a crash in between runs it again (at least once, idempotency key stable).

use super::Engine;
use super::job::{Call, Poll, Ready, Task};
use crate::connectors::CallError;
use crate::ids;
use crate::store::Job;
use gangway_core::engine::Input;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// Runs a job claimed from the store; one whose payload this build cannot
/// read is dropped, with an error in the log.
pub(super) fn spawn_claimed(engine: Arc<Engine>, job: Job) {
    let (id, session_id) = (job.id, job.session_id.clone());
    match Ready::from_row(job) {
        Ok(ready) => spawn(engine, ready),
        Err(e) => {
            tracing::error!(job = id, %session_id, error = %e, "dropping a job this build cannot run");
            tokio::spawn(async move {
                let _ = engine.store.finish_job(id).await;
            });
        }
    }
}

pub(super) fn spawn(engine: Arc<Engine>, job: Ready) {
    tokio::spawn(async move {
        let Ok(_permit) = engine.inflight.acquire().await else {
            return;
        };
        let Ready {
            id,
            session_id,
            attempts,
            task,
        } = job;
        let job = Running {
            id,
            session_id: &session_id,
            attempts,
        };
        let run = async {
            match task {
                Task::Call(call) => run_call(&engine, job, call).await,
                Task::StartChild { visit, child, .. } => {
                    super::children::start(&engine, job, visit, child).await;
                }
                Task::CancelChild(cancel) => super::children::cancel(&engine, job, cancel).await,
                Task::ChatRun(run) => super::chat::run_job(&engine, job, run).await,
                Task::Poll(poll) => run_poll(&engine, job, poll).await,
                Task::Timer { visit } => run_timer(&engine, job, visit).await,
                Task::Deliver(d) => super::delivery::run(&engine, job, d).await,
                Task::Release(r) => super::release::run(&engine, job, r).await,
            }
        };
        hold_lease(&engine, id, &session_id, run).await;
    });
}

/// The job a task runs as: its row (deleted with its result) and session.
#[derive(Debug, Clone, Copy)]
pub(super) struct Running<'a> {
    pub id: i64,
    pub session_id: &'a str,
    pub attempts: i64,
}

/// Runs a job, renewing its lease while it runs longer than half a lease
/// (a call retried until its deadline), so that no other node takes it
/// over meanwhile. Jobs that finish sooner cost no write.
async fn hold_lease(
    engine: &Engine,
    id: i64,
    session_id: &str,
    run: impl std::future::Future<Output = ()>,
) {
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
                    Ok(false) => tracing::warn!(job = id, session_id, "lost the lease of a running job"),
                    Err(e) => tracing::warn!(job = id, session_id, error = %e, "cannot renew a job lease"),
                }
            }
        }
    }
}

fn elapsed_ms(started: std::time::Instant) -> i64 {
    i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// An attempt's record with how long it took (the timeline shows it; the
/// dashboard's provider latency adds it up, committer/stats.rs).
fn with_duration(mut record: Value, ms: i64) -> Value {
    if let Value::Object(m) = &mut record {
        m.insert("duration_ms".into(), ms.into());
    }
    record
}

/// A poll's record names its action, as a call's does.
fn with_action(mut record: Value, action: &str) -> Value {
    if let Value::Object(m) = &mut record {
        m.entry("action").or_insert_with(|| action.into());
    }
    record
}

/// Exponential backoff with jitter: 200 ms doubling to at most 5 s.
pub(super) fn backoff(attempt: u32) -> Duration {
    let base = 200u64.saturating_mul(1 << attempt.min(5)).min(5_000);
    let jitter = rand::random::<u64>() % (base / 4 + 1);
    Duration::from_millis(base + jitter)
}

async fn run_call(engine: &Arc<Engine>, job: Running<'_>, call: Call) {
    let Call {
        visit,
        action,
        args,
        deadline_ms: deadline,
        trace,
        ..
    } = call;
    let key = format!("{}:{}", job.session_id, visit);
    let mut attempts: Vec<Value> = Vec::new();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let span =
            crate::otel::provider_call("call", &action, job.session_id, attempt, trace.as_deref());
        let started = std::time::Instant::now();
        let result = engine
            .connectors
            .call(&action, &args, &key)
            .instrument(span.clone())
            .await;
        let ms = elapsed_ms(started);
        if result.is_err() {
            span.record("otel.status_code", "ERROR");
        }
        drop(span);
        match result {
            Ok(out) => {
                attempts.push(with_duration(out.record, ms));
                let record = json!({"action": action, "attempts": attempts});
                engine
                    .job_result(
                        job.session_id,
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
                attempts.push(with_duration(record, ms));
                let now = ids::now_ms();
                let wait = retry_after.unwrap_or_else(|| backoff(attempt));
                let next = now + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
                if transient && engine.is_stopping() {
                    // Shutting down: the job keeps its row, its lease is
                    // freed at shutdown and another node retries it.
                    tracing::info!(session_id = %job.session_id, %action, "shutting down; leaving the call to another node");
                    return;
                }
                if transient && next < deadline {
                    tracing::info!(session_id = %job.session_id, %action, attempt, error = %message, "provider call failed; retrying");
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
                        job.session_id,
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

async fn run_poll(engine: &Arc<Engine>, job: Running<'_>, poll: Poll) {
    let Poll {
        visit,
        action,
        args,
        trace,
        ..
    } = poll;
    let key = format!("{}:{}:poll", job.session_id, visit);
    metrics::counter!("gangway_polls_total").increment(1);
    let attempt = u32::try_from(job.attempts + 1).unwrap_or(u32::MAX);
    let span =
        crate::otel::provider_call("poll", &action, job.session_id, attempt, trace.as_deref());
    let started = std::time::Instant::now();
    let result = engine
        .connectors
        .call(&action, &args, &key)
        .instrument(span.clone())
        .await;
    let ms = elapsed_ms(started);
    if result.is_err() {
        span.record("otel.status_code", "ERROR");
    }
    drop(span);
    match result {
        Ok(out) => {
            engine
                .job_result(
                    job.session_id,
                    job.id,
                    Input::PollResult {
                        visit,
                        result: out.result,
                    },
                    Some((
                        "provider.poll".into(),
                        with_action(with_duration(out.record, ms), &action),
                    )),
                )
                .await;
        }
        Err(e) => {
            // A failed poll is not an event: try again later, backing off.
            let attempts = job.attempts + 1;
            let delay = 5_000i64.saturating_mul(1 << attempts.min(4)).min(60_000);
            let retry_at = ids::now_ms() + delay;
            tracing::info!(session_id = %job.session_id, error = %e.message, "poll failed; backing off");
            if let Err(err) = engine
                .store
                .reschedule_job(job.id, retry_at, attempts)
                .await
            {
                tracing::error!(error = %err, "could not reschedule poll");
            }
            // Still worth a timeline entry (a timeout, a 5xx, ...): without
            // it a wait whose polls all fail looks idle until its deadline.
            // At most one per back-off, so `engine.poll_rate` bounds them.
            let data = json!({"error": e.message, "attempt": e.record, "retry_at_ms": retry_at,
                "action": action, "duration_ms": ms});
            if let Err(err) = engine
                .record(job.session_id, "poll.failed", data, None)
                .await
            {
                tracing::debug!(session_id = %job.session_id, error = %err, "failed poll not recorded");
            }
        }
    }
}

async fn run_timer(engine: &Arc<Engine>, job: Running<'_>, visit: u32) {
    engine
        .job_result(job.session_id, job.id, Input::Timeout { visit }, None)
        .await;
}
