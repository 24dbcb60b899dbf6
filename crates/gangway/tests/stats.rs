//! The dashboard's figures over HTTP (`/v1/stats/*`): sessions of
//! `http-score` approved, declined and still waiting give a funnel whose
//! counts are the sessions created, step by step, with where each went;
//! outcomes over time count the endings; provider health counts the score
//! service's calls and the webhook backlog and lag. Bad periods are problem
//! JSON; the scope is checked. Runs on PostgreSQL with
//! GANGWAY_TEST_BACKEND=postgres.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, create_key, eventually};
use serde_json::{Value, json};

async fn get(h: &Harness, path: &str, key: &str) -> (u16, Value) {
    let r = h
        .http
        .get(h.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn step<'a>(funnel: &'a Value, name: &str) -> &'a Value {
    funnel["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no step {name}: {funnel}"))
}

fn exits(s: &Value) -> Value {
    s["exits"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_funnel_counts_the_sessions_created_step_by_step() {
    let h = Harness::start().await;
    let since = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    // Three approved, one declined, one left waiting for its score.
    let mut ended = Vec::new();
    for (i, score) in [Some(60), Some(70), Some(80), Some(20), None]
        .into_iter()
        .enumerate()
    {
        let s = h.create_score_session(&format!("funnel-{i}")).await;
        let id = s["id"].as_str().unwrap().to_string();
        let pid = h.provider_id(&id).await;
        match score {
            Some(score) => {
                h.complete(&pid, score).await;
                ended.push(id);
            }
            None => {
                h.wait_session(&id, "waiting", |s| s["status"] == "waiting")
                    .await;
            }
        }
    }
    for id in &ended {
        h.wait_ended(id).await;
    }
    let path = format!("/v1/stats/funnel?workflow=http-score&since={since}");
    let (code, f) = get(&h, &path, &h.api_key).await;
    assert_eq!(code, 200, "{f}");
    // In the workflow's order.
    let names: Vec<&str> = f["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "start_provider",
            "wait_for_result",
            "fetch_score",
            "decide",
            "approve",
            "decline",
            "not_completed",
            "too_late"
        ]
    );
    let start = step(&f, "start_provider");
    assert_eq!(start["sessions"], 5, "{f}");
    assert_eq!(start["kind"], "call");
    assert_eq!(
        exits(start),
        json!([{"step": "wait_for_result", "visits": 5}])
    );
    assert!(start["median_ms"].as_i64().is_some(), "{start}");
    let wait = step(&f, "wait_for_result");
    assert_eq!(wait["sessions"], 5, "{f}");
    assert_eq!(wait["in_step"], 1, "the one still waiting: {f}");
    assert_eq!(exits(wait), json!([{"step": "fetch_score", "visits": 4}]));
    assert_eq!(step(&f, "fetch_score")["sessions"], 4);
    assert_eq!(
        exits(step(&f, "decide")),
        json!([{"step": "approve", "visits": 3}, {"step": "decline", "visits": 1}])
    );
    assert_eq!(step(&f, "approve")["sessions"], 3);
    assert_eq!(
        exits(step(&f, "approve")),
        json!([{"outcome": "approved", "visits": 3}])
    );
    assert_eq!(
        exits(step(&f, "decline")),
        json!([{"outcome": "declined", "visits": 1}])
    );
    assert_eq!(step(&f, "too_late")["sessions"], 0);
    assert!(step(&f, "too_late")["median_ms"].is_null());
    // A period before any of them: nothing.
    let (_, empty) = get(
        &h,
        "/v1/stats/funnel?workflow=http-score&since=2020-01-01T00:00:00Z&until=2020-01-02T00:00:00Z",
        &h.api_key,
    )
    .await;
    assert_eq!(step(&empty, "start_provider")["sessions"], 0, "{empty}");

    // Outcomes over time: the four endings, in the last hourly buckets.
    let (code, o) = get(
        &h,
        &format!("/v1/stats/outcomes?workflow=http-score&since={since}"),
        &h.api_key,
    )
    .await;
    assert_eq!(code, 200, "{o}");
    assert_eq!(o["bucket_ms"], 3_600_000);
    let total = |outcome: &str| -> i64 {
        o["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["counts"][outcome].as_i64().unwrap_or(0))
            .sum()
    };
    assert_eq!((total("approved"), total("declined")), (3, 1), "{o}");
    let (_, other) = get(
        &h,
        &format!("/v1/stats/outcomes?workflow=score-fast&since={since}"),
        &h.api_key,
    )
    .await;
    assert!(
        other["series"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["counts"] == json!({})),
        "{other}"
    );

    // Provider health: the score service's calls (a start each, a read for
    // each completed one), none failed; the webhooks delivered, with a lag.
    let p = eventually("the webhooks delivered", 20, || async {
        let (code, p) = get(
            &h,
            &format!("/v1/stats/providers?since={since}"),
            &h.api_key,
        )
        .await;
        assert_eq!(code, 200, "{p}");
        (p["webhooks"]["delivered"].as_i64().unwrap() >= 4 && p["webhooks"]["pending"] == 0)
            .then_some(p)
    })
    .await;
    let http = p["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["connector"] == "http")
        .unwrap_or_else(|| panic!("{p}"));
    assert!(http["calls"].as_i64().unwrap() >= 9, "{p}");
    assert_eq!(http["errors"], 0, "{p}");
    assert_eq!(http["error_rate"], 0.0, "{p}");
    assert!(p["webhooks"]["avg_lag_ms"].as_i64().is_some(), "{p}");
    assert_eq!(p["webhooks"]["failed"], 0, "{p}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_periods_are_problems_and_the_scope_is_checked() {
    let h = Harness::start().await;
    let key = &h.api_key;
    let outsider = create_key(&h.config, "outsider", &["workflows:read"]);
    for (path, code) in [
        ("/v1/stats/funnel", 422),
        ("/v1/stats/funnel?workflow=nope", 404),
        ("/v1/stats/funnel?workflow=http-score&since=yesterday", 422),
        (
            "/v1/stats/funnel?workflow=http-score&since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z",
            422,
        ),
        (
            "/v1/stats/outcomes?since=2020-01-01T00:00:00Z&until=2026-01-01T00:00:00Z",
            422,
        ),
        ("/v1/stats/outcomes?bucket=week", 422),
        (
            "/v1/stats/outcomes?bucket=hour&since=2026-01-01T00:00:00Z&until=2026-03-01T00:00:00Z",
            422,
        ),
        ("/v1/stats/providers?workflow=http-score", 422),
        ("/v1/stats/providers?colour=red", 400),
    ] {
        let (status, p) = get(&h, path, key).await;
        assert_eq!(status, code, "{path}: {p}");
        assert_eq!(p["status"], code, "{path}: {p}");
    }
    for path in [
        "/v1/stats/funnel?workflow=http-score",
        "/v1/stats/outcomes",
        "/v1/stats/providers",
    ] {
        assert_eq!(get(&h, path, key).await.0, 200, "{path}");
        let (status, p) = get(&h, path, &outsider).await;
        assert_eq!(status, 403, "{path}: {p}");
        assert_eq!(p["missing_scope"], "sessions:read");
    }
}
