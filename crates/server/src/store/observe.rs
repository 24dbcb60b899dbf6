//! What `/metrics` reads from the store: the job backlog (cluster-wide: the
//! same on every node) and this process's connection pool.

use super::Result;
use async_trait::async_trait;

/// Ready jobs of one class that no node runs yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobBacklog {
    /// `call`, `timer`, `poll` or `deliver`.
    pub class: String,
    pub ready: i64,
    /// When the longest-waiting of them became ready (Unix ms).
    pub oldest_ready_at: i64,
}

/// This process's database connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub in_use: u64,
    pub idle: u64,
    pub max: u64,
    /// Callers waiting for a connection.
    pub waiting: u64,
}

#[async_trait]
pub trait Observe {
    /// Jobs that are due and not leased, by class, at `now`.
    async fn job_backlog(&self, now: i64) -> Result<Vec<JobBacklog>>;
    fn pool_stats(&self) -> PoolStats;
}
