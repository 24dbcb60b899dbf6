//! The committer: the only writer of session state. It drains commands in
//! batches and commits each batch in one transaction (group commit), then
//! answers the callers, runs the jobs that are due now and pushes client
//! events. Commands for one session apply in arrival order.

mod batch;
mod effects;
mod ingest;
mod out;
mod review;
mod transition;

pub(super) use out::{AfterCommit, AfterTransition, Change, Out};

// What the parts of the committer call in each other; they share this
// module's imports (`use super::*`).
use effects::apply_effect;
use ingest::{adopt, ingest};
use transition::{apply_input, create, transition};

use super::job::{Call, Cancel, Child, Deliver, Poll, Ready, Task};
use super::{Command, Engine, Error, Reply, Work, view};
use crate::ids;
use crate::store::{
    ClientEvent, JobKind, NewDelivery, NewEvent, NewJob, SessionRow, TimelineEntry, Tx,
};
use gangway_core::SessionStatus;
use gangway_core::engine::{self, Context, Effect, Input};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;
use tracing::Instrument;

pub struct CreateRequest {
    pub api_key_id: String,
    pub workflow: String,
    pub input: Value,
    pub reference: Option<String>,
    pub idempotency_key: Option<String>,
    /// Fingerprint of the request body, compared on idempotent replays.
    pub request_hash: String,
    /// A given id (child sessions): if it exists already, it is the answer.
    pub session_id: Option<String>,
    /// The `traceparent` the session's later work continues (crate::otel):
    /// the creating request's span, or a child's parent's trace.
    pub trace: Option<String>,
}

pub struct Created {
    pub row: SessionRow,
    pub client_secret: String,
    /// True when an earlier request with the same Idempotency-Key made it.
    pub replayed: bool,
}

pub struct Ingested {
    pub duplicate: bool,
    pub session_id: Option<String>,
    pub applied: bool,
    /// Not stored: why (the session ended, or is at a limit).
    pub refused: Option<super::intake::Refused>,
}

/// The answer to one command, sent once the batch is committed.
enum Answer {
    Create(Result<Created, Error>),
    Chat(super::chat::Said),
    Apply(Option<SessionRow>),
    Ingest(Ingested),
    Recorded,
    /// Not done: the command's caller gets this error.
    Refused(Error),
}

/// Attempts of one command whose transaction met a retryable failure (a
/// deadlock with another node, a lost connection).
const ATTEMPTS: usize = 3;
/// Times a job result is offered again while the database is away.
const REQUEUE_ATTEMPTS: usize = 60;

pub(super) async fn run(engine: Arc<Engine>, mut rx: mpsc::Receiver<Command>) {
    let max = engine.config.engine.batch_size;
    let mut batch = Vec::with_capacity(max);
    while rx.recv_many(&mut batch, max).await > 0 {
        let cmds = std::mem::take(&mut batch);
        commit_batch(&engine, cmds).await;
        if engine.is_closed() {
            // Drained (`Engine::close`): what is still queued gets
            // `ShuttingDown` as the queue drops.
            return;
        }
    }
}

async fn commit_batch(engine: &Arc<Engine>, cmds: Vec<Command>) {
    let (works, replies): (Vec<Work>, Vec<Reply>) =
        cmds.into_iter().map(|c| (c.work, c.reply)).unzip();
    let started = std::time::Instant::now();
    let span = crate::otel::batch(works.len());
    let result = batch::try_batch(engine, &works)
        .instrument(span.clone())
        .await;
    if result.is_err() {
        span.record("otel.status_code", "ERROR");
    }
    drop(span);
    crate::telemetry::commit(works.len(), started, result.is_ok());
    match result {
        Ok((answers, after)) => finish(engine, after, replies.into_iter().zip(answers).collect()),
        Err(e) if (works.len() == 1 && !e.is_retryable()) || e.is_unavailable() => {
            // Alone, or the database is away: the callers get a 503 now
            // rather than a wait; jobs keep their rows and run again.
            tracing::error!(error = %e, "transition failed");
            for (work, reply) in works.into_iter().zip(replies) {
                match reply {
                    Reply::Apply(None) if e.is_unavailable() => requeue(engine, work),
                    reply => fail(reply, &e),
                }
            }
        }
        Err(e) => {
            // One bad command must not fail the others: retry each alone.
            tracing::warn!(error = %e, "batch failed; retrying its commands one by one");
            for (work, reply) in works.into_iter().zip(replies) {
                match try_alone(engine, &work).await {
                    Ok((answers, after)) => finish(
                        engine,
                        after,
                        vec![reply].into_iter().zip(answers).collect(),
                    ),
                    Err(e) => {
                        tracing::error!(error = %e, "transition failed");
                        fail(reply, &e);
                    }
                }
            }
        }
    }
}

/// A job's result that could not be committed because the database was
/// away: offered again every second for a while, so that its job need not
/// wait for the lease to end (if all attempts fail, it still runs again then).
fn requeue(engine: &Arc<Engine>, work: Work) {
    let engine = engine.clone();
    tokio::spawn(async move {
        for _ in 0..REQUEUE_ATTEMPTS {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            let (reply, rx) = tokio::sync::oneshot::channel();
            let cmd = Command {
                work: work.clone(),
                reply: Reply::Done(reply),
            };
            if engine.send(cmd).await.is_err() || rx.await.unwrap_or(false) {
                return;
            }
        }
    });
}

/// One command in a transaction of its own, again if it failed for a
/// reason another attempt may not meet.
async fn try_alone(
    engine: &Arc<Engine>,
    work: &Work,
) -> Result<(Vec<Answer>, AfterCommit), crate::store::Error> {
    let mut attempt = 1;
    loop {
        match batch::try_batch(engine, std::slice::from_ref(work)).await {
            Err(e) if e.is_retryable() && attempt < ATTEMPTS => {
                tracing::info!(error = %e, attempt, "transaction failed; retrying");
                attempt += 1;
            }
            other => return other,
        }
    }
}

fn fail(reply: Reply, e: &crate::store::Error) {
    let err = || Error::Store(crate::store::Error::Corrupt(e.to_string()));
    match reply {
        Reply::Create(r) => {
            let _ = r.send(Err(err()));
        }
        Reply::Apply(Some(r)) => {
            let _ = r.send(Err(err()));
        }
        Reply::Apply(None) => {}
        Reply::Ingest(r) => {
            let _ = r.send(Err(err()));
        }
        Reply::Barrier(r) => {
            let _ = r.send(());
        }
        Reply::Chat(r) => {
            let _ = r.send(Err(err()));
        }
        Reply::Done(r) => {
            let _ = r.send(false);
        }
    }
}

fn finish(engine: &Arc<Engine>, after: AfterCommit, replies: Vec<(Reply, Answer)>) {
    metrics::counter!("gangway_transitions_total").increment(after.transitions);
    for trigger in &after.erased {
        metrics::counter!("gangway_sessions_erased_total", "trigger" => trigger.as_str())
            .increment(1);
    }
    for (reply, answer) in replies {
        match (reply, answer) {
            (Reply::Create(r), Answer::Create(a)) => {
                let _ = r.send(a);
            }
            (Reply::Apply(Some(r)), Answer::Apply(a)) => {
                let _ = r.send(Ok(a));
            }
            (Reply::Apply(Some(r)), Answer::Refused(e)) => {
                let _ = r.send(Err(e));
            }
            (Reply::Ingest(r), Answer::Ingest(a)) => {
                let _ = r.send(Ok(a));
            }
            (Reply::Barrier(r), _) => {
                let _ = r.send(());
            }
            (Reply::Chat(r), Answer::Chat(a)) => {
                let _ = r.send(Ok(a));
            }
            (Reply::Done(r), _) => {
                let _ = r.send(true);
            }
            _ => {}
        }
    }
    for (session_id, ev) in after.publish {
        engine.hub.publish(&session_id, ev);
    }
    for session_id in &after.changed {
        engine.session_watch.changed(session_id);
    }
    engine.changes.changed(&after.changed);
    for job in after.run_now {
        super::executor::spawn(engine.clone(), job);
    }
    if !after.adopt.is_empty() {
        engine.adopt_later(after.adopt);
    }
    if let Some(at) = after.earliest_timer
        && at < engine.next_wake.load(Ordering::Relaxed)
    {
        engine.wake.notify_one();
    }
}
