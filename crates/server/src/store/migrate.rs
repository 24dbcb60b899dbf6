//! The one migration runner of both backends. A backend supplies its
//! migrations (the files under migrations/<backend>/, embedded below) and a
//! `Ledger`: the few statements that read and write `schema_migrations` in
//! its dialect and run a script in a transaction under its lock. The order,
//! the refusal of a newer schema (schema.rs) and what a run reports are
//! decided here, once.

use super::Result;
use super::schema::{self, Migrated, Migration};
use async_trait::async_trait;

/// Embeds the migrations of one backend folder, in order. A new migration
/// is one line here and one file in each folder (the test below checks
/// that every file is embedded).
macro_rules! embed {
    ($dir:literal: $($version:literal $name:literal),* $(,)?) => {
        &[$(Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"), "/migrations/", $dir, "/", $name, ".sql"
            )),
        }),*]
    };
}

macro_rules! migrations {
    ($dir:literal) => {
        embed!($dir:
            1 "0001_init",
            2 "0002_job_classes",
            3 "0003_api_key_management",
            4 "0004_nodes",
            5 "0005_audit_log",
            6 "0006_erasure",
            7 "0007_reviews",
            8 "0008_operators",
            9 "0009_console_sessions",
        )
    };
}

pub const SQLITE: &[Migration] = migrations!("sqlite");
pub const POSTGRES: &[Migration] = migrations!("postgres");

/// A backend's access to `schema_migrations`.
#[async_trait]
pub trait Ledger: Send {
    /// Creates `schema_migrations`, and its `backward_compatible` column,
    /// where missing.
    async fn prepare(&mut self) -> Result<()>;
    /// `(version, backward_compatible)` of every migration the database
    /// has; nothing when `schema_migrations` does not exist.
    async fn applied(&mut self) -> Result<Vec<(i64, bool)>>;
    /// Versions an earlier migration tool applied: recorded without running
    /// their script again.
    async fn adopted(&mut self) -> Result<Vec<i64>> {
        Ok(Vec::new())
    }
    /// In one transaction, under the backend's migration lock: unless `m`
    /// is recorded already (another node may have just applied it), runs
    /// its script when `run` and records it. True when this call recorded it.
    async fn apply(&mut self, m: &Migration, run: bool) -> Result<bool>;
}

/// Applies the migrations the database lacks, in order, each once in its
/// own transaction, after checking that no newer release migrated it.
pub async fn run(db: &mut dyn Ledger, migrations: &[Migration]) -> Result<Migrated> {
    db.prepare().await?;
    let newer_compatible = schema::check_newer(&db.applied().await?, schema::newest(migrations))?;
    let adopted = db.adopted().await?;
    let mut applied = Vec::new();
    for m in migrations {
        let run = !adopted.contains(&m.version);
        if db.apply(m, run).await? && run {
            applied.push(m.name.to_string());
        }
    }
    let version = db
        .applied()
        .await?
        .into_iter()
        .map(|(v, _)| v)
        .max()
        .unwrap_or(0);
    Ok(Migrated {
        applied,
        version,
        newer_compatible,
    })
}

/// Versions this build knows that the database has not applied (all of
/// them for an empty database).
pub async fn pending(db: &mut dyn Ledger, migrations: &[Migration]) -> Result<Vec<i64>> {
    let applied: Vec<i64> = db.applied().await?.into_iter().map(|(v, _)| v).collect();
    Ok(migrations
        .iter()
        .map(|m| m.version)
        .filter(|v| !applied.contains(v))
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Every file in migrations/<backend> is embedded, under its number and
    /// name, and both backends have the same migrations.
    #[test]
    fn every_migration_is_embedded() {
        for (dir, embedded) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(dir);
            let mut files: Vec<(i64, String, String)> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "sql"))
                .map(|p| {
                    let name = p.file_stem().unwrap().to_string_lossy().into_owned();
                    let version = name.split('_').next().unwrap().parse().unwrap();
                    (version, name, std::fs::read_to_string(&p).unwrap())
                })
                .collect();
            files.sort();
            let embedded: Vec<(i64, String, String)> = embedded
                .iter()
                .map(|m| (m.version, m.name.to_string(), m.sql.to_string()))
                .collect();
            assert_eq!(embedded, files, "add new migrations to `migrations!`");
        }
    }

    /// A ledger in memory: what the runner asks for, and in which order.
    #[derive(Default)]
    struct Memory {
        rows: Vec<(i64, bool)>,
        adopted: Vec<i64>,
        ran: Vec<i64>,
    }

    #[async_trait]
    impl Ledger for Memory {
        async fn prepare(&mut self) -> Result<()> {
            Ok(())
        }
        async fn applied(&mut self) -> Result<Vec<(i64, bool)>> {
            Ok(self.rows.clone())
        }
        async fn adopted(&mut self) -> Result<Vec<i64>> {
            Ok(self.adopted.clone())
        }
        async fn apply(&mut self, m: &Migration, run: bool) -> Result<bool> {
            if self.rows.iter().any(|(v, _)| *v == m.version) {
                return Ok(false);
            }
            if run {
                self.ran.push(m.version);
            }
            self.rows.push((m.version, m.backward_compatible()));
            Ok(true)
        }
    }

    #[tokio::test]
    async fn applies_in_order_reports_and_skips_adopted_scripts() {
        let mut db = Memory {
            adopted: vec![1],
            ..Memory::default()
        };
        let m = run(&mut db, SQLITE).await.unwrap();
        assert_eq!(db.ran, vec![2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(
            m.applied,
            [
                "0002_job_classes",
                "0003_api_key_management",
                "0004_nodes",
                "0005_audit_log",
                "0006_erasure",
                "0007_reviews",
                "0008_operators",
                "0009_console_sessions"
            ]
        );
        assert_eq!(m.version, 9);
        assert!(pending(&mut db, SQLITE).await.unwrap().is_empty());
        let again = run(&mut db, SQLITE).await.unwrap();
        assert!(again.applied.is_empty());
        assert_eq!(again.to_string(), "database is up to date at version 9");
    }

    #[tokio::test]
    async fn refuses_a_newer_schema_before_applying_anything() {
        let mut db = Memory {
            rows: vec![(99, false)],
            ..Memory::default()
        };
        let e = run(&mut db, POSTGRES).await.err().unwrap().to_string();
        assert!(e.contains("version 99"), "{e}");
        assert!(db.ran.is_empty());
        let mut db = Memory {
            rows: vec![(99, true)],
            ..Memory::default()
        };
        let m = run(&mut db, POSTGRES).await.unwrap();
        assert_eq!(m.newer_compatible, vec![99]);
        assert_eq!(m.version, 99);
    }
}
