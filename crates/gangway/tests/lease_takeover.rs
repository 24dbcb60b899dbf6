//! A node killed with kill -9 in the middle of a provider call: another node
//! takes the call over within about one lease (`engine.lease`, 2 s here),
//! not at the step's deadline (30 s for `http-score`'s start), and counts
//! it in `gangway_lease_takeovers_total`. The start is sent again with the
//! same idempotency key, so the provider still has one session for the step.
//! Two nodes on PostgreSQL (leases matter only with several nodes).
#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, Options, eventually};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const LEASE: Duration = Duration::from_secs(2);

/// The provider sessions the score simulator made for `reference`.
async fn score_sessions(h: &Harness, reference: &str) -> Vec<Value> {
    let all: Vec<Value> = h
        .http
        .get(h.sim("/control/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    all.into_iter()
        .filter(|s| s["reference"] == reference)
        .collect()
}

/// The sum of a counter's series whose line starts with `prefix`.
async fn counter(h: &Harness, base: &str, prefix: &str) -> f64 {
    let text = h
        .http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_in_flight_on_a_killed_node_moves_within_a_lease() {
    let mut h = Harness::start_with(Options {
        postgres: true,
        engine_toml: "lease = \"2s\"\n",
        ..Options::default()
    })
    .await;
    let other = h.add_node();
    let other_base = h.node_url(other, "");

    // The start reaches the provider, which makes its session and then
    // never answers: the call is in flight on the first node.
    let (st, body) = h
        .sim_post(
            "/control/faults",
            json!({"rules": [{"match": {"method": "POST", "path": "/v1/sessions"},
                              "times": 1, "fault": {"hang": true, "after_effect": true}}]}),
        )
        .await;
    assert_eq!(st, 200, "installing the fault: {body}");
    let s = h.create_score_session("takeover").await;
    let id = s["id"].as_str().unwrap().to_string();
    let made = eventually("the provider made its session", 20, || async {
        let found = score_sessions(&h, "takeover").await;
        (!found.is_empty()).then_some(found)
    })
    .await;
    let armed: Value = h
        .http
        .get(h.sim("/control/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(armed["rules"], json!([]), "the hang fired");
    let before = counter(
        &h,
        &other_base,
        "gangway_lease_takeovers_total{class=\"call\"}",
    )
    .await;

    // kill -9 the node that holds the call; the other one must carry it on.
    h.kill9_server();
    let killed = Instant::now();
    let waiting = eventually(&format!("{id} waiting on the other node"), 20, || async {
        let r = h
            .http
            .get(format!("{other_base}/v1/sessions/{id}"))
            .bearer_auth(&h.api_key)
            .send()
            .await
            .unwrap();
        let s: Value = r.json().await.unwrap();
        (s["status"] == "waiting").then_some(s)
    })
    .await;
    let took = killed.elapsed();
    eprintln!("call taken over {:.2} s after the kill", took.as_secs_f64());
    // One lease, plus the scheduler's wake-up and the call itself; the
    // step's deadline (30 s) is far beyond.
    assert!(
        took < LEASE * 4,
        "taken over after {took:?}, more than a lease of {LEASE:?} allows"
    );
    let after = counter(
        &h,
        &other_base,
        "gangway_lease_takeovers_total{class=\"call\"}",
    )
    .await;
    assert!(
        after >= before + 1.0,
        "takeovers {before} -> {after}: the other node counted none"
    );

    // One provider session for the step: the retried start carried the
    // same idempotency key and got the session the provider had made.
    let now = score_sessions(&h, "takeover").await;
    assert_eq!(now.len(), 1, "{now:?}");
    assert_eq!(
        waiting["providers"][0]["provider_session_id"], made[0]["id"],
        "{waiting}"
    );
    let starts = h
        .sim_requests()
        .await
        .into_iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/v1/sessions")
        .count();
    assert_eq!(
        starts, 2,
        "the start was sent twice, the second time answered"
    );
}
