//! Providers and customer endpoints that hang past their timeout, end to
//! end: two tests per kind of outbound request (a step's call, a wait's
//! poll, a webhook delivery): one that hangs once, showing the timeout
//! classified as such in the timeline (the delivery's attempt log for a
//! webhook) and the retry that succeeds; one that always hangs, showing
//! what the session (or the delivery) comes to at its deadline.
//! `engine.request_timeout` is short here (500 ms) so that a hang costs
//! little time; `webhooks.timeout` is the harness's 2 s.
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

/// The timeline's entries of one kind, in order.
fn entries(t: &Value, kind: &str) -> Vec<Value> {
    t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .cloned()
        .collect()
}

/// A `poll.failed` entry that says the poll timed out, cut off at
/// `engine.request_timeout` (500 ms) rather than answered.
fn timed_out_poll(e: &Value) -> bool {
    let says = |v: &Value| v.as_str().is_some_and(|m| m.contains("timed out"));
    let attempt = &e["data"]["attempt"];
    says(&e["data"]["error"])
        && says(&attempt["error"])
        && attempt["status"].is_null()
        && attempt["duration_ms"].as_u64() >= Some(500)
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
    // The timeline shows the hung poll as a timeout, then the retry: a
    // later poll whose answer ends the wait.
    let t = h.timeline(id).await;
    let failed = entries(&t, "poll.failed");
    assert_eq!(failed.len(), 1, "one poll hung: {t}");
    assert!(timed_out_poll(&failed[0]), "classified as a timeout: {t}");
    let matched = entries(&t, "poll.matched");
    assert_eq!(matched.len(), 1, "a later poll found the result: {t}");
    assert!(
        matched[0]["seq"].as_u64() > failed[0]["seq"].as_u64(),
        "{t}"
    );
    assert!(
        entries(&t, "provider.poll")
            .iter()
            .any(|p| p["seq"].as_u64() > failed[0]["seq"].as_u64()),
        "the poll was retried: {t}"
    );
    let log = h.server_log();
    assert!(
        log.lines()
            .any(|l| l.contains("poll failed; backing off") && l.contains("timed out")),
        "the hung poll is logged as a timeout"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn polls_that_always_hang_leave_the_wait_to_expire_at_its_deadline() {
    let h = start().await;
    // Every status read hangs; the provider never sends a webhook.
    faults(
        &h,
        json!([{"match": {"method": "GET", "path": "/v1/sessions/*/score"}, "times": 1000, "fault": {"hang": true}}]),
    )
    .await;
    // score-fast waits 2 s and polls every 300 ms.
    let (st, s) = h
        .post(
            "/v1/sessions",
            json!({"workflow": "score-fast", "reference": "r-poll-hang-always"}),
        )
        .await;
    assert_eq!(st, 201, "{s}");
    let id = s["id"].as_str().unwrap();
    let ended = h.wait_ended(id).await;
    assert_eq!(ended["outcome"], "expired", "{ended}");
    let t = h.timeline(id).await;
    let failed = entries(&t, "poll.failed");
    assert!(!failed.is_empty(), "a hung poll is in the timeline: {t}");
    assert!(failed.iter().all(timed_out_poll), "{t}");
    assert!(
        entries(&t, "provider.poll").is_empty(),
        "no poll got an answer: {t}"
    );
    // The deadline ends the wait on time: the hung polls hold nothing up.
    let started = &entries(&t, "wait.started")[0];
    let timed_out = entries(&t, "wait.timed_out");
    assert_eq!(timed_out.len(), 1, "{t}");
    let waited =
        timed_out[0]["elapsed_ms"].as_i64().unwrap() - started["elapsed_ms"].as_i64().unwrap();
    assert!(
        (2_000..3_500).contains(&waited),
        "the 2 s wait ended after {waited} ms: {t}"
    );
    // A retry was planned after the back-off, past the deadline.
    let retry_at = failed[0]["data"]["retry_at_ms"].as_i64().unwrap();
    assert!(
        retry_at > started["data"]["deadline_ms"].as_i64().unwrap(),
        "{t}"
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

#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_to_an_endpoint_that_always_hangs_fails_after_its_last_retry() {
    // One retry, soon: the delivery's deadline is the end of its schedule.
    let h = Harness::start_with(Options {
        request_timeout: Some("500ms"),
        retry_schedule: vec!["200ms"],
        ..Default::default()
    })
    .await;
    h.receiver.set_hang(Duration::from_secs(60));
    let s = h.create_score_session("r-delivery-hang-always").await;
    let id = s["id"].as_str().unwrap().to_string();
    let pid = h.provider_id(&id).await;
    h.complete(&pid, 90).await;
    // The session's own outcome does not wait for its customer's endpoint.
    assert_eq!(h.wait_ended(&id).await["outcome"], "approved");
    let failed = eventually("the ended event's delivery failed", 30, || async {
        let (_, d) = h.get(&format!("/v1/sessions/{id}/deliveries")).await;
        d["data"]
            .as_array()?
            .iter()
            .find(|x| x["event_type"] == "session.ended" && x["status"] == "failed")
            .cloned()
    })
    .await;
    let log = failed["attempt_log"].as_array().unwrap();
    assert_eq!(log.len(), 2, "the first attempt and one retry: {failed}");
    for a in log {
        assert_eq!(a["error"], "timed out", "{failed}");
        assert_eq!(a["status_code"], Value::Null, "{failed}");
        // Cut off by `webhooks.timeout` (2 s), not answered.
        assert!(a["duration_ms"].as_u64() >= Some(1_900), "{failed}");
    }
    assert_eq!(failed["attempts"], 2, "{failed}");
}
