//! The SQLite backend's own behaviour: URLs, the pool, a round trip, and a
//! database an older build migrated with sqlx. The shared contract is in
//! tests/store_conformance.rs.
#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn urls() {
    let p = |u: &str| path_of_url(u).map(|p| p.display().to_string()).ok();
    assert_eq!(p("sqlite://gangway.db").as_deref(), Some("gangway.db"));
    assert_eq!(p("sqlite:gangway.db").as_deref(), Some("gangway.db"));
    assert_eq!(
        p("sqlite:///tmp/a b.db?mode=rwc").as_deref(),
        Some("/tmp/a b.db")
    );
    assert_eq!(p("sqlite:///tmp/a%20b.db").as_deref(), Some("/tmp/a b.db"));
    assert_eq!(p("sqlite::memory:"), None);
    assert_eq!(p("postgres://x/y"), None);
}

async fn store(dir: &tempfile::TempDir) -> SqliteStore {
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let s = SqliteStore::open(&url).await.unwrap();
    s.migrate().await.unwrap();
    s
}

fn session(id: &str) -> SessionRow {
    SessionRow {
        id: id.into(),
        workflow_id: "wf".into(),
        version: 1,
        reference: Some("ref".into()),
        input: serde_json::json!({"a": 1}),
        state: SessionState::default(),
        created_at: 1,
        updated_at: 1,
        client_secret_hash: "h".into(),
        client_secret_expires_at: 2,
        api_key_id: "k".into(),
        idempotency_key: Some("idem".into()),
        request_hash: None,
        timeline_seq: 0,
        client_seq: 0,
        retain_ms: None,
        erased_at: None,
    }
}

fn event(key: &str) -> NewEvent {
    NewEvent {
        source: "src".into(),
        event_key: key.into(),
        namespace: "ns".into(),
        reference: "r1".into(),
        name: "done".into(),
        data: serde_json::json!({"ok": true}),
        received_at: 5,
    }
}

#[test]
fn missing_directory_is_a_clear_error() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let e = rt
        .block_on(SqliteStore::open("sqlite:///nonexistent-dir-xyz/t.db"))
        .err()
        .unwrap();
    assert!(e.to_string().contains("does not exist"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    s.migrate().await.unwrap(); // idempotent

    // Early event, then the correlation adopts it.
    let mut tx = s.begin().await.unwrap();
    let first = tx.insert_event(&event("e1"), None).await.unwrap();
    assert!(first.is_some());
    assert_eq!(tx.insert_event(&event("e1"), None).await.unwrap(), None);
    tx.insert_session(&session("s1")).await.unwrap();
    tx.insert_correlation("ns", "r1", "s1").await.unwrap();
    tx.insert_correlation("ns", "r1", "other").await.unwrap();
    assert_eq!(
        tx.correlation("ns", "r1").await.unwrap().as_deref(),
        Some("s1")
    );
    let pending = tx.pending_events("s1", &["done".into()]).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(Some(pending[0].id), first);
    assert_eq!(
        tx.find_idempotent("k", "idem").await.unwrap(),
        Some(("s1".into(), None))
    );
    let timeline = vec![
        (
            "s1".to_string(),
            TimelineEntry {
                seq: 1,
                at: 1,
                kind: "a".into(),
                step: None,
                data: serde_json::json!(1),
            },
        ),
        (
            "s1".to_string(),
            TimelineEntry {
                seq: 2,
                at: 2,
                kind: "b".into(),
                step: Some("x".into()),
                data: serde_json::json!({"y": 2}),
            },
        ),
    ];
    tx.insert_timeline(&timeline).await.unwrap();
    let job = tx
        .insert_job(&NewJob {
            session_id: "s1".into(),
            kind: JobKind::Timer,
            payload: serde_json::json!({}),
            due_at: 100,
            lease_until: 0,
        })
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // Dropped without commit: rolled back, connection reusable.
    let mut tx = s.begin().await.unwrap();
    let mut s2 = session("s2");
    s2.idempotency_key = None;
    tx.insert_session(&s2).await.unwrap();
    drop(tx);
    assert!(s.session("s2").await.unwrap().is_none());
    let row = s.session("s1").await.unwrap().unwrap();
    assert_eq!(row.input, serde_json::json!({"a": 1}));
    assert_eq!(s.timeline("s1").await.unwrap().len(), 2);

    let filter = SessionFilter {
        workflow: Some("wf".into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(s.sessions(&filter).await.unwrap().len(), 1);
    let filter = SessionFilter {
        before: Some("s1".into()),
        limit: 10,
        ..Default::default()
    };
    assert!(s.sessions(&filter).await.unwrap().is_empty());

    assert_eq!(s.next_due(50).await.unwrap().earliest(), Some(100));
    assert!(s.claim_due_jobs(50, 10, 10, 500).await.unwrap().is_empty());
    let jobs = s.claim_due_jobs(150, 10, 10, 500).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].id, job);
    assert!(s.claim_due_jobs(150, 10, 10, 500).await.unwrap().is_empty());
    assert_eq!(s.next_due(150).await.unwrap().earliest(), Some(500));
    assert_eq!(s.next_due(900).await.unwrap().earliest(), Some(900));
    s.release_node_leases().await.unwrap();
    assert_eq!(s.next_due(150).await.unwrap().earliest(), Some(150));
    s.finish_job(job).await.unwrap();
    assert_eq!(s.next_due(150).await.unwrap().earliest(), None);

    // Many concurrent readers share the four connections.
    let s = Arc::new(s);
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move { s.count_by_status().await }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn adopts_a_database_migrated_by_sqlx() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch(super::super::migrate::SQLITE[0].sql)
            .unwrap();
        c.execute_batch(
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT, success BOOLEAN);
             INSERT INTO _sqlx_migrations VALUES (1, 'init', 1);",
        )
        .unwrap();
    }
    let s = SqliteStore::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    s.migrate().await.unwrap();
    s.migrate().await.unwrap();
    assert!(s.workflow_versions().await.unwrap().is_empty());
}
