//! A transition's effects in the batch's transaction: jobs (calls run at
//! once, timers and polls for later), correlations, child sessions and
//! customer webhook deliveries.

use super::*;

pub(super) async fn apply_effect(
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
            not_before_ms,
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
            let task = Task::Call(Call {
                visit,
                step,
                action,
                args,
                deadline_ms,
                trace: row.state.trace.clone(),
            });
            // A `retry` re-run is due later: the scheduler claims it then.
            match not_before_ms.filter(|at| *at > now) {
                Some(at) => {
                    insert_job(tx, row, &task, at, 0).await?;
                    after.wake_at(at);
                }
                // One short lease, renewed by the running node while the
                // call is in flight (executor::hold_lease): a node killed
                // mid-call hands the call to another within about one lease,
                // not at the step's deadline. A retried start is safe: the
                // idempotency key (`<session>:<visit>`) is the same on every
                // node, and `prepare`d references were committed above.
                None => run_now(tx, row, after, task, now, now + lease_ms).await?,
            }
        }
        Effect::Timer { visit, at_ms } => {
            insert_job(tx, row, &Task::Timer { visit }, at_ms, 0).await?;
            after.wake_at(at_ms);
        }
        Effect::Poll {
            visit,
            step,
            action,
            args,
            at_ms,
        } => {
            let task = Task::Poll(Poll {
                visit,
                step,
                action,
                args,
                trace: row.state.trace.clone(),
            });
            insert_job(tx, row, &task, at_ms, 0).await?;
            after.wake_at(at_ms);
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
            let task = Task::StartChild {
                visit,
                step,
                deadline_ms,
                child: Child {
                    workflow,
                    session_id,
                    input,
                },
            };
            run_now(tx, row, after, task, now, now + lease_ms).await?;
        }
        Effect::CancelChild { session_id, reason } => {
            let task = Task::CancelChild(Cancel {
                session_id,
                reason: Some(reason),
            });
            run_now(tx, row, after, task, now, now + lease_ms).await?;
        }
        Effect::OpenReview {
            step,
            group,
            facts,
            since_ms,
            deadline_ms,
        } => {
            tx.open_review(&crate::store::ReviewRow {
                session_id: row.id.clone(),
                workflow_id: row.workflow_id.clone(),
                version: row.version,
                reference: row.reference.clone(),
                step,
                group,
                facts,
                since_ms,
                deadline_ms,
                claimed_by: None,
                claim_until: 0,
            })
            .await?;
        }
        Effect::CloseReview => tx.close_review(&row.id).await?,
        Effect::Notify { event } => {
            notify(engine, tx, row, event.event_type(), now, after).await?;
        }
    }
    Ok(())
}

/// A customer webhook about `row` to every endpoint that takes
/// `event_type`: a delivery row and its job, run at once.
pub(super) async fn notify(
    engine: &Arc<Engine>,
    tx: &mut dyn Tx,
    row: &SessionRow,
    event_type: &str,
    now: i64,
    after: &mut AfterCommit,
) -> Result<(), crate::store::Error> {
    // Children are internal: the customer hears about the parent only.
    if engine::parent_of(&row.id).is_some() {
        return Ok(());
    }
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
        let task = Task::Deliver(Deliver {
            delivery: d.id,
            endpoint: Some(d.endpoint),
            body: Some(d.payload),
            trace: row.state.trace.clone(),
            once: false,
        });
        let lease_until = now
            + lease_ms(engine)
            + i64::try_from(engine.config.webhooks.timeout.as_millis()).unwrap_or(10_000);
        run_now(tx, row, after, task, now, lease_until).await?;
    }
    Ok(())
}

/// How long a job claimed for running now is leased.
pub(super) fn lease_ms(engine: &Engine) -> i64 {
    i64::try_from(engine.config.engine.lease.as_millis()).unwrap_or(30_000)
}

/// A job that the executor runs as soon as the batch commits, leased
/// until `lease_until`.
pub(super) async fn run_now(
    tx: &mut dyn Tx,
    row: &SessionRow,
    after: &mut AfterCommit,
    task: Task,
    now: i64,
    lease_until: i64,
) -> Result<(), crate::store::Error> {
    let id = insert_job(tx, row, &task, now, lease_until).await?;
    after.run_now.push(Ready {
        id,
        session_id: row.id.clone(),
        attempts: 0,
        task,
    });
    Ok(())
}

/// Stores a job of the session: the scheduler claims it once due, unless
/// it is leased (`lease_until`, for a job run at once).
pub(super) async fn insert_job(
    tx: &mut dyn Tx,
    row: &SessionRow,
    task: &Task,
    due_at: i64,
    lease_until: i64,
) -> Result<i64, crate::store::Error> {
    let job = NewJob {
        session_id: row.id.clone(),
        kind: task.kind(),
        payload: task.encode(),
        due_at,
        lease_until,
    };
    tx.insert_job(&job).await
}
