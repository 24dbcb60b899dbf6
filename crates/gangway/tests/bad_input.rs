//! Every endpoint given bad input answers a 4xx problem JSON, never a 5xx.
#![allow(clippy::unwrap_used)]

mod common;

use common::Harness;
use serde_json::{Value, json};

async fn expect_problem(r: reqwest::Response, status: u16, what: &str) {
    assert_eq!(r.status().as_u16(), status, "{what}");
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert_eq!(ct, "application/problem+json", "{what}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], status, "{what}: {body}");
    assert!(
        body["title"].is_string() && body["detail"].is_string() && body["type"].is_string(),
        "{what}: {body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_problem_json() {
    let h = Harness::start().await;
    let c = &h.http;
    let key = h.api_key.clone();
    let sessions = h.url("/v1/sessions");

    let r = c
        .post(&sessions)
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect_problem(r, 400, "malformed JSON").await;
    let r = c
        .post(&sessions)
        .bearer_auth(&key)
        .body("{}")
        .send()
        .await
        .unwrap();
    expect_problem(r, 415, "no content type").await;
    let r = c
        .post(&sessions)
        .bearer_auth(&key)
        .json(&json!({"workflow": 5}))
        .send()
        .await
        .unwrap();
    expect_problem(r, 422, "wrong type").await;
    let r = c
        .post(&sessions)
        .bearer_auth(&key)
        .json(&json!({"workflow": "http-score", "input": [1]}))
        .send()
        .await
        .unwrap();
    expect_problem(r, 422, "input not an object").await;
    let r = c
        .post(&sessions)
        .bearer_auth(&key)
        .json(&json!({"workflow": "http-score", "surprise": 1}))
        .send()
        .await
        .unwrap();
    expect_problem(r, 422, "unknown field").await;
    let r = c
        .post(&sessions)
        .bearer_auth(&key)
        .json(&json!({"workflow": "no-such-flow"}))
        .send()
        .await
        .unwrap();
    expect_problem(r, 422, "unknown workflow").await;
    let r = c
        .post(&sessions)
        .json(&json!({"workflow": "http-score"}))
        .send()
        .await
        .unwrap();
    expect_problem(r, 401, "missing key").await;
    let r = c
        .post(&sessions)
        .bearer_auth("gw_wrong")
        .json(&json!({"workflow": "http-score"}))
        .send()
        .await
        .unwrap();
    expect_problem(r, 401, "wrong key").await;
    let r = c
        .get(h.url("/v1/sessions?limit=0"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    expect_problem(r, 422, "bad limit").await;
    let r = c
        .get(h.url("/v1/sessions?status=sleeping"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    expect_problem(r, 422, "bad status").await;
    let r = c
        .get(h.url("/v1/sessions?limit=abc"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    expect_problem(r, 400, "non-numeric limit").await;
    let r = c
        .get(h.url("/v1/sessions/ses_nope"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    expect_problem(r, 404, "unknown session").await;
    let r = c
        .post(h.url("/v1/sessions/ses_nope/cancel"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    expect_problem(r, 404, "cancel unknown").await;
    let r = c
        .get(h.url("/v1/sessions/ses_nope/timeline"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    expect_problem(r, 404, "timeline unknown").await;
    let r = c.get(h.url("/v1/workflows")).send().await.unwrap();
    expect_problem(r, 401, "workflows without key").await;
    let r = c.get(h.url("/v1/nothing-here")).send().await.unwrap();
    expect_problem(r, 404, "unknown route").await;
    let r = c.delete(&sessions).bearer_auth(&key).send().await.unwrap();
    expect_problem(r, 405, "wrong method").await;

    // Idempotency: same key and body gives the same session, another body 409.
    let body = json!({"workflow": "http-score", "reference": "idem-1"});
    let r1 = c
        .post(&sessions)
        .bearer_auth(&key)
        .header("Idempotency-Key", "k-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r1.status(), 201);
    let s1: Value = r1.json().await.unwrap();
    let r2 = c
        .post(&sessions)
        .bearer_auth(&key)
        .header("Idempotency-Key", "k-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r2.status(), 200);
    let s2: Value = r2.json().await.unwrap();
    assert_eq!(s1["id"], s2["id"]);
    let r3 = c
        .post(&sessions)
        .bearer_auth(&key)
        .header("Idempotency-Key", "k-1")
        .json(&json!({"workflow": "http-score", "reference": "other"}))
        .send()
        .await
        .unwrap();
    expect_problem(r3, 409, "idempotency conflict").await;
    let (_, list) = h.get("/v1/sessions?reference=idem-1").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);

    // Client endpoints: missing, wrong, other session's secret; bad signal.
    let id = s2["id"].as_str().unwrap();
    let secret = s2["client_secret"].as_str().unwrap();
    let client = h.url(&format!("/v1/client/sessions/{id}"));
    expect_problem(
        c.get(&client).send().await.unwrap(),
        401,
        "no client secret",
    )
    .await;
    expect_problem(
        c.get(&client)
            .bearer_auth("gwcs_wrong")
            .send()
            .await
            .unwrap(),
        401,
        "wrong client secret",
    )
    .await;
    expect_problem(
        c.get(&client)
            .bearer_auth(s1["client_secret"].as_str().unwrap())
            .send()
            .await
            .unwrap(),
        401,
        "rotated (replayed) secret",
    )
    .await;
    expect_problem(
        c.get(h.url("/v1/client/sessions/ses_other"))
            .bearer_auth(secret)
            .send()
            .await
            .unwrap(),
        401,
        "other session",
    )
    .await;
    let signal = h.url(&format!("/v1/client/sessions/{id}/signal"));
    expect_problem(
        c.post(&signal)
            .bearer_auth(secret)
            .json(&json!({"name": "Bad Name!"}))
            .send()
            .await
            .unwrap(),
        422,
        "bad signal name",
    )
    .await;
    expect_problem(
        c.post(&signal)
            .bearer_auth(secret)
            .header("content-type", "application/json")
            .body("[")
            .send()
            .await
            .unwrap(),
        400,
        "bad signal JSON",
    )
    .await;
    let events = h.url(&format!("/v1/client/sessions/{id}/events"));
    expect_problem(
        c.get(&events)
            .bearer_auth(secret)
            .header("Last-Event-ID", "abc")
            .send()
            .await
            .unwrap(),
        400,
        "bad Last-Event-ID",
    )
    .await;

    // Webhooks: unknown names and malformed bodies.
    expect_problem(
        c.post(h.url("/v1/webhooks/http/nope"))
            .body("{}")
            .send()
            .await
            .unwrap(),
        404,
        "unknown webhook",
    )
    .await;
    expect_problem(
        c.post(h.url("/v1/webhooks/unknown"))
            .body("{}")
            .send()
            .await
            .unwrap(),
        404,
        "unknown connector",
    )
    .await;

    let log = h.server_log();
    assert!(!log.contains(&key), "the API key must never be logged");
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_client_secret_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _ = dir;
    // A one-second secret lifetime through the environment.
    let h = Harness::start_with(common::Options {
        client_secret_ttl: Some("1s"),
        ..Default::default()
    })
    .await;
    let s = h.create_score_session("ttl").await;
    let id = s["id"].as_str().unwrap();
    let secret = s["client_secret"].as_str().unwrap().to_string();
    let url = h.url(&format!("/v1/client/sessions/{id}"));
    let r = common::eventually("the secret to expire", 10, || async {
        let r = h.http.get(&url).bearer_auth(&secret).send().await.unwrap();
        (r.status() == 401).then_some(r)
    })
    .await;
    let body: Value = r.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("expired"),
        "{body}"
    );
}

#[test]
fn validate_prints_every_problem_with_line_and_column() {
    let broken = common::repo_root().join("crates/core/tests/fixtures/broken.yaml");
    let out = std::process::Command::new(common::BIN)
        .args(["validate", broken.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines.len() >= 8, "{err}");
    for l in &lines {
        let rest = l
            .strip_prefix(broken.to_str().unwrap())
            .unwrap_or_else(|| panic!("{l}"));
        let parts: Vec<&str> = rest.splitn(4, ':').collect();
        assert!(
            parts[1].parse::<u32>().is_ok() && parts[2].parse::<u32>().is_ok(),
            "no line:col in {l}"
        );
    }
    let ok = common::repo_root().join("workflows/http-score.yaml");
    let out = std::process::Command::new(common::BIN)
        .args(["validate", ok.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let schema = std::process::Command::new(common::BIN)
        .arg("schema")
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&schema.stdout).unwrap();
    assert_eq!(v["title"], "Gangway workflow");
}

#[test]
fn invalid_config_names_the_key_before_starting() {
    let out = std::process::Command::new(common::BIN)
        .arg("serve")
        .env("GANGWAY_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("`listen`"), "{err}");
}
