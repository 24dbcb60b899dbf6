//! `schema_migrations` on SQLite, for the shared runner (store/migrate.rs).
//! Statements run inline on the connection (the runner is driven on a
//! blocking thread: nothing here awaits); each migration runs in a
//! `BEGIN IMMEDIATE` transaction, which holds the database's write lock.

use super::super::migrate::{self, Ledger};
use super::super::schema::{Migrated, Migration};
use super::super::{Error, Result};
use async_trait::async_trait;
use rusqlite::Connection;

struct SqliteLedger<'a>(&'a mut Connection);

impl SqliteLedger<'_> {
    fn has_table(&self, name: &str) -> Result<bool> {
        Ok(self
            .0
            .prepare_cached("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?")?
            .exists([name])?)
    }
}

#[async_trait]
impl Ledger for SqliteLedger<'_> {
    async fn prepare(&mut self) -> Result<()> {
        self.0.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER)",
        )?;
        let has_flag = self
            .0
            .prepare_cached(
                "SELECT 1 FROM pragma_table_info('schema_migrations') WHERE name = 'backward_compatible'",
            )?
            .exists([])?;
        if !has_flag {
            self.0.execute_batch(
                "ALTER TABLE schema_migrations ADD COLUMN backward_compatible INTEGER NOT NULL DEFAULT 0",
            )?;
        }
        Ok(())
    }

    async fn applied(&mut self) -> Result<Vec<(i64, bool)>> {
        if !self.has_table("schema_migrations")? {
            return Ok(Vec::new());
        }
        let has_flag = self
            .0
            .prepare_cached(
                "SELECT 1 FROM pragma_table_info('schema_migrations') WHERE name = 'backward_compatible'",
            )?
            .exists([])?;
        let sql = if has_flag {
            "SELECT version, backward_compatible FROM schema_migrations"
        } else {
            "SELECT version, 0 FROM schema_migrations"
        };
        let mut stmt = self.0.prepare_cached(sql)?;
        Ok(stmt
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? != 0)))?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// A database made by an earlier build that migrated with sqlx: only
    /// the initial schema was ever applied that way.
    async fn adopted(&mut self) -> Result<Vec<i64>> {
        if !self.has_table("_sqlx_migrations")? {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .0
            .prepare_cached("SELECT version FROM _sqlx_migrations")?;
        let versions: Vec<i64> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(versions.into_iter().filter(|v| *v == 1).collect())
    }

    async fn apply(&mut self, m: &Migration, run: bool) -> Result<bool> {
        let tx = self
            .0
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let applied = tx
            .prepare_cached("SELECT 1 FROM schema_migrations WHERE version = ?")?
            .exists([m.version])?;
        if !applied {
            if run {
                tx.execute_batch(m.sql)
                    .map_err(|e| Error::Corrupt(format!("sqlite: migration {}: {e}", m.name)))?;
            }
            tx.prepare_cached(
                "INSERT INTO schema_migrations (version, applied_at, backward_compatible) VALUES (?, ?, ?)",
            )?
            .execute([
                m.version,
                crate::ids::now_ms(),
                i64::from(m.backward_compatible()),
            ])?;
        }
        tx.commit()?;
        Ok(!applied)
    }
}

/// Applies the migrations the database lacks (on a blocking thread).
pub(super) fn run(conn: &mut Connection) -> Result<Migrated> {
    futures::executor::block_on(migrate::run(&mut SqliteLedger(conn), migrate::SQLITE))
}

/// Versions this build knows that the database has not applied.
pub(super) fn pending(conn: &mut Connection) -> Result<Vec<i64>> {
    futures::executor::block_on(migrate::pending(&mut SqliteLedger(conn), migrate::SQLITE))
}
