//! The console's queries at 100,000 sessions (docs/benchmarks.md): the
//! store is filled with 100,000 sessions over a week (80% ended), 300,000
//! deliveries (1% failed, 0.5% pending) with an attempt each, 600,000 step
//! visits and a week of per-minute provider counters, then each read the
//! deliveries page and the dashboard make is timed through the store (the
//! statements the server runs), median of 15. Ignored by default (it fills
//! a database for a minute); run it with
//! `cargo test -p gangway --release --test console_scale -- --ignored --nocapture`
//! (GANGWAY_TEST_BACKEND=postgres for PostgreSQL). It fails when a query
//! answers wrongly or takes longer than `BOUND_MS`.
#![allow(clippy::unwrap_used)]

mod common;

use gangway_server::store::{self, DeliveryFilter, OpenOptions, Store};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SESSIONS: i64 = 100_000;
/// Sessions are created 6 s apart: 100,000 over about a week.
const GAP_MS: i64 = 6_000;
const BASE_MS: i64 = 1_780_000_000_000;
/// The slowest a dashboard or deliveries read may be (a debug build too).
const BOUND_MS: u128 = 1_000;

/// The seed, in each dialect's way of making rows: `$GEN` stands for a
/// series of `i` from 0 to 99,999.
const SEED: &[&str] = &[
    "INSERT INTO sessions (id, workflow_id, version, status, outcome, reason, reference, input, state,
       created_at, updated_at, ended_at, client_secret_hash, client_secret_expires_at, api_key_id)
     SELECT 'ses_' || LPAD(i::text, 12, '0'), 'wf-' || (i % 3), 1,
       CASE WHEN i % 5 = 0 THEN 'waiting' ELSE 'ended' END,
       CASE WHEN i % 5 = 0 THEN NULL WHEN i % 5 = 1 THEN 'declined' WHEN i % 5 = 2 THEN 'review' ELSE 'approved' END,
       NULL, 'ref-' || i, '{}', '{}', $BASE + i * $GAP, $BASE + i * $GAP,
       CASE WHEN i % 5 = 0 THEN NULL ELSE $BASE + i * $GAP + 60000 END, 'h', 0, 'key_seed'
     FROM $GEN",
    "INSERT INTO deliveries (id, session_id, endpoint, event_type, payload, status, attempts, created_at, next_attempt_at, delivered_at)
     SELECT 'msg_' || LPAD(TO_HEX($BASE + i * $GAP + k), 12, '0') || LPAD(TO_HEX(i * 3 + k), 16, '0'),
       'ses_' || LPAD(i::text, 12, '0'), 'https://backend-' || (i % 2) || '.example/hooks',
       CASE k WHEN 2 THEN 'session.ended' ELSE 'session.updated' END, '{}',
       CASE WHEN i % 100 = 7 THEN 'failed' WHEN i % 200 = 9 THEN 'pending' ELSE 'delivered' END, 1,
       $BASE + i * $GAP + k, NULL,
       CASE WHEN i % 100 = 7 OR i % 200 = 9 THEN NULL ELSE $BASE + i * $GAP + k + 150 END
     FROM $GEN CROSS JOIN (SELECT 0 AS k UNION ALL SELECT 1 UNION ALL SELECT 2) AS ks",
    "INSERT INTO delivery_attempts (delivery_id, attempt, at, status_code, error, duration_ms)
     SELECT id, 1, created_at, 204, NULL, 40 FROM deliveries",
    "INSERT INTO session_steps (session_id, visit, workflow_id, version, step, entered_at, left_at, exit_to)
     SELECT 'ses_' || LPAD(i::text, 12, '0'), v, 'wf-' || (i % 3), 1, 'step_' || v,
       $BASE + i * $GAP + v * 10000,
       CASE WHEN i % 5 = 0 AND v = 6 THEN NULL ELSE $BASE + i * $GAP + v * 10000 + 1000 * v END,
       CASE WHEN i % 5 = 0 AND v = 6 THEN NULL WHEN v = 6 THEN 'outcome:approved' ELSE 'step_' || (v + 1) END
     FROM $GEN CROSS JOIN (SELECT 1 AS v UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4
       UNION ALL SELECT 5 UNION ALL SELECT 6) AS vs",
    "INSERT INTO provider_stats (minute, connector, calls, errors, total_ms, max_ms)
     SELECT $BASE + m * 60000, c, 50, m % 3, 50 * 120, 900
     FROM (SELECT i AS m FROM $GEN WHERE i < 10080) AS ms
     CROSS JOIN (SELECT 'http' AS c UNION ALL SELECT 'incode' UNION ALL SELECT 'ockto'
       UNION ALL SELECT 'stripe' UNION ALL SELECT 'dialog360') AS cs",
];

/// The seed in SQLite's words: a recursive series, its string functions.
fn sqlite_sql(stmt: &str) -> String {
    stmt.replace(
        "$GEN",
        "(WITH RECURSIVE g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i < 99999) SELECT i FROM g)",
    )
    .replace("LPAD(i::text, 12, '0')", "printf('%012d', i)")
    .replace(
        "LPAD(TO_HEX($BASE + i * $GAP + k), 12, '0') || LPAD(TO_HEX(i * 3 + k), 16, '0')",
        "printf('%012x%016x', $BASE + i * $GAP + k, i * 3 + k)",
    )
    .replace("$BASE", &BASE_MS.to_string())
    .replace("$GAP", &GAP_MS.to_string())
}

fn pg_sql(stmt: &str) -> String {
    stmt.replace("$GEN", "generate_series(0, 99999) AS g(i)")
        .replace("$BASE", &format!("{BASE_MS}::bigint"))
        .replace("$GAP", &GAP_MS.to_string())
}

async fn seed(db: &common::pg::TestDb) {
    if db.is_postgres() {
        let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(db.url())
            .await
            .unwrap();
        for stmt in SEED {
            sqlx::query(&pg_sql(stmt)).execute(&mut c).await.unwrap();
        }
        // What autovacuum does to a table this size: index-only scans then
        // skip the heap.
        sqlx::query("VACUUM ANALYZE").execute(&mut c).await.unwrap();
    } else {
        let path = store::sqlite_file(db.url()).unwrap();
        let c = rusqlite::Connection::open(path).unwrap();
        for stmt in SEED {
            c.execute(&sqlite_sql(stmt), []).unwrap();
        }
        c.execute_batch("ANALYZE").unwrap();
    }
}

/// The median of 15 runs of `f`, printed.
async fn timed<T, F, Fut>(what: &str, mut f: F) -> (T, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..15 {
        let t = Instant::now();
        last = Some(f().await);
        times.push(t.elapsed());
    }
    times.sort();
    let median = times[times.len() / 2];
    println!("{what:<62} {:>8.2} ms", median.as_secs_f64() * 1000.0);
    assert!(
        median.as_millis() <= BOUND_MS,
        "{what}: {median:?} is over {BOUND_MS} ms"
    );
    (last.unwrap(), median)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "fills a database with 100,000 sessions; run with --ignored"]
async fn console_queries_at_100000_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::pg::TestDb::for_env(dir.path()).await;
    let st: Arc<dyn Store> = store::open_with(db.url(), &OpenOptions::default())
        .await
        .unwrap();
    st.migrate().await.unwrap();
    let t = Instant::now();
    seed(&db).await;
    println!(
        "seeded {SESSIONS} sessions on {} in {:.1} s",
        if db.is_postgres() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        t.elapsed().as_secs_f64()
    );
    let page = |f: DeliveryFilter| DeliveryFilter { limit: 51, ..f };
    // The last sessions' later steps are entered up to a minute after their creation.
    let week = (BASE_MS, BASE_MS + SESSIONS * GAP_MS + 3_600_000);
    let last_day = (week.1 - 86_400_000, week.1);

    let f = page(DeliveryFilter {
        status: Some("failed".into()),
        ..DeliveryFilter::default()
    });
    let (rows, _) = timed("deliveries: failed, first page", || st.list_deliveries(&f)).await;
    let rows = rows.unwrap();
    assert_eq!(rows.len(), 51);
    assert!(
        rows.iter()
            .all(|d| d.status == "failed" && d.attempt_log.len() == 1)
    );
    assert!(rows.windows(2).all(|w| w[0].id > w[1].id));
    let f = page(DeliveryFilter::default());
    let (rows, _) = timed("deliveries: no filter, first page", || {
        st.list_deliveries(&f)
    })
    .await;
    let deep = rows.unwrap()[0].id.clone();
    let f = page(DeliveryFilter {
        status: Some("failed".into()),
        endpoint: Some("https://backend-1.example/hooks".into()),
        event_type: Some("session.ended".into()),
        ..DeliveryFilter::default()
    });
    let (rows, _) = timed("deliveries: failed + endpoint + event type", || {
        st.list_deliveries(&f)
    })
    .await;
    assert!(!rows.unwrap().is_empty());
    let f = page(DeliveryFilter {
        status: Some("pending".into()),
        since: Some(last_day.0),
        ..DeliveryFilter::default()
    });
    let (rows, _) = timed("deliveries: pending since a day ago", || {
        st.list_deliveries(&f)
    })
    .await;
    assert!(rows.unwrap().iter().all(|d| d.created_at >= last_day.0));
    // A page near the oldest: the cursor is a bound on the same index.
    let old = format!("msg_{:012x}", BASE_MS + 3_000 * GAP_MS);
    let f = page(DeliveryFilter {
        status: Some("delivered".into()),
        before: Some(old.clone()),
        ..DeliveryFilter::default()
    });
    let (rows, _) = timed("deliveries: delivered, a page near the oldest", || {
        st.list_deliveries(&f)
    })
    .await;
    assert_eq!(rows.unwrap().len(), 51);
    assert!(deep.starts_with("msg_"));

    let (r, _) = timed("funnel: one workflow, a week (200,000 visits)", || {
        st.funnel("wf-0", week.0, week.1)
    })
    .await;
    let groups = r.unwrap();
    let first: i64 = groups
        .iter()
        .filter(|g| g.step == "step_1")
        .map(|g| g.sessions)
        .sum();
    assert_eq!(first, (SESSIONS + 2) / 3);
    timed("funnel: one workflow, a day", || {
        st.funnel("wf-0", last_day.0, last_day.1)
    })
    .await
    .0
    .unwrap();
    let (rows, _) = timed("outcomes: all workflows, a week by day", || {
        st.outcomes(None, week.0, week.1, 86_400_000)
    })
    .await;
    let ended: i64 = rows.unwrap().iter().map(|r| r.sessions).sum();
    assert!(ended > SESSIONS * 3 / 4, "{ended}");
    timed("outcomes: one workflow, a day by hour", || {
        st.outcomes(Some("wf-1"), last_day.0, last_day.1, 3_600_000)
    })
    .await
    .0
    .unwrap();
    let (rows, _) = timed(
        "providers: five connectors, a week (50,400 counters)",
        || st.provider_totals(week.0, week.1),
    )
    .await;
    assert_eq!(rows.unwrap().len(), 5);
    let (d, _) = timed("webhooks: backlog now and the lag of a day", || {
        st.delivery_totals(last_day.0, last_day.1)
    })
    .await;
    let d = d.unwrap();
    assert_eq!((d.failed, d.pending), (3_000, 1_500));
    assert!(d.delivered > 0 && d.lag_max_ms >= 150, "{d:?}");
}
