//! The committer: the only writer of session state. It drains commands in
//! batches and commits each batch in one transaction (group commit), then
//! answers the callers, runs the jobs that are due now and pushes client
//! events. Commands for one session apply in arrival order.

use super::{Command, Engine, Error, Reply, Work, view};
use crate::ids;
use crate::store::{
    ClientEvent, Job, JobKind, NewDelivery, NewEvent, NewJob, SessionRow, TimelineEntry, Tx,
};
use gangway_core::SessionStatus;
use gangway_core::engine::{self, Context, Effect, Input};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;

/// Buffered events a session may consume in one command (bounds the loop).
const MAX_BUFFERED_PER_COMMAND: usize = 32;

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
}

/// What to do once the batch is durable.
#[derive(Default)]
pub(super) struct AfterCommit {
    run_now: Vec<Job>,
    earliest_timer: Option<i64>,
    publish: Vec<(String, ClientEvent)>,
    timeline: Vec<(String, TimelineEntry)>,
    client_events: Vec<(String, ClientEvent)>,
    transitions: u64,
    /// References to check again for early events once committed (shared
    /// databases only).
    adopt: Vec<(String, String)>,
}

/// The answer to one command, sent once the batch is committed.
enum Answer {
    Create(Result<Created, Error>),
    Chat(super::chat::Said),
    Apply(Option<SessionRow>),
    Ingest(Ingested),
    Recorded,
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
    }
}

async fn commit_batch(engine: &Arc<Engine>, cmds: Vec<Command>) {
    let (works, replies): (Vec<Work>, Vec<Reply>) =
        cmds.into_iter().map(|c| (c.work, c.reply)).unzip();
    match try_batch(engine, &works).await {
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
        match try_batch(engine, std::slice::from_ref(work)).await {
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

/// What a batch looked up before locking: the sessions it will lock,
/// sorted, and per command the session its event or adoption is for (`None`
/// where nothing was looked up).
struct Lookups {
    sessions: Vec<String>,
    per_work: Vec<Option<Option<String>>>,
}

/// The sessions a batch will lock, locked up front in sorted order so that
/// two batches (of this node or another) cannot deadlock on them. On a
/// shared database this includes the sessions its events are for; what it
/// finds is what the batch uses, so no lock is taken later in another order
/// (an event whose reference is committed meanwhile is adopted afterwards).
async fn lookups(
    engine: &Arc<Engine>,
    tx: &mut dyn Tx,
    works: &[Work],
) -> Result<Lookups, crate::store::Error> {
    let shared = engine.store.is_shared();
    // The provider references of the batch, looked up together.
    let mut refs: Vec<(&str, &str)> = works
        .iter()
        .filter_map(|work| match work {
            Work::Ingest(ev) if shared && ev.namespace != "session" => {
                Some((ev.namespace.as_str(), ev.reference.as_str()))
            }
            Work::Adopt {
                namespace,
                reference,
                session_id: None,
            } => Some((namespace.as_str(), reference.as_str())),
            _ => None,
        })
        .collect();
    refs.sort_unstable();
    refs.dedup();
    let correlated = tx.correlations(&refs).await?;
    let session_of = |n: &str, r: &str| correlated.get(&(n.to_string(), r.to_string())).cloned();
    let mut sessions = Vec::new();
    let mut per_work = Vec::with_capacity(works.len());
    for work in works {
        let found = match work {
            Work::Apply { session_id, .. } | Work::Record { session_id, .. } => {
                sessions.push(session_id.clone());
                None
            }
            Work::Chat(chat) => {
                sessions.push(chat.session_id().to_string());
                None
            }
            Work::Ingest(ev) if shared && ev.namespace != "session" => {
                Some(session_of(&ev.namespace, &ev.reference))
            }
            Work::Ingest(ev) if shared => Some(Some(ev.reference.clone())),
            Work::Adopt {
                session_id: Some(sid),
                ..
            } => Some(Some(sid.clone())),
            Work::Adopt {
                namespace,
                reference,
                session_id: None,
            } => Some(session_of(namespace, reference)),
            _ => None,
        };
        if let Some(Some(sid)) = &found {
            sessions.push(sid.clone());
        }
        per_work.push(found);
    }
    // A child's transition may hand its ending or its view to its parent:
    // lock the ancestors too. A parent's id is a prefix of its child's, so
    // it sorts (and is locked) first, as everywhere.
    for work in works {
        if let Work::Create(req) = work
            && let Some(id) = &req.session_id
        {
            sessions.push(id.clone());
        }
    }
    let mut ancestors = Vec::new();
    for id in &sessions {
        let mut at = id.as_str();
        while let Some(parent) = engine::parent_of(at) {
            ancestors.push(parent.to_string());
            at = parent;
        }
    }
    sessions.extend(ancestors);
    sessions.sort_unstable();
    sessions.dedup();
    Ok(Lookups { sessions, per_work })
}

/// Gives a reference's stored-but-unadopted events to its session and, if
/// the session waits for one of them, applies it.
async fn adopt(
    engine: &Arc<Engine>,
    tx: &mut dyn Tx,
    (namespace, reference): (&str, &str),
    known: Option<Option<String>>,
    given: Option<u64>,
    now: i64,
    after: &mut AfterCommit,
) -> Result<(), crate::store::Error> {
    let sid = match known {
        Some(found) => found,
        None => tx.correlation(namespace, reference).await?,
    };
    // Not correlated yet: the writer that correlates it checks afterwards.
    let Some(sid) = sid else {
        return Ok(());
    };
    // The session first, as everywhere: locks are taken in one order.
    let Some(mut row) = tx.lock_session(&sid).await? else {
        return Ok(());
    };
    // Adopted up front with the batch's other checks, or now.
    let given = match given {
        Some(n) => n,
        None => tx.adopt_events(namespace, reference, &sid).await?,
    };
    if given == 0 {
        return Ok(());
    }
    // Not waiting: the events stay for the wait that wants them.
    let Some(wait) = row.state.wait.clone() else {
        return Ok(());
    };
    let Some(ev) = tx
        .pending_events(&sid, &wait.events)
        .await?
        .into_iter()
        .next()
    else {
        return Ok(());
    };
    tx.consume_event(ev.id, now).await?;
    let step = row.state.step.clone();
    push_timeline(
        after,
        &mut row,
        now,
        "event.replayed",
        step,
        json!({"event": ev.name, "source": ev.source}),
    );
    let name = ev.name.clone();
    let input = Input::Event {
        name: ev.name,
        source: ev.source,
        data: ev.data,
    };
    if transition(engine, tx, &mut row, input, now, after).await? {
        tx.consume_events_named(&sid, &name, now).await?;
    }
    Ok(())
}

/// Processes every command in one transaction and commits it.
async fn try_batch(
    engine: &Arc<Engine>,
    works: &[Work],
) -> Result<(Vec<Answer>, AfterCommit), crate::store::Error> {
    let mut tx = engine.store.begin().await?;
    let Lookups { sessions, per_work } = lookups(engine, tx.as_mut(), works).await?;
    let ids: Vec<&str> = sessions.iter().map(String::as_str).collect();
    tx.lock_sessions(&ids).await?;
    // The batch's adoption checks, in one go: their sessions are locked.
    let adoptions: Vec<(&str, &str, &str)> = works
        .iter()
        .zip(&per_work)
        .filter_map(|(work, known)| match (work, known) {
            (
                Work::Adopt {
                    namespace,
                    reference,
                    ..
                },
                Some(Some(sid)),
            ) => Some((namespace.as_str(), reference.as_str(), sid.as_str())),
            _ => None,
        })
        .collect();
    let adopted = tx.adopt_events_many(&adoptions).await?;
    let mut after = AfterCommit::default();
    let mut answers = Vec::with_capacity(works.len());
    let now = ids::now_ms();
    for (work, known) in works.iter().zip(per_work) {
        let answer = match work {
            Work::Create(req) => {
                Answer::Create(create(engine, tx.as_mut(), req, now, &mut after).await?)
            }
            Work::Apply {
                session_id,
                input,
                job,
                record,
            } => Answer::Apply(
                apply_input(
                    engine,
                    tx.as_mut(),
                    session_id,
                    input,
                    *job,
                    record.as_deref().cloned(),
                    now,
                    &mut after,
                )
                .await?,
            ),
            Work::Ingest(ev) => {
                Answer::Ingest(ingest(engine, tx.as_mut(), ev, known, now, &mut after).await?)
            }
            Work::Record { session_id, entry } => match tx.lock_session(session_id).await? {
                Some(mut row) => {
                    let step = row.state.step.clone();
                    push_timeline(&mut after, &mut row, now, &entry.0, step, entry.1.clone());
                    row.updated_at = now;
                    tx.update_session(&row).await?;
                    Answer::Apply(Some(row))
                }
                None => Answer::Apply(None),
            },
            Work::Delivered(d) => {
                tx.record_delivery_attempt(&d.delivery_id, &d.attempt, d.status, d.next_attempt_at)
                    .await?;
                match d.next_attempt_at {
                    Some(next) => {
                        tx.reschedule_job(d.job, next, d.attempt.attempt).await?;
                        after.earliest_timer =
                            Some(after.earliest_timer.map_or(next, |t| t.min(next)));
                    }
                    None => tx.delete_job(d.job).await?,
                }
                Answer::Recorded
            }
            Work::Barrier => Answer::Recorded,
            Work::Chat(chat) => Answer::Chat(
                super::chat::apply(tx.as_mut(), chat, now, lease_ms(engine), &mut after).await?,
            ),
            Work::Adopt {
                namespace,
                reference,
                ..
            } => {
                let key = (namespace.as_str(), reference.as_str());
                let given = known.is_some().then(|| {
                    adopted
                        .get(&(namespace.clone(), reference.clone()))
                        .copied()
                        .unwrap_or(0)
                });
                adopt(engine, tx.as_mut(), key, known, given, now, &mut after).await?;
                Answer::Recorded
            }
        };
        answers.push(answer);
    }
    tx.insert_timeline(&std::mem::take(&mut after.timeline))
        .await?;
    tx.insert_client_events(&after.client_events).await?;
    tx.commit().await?;
    Ok((answers, after))
}

fn finish(engine: &Arc<Engine>, after: AfterCommit, replies: Vec<(Reply, Answer)>) {
    metrics::counter!("gangway_transitions_total").increment(after.transitions);
    for (reply, answer) in replies {
        match (reply, answer) {
            (Reply::Create(r), Answer::Create(a)) => {
                let _ = r.send(a);
            }
            (Reply::Apply(Some(r)), Answer::Apply(a)) => {
                let _ = r.send(Ok(a));
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

async fn create(
    engine: &Arc<Engine>,
    tx: &mut dyn Tx,
    req: &CreateRequest,
    now: i64,
    after: &mut AfterCommit,
) -> Result<Result<Created, Error>, crate::store::Error> {
    let client_secret = ids::new_secret("gwcs");
    let expires =
        now + i64::try_from(engine.config.client.secret_ttl.as_millis()).unwrap_or(i64::MAX);
    if let Some(id) = &req.session_id
        && let Some(row) = tx.lock_session(id).await?
    {
        return Ok(Ok(Created {
            row,
            client_secret: String::new(),
            replayed: true,
        }));
    }
    if let Some(key) = &req.idempotency_key
        && let Some((id, hash)) = tx.find_idempotent(&req.api_key_id, key).await?
    {
        if hash.as_deref() != Some(req.request_hash.as_str()) {
            return Ok(Err(Error::IdempotencyConflict));
        }
        let Some(mut row) = tx.lock_session(&id).await? else {
            return Ok(Err(Error::NotFound));
        };
        // The first answer was lost to the caller: issue a fresh client secret.
        row.client_secret_hash = ids::hash_secret(&client_secret);
        row.client_secret_expires_at = expires;
        tx.set_client_secret(&row.id, &row.client_secret_hash, expires)
            .await?;
        return Ok(Ok(Created {
            row,
            client_secret,
            replayed: true,
        }));
    }
    let Some(wf) = engine.workflows.latest(&req.workflow) else {
        return Ok(Err(Error::UnknownWorkflow(req.workflow.clone())));
    };
    let mut row = SessionRow {
        id: req.session_id.clone().unwrap_or_else(|| ids::new_id("ses")),
        workflow_id: wf.id.clone(),
        version: wf.version,
        reference: req.reference.clone(),
        input: req.input.clone(),
        state: engine::SessionState::default(),
        created_at: now,
        updated_at: now,
        client_secret_hash: ids::hash_secret(&client_secret),
        client_secret_expires_at: expires,
        api_key_id: req.api_key_id.clone(),
        idempotency_key: req.idempotency_key.clone(),
        request_hash: Some(req.request_hash.clone()),
        timeline_seq: 0,
        client_seq: 0,
    };
    tx.insert_session(&row).await?;
    let created = match engine::parent_of(&row.id) {
        Some(parent) => json!({"workflow": wf.id, "version": wf.version, "parent": parent}),
        None => json!({"workflow": wf.id, "version": wf.version}),
    };
    push_timeline(after, &mut row, now, "session.created", None, created);
    transition(engine, tx, &mut row, Input::Start, now, after).await?;
    Ok(Ok(Created {
        row,
        client_secret,
        replayed: false,
    }))
}

#[allow(clippy::too_many_arguments)]
async fn apply_input(
    engine: &Arc<Engine>,
    tx: &mut dyn Tx,
    session_id: &str,
    input: &Input,
    job: Option<i64>,
    record: Option<(String, Value)>,
    now: i64,
    after: &mut AfterCommit,
) -> Result<Option<SessionRow>, crate::store::Error> {
    if let Some(job) = job {
        tx.delete_job(job).await?;
    }
    let Some(mut row) = tx.lock_session(session_id).await? else {
        return Ok(None);
    };
    if let Some((kind, data)) = record {
        let step = row.state.step.clone();
        push_timeline(after, &mut row, now, &kind, step, data);
    }
    transition(engine, tx, &mut row, input.clone(), now, after).await?;
    Ok(Some(row))
}

async fn ingest(
    engine: &Arc<Engine>,
    tx: &mut dyn Tx,
    ev: &NewEvent,
    known: Option<Option<String>>,
    now: i64,
    after: &mut AfterCommit,
) -> Result<Ingested, crate::store::Error> {
    // Browser signals name their session directly; provider events name a
    // provider reference that a call step correlated (looked up before the
    // batch took its locks, on a shared database).
    let session_id = if ev.namespace == "session" {
        Some(ev.reference.clone())
    } else if let Some(found) = known {
        found
    } else {
        tx.correlation(&ev.namespace, &ev.reference).await?
    };
    let Some(event_id) = tx.insert_event(ev, session_id.as_deref()).await? else {
        metrics::counter!("gangway_inbound_events_total", "result" => "duplicate").increment(1);
        return Ok(Ingested {
            duplicate: true,
            session_id,
            applied: false,
        });
    };
    let Some(sid) = session_id else {
        // Arrived before the provider reference was committed: kept until then.
        if engine.store.is_shared() {
            after
                .adopt
                .push((ev.namespace.clone(), ev.reference.clone()));
        }
        metrics::counter!("gangway_inbound_events_total", "result" => "buffered").increment(1);
        return Ok(Ingested {
            duplicate: false,
            session_id: None,
            applied: false,
        });
    };
    let Some(mut row) = tx.lock_session(&sid).await? else {
        return Ok(Ingested {
            duplicate: false,
            session_id: Some(sid),
            applied: false,
        });
    };
    let step = row.state.step.clone();
    push_timeline(
        after,
        &mut row,
        now,
        "event.received",
        step,
        json!({"event": ev.name, "source": ev.source, "reference": ev.reference}),
    );
    let waiting_for_it = row
        .state
        .wait
        .as_ref()
        .is_some_and(|w| w.events.contains(&ev.name));
    let mut applied = false;
    if waiting_for_it {
        tx.consume_event(event_id, now).await?;
        applied = transition(
            engine,
            tx,
            &mut row,
            Input::Event {
                name: ev.name.clone(),
                source: ev.source.clone(),
                data: ev.data.clone(),
            },
            now,
            after,
        )
        .await?;
        if applied {
            tx.consume_events_named(&sid, &ev.name, now).await?;
        }
    } else {
        tx.update_session(&row).await?;
    }
    metrics::counter!("gangway_inbound_events_total", "result" => if applied { "applied" } else { "buffered" }).increment(1);
    Ok(Ingested {
        duplicate: false,
        session_id: Some(sid),
        applied,
    })
}

/// Numbers a timeline entry; entries are written with the batch.
pub(super) fn push_timeline(
    after: &mut AfterCommit,
    row: &mut SessionRow,
    now: i64,
    kind: &str,
    step: Option<String>,
    data: Value,
) {
    row.timeline_seq += 1;
    after.timeline.push((
        row.id.clone(),
        TimelineEntry {
            seq: row.timeline_seq,
            at: now,
            kind: kind.to_string(),
            step,
            data,
        },
    ));
}

/// Applies `input` and then any buffered events the new wait accepts; writes
/// state, timeline, jobs, deliveries and client events. Returns whether the
/// first input applied.
async fn transition(
    engine: &Arc<Engine>,
    tx: &mut dyn Tx,
    row: &mut SessionRow,
    input: Input,
    now: i64,
    after: &mut AfterCommit,
) -> Result<bool, crate::store::Error> {
    let Some(wf) = engine.workflows.get(&row.workflow_id, row.version) else {
        return Err(crate::store::Error::Corrupt(format!(
            "session {} runs workflow {} v{}, which is not loaded",
            row.id, row.workflow_id, row.version
        )));
    };
    let client_before = view::client_json(row);
    let was_ended = row.state.status == SessionStatus::Ended;
    let session_ctx = json!({"id": row.id, "reference": row.reference});
    let mut input = input;
    let mut first_applied = None;
    let mut consumed = 0;
    loop {
        let ctx = Context {
            input: &row.input,
            session: &session_ctx,
        };
        let t = engine::apply(&wf, ctx, &row.state, &input, now);
        first_applied.get_or_insert(t.applied);
        if !t.applied {
            break;
        }
        after.transitions += 1;
        for r in &t.records {
            push_timeline(after, row, now, &r.kind, r.step.clone(), r.data.clone());
        }
        row.state = t.state;
        for effect in t.effects {
            apply_effect(engine, tx, row, effect, now, after).await?;
        }
        // A new wait may be satisfied by an event that arrived early.
        let Some(wait) = row.state.wait.clone() else {
            break;
        };
        if consumed >= MAX_BUFFERED_PER_COMMAND {
            break;
        }
        let pending = tx.pending_events(&row.id, &wait.events).await?;
        let Some(ev) = pending.into_iter().next() else {
            break;
        };
        tx.consume_event(ev.id, now).await?;
        consumed += 1;
        push_timeline(
            after,
            row,
            now,
            "event.replayed",
            row.state.step.clone(),
            json!({"event": ev.name, "source": ev.source}),
        );
        input = Input::Event {
            name: ev.name,
            source: ev.source,
            data: ev.data,
        };
    }
    row.updated_at = now;
    let view_changed = push_client_view(after, row, client_before, now);
    let ended_now = !was_ended && row.state.status == SessionStatus::Ended;
    if ended_now && row.state.vars.contains_key("chat") {
        super::chat::chat_ended(tx, row, now, lease_ms(engine), after).await?;
    }
    tx.update_session(row).await?;
    if let Some(parent) = engine::parent_of(&row.id) {
        if ended_now {
            Box::pin(child_ended(engine, tx, row, parent, now, after)).await?;
            super::chat::run_ended(tx, row, parent, now, after).await?;
        } else if view_changed {
            child_view_to_parent(tx, row, parent, now, after).await?;
            super::chat::run_view(tx, row, parent, now, after).await?;
        }
    }
    Ok(first_applied.unwrap_or(false))
}

/// Numbers a client event (written with the batch, pushed to live streams
/// after the commit); the caller writes the session row.
pub(super) fn push_client_event(
    after: &mut AfterCommit,
    row: &mut SessionRow,
    now: i64,
    event: &str,
    data: Value,
) -> i64 {
    row.client_seq += 1;
    let ev = ClientEvent {
        seq: row.client_seq,
        at: now,
        event: event.to_string(),
        data,
    };
    after.client_events.push((row.id.clone(), ev.clone()));
    after.publish.push((row.id.clone(), ev));
    row.client_seq
}

/// Records a client event when what the browser sees changed.
fn push_client_view(
    after: &mut AfterCommit,
    row: &mut SessionRow,
    before: Value,
    now: i64,
) -> bool {
    let client_after = view::client_json(row);
    if client_after == before {
        return false;
    }
    let event = if row.state.status == SessionStatus::Ended {
        "ended"
    } else {
        "step"
    };
    push_client_event(after, row, now, event, client_after);
    true
}

/// A child ended: its parent gets `child.ended` (stored, deduplicated by
/// the child's id, applied if the parent still waits for this child).
async fn child_ended(
    engine: &Arc<Engine>,
    tx: &mut dyn Tx,
    child: &SessionRow,
    parent: &str,
    now: i64,
    after: &mut AfterCommit,
) -> Result<(), crate::store::Error> {
    let ev = NewEvent {
        source: format!("workflow:{}", child.workflow_id),
        event_key: child.id.clone(),
        namespace: "session".into(),
        reference: parent.to_string(),
        name: engine::CHILD_ENDED.into(),
        data: json!({
            "session_id": child.id,
            "outcome": child.state.outcome,
            "reason": child.state.reason,
            "output": child.state.output,
            "state": child.state.vars,
        }),
        received_at: now,
    };
    ingest(engine, tx, &ev, None, now, after).await?;
    Ok(())
}

/// While a parent waits in a `run` step, its browser presents what the
/// child presents (the QR code, the iframe): the parent's client secret is
/// the only one the browser has.
async fn child_view_to_parent(
    tx: &mut dyn Tx,
    child: &SessionRow,
    parent: &str,
    now: i64,
    after: &mut AfterCommit,
) -> Result<(), crate::store::Error> {
    let Some(mut row) = tx.lock_session(parent).await? else {
        return Ok(());
    };
    if row.state.child.as_deref() != Some(child.id.as_str()) {
        return Ok(());
    }
    let before = view::client_json(&row);
    row.state.present = child.state.present.clone();
    if push_client_view(after, &mut row, before, now) {
        row.updated_at = now;
        tx.update_session(&row).await?;
    }
    Ok(())
}

async fn apply_effect(
    engine: &Arc<Engine>,
    tx: &mut dyn Tx,
    row: &mut SessionRow,
    effect: Effect,
    now: i64,
    after: &mut AfterCommit,
) -> Result<(), crate::store::Error> {
    let lease_ms = i64::try_from(engine.config.engine.lease.as_millis()).unwrap_or(30_000);
    match effect {
        Effect::Call {
            visit,
            step,
            action,
            args,
            deadline_ms,
        } => {
            let args = match engine.connectors.prepare(&action, &args) {
                Some(prepared) => {
                    for (ns, reference) in &prepared.correlations {
                        tx.insert_correlation(ns, reference, &row.id).await?;
                    }
                    prepared.args
                }
                None => args,
            };
            let payload = json!({"visit": visit, "step": step, "action": action, "args": args, "deadline_ms": deadline_ms});
            let lease_until = deadline_ms.max(now) + lease_ms;
            let job = NewJob {
                session_id: row.id.clone(),
                kind: JobKind::Call,
                payload: payload.clone(),
                due_at: now,
                lease_until,
            };
            let id = tx.insert_job(&job).await?;
            after.run_now.push(Job {
                id,
                session_id: row.id.clone(),
                kind: JobKind::Call,
                payload,
                due_at: now,
                attempts: 0,
            });
        }
        Effect::Timer { visit, at_ms } => {
            let job = NewJob {
                session_id: row.id.clone(),
                kind: JobKind::Timer,
                payload: json!({"visit": visit}),
                due_at: at_ms,
                lease_until: 0,
            };
            tx.insert_job(&job).await?;
            after.earliest_timer = Some(after.earliest_timer.map_or(at_ms, |t| t.min(at_ms)));
        }
        Effect::Poll {
            visit,
            step,
            action,
            args,
            at_ms,
        } => {
            let payload = json!({"visit": visit, "step": step, "action": action, "args": args});
            let job = NewJob {
                session_id: row.id.clone(),
                kind: JobKind::Poll,
                payload,
                due_at: at_ms,
                lease_until: 0,
            };
            tx.insert_job(&job).await?;
            after.earliest_timer = Some(after.earliest_timer.map_or(at_ms, |t| t.min(at_ms)));
        }
        Effect::ClearWaitJobs => {
            tx.delete_session_jobs(&row.id, &[JobKind::Timer, JobKind::Poll])
                .await?;
        }
        Effect::Correlate {
            action,
            args,
            reference,
        } => {
            let ns = engine.connectors.namespace(&action, &args);
            tx.insert_correlation(&ns, &reference, &row.id).await?;
            if engine.store.is_shared() {
                after.adopt.push((ns, reference));
            }
        }
        Effect::StartChild {
            visit,
            step,
            workflow,
            session_id,
            input,
            deadline_ms,
        } => {
            let args = json!({"workflow": workflow, "session_id": session_id, "input": input});
            run_now(tx, row, after, json!({"visit": visit, "step": step, "action": "workflow.start", "args": args, "deadline_ms": deadline_ms}), now, now + lease_ms).await?;
        }
        Effect::CancelChild { session_id, reason } => {
            let args = json!({"session_id": session_id, "reason": reason});
            run_now(
                tx,
                row,
                after,
                json!({"action": "workflow.cancel", "args": args}),
                now,
                now + lease_ms,
            )
            .await?;
        }
        // Children are internal: the customer hears about the parent only.
        Effect::Notify { .. } if engine::parent_of(&row.id).is_some() => {}
        Effect::Notify { event } => {
            let event_type = event.event_type();
            let payload = json!({
                "type": event_type,
                "timestamp": view::time_json(Some(now)),
                "data": view::session_json(row),
            });
            for ep in &engine.config.webhooks.endpoints {
                if !ep.events.iter().any(|e| e == event_type) {
                    continue;
                }
                let d = NewDelivery {
                    id: ids::new_id("msg"),
                    session_id: row.id.clone(),
                    endpoint: ep.url.clone(),
                    event_type: event_type.to_string(),
                    payload: payload.clone(),
                    created_at: now,
                };
                tx.insert_delivery(&d).await?;
                // The job carries what it sends, so a delivery needs no extra read.
                let jp = json!({"delivery": d.id, "endpoint": d.endpoint, "body": d.payload});
                let job = NewJob {
                    session_id: row.id.clone(),
                    kind: JobKind::Deliver,
                    payload: jp.clone(),
                    due_at: now,
                    lease_until: now
                        + lease_ms
                        + i64::try_from(engine.config.webhooks.timeout.as_millis())
                            .unwrap_or(10_000),
                };
                let id = tx.insert_job(&job).await?;
                after.run_now.push(Job {
                    id,
                    session_id: row.id.clone(),
                    kind: JobKind::Deliver,
                    payload: jp,
                    due_at: now,
                    attempts: 0,
                });
            }
        }
    }
    Ok(())
}

/// How long a job claimed for running now is leased.
fn lease_ms(engine: &Engine) -> i64 {
    i64::try_from(engine.config.engine.lease.as_millis()).unwrap_or(30_000)
}

/// A call job that the executor runs as soon as the batch commits.
pub(super) async fn run_now(
    tx: &mut dyn Tx,
    row: &SessionRow,
    after: &mut AfterCommit,
    payload: Value,
    now: i64,
    lease_until: i64,
) -> Result<(), crate::store::Error> {
    let job = NewJob {
        session_id: row.id.clone(),
        kind: JobKind::Call,
        payload: payload.clone(),
        due_at: now,
        lease_until,
    };
    let id = tx.insert_job(&job).await?;
    after.run_now.push(Job {
        id,
        session_id: row.id.clone(),
        kind: JobKind::Call,
        payload,
        due_at: now,
        attempts: 0,
    });
    Ok(())
}
