//! What both backends' migration runners share: the migrations a build
//! knows (numbered, named after their file), what a run applied, and the
//! rule for a database that a newer release migrated.
//!
//! A migration that older binaries can run against (it only adds: a table,
//! a nullable column, an index) says so with the line
//! `-- gangway: backward-compatible` in its file; the runner records that in
//! `schema_migrations.backward_compatible`. A binary refuses a database that
//! has a migration it does not know unless every such migration is marked
//! so (docs/deploy.md, "Upgrades and rollback").

use super::{Error, Result};

/// The marker line of a migration that older binaries may run against.
pub const BACKWARD_COMPATIBLE: &str = "-- gangway: backward-compatible";

/// One embedded migration: `NNNN_name.sql`.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    /// The file name without `.sql`, e.g. `0001_init`.
    pub name: &'static str,
    pub sql: &'static str,
}

impl Migration {
    pub fn backward_compatible(&self) -> bool {
        self.sql.lines().any(|l| l.trim() == BACKWARD_COMPATIBLE)
    }
}

/// The newest version in `migrations`.
pub fn newest(migrations: &[Migration]) -> i64 {
    migrations.iter().map(|m| m.version).max().unwrap_or(0)
}

/// What a migration run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Migrated {
    /// The migrations this run applied, in order (`0001_init`, ...).
    pub applied: Vec<String>,
    /// The database's schema version now (its newest migration).
    pub version: i64,
    /// Migrations from a newer release, all backward-compatible, that this
    /// build does not know: it runs, but the newer release is in charge.
    pub newer_compatible: Vec<i64>,
}

impl std::fmt::Display for Migrated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.applied.is_empty() {
            write!(f, "database is up to date at version {}", self.version)?;
        } else {
            write!(
                f,
                "applied {}; database is at version {}",
                self.applied.join(", "),
                self.version
            )?;
        }
        if !self.newer_compatible.is_empty() {
            write!(
                f,
                " (it has migrations from a newer release, all declared backward-compatible: {})",
                join(&self.newer_compatible)
            )?;
        }
        Ok(())
    }
}

fn join(versions: &[i64]) -> String {
    versions
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks the migrations a database has, `(version, backward_compatible)`,
/// against the newest this build knows, before anything is applied: the
/// backward-compatible newer ones, or the error that refuses the database.
pub fn check_newer(applied: &[(i64, bool)], known: i64) -> Result<Vec<i64>> {
    let mut newer: Vec<(i64, bool)> = applied
        .iter()
        .copied()
        .filter(|(v, _)| *v > known)
        .collect();
    newer.sort_unstable();
    let incompatible: Vec<i64> = newer.iter().filter(|(_, c)| !c).map(|(v, _)| *v).collect();
    if let Some(&database) = incompatible.last() {
        return Err(Error::SchemaTooNew {
            database: newer.last().map_or(database, |(v, _)| *v),
            known,
            incompatible: join(&incompatible),
        });
    }
    Ok(newer.into_iter().map(|(v, _)| v).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_migrations_refuse_unless_compatible() {
        assert_eq!(check_newer(&[(1, false), (2, false)], 2).ok(), Some(vec![]));
        assert_eq!(
            check_newer(&[(1, false), (3, true), (4, true)], 2).ok(),
            Some(vec![3, 4])
        );
        let e = check_newer(&[(1, false), (3, true), (4, false)], 2)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("version 4") && e.contains("(version 2)"), "{e}");
    }

    #[test]
    fn reports_what_was_applied() {
        let m = Migrated {
            applied: vec!["0001_init".into(), "0002_job_classes".into()],
            version: 2,
            newer_compatible: vec![],
        };
        assert_eq!(
            m.to_string(),
            "applied 0001_init, 0002_job_classes; database is at version 2"
        );
        let m = Migrated {
            version: 2,
            ..Migrated::default()
        };
        assert_eq!(m.to_string(), "database is up to date at version 2");
    }
}
