//! `run` steps: a workflow runs another as a child session and continues on
//! its outcome; the browser sees what the child presents; children survive
//! kill -9 and are canceled with their parent.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, eventually};
use serde_json::{Value, json};

async fn create(h: &Harness, workflow: &str, reference: &str) -> Value {
    let (status, s) = h
        .post(
            "/v1/sessions",
            json!({"workflow": workflow, "reference": reference}),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    s
}

/// The child's id, from the parent's timeline once the child exists.
async fn child_of(h: &Harness, parent: &str) -> String {
    eventually("the child session", 20, || async {
        let t = h.timeline(parent).await;
        t["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "child.created")
            .map(|e| e["data"]["session_id"].as_str().unwrap().to_string())
    })
    .await
}

fn kinds(t: &Value) -> Vec<String> {
    t["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_child_runs_and_the_parent_decides_on_its_result() {
    let h = Harness::start().await;
    let parent = create(&h, "parent-score", "order-7").await;
    let pid = parent["id"].as_str().unwrap();
    let child = child_of(&h, pid).await;
    assert!(child.starts_with(&format!("{pid}-")), "{child}");
    let waiting = h.session(pid).await;
    assert_eq!(waiting["status"], "waiting");
    assert_eq!(waiting["waiting_on"]["events"], json!(["child.ended"]));
    let c = h.session(&child).await;
    assert_eq!(c["workflow"], "http-score");
    assert_eq!(c["reference"], pid, "a child's reference is its parent");

    let provider = h.provider_id(&child).await;
    h.complete(&provider, 95).await;
    let ended = h.wait_ended(pid).await;
    assert_eq!(ended["outcome"], "approved");
    assert_eq!(ended["reason"], "top score 95");
    let t = h.timeline(pid).await;
    let k = kinds(&t);
    for expected in [
        "child.started",
        "child.created",
        "event.received",
        "event.accepted",
        "rule.evaluated",
        "session.ended",
    ] {
        assert!(
            k.contains(&expected.to_string()),
            "{expected} missing: {k:?}"
        );
    }
    // The customer hears about the parent only.
    eventually("the parent's session.ended webhook", 20, || async {
        (!h.receiver.for_session(pid, "session.ended").is_empty()).then_some(())
    })
    .await;
    assert!(h.receiver.for_session(&child, "session.ended").is_empty());
    assert!(h.receiver.for_session(&child, "session.updated").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unhandled_child_outcome_becomes_the_parents() {
    let h = Harness::start().await;
    let parent = create(&h, "parent-score", "order-8").await;
    let pid = parent["id"].as_str().unwrap();
    let child = child_of(&h, pid).await;
    let provider = h.provider_id(&child).await;
    h.complete(&provider, 10).await;
    let ended = h.wait_ended(pid).await;
    assert_eq!(ended["outcome"], "declined");
    assert_eq!(ended["reason"], h.wait_ended(&child).await["reason"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_browser_sees_the_childs_iframe_through_the_parent() {
    let h = Harness::start().await;
    let parent = create(&h, "parent-incode", "cust-1").await;
    let pid = parent["id"].as_str().unwrap().to_string();
    let secret = parent["client_secret"].as_str().unwrap().to_string();
    let view = eventually("the child's iframe in the parent's view", 20, || async {
        let v: Value = h
            .http
            .get(h.url(&format!("/v1/client/sessions/{pid}")))
            .bearer_auth(&secret)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (v["step"]["present"]["kind"] == "iframe").then_some(v)
    })
    .await;
    let url = view["step"]["present"]["url"].as_str().unwrap();
    let interview = url.rsplit('/').next().unwrap().to_string();
    let (status, body) = h
        .incode_post(
            &format!("/control/{interview}/finish"),
            json!({"result": "pass"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let ended = h.wait_ended(&pid).await;
    assert_eq!(ended["outcome"], "approved");
    assert_eq!(ended["reason"], "welcome, verified customer");
    // The browser's stream ends with the parent's outcome and no iframe.
    let events = h
        .http
        .get(h.url(&format!("/v1/client/sessions/{pid}/events")))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(events.contains("event: ended"), "{events}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_step_that_times_out_cancels_its_child_and_so_does_cancel() {
    let h = Harness::start().await;
    let parent = create(&h, "parent-short", "slow-1").await;
    let pid = parent["id"].as_str().unwrap();
    let child = child_of(&h, pid).await;
    let ended = h.wait_ended(pid).await;
    assert_eq!(ended["outcome"], "expired");
    let c = h.wait_ended(&child).await;
    assert_eq!(c["outcome"], "canceled");

    let parent = create(&h, "parent-score", "cancel-1").await;
    let pid = parent["id"].as_str().unwrap();
    let child = child_of(&h, pid).await;
    let (status, body) = h
        .post(&format!("/v1/sessions/{pid}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(h.wait_ended(&child).await["outcome"], "canceled");
    assert_eq!(h.session(pid).await["outcome"], "canceled");
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_while_parents_wait_for_children() {
    let mut h = Harness::start().await;
    let mut pairs = Vec::new();
    for i in 0..5 {
        let p = create(&h, "parent-score", &format!("k-{i}")).await;
        let pid = p["id"].as_str().unwrap().to_string();
        let child = child_of(&h, &pid).await;
        let provider = h.provider_id(&child).await;
        pairs.push((pid, child, provider));
    }
    h.kill9_server();
    h.start_server();
    for (_, _, provider) in &pairs {
        h.complete(provider, 95).await;
    }
    for (pid, child, _) in &pairs {
        let ended = h.wait_ended(pid).await;
        assert_eq!(ended["outcome"], "approved", "{ended}");
        let t = h.timeline(pid).await;
        let k = kinds(&t);
        assert_eq!(k.iter().filter(|x| *x == "session.ended").count(), 1);
        assert_eq!(
            k.iter().filter(|x| *x == "child.created").count(),
            1,
            "{k:?}"
        );
        assert_eq!(h.session(child).await["outcome"], "approved");
    }
    let starts = h
        .sim_requests()
        .await
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/v1/sessions")
        .count();
    assert_eq!(starts, 5, "one provider session per child");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_browsers_signals_reach_the_running_child() {
    let h = Harness::start().await;
    let parent = create(&h, "parent-incode", "cust-2").await;
    let pid = parent["id"].as_str().unwrap().to_string();
    let secret = parent["client_secret"].as_str().unwrap().to_string();
    let child = child_of(&h, &pid).await;
    h.wait_session(&child, "the child's iframe step", |s| {
        s["status"] == "waiting"
    })
    .await;
    let r: Value = h
        .http
        .post(h.url(&format!("/v1/client/sessions/{pid}/signal")))
        .bearer_auth(&secret)
        .json(&json!({"name": "abandoned"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["accepted"], true, "{r}");
    let ended = h.wait_ended(&pid).await;
    assert_eq!(ended["outcome"], "canceled");
    assert_eq!(ended["reason"], "the user abandoned the identity check");
    assert_eq!(h.session(&child).await["outcome"], "canceled");
}
