//! Metrics reads on SQLite (store/observe.rs).

use super::super::Result;
use super::super::observe::{JobBacklog, Observe, PoolStats};
use super::{MAX_CONNECTIONS, SqliteStore};
use async_trait::async_trait;

#[async_trait]
impl Observe for SqliteStore {
    async fn job_backlog(&self, now: i64) -> Result<Vec<JobBacklog>> {
        self.run(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT kind, COUNT(*), MIN(MAX(due_at, lease_until)) FROM jobs
                 WHERE MAX(due_at, lease_until) <= ? GROUP BY kind ORDER BY kind",
            )?;
            let rows = stmt
                .query_map([now], |r| {
                    Ok(JobBacklog {
                        class: r.get(0)?,
                        ready: r.get(1)?,
                        oldest_ready_at: r.get(2)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    fn pool_stats(&self) -> PoolStats {
        let state = self.pool.lock();
        let idle = state.idle.len() as u64;
        PoolStats {
            in_use: (state.open as u64).saturating_sub(idle),
            idle,
            max: MAX_CONNECTIONS as u64,
            waiting: state.waiting as u64,
        }
    }
}
