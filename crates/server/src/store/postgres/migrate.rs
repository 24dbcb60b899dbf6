//! The PostgreSQL schema migrations: embedded, applied in order, each once
//! in its own transaction, under an advisory lock so that nodes starting
//! together do not race.

use super::super::{Error, Result};
use sqlx::PgPool;

/// Migrations, in order, embedded in the binary.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        include_str!("../../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        include_str!("../../../migrations/postgres/0002_job_classes.sql"),
    ),
];
/// Advisory lock key held while migrating ("gangway" in ASCII).
const MIGRATION_LOCK: i64 = 0x67616e67776179;

pub(super) async fn run(pool: &PgPool) -> Result<()> {
    let mut conn = pool.acquire().await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT)",
    )
    .execute(&mut *conn)
    .await
    .or_else(|e| match &e {
        // Two nodes creating the table at once: the other one won.
        sqlx::Error::Database(d) if d.code().as_deref() == Some("23505") => Ok(Default::default()),
        _ => Err(e),
    })?;
    for &(version, sql) in MIGRATIONS {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        let applied = sqlx::query("SELECT 1 FROM schema_migrations WHERE version = $1")
            .bind(version)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !applied {
            // No arguments: the simple protocol runs the whole script.
            sqlx::Executor::execute(&mut *tx, sql)
                .await
                .map_err(|e| Error::Corrupt(format!("postgres: migration {version}: {e}")))?;
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(version)
                .bind(crate::ids::now_ms())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Every file in migrations/postgres is embedded, under its number.
    #[test]
    fn every_migration_is_embedded() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
        let mut files: Vec<(i64, String)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                let version = name.split('_').next().unwrap().parse().unwrap();
                (version, std::fs::read_to_string(&p).unwrap())
            })
            .collect();
        files.sort();
        let embedded: Vec<(i64, String)> = MIGRATIONS
            .iter()
            .map(|(v, sql)| (*v, sql.to_string()))
            .collect();
        assert_eq!(embedded, files, "add new migrations to MIGRATIONS");
    }
}
