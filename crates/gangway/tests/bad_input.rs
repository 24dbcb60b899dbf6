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

/// Posts a JSON body announced as 10 MB (sending only its first 2 MB) and
/// reads the answer: `(status, head, body)`.
async fn oversized_post(port: u16, path: &str, auth: &str) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        10 * 1024 * 1024
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    // The server may answer and close before taking all of it.
    let _ = conn.write_all(&vec![b' '; 2 * 1024 * 1024]).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        let mut buf = [0u8; 4096];
        // Until the server closes, or the whole answer is in.
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
            let text = String::from_utf8_lossy(&answer);
            if let Some((head, body)) = text.split_once("\r\n\r\n")
                && body.ends_with('}')
                && head.starts_with("HTTP/1.1")
            {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer to an oversized body");
    let text = String::from_utf8_lossy(&answer).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// Issue 18 finding 11: oversized bodies, paths that are not UTF-8 and
/// control characters in ids, references and keys all get problem JSON with
/// the right status (before: 413 and invalid-UTF-8 paths as text/plain, a
/// 10 MB JSON body as 400, a NUL inside `reference` accepted).
#[tokio::test(flavor = "multi_thread")]
async fn odd_input_gets_problem_json_with_the_right_status() {
    let h = Harness::start().await;
    let c = &h.http;
    let key = h.api_key.clone();
    // 10 MB announced: the answer comes before the body is all sent, so it
    // is read off a raw connection (a client still writing sees the close).
    for (path, auth) in [
        ("/v1/sessions", format!("Authorization: Bearer {key}\r\n")),
        ("/v1/webhooks/http/score", String::new()),
    ] {
        let (status, head, body) = oversized_post(h.port, path, &auth).await;
        assert_eq!(status, 413, "{path}: {head}\n{body}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/problem+json"),
            "{path}: {head}"
        );
        assert!(body.contains("\"status\":413"), "{path}: {body}");
    }
    let r = c
        .get(h.url("/v1/sessions/%FF%FE"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    expect_problem(r, 400, "a path that is not UTF-8").await;
    for path in [
        "/v1/sessions/ses%00x",
        "/v1/sessions/ses%1Bx/timeline",
        "/v1/client/sessions/ses%0Ax",
    ] {
        let r = c.get(h.url(path)).bearer_auth(&key).send().await.unwrap();
        expect_problem(r, 422, path).await;
    }
    let r = c
        .post(h.url("/v1/workflows/http%01score/dry-run"))
        .bearer_auth(&key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_problem(r, 422, "a control character in a workflow id").await;
    for reference in ["a\u{0}b", "line\nbreak", "tab\there", " ", ""] {
        let r = c
            .post(h.url("/v1/sessions"))
            .bearer_auth(&key)
            .json(&json!({"workflow": "http-score", "reference": reference}))
            .send()
            .await
            .unwrap();
        expect_problem(r, 422, &format!("reference {reference:?}")).await;
    }
    for idem in ["", " ", "a\tb"] {
        let r = c
            .post(h.url("/v1/sessions"))
            .bearer_auth(&key)
            .header("Idempotency-Key", idem)
            .json(&json!({"workflow": "http-score", "reference": "idem"}))
            .send()
            .await
            .unwrap();
        expect_problem(r, 422, &format!("Idempotency-Key {idem:?}")).await;
    }
    let r = c
        .post(h.url("/v1/workflows/http-score/dry-run"))
        .bearer_auth(&key)
        .json(&json!({"timeout_s": null}))
        .send()
        .await
        .unwrap();
    expect_problem(r, 422, "a dry run's timeout_s: null").await;
    // Nothing was created by any of it.
    let (_, list) = h.get("/v1/sessions").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0, "{list}");
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
    // Its own problem type: the SDK tells the page "expired" from "wrong".
    assert_eq!(
        body["type"], "https://gangway.dev/problems/client-secret-expired",
        "{body}"
    );
}

#[test]
fn validate_prints_every_problem_with_line_and_column() {
    let broken = common::repo_root().join("crates/server/tests/fixtures/broken.yaml");
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

#[tokio::test(flavor = "multi_thread")]
async fn oversized_request_heads_get_problem_json() {
    let h = Harness::start().await;
    let c = &h.http;
    let key = h.api_key.clone();
    // A request target over 8 KiB (hyper alone would take up to 64 KiB and
    // answer beyond it with an empty 414).
    let long = format!("/v1/sessions?reference={}", "r".repeat(10 * 1024));
    let r = c.get(h.url(&long)).bearer_auth(&key).send().await.unwrap();
    expect_problem(r, 414, "a 10 KiB request target").await;
    // More than 100 header fields (hyper's own limit, 100, answered an
    // empty 431).
    let mut req = c.get(h.url("/v1/workflows")).bearer_auth(&key);
    for i in 0..150 {
        req = req.header(format!("x-filler-{i}"), "1");
    }
    expect_problem(req.send().await.unwrap(), 431, "150 header fields").await;
    // One header field of 40 KiB.
    let r = c
        .get(h.url("/v1/workflows"))
        .bearer_auth(&key)
        .header("x-filler", "f".repeat(40 * 1024))
        .send()
        .await
        .unwrap();
    expect_problem(r, 431, "40 KiB of header fields").await;
    // A plain request still works on the same server.
    let r = c
        .get(h.url("/v1/workflows"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
