//! Deliveries across sessions over HTTP (`/v1/deliveries`): the customer's
//! receiver is down, deliveries fail after their retries (or stay pending
//! on a long schedule), the receiver comes back, and an operator sends one
//! again and replays the rest in bulk; each arrives with its original
//! `webhook-id`, each redelivery is audited. Bad filters and unknown ids
//! are problem JSON; keys without the scopes get 403. Runs on PostgreSQL
//! with GANGWAY_TEST_BACKEND=postgres.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, Options, create_key, eventually};
use serde_json::{Value, json};

async fn send(
    h: &Harness,
    method: &str,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value, String) {
    let mut req = match method {
        "GET" => h.http.get(h.url(path)),
        _ => h.http.post(h.url(path)),
    };
    req = req.bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let ctype = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, r.json().await.unwrap_or(Value::Null), ctype)
}

/// Sessions of `http-score` that ended, with the receiver down.
async fn ended_sessions(h: &Harness, n: usize, prefix: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let s = h.create_score_session(&format!("{prefix}-{i}")).await;
        let id = s["id"].as_str().unwrap().to_string();
        let pid = h.provider_id(&id).await;
        h.complete(&pid, 60).await;
        ids.push(id);
    }
    for id in &ids {
        h.wait_ended(id).await;
    }
    ids
}

/// The `session.ended` deliveries of these sessions, once all have `status`.
async fn ended_deliveries(h: &Harness, sessions: &[String], status: &str) -> Vec<Value> {
    eventually(&format!("every delivery {status}"), 30, || async {
        let (code, page, _) = send(
            h,
            "GET",
            &format!("/v1/deliveries?status={status}&event_type=session.ended&limit=200"),
            &h.api_key,
            None,
        )
        .await;
        assert_eq!(code, 200, "{page}");
        let mine: Vec<Value> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| sessions.iter().any(|s| d["session_id"] == s.as_str()))
            .cloned()
            .collect();
        (mine.len() == sessions.len()).then_some(mine)
    })
    .await
}

/// Waits until the receiver accepted `delivery` (its `webhook-id`).
async fn accepted(h: &Harness, delivery: &str) {
    eventually("the redelivery at the receiver", 20, || async {
        h.receiver
            .all()
            .iter()
            .any(|r| r.webhook_id == delivery && r.accepted && r.verified)
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_deliveries_are_replayed_one_and_in_bulk_with_their_webhook_id() {
    let h = Harness::start_with(Options {
        retry_schedule: vec!["100ms"],
        ..Options::default()
    })
    .await;
    let admin = create_key(&h.config, "auditor", &["admin"]);
    let since = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    h.receiver.set_down(true);
    let sessions = ended_sessions(&h, 3, "down").await;
    // Two attempts each (the first and one retry), both refused.
    let failed = ended_deliveries(&h, &sessions, "failed").await;
    for d in &failed {
        let log = d["attempt_log"].as_array().unwrap();
        assert_eq!(log.len(), 2, "{d}");
        assert_eq!(log[0]["status_code"], 503, "{d}");
        assert_eq!(d["endpoint"], h.receiver.url(), "{d}");
    }
    // Newest first, one page at a time.
    let (_, first, _) = send(
        &h,
        "GET",
        &format!("/v1/deliveries?status=failed&event_type=session.ended&since={since}&limit=2"),
        &h.api_key,
        None,
    )
    .await;
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let (_, second, _) = send(
        &h,
        "GET",
        &format!(
            "/v1/deliveries?status=failed&event_type=session.ended&since={since}&limit=2&cursor={cursor}"
        ),
        &h.api_key,
        None,
    )
    .await;
    let paged: Vec<&str> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["data"].as_array().unwrap())
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(paged.len(), 3, "{first} {second}");
    assert!(paged.windows(2).all(|w| w[0] > w[1]), "newest first");
    assert!(second["next_cursor"].is_null(), "{second}");
    // The endpoint filter, and one that matches nothing.
    let url = h.receiver.url().to_string();
    let (_, by_endpoint, _) = send(
        &h,
        "GET",
        &format!("/v1/deliveries?status=failed&endpoint={}", urlencode(&url)),
        &h.api_key,
        None,
    )
    .await;
    assert!(by_endpoint["data"].as_array().unwrap().len() >= 3);
    let (_, none, _) = send(
        &h,
        "GET",
        "/v1/deliveries?endpoint=https%3A%2F%2Fnowhere.example%2Fh",
        &h.api_key,
        None,
    )
    .await;
    assert_eq!(none["data"], json!([]));

    h.receiver.set_down(false);
    // One, sent again now: pending, then delivered by a third attempt.
    let one = failed[0]["id"].as_str().unwrap().to_string();
    let (code, d, _) = send(
        &h,
        "POST",
        &format!("/v1/deliveries/{one}/redeliver"),
        &h.api_key,
        None,
    )
    .await;
    assert_eq!(code, 202, "{d}");
    assert_eq!(d["id"], one.as_str());
    accepted(&h, &one).await;
    let d = eventually("delivered", 20, || async {
        let (_, d, _) = send(
            &h,
            "GET",
            &format!("/v1/deliveries/{one}"),
            &h.api_key,
            None,
        )
        .await;
        (d["status"] == "delivered").then_some(d)
    })
    .await;
    let log = d["attempt_log"].as_array().unwrap();
    assert_eq!(log.len(), 3, "{d}");
    assert_eq!(log[2]["attempt"], 3);
    assert_eq!(log[2]["status_code"], 204);
    assert!(d["delivered_at"].is_string(), "{d}");

    // The rest in bulk: exactly the two still failed.
    let (code, r, _) = send(
        &h,
        "POST",
        "/v1/deliveries/redeliver",
        &h.api_key,
        Some(json!({"status": "failed", "since": since, "event_type": "session.ended"})),
    )
    .await;
    assert_eq!(code, 202, "{r}");
    assert_eq!(r, json!({"queued": 2, "more": false}));
    for d in &failed[1..] {
        accepted(&h, d["id"].as_str().unwrap()).await;
    }
    ended_deliveries(&h, &sessions, "delivered").await;
    // Each arrived under the id it first had.
    for d in &failed {
        let id = d["id"].as_str().unwrap();
        let got: Vec<_> = h
            .receiver
            .all()
            .into_iter()
            .filter(|r| {
                r.body["data"]["id"] == d["session_id"] && r.body["type"] == "session.ended"
            })
            .collect();
        assert_eq!(got.len(), 3, "two refused and one accepted");
        assert!(got.iter().all(|r| r.webhook_id == id), "same webhook-id");
    }
    // Nothing failed is left to replay.
    let (_, r, _) = send(
        &h,
        "POST",
        "/v1/deliveries/redeliver",
        &h.api_key,
        Some(json!({"status": "failed", "since": since, "event_type": "session.ended"})),
    )
    .await;
    assert_eq!(r, json!({"queued": 0, "more": false}));

    // Audited: who sent what again.
    let (code, log, _) = send(
        &h,
        "GET",
        "/v1/admin/audit?action=delivery.redelivered",
        &admin,
        None,
    )
    .await;
    assert_eq!(code, 200, "{log}");
    let entries = log["data"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{log}");
    for e in entries {
        assert!(e["actor"].as_str().unwrap().starts_with("api_key:"), "{e}");
        assert!(failed.iter().any(|d| d["id"] == e["target"]), "{e}");
        assert!(
            sessions.iter().any(|s| e["session_id"] == s.as_str()),
            "{e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pending_delivery_is_sent_now_and_redeliveries_at_once_number_apart() {
    // After its first failure a delivery waits an hour for its retry.
    let h = Harness::start_with(Options {
        retry_schedule: vec!["1h"],
        ..Options::default()
    })
    .await;
    h.receiver.set_down(true);
    let sessions = ended_sessions(&h, 1, "pending").await;
    let pending = eventually("one failed attempt", 20, || async {
        let (_, page, _) = send(
            &h,
            "GET",
            "/v1/deliveries?status=pending&event_type=session.ended",
            &h.api_key,
            None,
        )
        .await;
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| {
                d["session_id"] == sessions[0].as_str()
                    && d["attempt_log"].as_array().unwrap().len() == 1
            })
            .cloned()
    })
    .await;
    assert!(pending["next_attempt_at"].is_string(), "{pending}");
    h.receiver.set_down(false);
    let id = pending["id"].as_str().unwrap().to_string();
    let (code, d, _) = send(
        &h,
        "POST",
        &format!("/v1/deliveries/{id}/redeliver"),
        &h.api_key,
        None,
    )
    .await;
    assert_eq!(code, 202, "{d}");
    accepted(&h, &id).await;
    let d = eventually("delivered", 20, || async {
        let (_, d, _) = send(&h, "GET", &format!("/v1/deliveries/{id}"), &h.api_key, None).await;
        (d["status"] == "delivered").then_some(d)
    })
    .await;
    assert_eq!(d["attempt_log"].as_array().unwrap().len(), 2, "{d}");

    // Delivered, then sent again twice at once: both are taken (one may
    // find the other's attempt pending and join it), and every attempt is
    // numbered once and recorded once, with no number lost or reused.
    let path = format!("/v1/deliveries/{id}/redeliver");
    let (a, b) = tokio::join!(
        send(&h, "POST", &path, &h.api_key, None),
        send(&h, "POST", &path, &h.api_key, None)
    );
    assert_eq!((a.0, b.0), (202, 202), "{} {}", a.1, b.1);
    // Both answers came after their commit: what they queued is pending.
    let d = eventually("delivered again", 20, || async {
        let (_, d, _) = send(&h, "GET", &format!("/v1/deliveries/{id}"), &h.api_key, None).await;
        (d["status"] == "delivered").then_some(d)
    })
    .await;
    let n = d["attempts"].as_i64().unwrap();
    assert!(n == 3 || n == 4, "{d}");
    let numbers: Vec<i64> = d["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["attempt"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, (1..=n).collect::<Vec<_>>(), "{d}");
    let got = h
        .receiver
        .all()
        .into_iter()
        .filter(|r| r.webhook_id == id && r.accepted)
        .count();
    assert_eq!(
        i64::try_from(got).unwrap(),
        n - 1,
        "every attempt after the first arrived"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_are_problems_and_scopes_are_checked() {
    let h = Harness::start().await;
    let reader = create_key(&h.config, "reader", &["sessions:read"]);
    let outsider = create_key(&h.config, "outsider", &["workflows:read"]);
    let key = &h.api_key;
    let problem = |r: &(u16, Value, String), code: u16| {
        assert_eq!(r.0, code, "{}", r.1);
        assert!(r.2.starts_with("application/problem+json"), "{}", r.2);
        assert_eq!(r.1["status"], code, "{}", r.1);
    };
    for path in [
        "/v1/deliveries/msg_000000000000ffffffffffffffff",
        "/v1/deliveries/nope",
    ] {
        problem(&send(&h, "GET", path, key, None).await, 404);
        let redeliver = format!("{path}/redeliver");
        problem(&send(&h, "POST", &redeliver, key, None).await, 404);
    }
    for query in [
        "status=lost",
        "since=yesterday",
        "limit=0",
        "limit=201",
        "cursor=ses_1",
        "endpoint=",
    ] {
        let r = send(&h, "GET", &format!("/v1/deliveries?{query}"), key, None).await;
        problem(&r, 422);
    }
    problem(
        &send(&h, "GET", "/v1/deliveries?colour=red", key, None).await,
        400,
    );
    let now = "2026-01-01T00:00:00Z";
    for body in [
        json!({"status": "delivered", "since": now}),
        json!({"status": "failed", "since": "soon"}),
        json!({"status": "failed", "since": now, "max": 0}),
        json!({"status": "failed", "since": now, "max": 10001}),
        json!({"status": "failed"}),
        json!({"status": "failed", "since": now, "colour": "red"}),
    ] {
        let r = send(&h, "POST", "/v1/deliveries/redeliver", key, Some(body)).await;
        problem(&r, 422);
    }
    // Scopes: reading takes sessions:read, sending again sessions:write.
    let r = send(&h, "GET", "/v1/deliveries", &reader, None).await;
    assert_eq!(r.0, 200, "{}", r.1);
    let r = send(&h, "GET", "/v1/deliveries", &outsider, None).await;
    problem(&r, 403);
    assert_eq!(r.1["missing_scope"], "sessions:read");
    let r = send(
        &h,
        "POST",
        "/v1/deliveries/msg_000000000000ffffffffffffffff/redeliver",
        &reader,
        None,
    )
    .await;
    problem(&r, 403);
    assert_eq!(r.1["missing_scope"], "sessions:write");
    let r = send(
        &h,
        "POST",
        "/v1/deliveries/redeliver",
        &reader,
        Some(json!({"status": "failed", "since": now})),
    )
    .await;
    problem(&r, 403);
    let r = send(&h, "GET", "/v1/deliveries", "gw_not_a_key", None).await;
    problem(&r, 401);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
