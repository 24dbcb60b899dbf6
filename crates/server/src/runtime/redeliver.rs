//! Redelivery of customer webhooks (the console's deliveries page and
//! `POST /v1/deliveries/{id}/redeliver`, `/v1/deliveries/redeliver`).
//!
//! A delivered or failed delivery becomes pending again and gets a new job
//! that makes one attempt now, with the same `webhook-id` (the delivery id,
//! as Standard Webhooks asks, so that a receiver that did get it once
//! deduplicates) and the next attempt number. If that attempt fails the
//! delivery is failed again, without a new retry schedule: the operator
//! asked for one send. A pending delivery already has its job: that job
//! (and the session's other pending deliveries') is moved to now.
//! The status change, the job and the audit entry commit together in the
//! committer's batch (`Work::Redeliver`).

use super::{Command, Engine, Error, Reply, Work};
use crate::audit::Actor;
use crate::store::{Delivery, DeliveryFilter, JobKind};
use std::sync::Arc;
use tokio::sync::oneshot;

/// Deliveries a bulk redelivery queues per committer command.
const BATCH: i64 = 100;

/// What the committer is asked to redeliver.
pub(crate) struct RedeliverRequest {
    /// `(delivery id, its session)`, read before.
    pub deliveries: Vec<(String, String)>,
    pub actor: Actor,
}

/// A bulk redelivery's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    /// Deliveries queued for an attempt now.
    pub queued: u64,
    /// True when `max` was reached and more matched.
    pub more: bool,
}

impl Engine {
    /// Sends one delivery again now; the delivery as it is afterwards.
    pub async fn redeliver(self: &Arc<Self>, id: &str, actor: Actor) -> Result<Delivery, Error> {
        let d = self
            .store
            .delivery(id)
            .await?
            .ok_or(Error::DeliveryNotFound)?;
        self.requeue(vec![d.clone()], actor).await?;
        Ok(self.store.delivery(id).await?.unwrap_or(d))
    }

    /// Sends again, now, up to `max` deliveries of the filter (failed ones,
    /// after an outage), newest first, in committer commands of `BATCH`.
    pub async fn redeliver_matching(
        self: &Arc<Self>,
        filter: DeliveryFilter,
        actor: Actor,
        max: u64,
    ) -> Result<Replayed, Error> {
        let mut queued = 0u64;
        let mut before = None;
        loop {
            let left = i64::try_from(max - queued).unwrap_or(BATCH);
            let page = self
                .store
                .list_deliveries(&DeliveryFilter {
                    before: before.clone(),
                    limit: BATCH.min(left),
                    ..filter.clone()
                })
                .await?;
            let Some(last) = page.last() else {
                return Ok(Replayed {
                    queued,
                    more: false,
                });
            };
            before = Some(last.id.clone());
            let full = i64::try_from(page.len()).unwrap_or(0) == BATCH.min(left);
            queued += u64::try_from(page.len()).unwrap_or(0);
            self.requeue(page, actor.clone()).await?;
            if queued >= max {
                // One more read says whether anything was left out.
                let rest = self
                    .store
                    .list_deliveries(&DeliveryFilter {
                        before,
                        limit: 1,
                        ..filter
                    })
                    .await?;
                return Ok(Replayed {
                    queued,
                    more: !rest.is_empty(),
                });
            }
            if !full {
                return Ok(Replayed {
                    queued,
                    more: false,
                });
            }
        }
    }

    /// Requeues these deliveries in one committed batch, then moves the
    /// jobs of those that were pending already to now.
    async fn requeue(self: &Arc<Self>, list: Vec<Delivery>, actor: Actor) -> Result<(), Error> {
        let (reply, rx) = oneshot::channel();
        let req = RedeliverRequest {
            deliveries: list
                .iter()
                .map(|d| (d.id.clone(), d.session_id.clone()))
                .collect(),
            actor,
        };
        self.send(Command {
            work: Work::Redeliver(Arc::new(req)),
            reply: Reply::Redeliver(reply),
        })
        .await?;
        let requeued = rx.await.map_err(|_| Error::ShuttingDown)??;
        let now = crate::ids::now_ms();
        let mut sessions: Vec<&str> = list
            .iter()
            .filter(|d| !requeued.contains(&d.id))
            .map(|d| d.session_id.as_str())
            .collect();
        sessions.sort_unstable();
        sessions.dedup();
        let mut moved = 0;
        for session_id in sessions {
            moved += self
                .store
                .expedite_jobs(session_id, JobKind::Deliver, now)
                .await?;
        }
        if moved > 0 {
            self.next_wake
                .store(now, std::sync::atomic::Ordering::Relaxed);
            self.wake.notify_one();
        }
        Ok(())
    }
}
