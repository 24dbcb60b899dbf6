//! The database behind a test: SQLite by default, or a fresh PostgreSQL
//! database of its own when `GANGWAY_TEST_BACKEND=postgres` (or for tests
//! that need PostgreSQL). The server must be reachable: a test never skips.
#![allow(dead_code, clippy::unwrap_used)]

use sqlx::Connection;
use std::path::Path;

/// The maintenance database tests create their databases from.
pub fn admin_url() -> String {
    std::env::var("GANGWAY_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn use_postgres() -> bool {
    std::env::var("GANGWAY_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

/// A database that lives as long as the value.
pub enum TestDb {
    Sqlite(String),
    Postgres { url: String, name: String },
}

impl TestDb {
    /// The backend chosen by `GANGWAY_TEST_BACKEND`; SQLite files go in `dir`.
    pub async fn for_env(dir: &Path) -> TestDb {
        if use_postgres() {
            TestDb::postgres().await
        } else {
            TestDb::Sqlite(format!("sqlite://{}", dir.join("gangway.db").display()))
        }
    }

    /// A new, empty PostgreSQL database `gw_test_<random>`.
    pub async fn postgres() -> TestDb {
        let admin = admin_url();
        let name = format!("gw_test_{:016x}", rand::random::<u64>());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is required and not reachable: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let _ = conn.close().await;
        let base = admin.rsplit_once('/').unwrap().0;
        TestDb::Postgres {
            url: format!("{base}/{name}"),
            name,
        }
    }

    pub fn url(&self) -> &str {
        match self {
            TestDb::Sqlite(u) => u,
            TestDb::Postgres { url, .. } => url,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, TestDb::Postgres { .. })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let TestDb::Postgres { name, .. } = self else {
            return;
        };
        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        // Drop runs inside the test's runtime: use a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url()).await {
                    let _ = sqlx::query(&sql).execute(&mut conn).await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

/// `pg_ctlcluster <version> main <action>` on the shared server (stop,
/// start, restart): for the tests that restart it, run alone (db_restart,
/// chaos).
pub fn pg_ctl(action: &str) {
    let version = std::fs::read_dir("/etc/postgresql")
        .expect("a PostgreSQL cluster in /etc/postgresql")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .unwrap();
    let out = std::process::Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", action])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg_ctlcluster {action}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
