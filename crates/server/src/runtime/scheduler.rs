//! The scheduler: claims due jobs (timers, polls, retries, anything a crash
//! left behind) with a lease and runs them. It sleeps until the next due job
//! or until woken; it never polls the database in a tight loop. Provider
//! status polls are paced by `engine.poll_rate` (see `poll_budget`).

use super::Engine;
use super::poll_budget::PollBudget;
use crate::ids;
use crate::store::{JobKind, NextDue};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

const CLAIM_BATCH: i64 = 512;
/// Longest sleep, and at most one lease: a lease another node writes or
/// renews sends no wake-up, so this bounds the delay before taking over the
/// jobs of a node that died (about one lease after its last renewal).
const MAX_SLEEP_MS: i64 = 30_000;
/// Pause before looking again at ready jobs that were locked by others.
const BUSY_RETRY_MS: i64 = 20;

pub(super) async fn run(engine: Arc<Engine>) {
    let lease_ms = i64::try_from(engine.config.engine.lease.as_millis()).unwrap_or(30_000);
    let max_sleep_ms = lease_ms.min(MAX_SLEEP_MS);
    let mut polls = PollBudget::new(engine.config.engine.poll_rate, ids::now_ms());
    loop {
        if engine.is_stopping() {
            return;
        }
        let now = ids::now_ms();
        // Announce the planned wake-up first so that a job committed while we
        // query is not missed (the committer compares against it).
        engine.next_wake.store(now, Ordering::Relaxed);
        let poll_limit = polls.available(now, CLAIM_BATCH);
        let claimed = match engine
            .store
            .claim_due_jobs(now, CLAIM_BATCH, poll_limit, now + lease_ms)
            .await
        {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::error!(error = %e, "cannot claim jobs; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let claimed_polls = claimed.iter().filter(|j| j.kind == JobKind::Poll).count();
        polls.spend(claimed_polls);
        let full = (claimed.len() - claimed_polls) as i64 == CLAIM_BATCH
            || (claimed_polls as i64 == CLAIM_BATCH && poll_limit == CLAIM_BATCH);
        let none = claimed.is_empty();
        for job in claimed {
            super::executor::spawn_claimed(engine.clone(), job);
        }
        if full {
            tokio::task::yield_now().await;
            continue;
        }
        let next = match engine.store.next_due(now).await {
            Ok(due) => NextDue {
                // Due polls wait for the budget; other jobs never do.
                polls: due.polls.map(|t| polls.start_at(t)),
                other: due.other,
            }
            .earliest()
            .unwrap_or(now + max_sleep_ms)
            .min(now + max_sleep_ms),
            Err(e) => {
                tracing::error!(error = %e, "cannot read next due job");
                now + 1_000
            }
        };
        // A ready job that could not be claimed is locked by a transaction
        // (another node's claim, or a commit deleting it): do not spin on it.
        let next = if none && next <= now {
            now + BUSY_RETRY_MS
        } else {
            next
        };
        engine.next_wake.store(next, Ordering::Relaxed);
        let sleep_ms = u64::try_from((next - ids::now_ms()).max(0)).unwrap_or(0);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(sleep_ms)) => {}
            _ = engine.wake.notified() => {}
        }
    }
}
