//! What the console's session pages ask of the API: `GET /v1/sessions`
//! filtered by outcome and created time with keyset pages, bad filters as
//! problem JSON, and `GET /v1/sessions/changes` (SSE): a new session and its
//! moves arrive without polling, on the node the stream is open on and, on
//! PostgreSQL, from another node. Runs on PostgreSQL with
//! GANGWAY_TEST_BACKEND=postgres (the two-node test always does).
#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, Options, create_key};
use futures::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;

/// An open change stream: frames are read as they come.
struct Changes {
    stream: futures::stream::BoxStream<'static, reqwest::Result<Vec<u8>>>,
    buf: String,
}

impl Changes {
    async fn open(h: &Harness, url: &str) -> Changes {
        let r = h
            .http
            .get(url)
            .bearer_auth(&h.api_key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let mut c = Changes {
            stream: r.bytes_stream().map(|c| c.map(|b| b.to_vec())).boxed(),
            buf: String::new(),
        };
        let (ev, _) = c.next().await;
        assert_eq!(ev, "ready");
        c
    }

    /// The next event: `(event, data)`; keep-alive comments are skipped.
    async fn next(&mut self) -> (String, Value) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let frame: String = self.buf.drain(..end + 2).collect();
                let (mut ev, mut data) = (String::new(), String::new());
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        ev = v.trim().into();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if ev.is_empty() {
                    continue;
                }
                return (ev, serde_json::from_str(&data).unwrap_or(Value::Null));
            }
            let chunk = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .expect("a change in time")
                .expect("stream open")
                .unwrap();
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Reads until session `id` arrives matching `pred`.
    async fn until(&mut self, id: &str, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let (ev, data) = self.next().await;
            if ev == "session" && data["id"] == id && pred(&data) {
                return data;
            }
        }
    }
}

async fn create(h: &Harness, base: &str, reference: &str) -> String {
    let r = h
        .http
        .post(format!("{base}/v1/sessions"))
        .bearer_auth(&h.api_key)
        .json(&json!({"workflow": "score-fast", "reference": reference}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let s: Value = r.json().await.unwrap();
    s["id"].as_str().unwrap().to_string()
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn list_filters_by_outcome_and_created_time_with_keyset_pages() {
    let h = Harness::start().await;
    let mut made = Vec::new();
    for i in 0..5 {
        made.push(create(&h, &h.base, &format!("f{i}")).await);
    }
    // Two approved, one declined, one canceled, one still waiting.
    for (i, score) in [(0, 90), (1, 91), (2, 10)] {
        let pid = h.provider_id(&made[i]).await;
        h.complete(&pid, score).await;
        h.wait_ended(&made[i]).await;
    }
    let (status, _) = h
        .post(&format!("/v1/sessions/{}/cancel", made[3]), json!({}))
        .await;
    assert_eq!(status, 200);
    let newest_first = |v: &[&String]| v.iter().rev().map(|s| (*s).clone()).collect::<Vec<_>>();

    let (status, page) = h.get("/v1/sessions?outcome=approved").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(ids(&page), newest_first(&[&made[0], &made[1]]));
    let (_, page) = h
        .get("/v1/sessions?outcome=canceled&workflow=score-fast")
        .await;
    assert_eq!(ids(&page), [made[3].clone()]);
    let (_, page) = h.get("/v1/sessions?outcome=approved&limit=1").await;
    assert_eq!(ids(&page), [made[1].clone()]);
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let (_, page) = h
        .get(&format!(
            "/v1/sessions?outcome=approved&limit=1&cursor={cursor}"
        ))
        .await;
    assert_eq!(ids(&page), [made[0].clone()]);
    assert_eq!(page["next_cursor"], Value::Null);

    // The created-time range: from the third session's creation (inclusive)
    // to the fifth's (exclusive).
    let third = h.session(&made[2]).await;
    let fifth = h.session(&made[4]).await;
    let since = third["created_at"].as_str().unwrap();
    let until = fifth["created_at"].as_str().unwrap();
    let url = reqwest::Url::parse_with_params(
        &h.url("/v1/sessions"),
        &[("created_since", since), ("created_until", until)],
    )
    .unwrap();
    let r = h
        .http
        .get(url)
        .bearer_auth(&h.api_key)
        .send()
        .await
        .unwrap();
    let page: Value = r.json().await.unwrap();
    let got = ids(&page);
    assert!(got.contains(&made[2]) && got.contains(&made[3]), "{page}");
    assert!(!got.contains(&made[4]) && !got.contains(&made[1]), "{page}");

    for (query, status) in [
        ("outcome=great", 422),
        ("created_since=yesterday", 422),
        ("created_until=2026-13-01T00:00:00Z", 422),
        ("workflow=%00", 422),
        ("status=sleeping", 422),
        ("limit=0", 422),
        ("surprise=1", 400),
    ] {
        let r = h
            .http
            .get(h.url(&format!("/v1/sessions?{query}")))
            .bearer_auth(&h.api_key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{query}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{query}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_change_stream_pushes_new_and_moving_sessions() {
    let h = Harness::start().await;
    let mut changes = Changes::open(&h, &h.url("/v1/sessions/changes")).await;
    let id = create(&h, &h.base, "live").await;
    let s = changes.until(&id, |_| true).await;
    assert_eq!(s["workflow"], "score-fast");
    assert_eq!(s["reference"], "live");
    changes.until(&id, |s| s["status"] == "waiting").await;
    let (status, _) = h
        .post(&format!("/v1/sessions/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200);
    let s = changes.until(&id, |s| s["status"] == "ended").await;
    assert_eq!(s["outcome"], "canceled");

    // Read scope: a key without sessions:read is refused, none at all is 401.
    let key = create_key(&h.config, "workflows-only", &["workflows:read"]);
    let r = h
        .http
        .get(h.url("/v1/sessions/changes"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = h
        .http
        .get(h.url("/v1/sessions/changes"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

/// Two nodes on one PostgreSQL database: a stream on the second node sees a
/// session created, moved and canceled through the first.
#[tokio::test(flavor = "multi_thread")]
async fn the_change_stream_sees_other_nodes_sessions() {
    let mut h = Harness::start_with(Options {
        postgres: true,
        ..Options::default()
    })
    .await;
    let n = h.add_node();
    let mut changes = Changes::open(&h, &h.node_url(n, "/v1/sessions/changes")).await;
    let id = create(&h, &h.base, "elsewhere").await;
    changes.until(&id, |_| true).await;
    let (status, _) = h
        .post(&format!("/v1/sessions/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200);
    let s = changes.until(&id, |s| s["status"] == "ended").await;
    assert_eq!(s["outcome"], "canceled");
}
