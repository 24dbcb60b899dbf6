//! `POST /v1/workflows/{id}/dry-run`: a workflow run in an isolated sandbox
//! against the simulators, its trace returned as JSON; the server's own
//! sessions and providers are untouched.
#![allow(clippy::unwrap_used)]

mod common;

use common::Harness;
use serde_json::{Value, json};

fn kinds(trace: &Value) -> Vec<String> {
    trace
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_returns_the_trace_and_touches_nothing_real() {
    let h = Harness::start().await;
    let (status, body) = h
        .post(
            "/v1/workflows/http-score/dry-run",
            json!({"input": {}, "events": [
                {"at": "wait_for_result", "sim": "score", "action": "complete", "body": {"score": 72}}
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ended"], true);
    assert_eq!(body["version"], 1);
    assert_eq!(body["session"]["outcome"], "approved");
    let k = kinds(&body["trace"]);
    for expected in [
        "sandbox.started",
        "session.created",
        "step.entered",
        "provider.call",
        "script.applied",
        "state.set",
        "rule.evaluated",
        "session.ended",
    ] {
        assert!(
            k.contains(&expected.to_string()),
            "{expected} missing in {k:?}"
        );
    }
    let rule = body["trace"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "rule.evaluated" && e["data"]["result"] == true)
        .unwrap();
    assert_eq!(rule["data"]["inputs"]["state.score.body.score"], 72);
    // The server's own store and its provider saw nothing.
    let (_, list) = h.get("/v1/sessions").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0, "{list}");
    assert!(h.sim_requests().await.is_empty());
    assert!(h.receiver.all().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_runs_children_and_stops_at_its_timeout() {
    let h = Harness::start().await;
    let (status, body) = h
        .post(
            "/v1/workflows/parent-score/dry-run",
            json!({"events": [
                {"at": "scoring", "sim": "score", "action": "complete", "body": {"score": 95}}
            ]}),
        )
        .await;
    // The event names the parent's run step; the provider session is the
    // child's, and the simulator call goes to it.
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"]["outcome"], "approved", "{body}");
    assert_eq!(body["session"]["reason"], "top score 95");
    assert!(kinds(&body["trace"]).contains(&"child.created".to_string()));
    // Naming the child's own step works as well.
    let (status, body) = h
        .post(
            "/v1/workflows/parent-score/dry-run",
            json!({"events": [
                {"at": "wait_for_result", "sim": "score", "action": "complete", "body": {"score": 60}}
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"]["outcome"], "review", "{body}");
    assert_eq!(
        body["session"]["reason"],
        "score 60 passed the child but not our bar"
    );
    let (status, body) = h
        .post("/v1/workflows/http-score/dry-run", json!({"timeout_s": 1}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ended"], false);
    assert_eq!(body["session"]["status"], "waiting");
    assert!(kinds(&body["trace"]).contains(&"script.idle".to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_dry_runs_get_problems() {
    let h = Harness::start().await;
    for (path, body, want) in [
        ("/v1/workflows/nope/dry-run", json!({}), 404),
        (
            "/v1/workflows/http-score/dry-run",
            json!({"input": []}),
            422,
        ),
        (
            "/v1/workflows/http-score/dry-run",
            json!({"timeout_s": 0}),
            422,
        ),
        (
            "/v1/workflows/http-score/dry-run",
            json!({"timeout_s": 3600}),
            422,
        ),
        (
            "/v1/workflows/http-score/dry-run",
            json!({"events": [{"at": "nowhere", "signal": "x"}]}),
            422,
        ),
        (
            "/v1/workflows/http-score/dry-run",
            json!({"events": [{"at": "wait_for_result"}]}),
            422,
        ),
        (
            "/v1/workflows/http-score/dry-run",
            json!({"events": [{"at": "wait_for_result", "simm": "x"}]}),
            422,
        ),
        (
            "/v1/workflows/http-score/dry-run",
            json!({"surprise": 1}),
            422,
        ),
    ] {
        let (status, problem) = h.post(path, body.clone()).await;
        assert_eq!(status, want, "{path} {body}: {problem}");
        assert!(
            problem["type"]
                .as_str()
                .unwrap()
                .starts_with("https://gangway.dev/problems/"),
            "{problem}"
        );
    }
    let r = h
        .http
        .post(h.url("/v1/workflows/http-score/dry-run"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}
