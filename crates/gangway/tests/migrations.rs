//! `gangway migrate` says what it applied, and a database that a newer
//! release migrated stops `migrate` and `serve` with an error naming both
//! schema versions, unless the newer migrations are declared
//! backward-compatible. On SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used)]

mod common;

use common::{BIN, pg::TestDb};
use sqlx::Connection;
use std::path::Path;
use std::process::Command;

/// The migrations this build has (the files of one backend).
fn known(backend: &str) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../server/migrations")
        .join(backend);
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn write_config(dir: &Path, db: &str) -> std::path::PathBuf {
    let wf = dir.join("workflows");
    std::fs::create_dir_all(&wf).unwrap();
    let config = dir.join("gangway.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{}\"\ndatabase_url = \"{db}\"\nworkflows_dir = \"{}\"\nencryption_key = \"dGVzdHMtb25seS1lbmNyeXB0aW9uLWtleS0zMmJ5dGU=\"\n",
            common::free_port(),
            wf.display()
        ),
    )
    .unwrap();
    config
}

/// `gangway migrate`: (success, stdout, stderr).
fn migrate(config: &Path) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(["migrate", "--config", config.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `gangway serve` until it exits by itself: (success, stderr).
fn serve_fails(config: &Path) -> String {
    let out = Command::new(BIN)
        .args(["serve", "--config", config.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(!out.status.success(), "serve started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn exec(db: &TestDb, sql: &str) {
    match db {
        TestDb::Sqlite(url) => {
            // The server drives SQLite through rusqlite (sqlx has no SQLite here).
            let path = url.strip_prefix("sqlite://").unwrap();
            let c = rusqlite::Connection::open(path).unwrap();
            c.execute_batch(sql).unwrap();
        }
        TestDb::Postgres { url, .. } => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query(sql).execute(&mut c).await.unwrap();
            c.close().await.unwrap();
        }
    }
}

async fn reports_and_refuses_newer(db: TestDb, backend: &str, dir: &Path) {
    let config = write_config(dir, db.url());
    let names = known(backend);
    // The newest number (numbers may leave gaps between releases' branches).
    let n: usize = names
        .iter()
        .filter_map(|name| name.split('_').next()?.parse().ok())
        .max()
        .unwrap();

    // A fresh database: every migration is named.
    let (ok, out, err) = migrate(&config);
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        format!("applied {}; database is at version {n}", names.join(", "))
    );
    let (ok, out, err) = migrate(&config);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), format!("database is up to date at version {n}"));

    // A newer release applied migration 99, not backward-compatible.
    exec(
        &db,
        "INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)",
    )
    .await;
    let (ok, out, err) = migrate(&config);
    assert!(!ok, "{out}");
    let expected =
        format!("the database schema is at version 99, newer than this build knows (version {n})");
    assert!(err.contains(&expected), "{err}");
    assert!(!out.contains("up to date"), "{out}");
    let err = serve_fails(&config);
    assert!(err.contains(&expected), "{err}");
    assert!(!err.contains("listening"), "{err}");

    // Declared backward-compatible: both run, and say so.
    exec(
        &db,
        "UPDATE schema_migrations SET backward_compatible = TRUE WHERE version = 99",
    )
    .await;
    let (ok, out, err) = migrate(&config);
    assert!(ok, "{err}");
    assert!(
        out.contains("database is up to date at version 99")
            && out.contains("declared backward-compatible: 99"),
        "{out}"
    );
    let log = dir.join("serve.log");
    let (proc, _url) = common::spawn(
        &["serve", "--config", config.to_str().unwrap()],
        &[],
        &log,
        "gangway listening on",
    );
    drop(proc);
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("migrations of a newer release"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_reports_and_refuses_a_newer_schema_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::Sqlite(format!(
        "sqlite://{}",
        dir.path().join("gangway.db").display()
    ));
    reports_and_refuses_newer(db, "sqlite", dir.path()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_reports_and_refuses_a_newer_schema_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    reports_and_refuses_newer(TestDb::postgres().await, "postgres", dir.path()).await;
}
