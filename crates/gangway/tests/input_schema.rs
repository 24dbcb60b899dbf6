//! A workflow's `input` schema: checked at `POST /v1/sessions` (422 with a
//! JSON Pointer per problem, nothing stored), shown by `GET /v1/workflows`
//! and the dry run, and applied to child sessions and chat runs.
#![allow(clippy::unwrap_used)]

mod common;

use common::Harness;
use serde_json::{Value, json};

fn pointers(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no `errors`: {problem}"))
        .iter()
        .map(|e| e["pointer"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_input_the_workflow_does_not_accept_is_refused_with_pointers() {
    let h = Harness::start().await;
    // The finding: `oih-run-flow` without `data` was accepted and failed
    // half-way ("arguments of step `trigger`: `input.data`: No such key").
    let (status, p) = h
        .post(
            "/v1/sessions",
            json!({"workflow": "oih-run-flow", "input": {"flow": "lookup-customer"}, "reference": "in-1"}),
        )
        .await;
    assert_eq!(status, 422, "{p}");
    assert_eq!(pointers(&p), [""], "{p}");
    let detail = p["errors"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("data"), "{p}");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("workflow `oih-run-flow` v2"),
        "{p}"
    );

    // Each wrong field by its pointer; the value itself is not echoed.
    let (status, p) = h
        .post(
            "/v1/sessions",
            json!({"workflow": "ockto-mortgage", "input": {"loan_amount": "lots-of-money", "test_case_id": 7}, "reference": "in-1"}),
        )
        .await;
    assert_eq!(status, 422, "{p}");
    let mut got = pointers(&p);
    got.sort();
    assert_eq!(got, ["/loan_amount", "/test_case_id"], "{p}");
    assert!(!p.to_string().contains("lots-of-money"), "{p}");
    let (status, p) = h
        .post(
            "/v1/sessions",
            json!({"workflow": "ockto-mortgage", "input": {"loan_amount": 0}, "reference": "in-1"}),
        )
        .await;
    assert_eq!(status, 422, "{p}");
    assert_eq!(pointers(&p), ["/loan_amount"]);

    // Nothing was stored for the refused requests.
    let (status, list) = h.get("/v1/sessions?reference=in-1").await;
    assert_eq!(status, 200);
    assert_eq!(list["data"].as_array().unwrap().len(), 0, "{list}");

    // A fitting input starts as before.
    let (status, s) = h
        .post(
            "/v1/sessions",
            json!({"workflow": "ockto-mortgage", "input": {"loan_amount": 250000}, "reference": "in-1"}),
        )
        .await;
    assert_eq!(status, 201, "{s}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schema_is_listed_and_checked_by_the_dry_run() {
    let h = Harness::start().await;
    let (status, list) = h.get("/v1/workflows").await;
    assert_eq!(status, 200);
    let data = list["data"].as_array().unwrap();
    let run_flow = data.iter().find(|w| w["id"] == "oih-run-flow").unwrap();
    assert_eq!(
        run_flow["input_schema"]["required"],
        json!(["flow", "data"])
    );
    for shipped in [
        "http-score",
        "incode-identity",
        "ockto-mortgage",
        "ockto-session",
        "whatsapp-onboarding",
        "oih-assistant",
        "oih-auth",
        "oih-me",
        "oih-run-flow",
        "stripe-identity",
    ] {
        let w = data.iter().find(|w| w["id"] == shipped).unwrap();
        assert_eq!(w["input_schema"]["type"], "object", "{shipped}: {w}");
    }
    // A workflow without the section: any object, shown as null.
    let open = data.iter().find(|w| w["id"] == "score-long").unwrap();
    assert_eq!(open["input_schema"], Value::Null);

    let (status, p) = h
        .post(
            "/v1/workflows/ockto-mortgage/dry-run",
            json!({"input": {"loan_amount": -5}, "events": []}),
        )
        .await;
    assert_eq!(status, 422, "{p}");
    assert_eq!(pointers(&p), ["/loan_amount"]);
    let (status, body) = h
        .post(
            "/v1/workflows/http-score/dry-run",
            json!({"input": {}, "events": [
                {"at": "wait_for_result", "sim": "score", "action": "complete", "body": {"score": 72}}
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["input_schema"]["type"], "object");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_child_whose_input_is_refused_ends_its_run_step_at_once() {
    let h = Harness::start().await;
    let (status, s) = h
        .post(
            "/v1/sessions",
            json!({"workflow": "parent-bad-input", "reference": "in-child"}),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    let ended = h.wait_ended(s["id"].as_str().unwrap()).await;
    assert_eq!(ended["outcome"], "failed", "{ended}");
    let reason = ended["reason"].as_str().unwrap();
    assert!(
        reason.contains("refused its input") && reason.contains("/required_sources"),
        "{reason}"
    );
}
