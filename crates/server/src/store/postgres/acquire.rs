//! Connections taken from the pool, counted while they are waited for:
//! sqlx's pool tells how many connections are open and idle but not how many
//! callers wait for one, which is what on-call reads to tell a pool that is
//! too small from a database that is slow (`gangway_db_pool_waiting`).

use super::super::Result;
use super::PgStore;
use sqlx::Postgres;
use sqlx::pool::PoolConnection;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts one caller from creation until drop, so that a cancelled wait
/// (a client that went away) is uncounted too.
struct Waiting<'a>(&'a AtomicU64);

impl<'a> Waiting<'a> {
    fn enter(count: &'a AtomicU64) -> Waiting<'a> {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl PgStore {
    /// A connection of this node's pool (every statement goes through here
    /// or [`PgStore::begin_tx`]).
    pub(super) async fn conn(&self) -> Result<PoolConnection<Postgres>> {
        let _waiting = Waiting::enter(&self.waiting);
        Ok(self.pool.acquire().await?)
    }

    /// A transaction on a counted connection. `Transaction::begin` is what
    /// `Pool::begin` calls after its own (uncounted) acquire.
    pub(super) async fn begin_tx(&self) -> Result<sqlx::Transaction<'static, Postgres>> {
        let conn = self.conn().await?;
        Ok(sqlx::Transaction::begin(conn, None).await?)
    }

    /// Callers waiting for a connection now.
    pub(super) fn waiting(&self) -> u64 {
        self.waiting.load(Ordering::Relaxed)
    }
}
