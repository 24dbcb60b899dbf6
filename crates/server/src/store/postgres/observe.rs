//! Metrics reads on PostgreSQL (store/observe.rs).

use super::super::Result;
use super::super::observe::{JobBacklog, Observe, PoolStats};
use super::PgStore;
use async_trait::async_trait;

#[async_trait]
impl Observe for PgStore {
    async fn job_backlog(&self, now: i64) -> Result<Vec<JobBacklog>> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT kind, COUNT(*), MIN(GREATEST(due_at, lease_until)) FROM jobs
             WHERE GREATEST(due_at, lease_until) <= $1 GROUP BY kind ORDER BY kind",
        )
        .bind(now)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(class, ready, oldest_ready_at)| JobBacklog {
                class,
                ready,
                oldest_ready_at,
            })
            .collect())
    }

    fn pool_stats(&self) -> PoolStats {
        let size = u64::from(self.pool.size());
        let idle = u64::try_from(self.pool.num_idle()).unwrap_or(u64::MAX);
        PoolStats {
            in_use: size.saturating_sub(idle),
            idle,
            max: u64::from(self.pool.options().get_max_connections()),
            waiting: self.waiting(),
        }
    }
}
