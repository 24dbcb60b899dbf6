//! One conformance suite for the store, run against both backends: the same
//! checks on SQLite (a temporary file) and on PostgreSQL (a fresh database
//! of its own on 127.0.0.1:5432, created through the `test` database and
//! dropped afterwards). PostgreSQL must be reachable: these tests fail, never
//! skip, when it is not.
#![allow(clippy::unwrap_used)]

use gangway_core::engine::SessionState;
use gangway_server::store::{
    self, AuditFilter, ClientEvent, DeliveryAttempt, EventRow, JobKind, NewApiKey, NewAudit,
    NewDelivery, NewEvent, NewJob, NextDue, OpenOptions, ReviewFilter, ReviewRow, SessionFilter,
    SessionRow, Signal, Store, TimelineEntry,
};
use serde_json::json;
use sqlx::Connection;
use std::sync::Arc;
use std::time::Duration;

const TEST_KEY: &str = "dGVzdHMtb25seS1lbmNyeXB0aW9uLWtleS0zMmJ5dGU=";

fn admin_url() -> String {
    std::env::var("GANGWAY_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh PostgreSQL database, dropped with the value.
struct PgDb {
    url: String,
    name: String,
}

impl PgDb {
    async fn create() -> PgDb {
        let admin = admin_url();
        let name = format!("gw_test_{:016x}", rand::random::<u64>());
        let mut c = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is required and not reachable: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .await
            .unwrap();
        let base = admin.rsplit_once('/').unwrap().0;
        PgDb {
            url: format!("{base}/{name}"),
            name,
        }
    }

    async fn node(&self, id: &str, stable: bool) -> Arc<dyn Store> {
        let opts = OpenOptions {
            node_id: id.into(),
            stable_node_id: stable,
            pool_size: 4,
            acquire_timeout: Duration::from_secs(5),
            // PostgreSQL runs the suite sealed, SQLite in the clear: both
            // ways of storing personal data meet the same verbs.
            seal: store::Seal::new(Some(Arc::new(
                gangway_server::crypto::DataKeys::from_base64(TEST_KEY, &[]).unwrap(),
            ))),
        };
        let s = store::open_with(&self.url, &opts).await.unwrap();
        s.migrate().await.unwrap();
        s
    }

    async fn drop_now(self) {
        let mut c = sqlx::PgConnection::connect(&admin_url()).await.unwrap();
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut c)
        .await
        .unwrap();
    }
}

async fn sqlite(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let s = store::open(&url).await.unwrap();
    s.migrate().await.unwrap();
    s
}

fn session(id: &str) -> SessionRow {
    SessionRow {
        id: id.into(),
        workflow_id: "wf".into(),
        version: 1,
        reference: Some("ref".into()),
        input: json!({"b": 1, "a": [true, null]}),
        state: SessionState::default(),
        created_at: 1,
        updated_at: 1,
        client_secret_hash: "h".into(),
        client_secret_expires_at: 2,
        api_key_id: "k".into(),
        idempotency_key: Some(format!("idem-{id}")),
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
        data: json!({"ok": true}),
        received_at: 5,
    }
}

fn job(session: &str, kind: JobKind, due_at: i64, lease_until: i64) -> NewJob {
    NewJob {
        session_id: session.into(),
        kind,
        payload: json!({"visit": 1}),
        due_at,
        lease_until,
    }
}

/// Sessions, events, correlations, timeline, client events and jobs.
async fn round_trip(s: &dyn Store) {
    s.migrate().await.unwrap(); // idempotent

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
    assert!(
        tx.pending_events("s1", &["other".into()])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        tx.find_idempotent("k", "idem-s1").await.unwrap(),
        Some(("s1".into(), None))
    );
    let entries: Vec<(String, TimelineEntry)> = (1..=2)
        .map(|i| {
            (
                "s1".to_string(),
                TimelineEntry {
                    seq: i,
                    at: i,
                    kind: format!("k{i}"),
                    step: (i == 2).then(|| "x".to_string()),
                    data: json!({"z": i, "a": 0}),
                },
            )
        })
        .collect();
    tx.insert_timeline(&entries).await.unwrap();
    tx.insert_client_events(&[(
        "s1".to_string(),
        ClientEvent {
            seq: 1,
            at: 3,
            event: "step".into(),
            data: json!({"y": 1, "b": 2}),
        },
    )])
    .await
    .unwrap();
    let timer = tx
        .insert_job(&job("s1", JobKind::Timer, 100, 0))
        .await
        .unwrap();
    let poll = tx
        .insert_job(&job("s1", JobKind::Poll, 100, 0))
        .await
        .unwrap();
    tx.delete_session_jobs("s1", &[JobKind::Poll])
        .await
        .unwrap();
    let mut row = tx.lock_session("s1").await.unwrap().unwrap();
    row.timeline_seq = 2;
    row.client_seq = 1;
    row.updated_at = 9;
    tx.update_session(&row).await.unwrap();
    tx.consume_event(first.unwrap(), 7).await.unwrap();
    tx.commit().await.unwrap();
    assert_ne!(timer, poll);

    // Dropped without commit: rolled back.
    let mut tx = s.begin().await.unwrap();
    let mut s2 = session("s2");
    s2.idempotency_key = None;
    tx.insert_session(&s2).await.unwrap();
    drop(tx);
    assert!(s.session("s2").await.unwrap().is_none());

    let row = s.session("s1").await.unwrap().unwrap();
    // JSON comes back exactly as written, key order included.
    assert_eq!(row.input.to_string(), r#"{"b":1,"a":[true,null]}"#);
    assert_eq!(
        (row.timeline_seq, row.client_seq, row.updated_at),
        (2, 1, 9)
    );
    let timeline = s.timeline("s1").await.unwrap();
    assert_eq!(timeline.len(), 2);
    assert_eq!(timeline[1].step.as_deref(), Some("x"));
    assert_eq!(timeline[1].data.to_string(), r#"{"z":2,"a":0}"#);
    let events = s.client_events_after("s1", 0).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].data.to_string(), r#"{"y":1,"b":2}"#);
    assert!(s.client_events_after("s1", 1).await.unwrap().is_empty());
    assert_eq!(s.count_by_status().await.unwrap().len(), 1);

    // Pages: newest id first, `before` excludes.
    let mut tx = s.begin().await.unwrap();
    let mut s3 = session("s3");
    s3.reference = Some("other".into());
    tx.insert_session(&s3).await.unwrap();
    tx.commit().await.unwrap();
    let page = |f: SessionFilter| async move {
        s.sessions(&f)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        page(SessionFilter {
            limit: 10,
            ..Default::default()
        })
        .await,
        ["s3", "s1"]
    );
    assert_eq!(
        page(SessionFilter {
            before: Some("s3".into()),
            limit: 10,
            ..Default::default()
        })
        .await,
        ["s1"]
    );
    assert_eq!(
        page(SessionFilter {
            reference: Some("other".into()),
            workflow: Some("wf".into()),
            limit: 10,
            ..Default::default()
        })
        .await,
        ["s3"]
    );

    // Jobs: due, claimed once, leased, released, finished.
    assert_eq!(s.next_due(50).await.unwrap().earliest(), Some(100));
    assert!(s.claim_due_jobs(50, 10, 10, 500).await.unwrap().is_empty());
    let jobs = s.claim_due_jobs(150, 10, 10, 500).await.unwrap();
    assert_eq!(jobs.iter().map(|j| j.id).collect::<Vec<_>>(), [timer]);
    assert_eq!(jobs[0].kind, JobKind::Timer);
    assert!(s.claim_due_jobs(150, 10, 10, 500).await.unwrap().is_empty());
    assert_eq!(s.next_due(150).await.unwrap().earliest(), Some(500));
    assert_eq!(s.next_due(900).await.unwrap().earliest(), Some(900));
    assert_eq!(s.release_node_leases().await.unwrap(), 1);
    assert_eq!(s.next_due(150).await.unwrap().earliest(), Some(150));
    s.reschedule_job(timer, 200, 3).await.unwrap();
    let jobs = s.claim_due_jobs(250, 10, 10, 500).await.unwrap();
    assert_eq!((jobs[0].due_at, jobs[0].attempts), (200, 3));
    // A running job's lease is kept longer, never shortened.
    assert!(s.extend_lease(timer, 800).await.unwrap());
    assert!(s.extend_lease(timer, 600).await.unwrap());
    assert_eq!(s.next_due(250).await.unwrap().earliest(), Some(800));
    s.finish_job(timer).await.unwrap();
    assert!(!s.extend_lease(timer, 900).await.unwrap());
    assert_eq!(s.next_due(150).await.unwrap().earliest(), None);

    // Many concurrent readers.
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let s = s.session("s1");
        tasks.push(s);
    }
    for t in futures::future::join_all(tasks).await {
        assert!(t.unwrap().is_some());
    }
}

/// Writes a backend may keep until commit still behave, within the
/// transaction and after it, as if each had run at once: reads see them,
/// later calls change them, and the commit leaves the combined result.
async fn writes_within_a_transaction(s: &dyn Store) {
    let mut tx = s.begin().await.unwrap();
    // A session created here is found by id and by idempotency key, and
    // what later calls change is what gets stored.
    tx.insert_session(&session("w1")).await.unwrap();
    assert_eq!(
        tx.find_idempotent("k", "idem-w1").await.unwrap(),
        Some(("w1".into(), None))
    );
    let mut row = tx.lock_session("w1").await.unwrap().unwrap();
    row.timeline_seq = 4;
    row.updated_at = 40;
    tx.update_session(&row).await.unwrap();
    tx.set_client_secret("w1", "h2", 77).await.unwrap();
    let again = tx.lock_session("w1").await.unwrap().unwrap();
    assert_eq!(
        (again.timeline_seq, again.client_secret_hash.as_str()),
        (4, "h2")
    );
    // Jobs: one dropped by id, one by its session and kind before a new one
    // of that kind, one moved before it was ever written.
    let dropped = tx
        .insert_job(&job("w1", JobKind::Call, 10, 0))
        .await
        .unwrap();
    tx.delete_job(dropped).await.unwrap();
    tx.insert_job(&job("w1", JobKind::Poll, 10, 0))
        .await
        .unwrap();
    tx.delete_session_jobs("w1", &[JobKind::Poll])
        .await
        .unwrap();
    let poll = tx
        .insert_job(&job("w1", JobKind::Poll, 20, 0))
        .await
        .unwrap();
    let moved = tx
        .insert_job(&job("w1", JobKind::Timer, 10, 0))
        .await
        .unwrap();
    tx.reschedule_job(moved, 30, 2).await.unwrap();
    // A delivery created and attempted in one transaction.
    tx.insert_delivery(&NewDelivery {
        id: "msg_w1".into(),
        session_id: "w1".into(),
        endpoint: "http://127.0.0.1:9/hook".into(),
        event_type: "session.ended".into(),
        payload: json!({"b": 1, "a": 2}),
        created_at: 5,
    })
    .await
    .unwrap();
    let attempt = DeliveryAttempt {
        attempt: 1,
        at: 6,
        status_code: Some(200),
        error: None,
        duration_ms: 3,
    };
    tx.record_delivery_attempt("msg_w1", &attempt, "delivered", None)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let row = s.session("w1").await.unwrap().unwrap();
    assert_eq!(
        (
            row.timeline_seq,
            row.updated_at,
            row.client_secret_hash.as_str()
        ),
        (4, 40, "h2")
    );
    assert_eq!(row.client_secret_expires_at, 77);
    let jobs = s.claim_due_jobs(100, 10, 10, 500).await.unwrap();
    let mut got: Vec<(i64, JobKind, i64, i64)> = jobs
        .iter()
        .map(|j| (j.id, j.kind, j.due_at, j.attempts))
        .collect();
    got.sort_unstable_by_key(|j| j.0);
    let mut want = vec![(poll, JobKind::Poll, 20, 0), (moved, JobKind::Timer, 30, 2)];
    want.sort_unstable_by_key(|j| j.0);
    assert_eq!(got, want);
    for j in &jobs {
        s.finish_job(j.id).await.unwrap();
    }
    let deliveries = s.deliveries("w1").await.unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(
        (deliveries[0].status.as_str(), deliveries[0].attempts),
        ("delivered", 1)
    );
    assert_eq!(deliveries[0].attempt_log.len(), 1);

    // Sessions locked up front are read once and still change as written.
    let mut tx = s.begin().await.unwrap();
    tx.lock_sessions(&["w1", "w-missing"]).await.unwrap();
    assert!(tx.lock_session("w-missing").await.unwrap().is_none());
    let mut row = tx.lock_session("w1").await.unwrap().unwrap();
    row.client_seq = 9;
    tx.update_session(&row).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(s.session("w1").await.unwrap().unwrap().client_seq, 9);
}

fn event_for(key: &str, reference: &str, name: &str) -> NewEvent {
    NewEvent {
        event_key: key.into(),
        reference: reference.into(),
        name: name.into(),
        ..event(key)
    }
}

/// Events read, given and consumed within one transaction: what a later
/// call in the same transaction sees, and what is stored after it.
async fn events_within_a_transaction(s: &dyn Store) {
    let names = |evs: &[EventRow]| evs.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
    let want = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut tx = s.begin().await.unwrap();
    tx.insert_session(&session("v1")).await.unwrap();
    tx.insert_session(&session("v2")).await.unwrap();
    // Stored before the session locking them: one already given to v1,
    // one early (no session yet) for a reference v1 correlates later.
    tx.insert_event(&event_for("v-a", "rv1", "a"), Some("v1"))
        .await
        .unwrap();
    tx.insert_event(&event_for("v-early", "rv-late", "b"), None)
        .await
        .unwrap();
    tx.insert_correlation("ns", "rv1", "v1").await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = s.begin().await.unwrap();
    tx.lock_sessions(&["v1"]).await.unwrap();
    assert!(tx.lock_session("v2").await.unwrap().is_some());
    let all = ["a", "b", "c"].map(String::from);
    assert_eq!(
        names(&tx.pending_events("v1", &all).await.unwrap()),
        want(&["a"])
    );
    // References of a batch, looked up together.
    let found = tx
        .correlations(&[("ns", "rv1"), ("ns", "rv-late"), ("ns", "nowhere")])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[&("ns".to_string(), "rv1".to_string())], "v1");
    // Given in this transaction: stored for v1, adopted by a correlation.
    tx.insert_event(&event_for("v-c1", "rv1", "c"), Some("v1"))
        .await
        .unwrap();
    tx.insert_event(&event_for("v-c2", "rv1", "c"), Some("v1"))
        .await
        .unwrap();
    tx.insert_correlation("ns", "rv-late", "v1").await.unwrap();
    let pending = tx.pending_events("v1", &all).await.unwrap();
    assert_eq!(names(&pending), want(&["a", "b", "c", "c"]), "oldest first");
    assert!(tx.pending_events("v2", &all).await.unwrap().is_empty());
    let only_c = tx.pending_events("v1", &want(&["c"])).await.unwrap();
    assert_eq!(only_c.len(), 2);
    // Consumed here: gone for the rest of the transaction.
    tx.consume_event(pending[0].id, 50).await.unwrap();
    tx.consume_event(only_c[0].id, 50).await.unwrap();
    tx.consume_events_named("v1", "c", 50).await.unwrap();
    assert_eq!(
        names(&tx.pending_events("v1", &all).await.unwrap()),
        want(&["b"])
    );
    // A session locked on its own, not up front, reads the same way.
    tx.insert_event(&event_for("v-d", "rv2", "d"), Some("v2"))
        .await
        .unwrap();
    let d = tx.pending_events("v2", &want(&["d"])).await.unwrap();
    assert_eq!(names(&d), want(&["d"]));
    tx.consume_event(d[0].id, 50).await.unwrap();
    assert!(
        tx.pending_events("v2", &want(&["d"]))
            .await
            .unwrap()
            .is_empty()
    );
    tx.commit().await.unwrap();

    // Stored: what was consumed stays consumed, the rest waits.
    let mut tx = s.begin().await.unwrap();
    assert!(tx.lock_session("v1").await.unwrap().is_some());
    assert_eq!(
        names(&tx.pending_events("v1", &all).await.unwrap()),
        want(&["b"])
    );
    assert!(
        tx.pending_events("v2", &want(&["d"]))
            .await
            .unwrap()
            .is_empty()
    );
    tx.commit().await.unwrap();
    let mut tx = s.begin().await.unwrap();
    tx.lock_sessions(&["v1", "v2"]).await.unwrap();
    assert_eq!(
        names(&tx.pending_events("v1", &all).await.unwrap()),
        want(&["b"])
    );
    tx.commit().await.unwrap();

    // Attempts of one delivery in one transaction: each is logged, the
    // last one sets the status.
    let mut tx = s.begin().await.unwrap();
    tx.insert_delivery(&NewDelivery {
        id: "msg_v1".into(),
        session_id: "v1".into(),
        endpoint: "http://127.0.0.1:9/hook".into(),
        event_type: "session.ended".into(),
        payload: json!({}),
        created_at: 5,
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mut tx = s.begin().await.unwrap();
    for (n, status, code, next) in [(1, "pending", 503, Some(90)), (2, "delivered", 200, None)] {
        let attempt = DeliveryAttempt {
            attempt: n,
            at: 60 + n,
            status_code: Some(code),
            error: None,
            duration_ms: 2,
        };
        tx.record_delivery_attempt("msg_v1", &attempt, status, next)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let d = &s.deliveries("v1").await.unwrap()[0];
    assert_eq!(
        (
            d.status.as_str(),
            d.attempts,
            d.next_attempt_at,
            d.delivered_at
        ),
        ("delivered", 2, None, Some(62))
    );
    let codes: Vec<Option<i64>> = d.attempt_log.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, vec![Some(503), Some(200)]);
}

/// Workflow versions: the first stored hash wins.
async fn workflow_versions(s: &dyn Store) {
    assert_eq!(
        s.upsert_workflow_version("wf", 1, "src", "h1", 1)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.upsert_workflow_version("wf", 1, "src2", "h2", 2)
            .await
            .unwrap()
            .as_deref(),
        Some("h1")
    );
    assert_eq!(
        s.workflow_versions().await.unwrap(),
        [("wf".to_string(), 1, "src".to_string())]
    );
    // One version by id (a node that did not load it at start).
    assert_eq!(
        s.workflow_version("wf", 1).await.unwrap().as_deref(),
        Some("src")
    );
    assert_eq!(s.workflow_version("wf", 2).await.unwrap(), None);
    assert_eq!(s.workflow_version("other", 1).await.unwrap(), None);
}

/// Node ids: one process holds one; a takeover is a compare-and-swap.
async fn nodes(s: &dyn Store) {
    assert_eq!(s.node_holder("n1").await.unwrap(), None);
    assert!(s.claim_node("n1", "t1", "p1", 100, None).await.unwrap());
    assert!(!s.claim_node("n1", "t2", "p2", 100, None).await.unwrap());
    assert!(s.node_heartbeat("n1", "t1", 200).await.unwrap());
    assert!(!s.node_heartbeat("n1", "t2", 200).await.unwrap());
    let held = s.node_holder("n1").await.unwrap().unwrap();
    assert_eq!(
        (
            held.token.as_str(),
            held.process.as_str(),
            held.started_at,
            held.heartbeat_at
        ),
        ("t1", "p1", 100, 200)
    );
    // A takeover from a stale read fails; from the current one it wins.
    let stale = store::NodeHolder {
        heartbeat_at: 100,
        ..held.clone()
    };
    assert!(
        !s.claim_node("n1", "t2", "p2", 900, Some(&stale))
            .await
            .unwrap()
    );
    assert!(
        s.claim_node("n1", "t2", "p2", 900, Some(&held))
            .await
            .unwrap()
    );
    assert!(!s.node_heartbeat("n1", "t1", 950).await.unwrap());
    assert_eq!(s.node_holder("n1").await.unwrap().unwrap().process, "p2");
    // Leaving needs the token.
    s.leave_node("n1", "t1").await.unwrap();
    assert!(s.node_holder("n1").await.unwrap().is_some());
    s.leave_node("n1", "t2").await.unwrap();
    assert_eq!(s.node_holder("n1").await.unwrap(), None);
}

/// The audit entry a key change appends (its target is the key).
fn audit(action: &str, key: &str, at: i64) -> NewAudit {
    NewAudit {
        at,
        action: action.into(),
        actor: "cli:test".into(),
        session_id: None,
        target: Some(key.into()),
        data: serde_json::json!({"n": at}),
    }
}

fn new_key(id: &str, hash: &str, expires_at: Option<i64>) -> NewApiKey {
    NewApiKey {
        id: id.into(),
        name: format!("name of {id}"),
        key_hash: hash.into(),
        scopes: vec!["sessions:read".into(), "admin".into()],
        created_at: 10,
        expires_at,
    }
}

/// API keys: created once per secret, found by the current secret or by a
/// replaced one within its grace, revoked for good, listed with the
/// latest grace still running.
async fn api_keys(s: &dyn Store) {
    assert!(
        s.create_api_key(
            &new_key("key_1", "h1", None),
            &audit("api_key.created", "key_1", 10),
        )
        .await
        .unwrap()
    );
    assert!(
        !s.create_api_key(
            &new_key("key_2", "h1", None),
            &audit("api_key.created", "key_2", 10),
        )
        .await
        .unwrap()
    );
    assert!(
        s.create_api_key(
            &new_key("key_3", "h3", Some(500)),
            &audit("api_key.created", "key_3", 10),
        )
        .await
        .unwrap()
    );
    // The demo's and sandbox's keys: the default scopes.
    s.insert_api_key("key_4", "demo", "h4", 11).await.unwrap();
    let found = s.api_key_by_hash("h1", 100).await.unwrap().unwrap();
    assert_eq!(found.key.id, "key_1");
    assert_eq!(found.key.scopes, ["sessions:read", "admin"]);
    assert_eq!(found.secret_expires_at, None);
    assert_eq!(s.api_key_by_hash("nope", 100).await.unwrap(), None);
    let demo = s.api_key("key_4", 100).await.unwrap().unwrap();
    assert!(demo.scopes.contains(&"sessions:write".to_string()));
    assert!(!demo.scopes.contains(&"admin".to_string()));

    // Rotate twice: each replaced secret keeps its own grace.
    let r = s
        .rotate_api_key(
            "key_1",
            "h1b",
            200,
            1_000,
            &audit("api_key.rotated", "key_1", 200),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.rotated_at, Some(200));
    assert_eq!(r.previous_expires_at, Some(1_000));
    s.rotate_api_key(
        "key_1",
        "h1c",
        300,
        2_000,
        &audit("api_key.rotated", "key_1", 300),
    )
    .await
    .unwrap()
    .unwrap();
    for (hash, at, until) in [
        ("h1", 999, Some(1_000)),
        ("h1b", 1_999, Some(2_000)),
        ("h1c", 5_000, None),
    ] {
        let m = s.api_key_by_hash(hash, at).await.unwrap().unwrap();
        assert_eq!(
            (m.key.id.as_str(), m.secret_expires_at),
            ("key_1", until),
            "{hash}"
        );
    }
    // Past its grace a replaced secret is still found, as such (so that
    // the refusal can say why), until a later rotation forgets it.
    let m = s.api_key_by_hash("h1", 1_500).await.unwrap().unwrap();
    assert_eq!(m.secret_expires_at, Some(1_000));
    assert_eq!(
        s.api_key("key_1", 1_500)
            .await
            .unwrap()
            .unwrap()
            .previous_expires_at,
        Some(2_000)
    );
    // No grace: the replaced secret stops at once.
    s.rotate_api_key(
        "key_3",
        "h3b",
        300,
        300,
        &audit("api_key.rotated", "key_3", 300),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(s.api_key_by_hash("h3", 300).await.unwrap(), None);
    // A rotation forgets the replaced secrets whose grace has passed.
    s.rotate_api_key(
        "key_1",
        "h1d",
        1_500,
        1_500,
        &audit("api_key.rotated", "key_1", 1_500),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(s.api_key_by_hash("h1", 1_500).await.unwrap(), None);
    assert_eq!(s.api_key_by_hash("h1c", 1_500).await.unwrap(), None);
    let m = s.api_key_by_hash("h1b", 1_500).await.unwrap().unwrap();
    assert_eq!(m.secret_expires_at, Some(2_000));

    // Revoked: every secret stays found (so that the caller can say why it
    // is refused), revocation keeps its first time, and rotation is refused.
    let r = s
        .revoke_api_key("key_1", 400, &audit("api_key.revoked", "key_1", 400))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.revoked_at, Some(400));
    assert_eq!(
        s.revoke_api_key("key_1", 500, &audit("api_key.revoked", "key_1", 500))
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(400)
    );
    assert_eq!(
        s.api_key_by_hash("h1b", 450)
            .await
            .unwrap()
            .unwrap()
            .key
            .revoked_at,
        Some(400)
    );
    assert_eq!(
        s.rotate_api_key(
            "key_1",
            "h1e",
            600,
            900,
            &audit("api_key.rotated", "key_1", 600),
        )
        .await
        .unwrap(),
        None
    );
    assert_eq!(
        s.revoke_api_key("key_none", 1, &audit("api_key.revoked", "key_none", 1))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.rotate_api_key(
            "key_none",
            "x",
            1,
            2,
            &audit("api_key.rotated", "key_none", 1),
        )
        .await
        .unwrap(),
        None
    );

    let all: Vec<String> = s
        .api_keys(100)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(all, ["key_1", "key_3", "key_4"]);
    assert_eq!(s.pending_migrations().await.unwrap(), Vec::<i64>::new());

    // Each change that happened appended its entry, in its own
    // transaction; the refused ones (a secret stored before, a second
    // revocation, a rotation of a revoked or unknown key) appended none.
    let log: Vec<(String, String, i64)> = s
        .audit_entries(&AuditFilter {
            ascending: true,
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.entry.action, r.entry.target.unwrap(), r.entry.at))
        .collect();
    let expected: Vec<(String, String, i64)> = [
        ("api_key.created", "key_1", 10),
        ("api_key.created", "key_3", 10),
        ("api_key.created", "key_4", 11),
        ("api_key.rotated", "key_1", 200),
        ("api_key.rotated", "key_1", 300),
        ("api_key.rotated", "key_3", 300),
        ("api_key.rotated", "key_1", 1_500),
        ("api_key.revoked", "key_1", 400),
    ]
    .into_iter()
    .map(|(a, k, t)| (a.to_string(), k.to_string(), t))
    .collect();
    assert_eq!(log, expected);
}

/// The audit log: appended in the committer's transaction (only if it
/// commits) or alone, read newest first or oldest first by keyset, every
/// filter applied.
async fn audit_log(s: &dyn Store) {
    let entry = |at: i64, action: &str, session: Option<&str>| NewAudit {
        at,
        action: action.into(),
        actor: format!("api_key:key_{}", at % 2),
        session_id: session.map(str::to_string),
        target: None,
        data: serde_json::json!({"at": at}),
    };
    // A transaction that does not commit appends nothing.
    let mut tx = s.begin().await.unwrap();
    tx.insert_audit(&[entry(1, "session.created", Some("ses_gone"))])
        .await
        .unwrap();
    drop(tx);
    let mut tx = s.begin().await.unwrap();
    tx.insert_audit(&[
        entry(2, "session.created", Some("ses_a")),
        entry(3, "session.created", Some("ses_b")),
    ])
    .await
    .unwrap();
    tx.commit().await.unwrap();
    s.append_audit(&[
        entry(4, "session.canceled", Some("ses_a")),
        entry(5, "server.started", None),
    ])
    .await
    .unwrap();
    let read = |f: AuditFilter| async move {
        s.audit_entries(&f)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.entry.at)
            .collect::<Vec<_>>()
    };
    // (The key changes' entries, at 10 and later, are left out.)
    let all = AuditFilter {
        until: Some(6),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(read(all.clone()).await, [5, 4, 3, 2]);
    let rows = s.audit_entries(&all).await.unwrap();
    assert_eq!(rows[0].entry, entry(5, "server.started", None));
    // Keyset pages, both ways.
    let page = AuditFilter {
        limit: 2,
        ..all.clone()
    };
    let first = s.audit_entries(&page).await.unwrap();
    assert_eq!(first.iter().map(|r| r.entry.at).collect::<Vec<_>>(), [5, 4]);
    let next = AuditFilter {
        after_id: Some(first[1].id),
        ..page.clone()
    };
    assert_eq!(read(next).await, [3, 2]);
    let up = AuditFilter {
        ascending: true,
        after_id: Some(rows[2].id),
        ..all.clone()
    };
    assert_eq!(read(up).await, [4, 5]);
    // Filters.
    let f = |g: fn(&mut AuditFilter)| {
        let mut f = all.clone();
        g(&mut f);
        f
    };
    assert_eq!(
        read(f(|f| f.action = Some("session.created".into()))).await,
        [3, 2]
    );
    assert_eq!(
        read(f(|f| f.session_id = Some("ses_a".into()))).await,
        [4, 2]
    );
    assert_eq!(
        read(f(|f| f.actor = Some("api_key:key_1".into()))).await,
        [5, 3]
    );
    assert_eq!(
        read(f(|f| {
            f.since = Some(3);
            f.until = Some(5);
        }))
        .await,
        [4, 3]
    );
}

/// Polls and other jobs are claimed apart: polls, oldest first, up to their
/// own limit (the scheduler's poll budget), other jobs whatever the budget;
/// the next ready time is reported per class.
async fn job_classes(s: &dyn Store) {
    let mut tx = s.begin().await.unwrap();
    let mut polls = Vec::new();
    for i in 0..5 {
        let id = tx
            .insert_job(&job(&format!("c{i}"), JobKind::Poll, 1_000 + i, 0))
            .await
            .unwrap();
        polls.push(id);
    }
    let timer = tx
        .insert_job(&job("c0", JobKind::Timer, 1_010, 0))
        .await
        .unwrap();
    let call = tx
        .insert_job(&job("c1", JobKind::Call, 2_000, 0))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let claim = |now, polls| async move {
        let mut ids: Vec<i64> = s
            .claim_due_jobs(now, 10, polls, 9_000)
            .await
            .unwrap()
            .iter()
            .map(|j| j.id)
            .collect();
        ids.sort_unstable();
        ids
    };
    let due = |polls, other| NextDue { polls, other };
    assert_eq!(s.next_due(0).await.unwrap(), due(Some(1_000), Some(1_010)));
    assert_eq!(claim(1_500, 2).await, [polls[0], polls[1], timer]);
    // No budget left: the due polls wait, other jobs do not.
    assert_eq!(claim(1_500, 0).await, Vec::<i64>::new());
    assert_eq!(
        s.next_due(1_500).await.unwrap(),
        due(Some(1_500), Some(2_000))
    );
    assert_eq!(claim(2_500, 10).await, [polls[2], polls[3], polls[4], call]);
    // Everything leased until 9,000.
    assert_eq!(
        s.next_due(2_500).await.unwrap(),
        due(Some(9_000), Some(9_000))
    );
    for id in polls.into_iter().chain([timer, call]) {
        s.finish_job(id).await.unwrap();
    }
    assert_eq!(s.next_due(0).await.unwrap(), due(None, None));
}

/// A session that ended at 100 and keeps its data `retain_ms` after.
fn ended(id: &str, retain_ms: Option<i64>) -> SessionRow {
    let mut row = session(id);
    row.state.status = gangway_core::SessionStatus::Ended;
    row.state.ended_ms = Some(100);
    row.retain_ms = retain_ms;
    row
}

/// Which sessions are due for erasure, and what an erasure rewrites.
async fn erasures(s: &dyn Store) {
    let mut tx = s.begin().await.unwrap();
    tx.insert_session(&ended("x_due", Some(10))).await.unwrap();
    tx.insert_session(&ended("x_later", Some(1000)))
        .await
        .unwrap();
    tx.insert_session(&ended("x_forever", None)).await.unwrap();
    tx.insert_session(&ended("x_erased", Some(10)))
        .await
        .unwrap();
    let mut running = session("x_running");
    running.retain_ms = Some(10);
    tx.insert_session(&running).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = s.begin().await.unwrap();
    tx.erase_session("x_erased", 105, &json!({})).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(s.erasures_due(109, 10).await.unwrap(), Vec::<String>::new());
    assert_eq!(s.erasures_due(200, 10).await.unwrap(), ["x_due"]);
    assert_eq!(s.erasure_backlog(200).await.unwrap(), 1);
    assert_eq!(
        s.erasures_due(2000, 10).await.unwrap(),
        ["x_due", "x_later"]
    );
    assert_eq!(s.erasures_due(2000, 1).await.unwrap(), ["x_due"]);
    assert_eq!(s.erasure_backlog(2000).await.unwrap(), 2);

    // What x_due holds, then its erasure.
    let marker = "Jan Jansen";
    let mut tx = s.begin().await.unwrap();
    tx.insert_timeline(&[(
        "x_due".into(),
        TimelineEntry {
            seq: 1,
            at: 100,
            kind: "provider.call".into(),
            step: Some("start".into()),
            data: json!({"name": marker}),
        },
    )])
    .await
    .unwrap();
    tx.insert_client_events(&[(
        "x_due".into(),
        ClientEvent {
            seq: 1,
            at: 100,
            event: "step".into(),
            data: json!({"name": marker}),
        },
    )])
    .await
    .unwrap();
    let mut ev = event("x_ev");
    ev.data = json!({"name": marker});
    tx.insert_event(&ev, Some("x_due")).await.unwrap();
    tx.insert_delivery(&NewDelivery {
        id: "msg_x".into(),
        session_id: "x_due".into(),
        endpoint: "https://b.example/h".into(),
        event_type: "session.ended".into(),
        payload: json!({"type": "session.ended", "data": {"input": {"name": marker}}}),
        created_at: 100,
    })
    .await
    .unwrap();
    let payloads = [
        (JobKind::Timer, json!({"visit": 1})),
        (
            JobKind::Poll,
            json!({"action": "a.status", "args": {"name": marker}}),
        ),
        (
            JobKind::Call,
            json!({"action": "a.start", "args": {"name": marker}}),
        ),
        (
            JobKind::Call,
            json!({"action": "stripe.redact", "args": {"id": "vs_1"}, "release": "redact"}),
        ),
        (
            JobKind::Call,
            json!({"action": "workflow.cancel", "args": {"session_id": "x_due-1"}}),
        ),
        (
            JobKind::Deliver,
            json!({"delivery": "msg_x", "body": {"name": marker}}),
        ),
    ];
    for (kind, payload) in &payloads {
        let mut j = job("x_due", *kind, 0, 0);
        j.payload = payload.clone();
        tx.insert_job(&j).await.unwrap();
    }
    tx.commit().await.unwrap();

    let mut tx = s.begin().await.unwrap();
    let mut row = tx.lock_session("x_due").await.unwrap().unwrap();
    let tomb = json!({"id": "x_due", "erased_at": 150});
    tx.erase_session("x_due", 150, &tomb).await.unwrap();
    row.state = SessionState {
        status: gangway_core::SessionStatus::Ended,
        ended_ms: Some(100),
        ..SessionState::default()
    };
    tx.update_session(&row).await.unwrap();
    tx.commit().await.unwrap();

    let row = s.session("x_due").await.unwrap().unwrap();
    assert_eq!(row.input, json!({}));
    assert_eq!(row.erased_at, Some(150));
    assert_eq!(row.retain_ms, Some(10));
    assert!(s.erasures_due(2000, 10).await.unwrap() == ["x_later"]);
    let t = s.timeline("x_due").await.unwrap();
    assert_eq!(
        (t[0].kind.as_str(), &t[0].data),
        ("provider.call", &json!({}))
    );
    let c = s.client_events_after("x_due", 0).await.unwrap();
    assert_eq!((c[0].event.as_str(), &c[0].data), ("step", &json!({})));
    let mut tx = s.begin().await.unwrap();
    let evs = tx.pending_events("x_due", &["done".into()]).await.unwrap();
    assert_eq!(evs[0].data, json!({}));
    drop(tx);
    let (_, _, payload, _) = s.delivery_payload("msg_x").await.unwrap().unwrap();
    assert_eq!(payload, json!({"type": "session.ended", "data": tomb}));
    // Timers, polls and calls go; the redaction, the child's cancel and
    // the delivery (without its body) stay.
    let mut left: Vec<(JobKind, serde_json::Value)> = s
        .claim_due_jobs(1_000, 100, 100, 2_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|j| j.session_id == "x_due")
        .map(|j| (j.kind, j.payload))
        .collect();
    left.sort_by_key(|(k, _)| k.as_str());
    assert_eq!(
        left,
        [
            (JobKind::Call, payloads[3].1.clone()),
            (JobKind::Call, payloads[4].1.clone()),
            (JobKind::Deliver, json!({"delivery": "msg_x"})),
        ]
    );
}

fn review(id: &str, workflow: &str, group: Option<&str>, since_ms: i64) -> ReviewRow {
    ReviewRow {
        session_id: id.into(),
        workflow_id: workflow.into(),
        version: 1,
        reference: Some(format!("ref-{id}")),
        step: "manual_review".into(),
        group: group.map(str::to_string),
        facts: json!({"score": 42, "rules": ["near the limit"]}),
        since_ms,
        deadline_ms: since_ms + 1_000_000,
        claimed_by: None,
        claim_until: 0,
    }
}

/// The review queue: written by the committer's transaction, listed oldest
/// first with keyset pages and filters, claimed by one holder at a time.
async fn reviews(s: &dyn Store) {
    let rows = [
        review("ses_r3", "wf-b", None, 300),
        review("ses_r1", "wf-a", Some("kyc"), 100),
        review("ses_r2", "wf-a", Some("aml"), 100),
    ];
    let mut tx = s.begin().await.unwrap();
    for r in &rows {
        tx.open_review(r).await.unwrap();
    }
    tx.commit().await.unwrap();
    let ids =
        |list: Vec<ReviewRow>| -> Vec<String> { list.into_iter().map(|r| r.session_id).collect() };
    let all = |f: ReviewFilter| async move {
        ids(s.reviews(&ReviewFilter { limit: 10, ..f }).await.unwrap())
    };
    assert_eq!(
        all(ReviewFilter::default()).await,
        ["ses_r1", "ses_r2", "ses_r3"]
    );
    assert_eq!(
        all(ReviewFilter {
            after: Some((100, "ses_r1".into())),
            ..ReviewFilter::default()
        })
        .await,
        ["ses_r2", "ses_r3"]
    );
    assert_eq!(
        all(ReviewFilter {
            workflow: Some("wf-a".into()),
            ..ReviewFilter::default()
        })
        .await,
        ["ses_r1", "ses_r2"]
    );
    assert_eq!(
        all(ReviewFilter {
            group: Some("aml".into()),
            ..ReviewFilter::default()
        })
        .await,
        ["ses_r2"]
    );
    assert_eq!(
        all(ReviewFilter {
            since_at_most: Some(200),
            ..ReviewFilter::default()
        })
        .await,
        ["ses_r1", "ses_r2"]
    );
    let one = s
        .reviews(&ReviewFilter {
            limit: 1,
            ..ReviewFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(one, vec![rows[1].clone()]);
    assert_eq!(s.review("ses_r3").await.unwrap(), Some(rows[0].clone()));
    assert_eq!(s.review("ses_none").await.unwrap(), None);

    // One holder at a time; the same holder extends; a lapsed claim is anyone's.
    let a = claim(s, "ses_r1", "api_key:a", 1000, 2000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (a.claimed_by.as_deref(), a.claim_until),
        (Some("api_key:a"), 2000)
    );
    assert_eq!(
        claim(s, "ses_r1", "api_key:b", 1500, 2500).await.unwrap(),
        None
    );
    let a = claim(s, "ses_r1", "api_key:a", 1500, 3000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.claim_until, 3000);
    let b = claim(s, "ses_r1", "api_key:b", 3000, 4000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.claimed_by.as_deref(), Some("api_key:b"));
    assert_eq!(claim(s, "ses_none", "api_key:a", 0, 1).await.unwrap(), None);

    // In a transaction: read (locked), closed; entering again starts unclaimed.
    let mut tx = s.begin().await.unwrap();
    assert_eq!(tx.lock_review("ses_r1").await.unwrap(), Some(b.clone()));
    tx.close_review("ses_r1").await.unwrap();
    assert_eq!(tx.lock_review("ses_r1").await.unwrap(), None);
    tx.commit().await.unwrap();
    assert_eq!(s.review("ses_r1").await.unwrap(), None);
    claim(s, "ses_r2", "api_key:a", 0, 5000)
        .await
        .unwrap()
        .unwrap();
    let mut tx = s.begin().await.unwrap();
    tx.open_review(&review("ses_r2", "wf-a", Some("aml"), 400))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let again = s.review("ses_r2").await.unwrap().unwrap();
    assert_eq!((again.since_ms, again.claimed_by), (400, None));

    // Claimers at once: exactly one wins.
    let claims = (0..8).map(|i| {
        let holder = format!("api_key:k{i}");
        async move { claim(s, "ses_r3", &holder, 10, 20).await.unwrap() }
    });
    let won = futures::future::join_all(claims)
        .await
        .into_iter()
        .filter(Option::is_some)
        .count();
    assert_eq!(won, 1);

    // Each claim taken appended its entry with it; a refused one none.
    let log: Vec<(String, String, String)> = s
        .audit_entries(&AuditFilter {
            action: Some("review.claimed".into()),
            ascending: true,
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r.entry.session_id.unwrap(),
                r.entry.actor,
                r.entry.data["until"].to_string(),
            )
        })
        .collect();
    assert_eq!(log.len(), 5, "{log:?}");
    assert_eq!(
        log[..4],
        [
            ("ses_r1".into(), "api_key:a".into(), "2000".into()),
            ("ses_r1".into(), "api_key:a".into(), "3000".into()),
            ("ses_r1".into(), "api_key:b".into(), "4000".into()),
            ("ses_r2".into(), "api_key:a".into(), "5000".into()),
        ]
    );
    assert_eq!(log[4].0, "ses_r3");
}

/// Claims a review with the audit entry the engine writes alongside.
async fn claim(
    s: &dyn Store,
    id: &str,
    holder: &str,
    now: i64,
    until: i64,
) -> store::Result<Option<ReviewRow>> {
    let entry = NewAudit {
        at: now,
        action: "review.claimed".into(),
        actor: holder.into(),
        session_id: Some(id.into()),
        target: None,
        data: json!({"until": until}),
    };
    s.claim_review(id, holder, now, until, &entry).await
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let s = sqlite(&dir).await;
    job_classes(s.as_ref()).await;
    round_trip(s.as_ref()).await;
    writes_within_a_transaction(s.as_ref()).await;
    events_within_a_transaction(s.as_ref()).await;
    workflow_versions(s.as_ref()).await;
    nodes(s.as_ref()).await;
    api_keys(s.as_ref()).await;
    audit_log(s.as_ref()).await;
    erasures(s.as_ref()).await;
    reviews(s.as_ref()).await;
    assert!(s.signals().await.unwrap().is_none());
    // Append-only, whoever writes to the file.
    let c = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
    for sql in [
        "UPDATE audit_log SET actor = 'someone else'",
        "DELETE FROM audit_log",
    ] {
        let err = c.execute(sql, []).unwrap_err().to_string();
        assert!(err.contains("the audit log is append-only"), "{sql}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_conforms() {
    let db = PgDb::create().await;
    let s = db.node("node-a", true).await;
    job_classes(s.as_ref()).await;
    round_trip(s.as_ref()).await;
    writes_within_a_transaction(s.as_ref()).await;
    events_within_a_transaction(s.as_ref()).await;
    workflow_versions(s.as_ref()).await;
    nodes(s.as_ref()).await;
    api_keys(s.as_ref()).await;
    audit_log(s.as_ref()).await;
    erasures(s.as_ref()).await;
    reviews(s.as_ref()).await;
    drop(s);
    // Append-only, whoever connects.
    let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
    for sql in [
        "UPDATE audit_log SET actor = 'someone else'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let err = sqlx::query(sql)
            .execute(&mut c)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("the audit log is append-only"), "{sql}: {err}");
    }
    drop(c);
    db.drop_now().await;
}

/// Two nodes claiming at once never get the same job; a node frees only
/// its own leases, and at start only with a stable id.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_nodes_share_jobs() {
    let db = PgDb::create().await;
    let a = db.node("node-a", true).await;
    let b = db.node("node-b", false).await;
    let mut tx = a.begin().await.unwrap();
    for i in 0..400 {
        tx.insert_job(&job(&format!("s{i}"), JobKind::Timer, 10, 0))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let claim = |s: Arc<dyn Store>| async move {
        let mut got = Vec::new();
        loop {
            let jobs = s.claim_due_jobs(100, 7, 7, 10_000).await.unwrap();
            if jobs.is_empty() {
                return got;
            }
            got.extend(jobs.into_iter().map(|j| j.id));
        }
    };
    let (ga, gb) = tokio::join!(
        tokio::spawn(claim(a.clone())),
        tokio::spawn(claim(b.clone()))
    );
    let (ga, gb) = (ga.unwrap(), gb.unwrap());
    let mut all: Vec<i64> = ga.iter().chain(&gb).copied().collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 400, "every job claimed exactly once");
    assert_eq!(ga.len() + gb.len(), 400);

    // b's id is not stable: at start it frees nothing; a frees only its own.
    assert_eq!(b.release_leases_at_start().await.unwrap(), 0);
    assert_eq!(a.release_leases_at_start().await.unwrap(), ga.len() as u64);
    assert_eq!(a.release_node_leases().await.unwrap(), 0);
    // A node cannot renew a lease it does not hold.
    assert!(!b.extend_lease(ga[0], 50_000).await.unwrap());
    assert!(b.extend_lease(gb[0], 10_000).await.unwrap());
    // b's leases still hold until they expire.
    assert_eq!(
        a.claim_due_jobs(100, 1000, 1000, 20_000)
            .await
            .unwrap()
            .len(),
        ga.len()
    );
    assert_eq!(
        a.claim_due_jobs(10_001, 1000, 1000, 30_000)
            .await
            .unwrap()
            .len(),
        gb.len()
    );
    drop((a, b));
    db.drop_now().await;
}

/// A session locked by one node's transaction waits for it on another.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_session_locks_serialize_nodes() {
    let db = PgDb::create().await;
    let a = db.node("node-a", true).await;
    let b = db.node("node-b", true).await;
    let mut tx = a.begin().await.unwrap();
    tx.insert_session(&session("s1")).await.unwrap();
    tx.commit().await.unwrap();

    let mut ta = a.begin().await.unwrap();
    let mut row = ta.lock_session("s1").await.unwrap().unwrap();
    // This transaction's backend: the only one in this database holding
    // the row-share lock a `FOR UPDATE` takes on `sessions` (nothing else
    // runs a transaction here yet).
    let mut watch = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let holders: Vec<(i32,)> = sqlx::query_as(
        "SELECT l.pid FROM pg_locks l \
         JOIN pg_database d ON d.oid = l.database AND d.datname = current_database() \
         WHERE l.relation = 'sessions'::regclass AND l.mode = 'RowShareLock' \
         AND l.granted AND l.pid <> pg_backend_pid()",
    )
    .fetch_all(&mut watch)
    .await
    .unwrap();
    assert_eq!(holders.len(), 1, "one backend holds the lock: {holders:?}");
    let holder = holders[0].0;
    let (locked_tx, mut locked_rx) = tokio::sync::mpsc::unbounded_channel();
    let other = tokio::spawn(async move {
        let mut tb = b.begin().await.unwrap();
        let row = tb.lock_session("s1").await.unwrap().unwrap();
        locked_tx.send(row.timeline_seq).unwrap();
        tb.commit().await.unwrap();
    });
    // The other node waits for this transaction's row lock, and has not
    // got the row meanwhile. Only a lock wait in this test's database that
    // this transaction's backend blocks counts: another test's lock wait
    // on the shared server, or another backend's, must not pass this check.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (waiting,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_locks l \
             JOIN pg_stat_activity a ON a.pid = l.pid AND a.datname = current_database() \
             WHERE NOT l.granted AND l.pid NOT IN ($1, pg_backend_pid()) \
             AND $1 = ANY(pg_blocking_pids(l.pid))",
        )
        .bind(holder)
        .fetch_one(&mut watch)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(
            locked_rx.try_recv().is_err(),
            "the second lock did not wait"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the second lock never waited"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        locked_rx.try_recv().is_err(),
        "the second lock did not wait"
    );
    row.timeline_seq = 42;
    ta.update_session(&row).await.unwrap();
    ta.commit().await.unwrap();
    // And then sees the committed change.
    assert_eq!(locked_rx.recv().await, Some(42));
    other.await.unwrap();
    drop(a);
    db.drop_now().await;
}

/// An event stored for an unknown reference while another node commits that
/// reference: neither transaction sees the other's row, and neither waits
/// (no lock spans the batch); the adoption check either side runs after its
/// commit gives the event to the session.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_early_event_is_adopted_across_nodes() {
    let db = PgDb::create().await;
    let a = db.node("node-a", true).await;
    let b = db.node("node-b", true).await;
    let mut ta = a.begin().await.unwrap();
    assert_eq!(ta.correlation("ns", "r1").await.unwrap(), None);
    let ev = ta.insert_event(&event("e1"), None).await.unwrap().unwrap();
    let mut tb = b.begin().await.unwrap();
    tb.insert_session(&session("s1")).await.unwrap();
    tb.insert_correlation("ns", "r1", "s1").await.unwrap();
    assert!(
        tb.pending_events("s1", &["done".into()])
            .await
            .unwrap()
            .is_empty()
    );
    tb.commit().await.unwrap();
    ta.commit().await.unwrap();

    let mut tx = a.begin().await.unwrap();
    assert_eq!(tx.adopt_events("ns", "r1", "s1").await.unwrap(), 1);
    let pending = tx.pending_events("s1", &["done".into()]).await.unwrap();
    assert_eq!(pending.iter().map(|e| e.id).collect::<Vec<_>>(), [ev]);
    tx.commit().await.unwrap();
    assert!(a.unadopted_references().await.unwrap().is_empty());

    // The same race again; this time the batch holding the session adopts
    // in bulk, and a check naming another session gets nothing.
    let mut ta = a.begin().await.unwrap();
    let ev2 = ta
        .insert_event(&event_for("e2", "r2", "done"), None)
        .await
        .unwrap()
        .unwrap();
    let mut tb = b.begin().await.unwrap();
    tb.insert_session(&session("s2")).await.unwrap();
    tb.insert_correlation("ns", "r2", "s2").await.unwrap();
    tb.commit().await.unwrap();
    ta.commit().await.unwrap();
    let mut tx = a.begin().await.unwrap();
    tx.lock_sessions(&["s2"]).await.unwrap();
    assert!(
        tx.pending_events("s2", &["done".into()])
            .await
            .unwrap()
            .is_empty()
    );
    let adopted = tx
        .adopt_events_many(&[
            ("ns", "r2", "s-other"),
            ("ns", "r2", "s2"),
            ("ns", "nowhere", "s2"),
        ])
        .await
        .unwrap();
    assert_eq!(adopted.len(), 1, "{adopted:?}");
    assert_eq!(adopted[&("ns".to_string(), "r2".to_string())], 1);
    let pending = tx.pending_events("s2", &["done".into()]).await.unwrap();
    assert_eq!(pending.iter().map(|e| e.id).collect::<Vec<_>>(), [ev2]);
    tx.commit().await.unwrap();
    assert!(a.unadopted_references().await.unwrap().is_empty());
    drop((a, b));
    db.drop_now().await;
}

/// A writer that died between its commit and its adoption check leaves a
/// correlated reference with unadopted events: listed for the next start.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_lists_unadopted_references() {
    let db = PgDb::create().await;
    let a = db.node("node-a", true).await;
    let mut tx = a.begin().await.unwrap();
    tx.insert_correlation("ns", "r1", "s1").await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = a.begin().await.unwrap();
    tx.insert_event(&event("e1"), None).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        a.unadopted_references().await.unwrap(),
        [("ns".to_string(), "r1".to_string())]
    );
    // The check after a commit: of the references asked about, only the
    // correlated one with events left, with its session.
    let asked = [
        ("ns".to_string(), "r1".to_string()),
        ("ns".to_string(), "unknown".to_string()),
    ];
    assert_eq!(
        a.unadopted_among(&asked).await.unwrap(),
        [("ns".to_string(), "r1".to_string(), "s1".to_string())]
    );
    // Adoption is for the correlated session only.
    let mut tx = a.begin().await.unwrap();
    assert_eq!(tx.adopt_events("ns", "r1", "intruder").await.unwrap(), 0);
    assert_eq!(tx.adopt_events("ns", "r1", "s1").await.unwrap(), 1);
    tx.commit().await.unwrap();
    assert!(a.unadopted_among(&asked).await.unwrap().is_empty());
    drop(a);
    db.drop_now().await;
}

/// Commits announce free jobs and client events to the other nodes, not to
/// the committing one.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_signals_reach_other_nodes() {
    let db = PgDb::create().await;
    let a = db.node("node-a", true).await;
    let b = db.node("node-b", true).await;
    let mut from_a = a.signals().await.unwrap().unwrap();
    let mut from_b = b.signals().await.unwrap().unwrap();
    let mut tx = a.begin().await.unwrap();
    tx.insert_job(&job("s1", JobKind::Timer, 1234, 0))
        .await
        .unwrap();
    tx.insert_job(&job("s1", JobKind::Call, 1, 99_999))
        .await
        .unwrap();
    tx.insert_client_events(&[(
        "s1".to_string(),
        ClientEvent {
            seq: 3,
            at: 1,
            event: "step".into(),
            data: json!({}),
        },
    )])
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        got.push(
            tokio::time::timeout(Duration::from_secs(10), from_b.recv())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assert!(got.contains(&Signal::JobsDue(1234)), "{got:?}");
    assert!(
        got.contains(&Signal::ClientEvents(vec![("s1".into(), 3)])),
        "{got:?}"
    );
    // A rolled-back transaction announces nothing; a's own signals are not echoed.
    let mut tx = a.begin().await.unwrap();
    tx.insert_job(&job("s1", JobKind::Timer, 5, 0))
        .await
        .unwrap();
    drop(tx);
    let mut tx = b.begin().await.unwrap();
    tx.insert_job(&job("s2", JobKind::Poll, 77, 0))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), from_a.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first, Signal::JobsDue(77));
    assert!(from_b.try_recv().is_err());
    // A key revoked or rotated on one node (or by the CLI) reaches the others.
    a.create_api_key(
        &new_key("key_1", "h1", None),
        &audit("api_key.created", "key_1", 10),
    )
    .await
    .unwrap();
    a.rotate_api_key("key_1", "h2", 1, 2, &audit("api_key.rotated", "key_1", 1))
        .await
        .unwrap()
        .unwrap();
    a.revoke_api_key("key_1", 3, &audit("api_key.revoked", "key_1", 3))
        .await
        .unwrap()
        .unwrap();
    for _ in 0..2 {
        let got = tokio::time::timeout(Duration::from_secs(10), from_b.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, Signal::KeyChanged("key_1".into()));
    }
    // Revoking again changes nothing and tells nobody.
    a.revoke_api_key("key_1", 4, &audit("api_key.revoked", "key_1", 4))
        .await
        .unwrap()
        .unwrap();
    b.create_api_key(
        &new_key("key_2", "h3", None),
        &audit("api_key.created", "key_2", 10),
    )
    .await
    .unwrap();
    b.revoke_api_key("key_2", 5, &audit("api_key.revoked", "key_2", 5))
        .await
        .unwrap()
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), from_a.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, Signal::KeyChanged("key_2".into()));
    drop((a, b));
    db.drop_now().await;
}

/// Issue 23 finding 9: callers waiting for a connection are counted
/// (`gangway_db_pool_waiting`), uncounted when they get one.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_counts_callers_waiting_for_a_connection() {
    let db = PgDb::create().await;
    let s = db.node("node-a", true).await;
    let max = s.pool_stats().max;
    let mut held = Vec::new();
    for _ in 0..max {
        held.push(s.begin().await.unwrap());
    }
    assert_eq!(s.pool_stats().in_use, max);
    assert_eq!(s.pool_stats().waiting, 0);
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.begin().await.map(drop) })
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    while s.pool_stats().waiting != 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "waiting: {:?}",
            s.pool_stats()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A connection comes back: both waiters get one in turn.
    held.pop();
    for w in waiters {
        w.await.unwrap().unwrap();
    }
    assert_eq!(s.pool_stats().waiting, 0);
    drop(held);
    drop(s);
    db.drop_now().await;
}
