//! A redelivery in the committer's batch (runtime/redeliver.rs): the
//! status change, the job and the audit entry commit together.

use super::*;
use crate::runtime::redeliver::RedeliverRequest;

/// In the committer's transaction: each delivery that is not pending
/// becomes pending with a job that runs once the batch commits; every one
/// asked for is audited. The ids of those requeued.
pub(super) async fn apply(
    engine: &Arc<Engine>,
    tx: &mut dyn Tx,
    req: &RedeliverRequest,
    now: i64,
    after: &mut AfterCommit,
) -> Result<Vec<String>, crate::store::Error> {
    let lease_until = now
        + i64::try_from(engine.config.engine.lease.as_millis()).unwrap_or(30_000)
        + i64::try_from(engine.config.webhooks.timeout.as_millis()).unwrap_or(10_000);
    let mut requeued = Vec::new();
    for (id, session_id) in &req.deliveries {
        let was_pending = match tx.requeue_delivery(id, now).await? {
            Some(session_id) => {
                let task = Task::Deliver(Deliver {
                    delivery: id.clone(),
                    endpoint: None,
                    body: None,
                    trace: None,
                    once: true,
                });
                let job = NewJob {
                    session_id: session_id.clone(),
                    kind: task.kind(),
                    payload: task.encode(),
                    due_at: now,
                    lease_until,
                };
                let job_id = tx.insert_job(&job).await?;
                after.run_now.push(Ready {
                    id: job_id,
                    session_id,
                    attempts: 0,
                    task,
                });
                requeued.push(id.clone());
                false
            }
            None => true,
        };
        let mut entry = crate::audit::session(
            crate::audit::action::DELIVERY_REDELIVERED,
            &req.actor,
            session_id,
            now,
            json!({"was_pending": was_pending}),
        );
        entry.target = Some(id.clone());
        after.audit.push(entry);
    }
    Ok(requeued)
}
