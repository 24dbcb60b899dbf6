//! `schema_migrations` on PostgreSQL, for the shared runner (store/migrate.rs):
//! each migration in its own transaction under an advisory lock, so that
//! nodes starting together do not race.

use super::super::migrate::{self, Ledger};
use super::super::schema::{Migrated, Migration};
use super::super::{Error, Result};
use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::pool::PoolConnection;

/// Advisory lock key held while migrating ("gangway" in ASCII).
const MIGRATION_LOCK: i64 = 0x67616e67776179;

/// Two nodes creating the same table or column at once: the other one won.
fn raced(e: sqlx::Error) -> std::result::Result<(), sqlx::Error> {
    match &e {
        sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("23505" | "42701")) => {
            Ok(())
        }
        _ => Err(e),
    }
}

struct PgLedger(PoolConnection<sqlx::Postgres>);

#[async_trait]
impl Ledger for PgLedger {
    async fn prepare(&mut self) -> Result<()> {
        let conn = &mut *self.0;
        // A runtime user has no CREATE on the schema (docs/deploy.md, "Users
        // and privileges"), and PostgreSQL checks it even for `IF NOT
        // EXISTS`: only create the table, or add its column, when missing.
        let exists: bool =
            sqlx::query_scalar("SELECT to_regclass('schema_migrations') IS NOT NULL")
                .fetch_one(&mut *conn)
                .await?;
        if !exists {
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT)",
            )
            .execute(&mut *conn)
            .await
            .map(|_| ())
            .or_else(raced)
            .map_err(|e| schema_error("creating schema_migrations", e))?;
        }
        let flagged: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns
                            WHERE table_name = 'schema_migrations' AND column_name = 'backward_compatible'
                              AND table_schema = current_schema())",
        )
        .fetch_one(&mut *conn)
        .await?;
        if !flagged {
            sqlx::query(
                "ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS backward_compatible BOOLEAN NOT NULL DEFAULT FALSE",
            )
            .execute(&mut *conn)
            .await
            .map(|_| ())
            .or_else(raced)
            .map_err(|e| schema_error("adding schema_migrations.backward_compatible", e))?;
        }
        Ok(())
    }

    async fn applied(&mut self) -> Result<Vec<(i64, bool)>> {
        let flagged = sqlx::query_as("SELECT version, backward_compatible FROM schema_migrations")
            .fetch_all(&mut *self.0)
            .await;
        match flagged {
            Ok(rows) => Ok(rows),
            // No table: nothing applied yet.
            Err(sqlx::Error::Database(d)) if d.code().as_deref() == Some("42P01") => Ok(Vec::new()),
            // A table from before the flag (asked before `prepare`): none
            // of those migrations was marked.
            Err(sqlx::Error::Database(d)) if d.code().as_deref() == Some("42703") => {
                let versions: Vec<i64> =
                    sqlx::query_scalar("SELECT version FROM schema_migrations")
                        .fetch_all(&mut *self.0)
                        .await?;
                Ok(versions.into_iter().map(|v| (v, false)).collect())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn apply(&mut self, m: &Migration, run: bool) -> Result<bool> {
        let mut tx = sqlx::Connection::begin(&mut *self.0).await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        let applied = sqlx::query("SELECT 1 FROM schema_migrations WHERE version = $1")
            .bind(m.version)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if applied {
            tx.commit().await?;
            return Ok(false);
        }
        if run {
            // No arguments: the simple protocol runs the whole script.
            sqlx::Executor::execute(&mut *tx, m.sql)
                .await
                .map_err(|e| schema_error(&format!("migration {}", m.name), e))?;
        }
        sqlx::query(
            "INSERT INTO schema_migrations (version, applied_at, backward_compatible) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(crate::ids::now_ms())
        .bind(m.backward_compatible())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

pub(super) async fn run(pool: &PgPool) -> Result<Migrated> {
    migrate::run(&mut PgLedger(pool.acquire().await?), migrate::POSTGRES).await
}

/// Versions this build knows that the database has not applied.
pub(super) async fn pending(pool: &PgPool) -> Result<Vec<i64>> {
    migrate::pending(&mut PgLedger(pool.acquire().await?), migrate::POSTGRES).await
}

/// A migration that failed. A user without the right to change the schema
/// (the runtime user of docs/deploy.md) is told to migrate as the owner;
/// anything else is reported as it is (never as corrupt data).
fn schema_error(what: &str, e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Database(d) if d.code().as_deref() == Some("42501") => {
            Error::Connect(format!(
                "{what}: {}: this database user may not change the schema; run `gangway migrate` \
             with the schema owner's database_url first (docs/deploy.md, \"Users and privileges\")",
                d.message()
            ))
        }
        _ => Error::Connect(format!("{what}: {e}")),
    }
}
