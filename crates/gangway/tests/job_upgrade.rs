//! Jobs stay runnable across an upgrade: a job row whose payload is the
//! text the release before typed job payloads wrote (issue 19) is claimed,
//! read and run by this build. The other payload shapes are checked
//! verbatim in crates/server/src/runtime/job.rs.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, pg::TestDb};
use serde_json::json;

/// A payload as this build stores it (sealed under the harness's key).
fn opened(stored: &str) -> String {
    gangway_server::crypto::DataKeys::from_base64(common::ENCRYPTION_KEY, &[])
        .unwrap()
        .open(stored)
        .unwrap()
        .into_owned()
}

/// Replaces the session's timer job with one in the previous release's
/// text (in the clear, as that release wrote it), due now.
async fn rewrite_timer(db: &TestDb, session_id: &str) {
    match db {
        TestDb::Sqlite(url) => {
            let c = rusqlite::Connection::open(url.strip_prefix("sqlite://").unwrap()).unwrap();
            let payload: String = c
                .query_row(
                    "SELECT payload FROM jobs WHERE session_id = ?1 AND kind = 'timer'",
                    [session_id],
                    |r| r.get(0),
                )
                .unwrap();
            let visit =
                serde_json::from_str::<serde_json::Value>(&opened(&payload)).unwrap()["visit"]
                    .as_u64()
                    .unwrap();
            let old = format!("{{\"visit\":{visit}}}");
            let n = c
                .execute(
                    "UPDATE jobs SET payload = ?1, due_at = 0, lease_until = 0
                     WHERE session_id = ?2 AND kind = 'timer'",
                    rusqlite::params![old, session_id],
                )
                .unwrap();
            assert_eq!(n, 1);
        }
        TestDb::Postgres { url, .. } => {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            let (payload,): (String,) =
                sqlx::query_as("SELECT payload FROM jobs WHERE session_id = $1 AND kind = 'timer'")
                    .bind(session_id)
                    .fetch_one(&mut c)
                    .await
                    .unwrap();
            let visit =
                serde_json::from_str::<serde_json::Value>(&opened(&payload)).unwrap()["visit"]
                    .as_u64()
                    .unwrap();
            let old = format!("{{\"visit\":{visit}}}");
            let n = sqlx::query(
                "UPDATE jobs SET payload = $1, due_at = 0, lease_until = 0, lease_owner = NULL
                 WHERE session_id = $2 AND kind = 'timer'",
            )
            .bind(old)
            .bind(session_id)
            .execute(&mut c)
            .await
            .unwrap()
            .rows_affected();
            assert_eq!(n, 1);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timer_stored_by_the_previous_release_fires_after_the_upgrade() {
    let mut h = Harness::start().await;
    let (status, s) = h
        .post(
            "/v1/sessions",
            json!({"workflow": "score-long", "reference": "upgrade"}),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    let id = s["id"].as_str().unwrap().to_string();
    h.wait_session(&id, "waiting", |s| s["status"] == "waiting")
        .await;
    // Stopped, its timer (ten minutes away) rewritten as the previous
    // release stored it, due now; started again.
    h.kill9_server();
    rewrite_timer(&h.db, &id).await;
    h.start_server();
    let ended = h.wait_ended(&id).await;
    assert_eq!(ended["outcome"], "expired", "{ended}");
    assert_eq!(ended["reason"], "no score within 10 minutes");
}
