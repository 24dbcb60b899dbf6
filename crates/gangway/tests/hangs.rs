//! Providers and customer endpoints that hang past their timeout, end to
//! end: one test per kind of outbound request (a step's call, a wait's
//! poll, a webhook delivery). Each shows the timeout classified as such,
//! the retry, and the session's outcome. `engine.request_timeout` is short
//! here (500 ms) so that a hang costs little time.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, Options, eventually};
use serde_json::{Value, json};
use std::time::Duration;

async fn start() -> Harness {
    Harness::start_with(Options {
        request_timeout: Some("500ms"),
        ..Default::default()
    })
    .await
}

/// Installs fault rules on the score simulator; they must be accepted.
async fn faults(h: &Harness, rules: Value) {
    let (st, body) = h
        .sim_post("/control/faults", json!({ "rules": rules }))
        .await;
    assert_eq!(st, 200, "installing faults: {body}");
}

/// The fault rules still armed on the score simulator.
async fn armed(h: &Harness) -> usize {
    let v: Value = h
        .http
        .get(h.sim("/control/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["rules"].as_array().map_or(0, Vec::len)
}

fn provider_call(t: &Value) -> Value {
    t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "provider.call")
        .cloned()
        .unwrap_or_else(|| panic!("no provider.call in {t}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_start_call_that_hangs_times_out_and_is_retried() {
    let h = start().await;
    faults(
        &h,
        json!([{"match": {"method": "POST", "path": "/v1/sessions"}, "times": 1, "fault": {"hang": true}}]),
    )
    .await;
    let (st, s) = h
        .post(
            "/v1/sessions",
            json!({"workflow": "score-fast", "reference": "r-hang-once"}),
        )
        .await;
    assert_eq!(st, 201, "{s}");
    let id = s["id"].as_str().unwrap();
    let pid = h.provider_id(id).await;
    assert_eq!(armed(&h).await, 0, "the hang fired");
    h.complete(&pid, 80).await;
    assert_eq!(h.wait_ended(id).await["outcome"], "approved");
    let call = provider_call(&h.timeline(id).await);
    let attempts = call["data"]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{call}");
    let first = attempts[0]["error"].as_str().unwrap_or_default();
    assert!(
        first.contains("timed out"),
        "classified as a timeout: {call}"
    );
    assert!(attempts[1]["error"].is_null(), "{call}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_start_call_that_always_hangs_fails_at_the_step_deadline() {
    let h = start().await;
    faults(
        &h,
        json!([{"match": {"method": "POST", "path": "/v1/sessions"}, "times": 1000, "fault": {"hang": true}}]),
    )
    .await;
    let (st, s) = h
        .post(
            "/v1/sessions",
            json!({"workflow": "score-fast", "reference": "r-hang-always"}),
        )
        .await;
    assert_eq!(st, 201, "{s}");
    let id = s["id"].as_str().unwrap();
    let ended = h.wait_ended(id).await;
    assert_eq!(ended["outcome"], "failed", "{ended}");
    let reason = ended["reason"].as_str().unwrap();
    assert!(
        reason.contains("timed out") && reason.contains("deadline"),
        "{reason}"
    );
    let call = provider_call(&h.timeline(id).await);
    let attempts = call["data"]["attempts"].as_array().unwrap();
    assert!(attempts.len() >= 2, "retried before giving up: {call}");
    assert!(
        attempts.iter().all(|a| a["error"]
            .as_str()
            .unwrap_or_default()
            .contains("timed out")),
        "{call}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poll_that_hangs_times_out_and_a_later_poll_finds_the_result() {
    let h = start().await;
    // score-paced polls every 100 ms and waits a minute.
    let (st, s) = h
        .post(
            "/v1/sessions",
            json!({"workflow": "score-paced", "reference": "r-poll-hang"}),
        )
        .await;
    assert_eq!(st, 201, "{s}");
    let id = s["id"].as_str().unwrap();
    h.wait_session(id, "waiting", |s| s["status"] == "waiting")
        .await;
    let pid = h.provider_id(id).await;
    faults(
        &h,
        json!([{"match": {"method": "GET", "ref": pid}, "times": 1, "fault": {"hang": true}}]),
    )
    .await;
    eventually("a poll hit the hang", 10, || async {
        (armed(&h).await == 0).then_some(())
    })
    .await;
    // The provider finishes but its webhook is lost: only the next poll,
    // after the failed one's back-off, can find the result.
    let (st, body) = h
        .sim_post(
            &format!("/control/{pid}/complete"),
            json!({"score": 70, "drop": true}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    // A failed poll backs off for 10 s or more (executor.rs, run_poll).
    let ended = eventually("the session ended by a later poll", 90, || async {
        let s = h.session(id).await;
        (s["status"] == "ended").then_some(s)
    })
    .await;
    assert_eq!(ended["outcome"], "approved", "{ended}");
    let log = h.server_log();
    assert!(
        log.lines()
            .any(|l| l.contains("poll failed; backing off") && l.contains("timed out")),
        "the hung poll is logged as a timeout"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_to_an_endpoint_that_hangs_times_out_and_is_retried() {
    let h = start().await;
    // The harness's `webhooks.timeout` is 2 s; the endpoint holds 30 s.
    h.receiver.set_hang(Duration::from_secs(30));
    let s = h.create_score_session("r-delivery-hang").await;
    let id = s["id"].as_str().unwrap().to_string();
    let pid = h.provider_id(&id).await;
    h.complete(&pid, 90).await;
    assert_eq!(h.wait_ended(&id).await["outcome"], "approved");
    // The ended event's first attempt times out; then the endpoint recovers.
    let timed_out = eventually("a delivery attempt timed out", 30, || async {
        let (_, d) = h.get(&format!("/v1/sessions/{id}/deliveries")).await;
        d["data"]
            .as_array()?
            .iter()
            .find(|x| {
                x["event_type"] == "session.ended"
                    && x["attempt_log"]
                        .as_array()
                        .is_some_and(|l| l.iter().any(|a| a["error"] == "timed out"))
            })
            .cloned()
    })
    .await;
    assert_eq!(timed_out["attempt_log"][0]["status_code"], Value::Null);
    h.receiver.set_hang(Duration::ZERO);
    let delivered = eventually("the ended event delivered after the hang", 60, || async {
        let (_, d) = h.get(&format!("/v1/sessions/{id}/deliveries")).await;
        d["data"]
            .as_array()?
            .iter()
            .find(|x| x["event_type"] == "session.ended" && x["status"] == "delivered")
            .cloned()
    })
    .await;
    assert!(delivered["attempts"].as_u64() >= Some(2), "{delivered}");
    assert_eq!(h.receiver.for_session(&id, "session.ended").len(), 1);
}
