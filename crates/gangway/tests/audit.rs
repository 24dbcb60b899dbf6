//! The audit log through the real binary: each security-relevant action
//! (a start, keys created by the CLI and the admin API, rotated, revoked;
//! sessions created and canceled) leaves one entry naming who did it,
//! refused actions leave none, and the log reads back through
//! `GET /v1/admin/audit` (filters, keyset pages) and
//! `GET /v1/admin/audit/export` (JSON lines, oldest first), admins only.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, create_key};
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

async fn post(h: &Harness, path: &str, key: &str, body: Value) -> (u16, Value) {
    let r = h
        .http
        .post(h.url(path))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// The entries a query returns: `(action, actor, session_id, target)`.
async fn log(h: &Harness, query: &str, key: &str) -> Vec<(String, String, Value, Value)> {
    let (status, page) = get(h, &format!("/v1/admin/audit?{query}"), key).await;
    assert_eq!(status, 200, "{page:#}");
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["actor"].as_str().unwrap().to_string(),
                e["session_id"].clone(),
                e["target"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_security_relevant_action_is_in_the_audit_log_once() {
    let h = Harness::start().await;
    // A key made on the command line: the CLI is its actor.
    let admin = create_key(&h.config, "auditor", &["admin"]);
    let (_, keys) = get(&h, "/v1/admin/keys", &admin).await;
    let key_id = |name: &str| {
        keys["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let admin_id = key_id("auditor");
    let created = log(
        &h,
        &format!("action=api_key.created&target={admin_id}"),
        &admin,
    )
    .await;
    assert_eq!(created.len(), 1, "{created:?}");
    assert!(created[0].1.starts_with("cli"), "{created:?}");

    // The start, with what a review must know.
    let (_, page) = get(&h, "/v1/admin/audit?action=server.started", &admin).await;
    let start = &page["data"][0];
    assert_eq!(start["actor"], "system");
    assert_eq!(start["data"]["command"], "serve");
    assert!(start["data"]["warnings"].is_array(), "{page:#}");

    // A session created and canceled by the harness's key; a second cancel
    // is refused and leaves nothing.
    let s = h.create_score_session("audited").await;
    let id = s["id"].as_str().unwrap();
    let (status, _) = post(
        &h,
        &format!("/v1/sessions/{id}/cancel"),
        &h.api_key,
        json!({"reason": "Jane Doe asked"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = post(
        &h,
        &format!("/v1/sessions/{id}/cancel"),
        &h.api_key,
        json!({}),
    )
    .await;
    assert_eq!(status, 409);
    let of_session = log(&h, &format!("session_id={id}"), &admin).await;
    let actions: Vec<&str> = of_session.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(actions, ["session.canceled", "session.created"]);
    assert_eq!(of_session[0].1, of_session[1].1, "the same key did both");
    assert!(of_session[0].1.starts_with("api_key:key_"));
    // The customer's reason is the session's data, not the log's.
    let (_, raw) = get(&h, &format!("/v1/admin/audit?session_id={id}"), &admin).await;
    assert!(!raw.to_string().contains("Jane Doe"), "{raw:#}");

    // Keys through the admin API: created, rotated, revoked, each by the
    // admin key; a second revocation changes nothing and is not logged.
    let (status, made) = post(&h, "/v1/admin/keys", &admin, json!({"name": "backend-b"})).await;
    assert_eq!(status, 201, "{made:#}");
    let b = made["id"].as_str().unwrap();
    let secret = made["key"].as_str().unwrap().to_string();
    assert_eq!(
        post(
            &h,
            &format!("/v1/admin/keys/{b}/rotate"),
            &admin,
            json!({"grace": "1h"})
        )
        .await
        .0,
        200
    );
    assert_eq!(
        post(&h, &format!("/v1/admin/keys/{b}/revoke"), &admin, json!({}))
            .await
            .0,
        200
    );
    assert_eq!(
        post(&h, &format!("/v1/admin/keys/{b}/revoke"), &admin, json!({}))
            .await
            .0,
        200
    );
    let of_key = log(&h, &format!("target={b}"), &admin).await;
    let by = format!("api_key:{admin_id}");
    assert_eq!(
        of_key,
        [
            (
                "api_key.revoked".to_string(),
                by.clone(),
                Value::Null,
                json!(b)
            ),
            (
                "api_key.rotated".to_string(),
                by.clone(),
                Value::Null,
                json!(b)
            ),
            (
                "api_key.created".to_string(),
                by.clone(),
                Value::Null,
                json!(b)
            ),
        ]
    );
    let (_, raw) = get(&h, &format!("/v1/admin/audit?target={b}"), &admin).await;
    assert!(!raw.to_string().contains(&secret), "no secret in the log");
    assert_eq!(raw["data"][2]["data"]["name"], "backend-b");

    // Keyset pages, newest first, meet the whole log exactly once.
    let everything = log(&h, "limit=1000", &admin).await;
    let mut paged = Vec::new();
    let mut cursor = String::new();
    for _ in 0..100 {
        let (status, page) = get(&h, &format!("/v1/admin/audit?limit=2{cursor}"), &admin).await;
        assert_eq!(status, 200);
        paged.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].clone()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(paged.len(), everything.len());

    // The export: the same entries, oldest first, one JSON object a line.
    let r = h
        .http
        .get(h.url("/v1/admin/audit/export"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/jsonl");
    let text = r.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), everything.len());
    let mut ids: Vec<Value> = lines.iter().map(|e| e["id"].clone()).collect();
    ids.reverse();
    assert_eq!(ids, paged);
    let since = lines.last().unwrap()["at"]
        .as_str()
        .unwrap()
        .replace('+', "%2B");
    let (_, recent) = get(&h, &format!("/v1/admin/audit?since={since}"), &admin).await;
    assert!(!recent["data"].as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_log_is_for_admins_and_refuses_bad_filters() {
    let h = Harness::start().await;
    let admin = create_key(&h.config, "auditor", &["admin"]);
    let reader = create_key(&h.config, "reader", &["sessions:read"]);
    for path in ["/v1/admin/audit", "/v1/admin/audit/export"] {
        let (status, body) = get(&h, path, &reader).await;
        assert_eq!(status, 403, "{body:#}");
        assert_eq!(body["missing_scope"], "admin");
        assert_eq!(get(&h, path, "gw_not_a_key").await.0, 401);
    }
    for (query, status, says) in [
        ("action=api_key.deleted", 422, "unknown `action`"),
        ("since=yesterday", 422, "`since` must be an RFC 3339 time"),
        (
            "until=2026-13-01T00:00:00Z",
            422,
            "`until` must be an RFC 3339 time",
        ),
        ("cursor=abc", 422, "`cursor`"),
        ("cursor=0", 422, "`cursor`"),
        ("limit=0", 422, "`limit`"),
        ("limit=1001", 422, "`limit`"),
        ("actor=%00", 422, "control characters"),
        ("colour=blue", 400, "colour"),
    ] {
        let (got, body) = get(&h, &format!("/v1/admin/audit?{query}"), &admin).await;
        assert_eq!(got, status, "{query}: {body:#}");
        assert_eq!(body["status"], status, "problem JSON for {query}");
        assert!(
            body["detail"].as_str().unwrap().contains(says),
            "{query}: {body:#}"
        );
    }
    let (got, body) = get(&h, "/v1/admin/audit/export?limit=5", &admin).await;
    assert_eq!(got, 422, "{body:#}");
}
