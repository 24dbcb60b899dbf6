//! PostgreSQL as docs/deploy.md sets it up for production: a migration owner
//! and a runtime user without DDL rights, and TLS chosen with `sslmode` in
//! `database_url` (issue 23 #12). Needs the PostgreSQL server the other
//! tests use, with `ssl = on` (Debian's packaged server has it, with the
//! snakeoil certificate); never skipped.
#![allow(clippy::unwrap_used)]

mod common;

use common::{BIN, pg, spawn};
use sqlx::Connection;
use std::process::Command;

/// A database owned by a migration owner, and a runtime user with only
/// row rights (the statements of docs/deploy.md "Users and privileges").
struct Roles {
    db: String,
    owner: String,
    app: String,
}

async fn admin() -> sqlx::PgConnection {
    sqlx::PgConnection::connect(&pg::admin_url()).await.unwrap()
}

fn url_for(user: &str, db: &str, query: &str) -> String {
    let admin = pg::admin_url();
    let (_, rest) = admin.split_once("://").unwrap();
    let host = rest.split_once('@').map_or(rest, |(_, h)| h);
    let host = host.split_once('/').unwrap().0;
    format!("postgres://{user}@{host}/{db}{query}")
}

impl Roles {
    async fn create() -> Roles {
        let n = format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff);
        let r = Roles {
            db: format!("gw_test_deploy_{n}"),
            owner: format!("gw_test_owner_{n}"),
            app: format!("gw_test_app_{n}"),
        };
        let mut conn = admin().await;
        for sql in [
            format!("CREATE ROLE {} LOGIN", r.owner),
            format!("CREATE ROLE {} LOGIN", r.app),
            format!("CREATE DATABASE {} OWNER {}", r.db, r.owner),
        ] {
            sqlx::query(&sql).execute(&mut conn).await.unwrap();
        }
        let _ = conn.close().await;
        let mut db = sqlx::PgConnection::connect(&url_for("postgres", &r.db, ""))
            .await
            .unwrap();
        for sql in [
            format!("ALTER SCHEMA public OWNER TO {}", r.owner),
            "REVOKE CREATE ON SCHEMA public FROM PUBLIC".to_string(),
            format!("GRANT USAGE ON SCHEMA public TO {}", r.app),
            format!(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public \
                 GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {}",
                r.owner, r.app
            ),
            format!(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public \
                 GRANT USAGE, SELECT ON SEQUENCES TO {}",
                r.owner, r.app
            ),
        ] {
            sqlx::query(&sql).execute(&mut db).await.unwrap();
        }
        let _ = db.close().await;
        r
    }
}

impl Drop for Roles {
    fn drop(&mut self) {
        let statements = [
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db),
            format!("DROP ROLE IF EXISTS {}", self.app),
            format!("DROP ROLE IF EXISTS {}", self.owner),
        ];
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&pg::admin_url()).await {
                    for sql in &statements {
                        let _ = sqlx::query(sql).execute(&mut conn).await;
                    }
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

/// `gangway migrate` as the owner, then `gangway serve` as the runtime user
/// (no CREATE on the schema) over TLS (`sslmode=require`): it starts, serves
/// a session, and its connections are encrypted; before the migration it
/// refuses with an error that says to migrate as the owner. Before: serve failed with
/// "permission denied for schema public" (it created `schema_migrations`
/// `IF NOT EXISTS` on every start), and `sslmode=require` with "SQLx was
/// built without TLS support".
#[tokio::test(flavor = "multi_thread")]
async fn runtime_user_without_ddl_serves_over_tls() {
    let roles = Roles::create().await;
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join("workflows");
    std::fs::create_dir(&workflows).unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../workflows/http-score.yaml"
        ),
        workflows.join("http-score.yaml"),
    )
    .unwrap();
    let config = dir.path().join("gangway.toml");
    std::fs::write(
        &config,
        format!(
            "workflows_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\nencryption_key = \"dGVzdHMtb25seS1lbmNyeXB0aW9uLWtleS0zMmJ5dGU=\"\n",
            workflows.display()
        ),
    )
    .unwrap();
    let tls = "?sslmode=require";
    let owner_url = url_for(&roles.owner, &roles.db, tls);
    let app_url = url_for(&roles.app, &roles.db, tls);

    // Before the owner migrated: the runtime user cannot, and is told what to do.
    let out = Command::new(BIN)
        .args(["serve", "--config", config.to_str().unwrap()])
        .env("GANGWAY_DATABASE_URL", &app_url)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("may not change the schema; run `gangway migrate`")
            && !stderr.contains("corrupt"),
        "{stderr}"
    );

    let out = Command::new(BIN)
        .args(["migrate", "--config", config.to_str().unwrap()])
        .env("GANGWAY_DATABASE_URL", &owner_url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "migrate as the owner: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(BIN)
        .args(["keys", "create", "--name", "backend"])
        .args(["--config", config.to_str().unwrap()])
        .env("GANGWAY_DATABASE_URL", &app_url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "keys create as the runtime user: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();

    let (_node, base) = spawn(
        &["serve", "--config", config.to_str().unwrap()],
        &[("GANGWAY_DATABASE_URL", &app_url)],
        &dir.path().join("serve.log"),
        "gangway listening on",
    );
    let http = reqwest::Client::new();
    let created: serde_json::Value = http
        .post(format!("{base}/v1/sessions"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"workflow": "http-score", "input": {"email": "a@example.com"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(created["id"].is_string(), "{created}");

    // Every connection of the runtime user to this database is encrypted.
    let mut conn = admin().await;
    let sql = "SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a \
               JOIN pg_stat_ssl s USING (pid) WHERE a.usename = $1 AND a.datname = $2";
    let (all, encrypted): (i64, i64) = sqlx::query_as(sql)
        .bind(&roles.app)
        .bind(&roles.db)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let _ = conn.close().await;
    assert!(all > 0, "no connections of the runtime user");
    assert_eq!(
        all, encrypted,
        "connections without TLS with sslmode=require"
    );
    // The runtime user cannot change the schema.
    let mut app = sqlx::PgConnection::connect(&app_url).await.unwrap();
    let denied = sqlx::query("CREATE TABLE intruder (x int)")
        .execute(&mut app)
        .await
        .unwrap_err();
    assert!(denied.to_string().contains("permission denied"), "{denied}");
    let _ = app.close().await;
}
