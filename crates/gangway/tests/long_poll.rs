//! `GET /v1/sessions/{id}?wait=…[&after=…]`: a backend that cannot receive
//! webhooks waits for a session's next change instead of polling.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, Options, eventually};
use serde_json::Value;
use std::time::Duration;

/// The request, with a client timeout well under the waits asked for, so
/// that an answer that should come at once cannot hide a full wait.
async fn long_poll(h: &Harness, id: &str, query: &str, client_timeout: u64) -> (u16, Value) {
    let r = h
        .http
        .get(h.url(&format!("/v1/sessions/{id}?{query}")))
        .bearer_auth(&h.api_key)
        .timeout(Duration::from_secs(client_timeout))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// A `score-long` session (no polling: nothing changes it but the
/// provider's webhook), once it waits.
async fn waiting_session(h: &Harness, reference: &str) -> (String, Value) {
    let (status, s) = h
        .post(
            "/v1/sessions",
            serde_json::json!({"workflow": "score-long", "reference": reference}),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    let id = s["id"].as_str().unwrap().to_string();
    let waiting = h
        .wait_session(&id, "waiting", |s| s["status"] == "waiting")
        .await;
    (id, waiting)
}

/// Until the server counts a long poll as waiting.
async fn long_poll_waits(h: &Harness) {
    eventually("the long poll waits", 20, || async {
        let text = h
            .http
            .get(h.url("/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .any(|l| l.starts_with("gangway_long_polls_waiting ") && !l.ends_with(" 0"))
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_poll_answers_at_the_next_change() {
    let h = Harness::start().await;
    let (id, before) = waiting_session(&h, "lp-change").await;
    let pid = h.provider_id(&id).await;
    let poll = {
        let http = h.http.clone();
        let url = h.url(&format!("/v1/sessions/{id}?wait=60s"));
        let key = h.api_key.clone();
        tokio::spawn(async move {
            let r = http.get(url).bearer_auth(key).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        })
    };
    // The poll waits on the server before the provider finishes.
    long_poll_waits(&h).await;
    assert!(!poll.is_finished());
    h.complete(&pid, 80).await;
    let (status, changed) = poll.await.unwrap();
    assert_eq!(status, 200, "{changed}");
    assert_ne!(
        changed["updated_at"], before["updated_at"],
        "answered with the change, not at the end of the wait: {changed}"
    );
    // The wait after the change carries on from what was seen.
    let ended = h.wait_ended(&id).await;
    let (status, again) = long_poll(
        &h,
        &id,
        &format!("wait=60s&after={}", before["updated_at"].as_str().unwrap()),
        20,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(again["status"], "ended", "changed since `after`: at once");
    assert_eq!(again["updated_at"], ended["updated_at"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_poll_without_a_change_answers_when_its_wait_runs_out() {
    let h = Harness::start().await;
    let (id, before) = waiting_session(&h, "lp-quiet").await;
    let (status, same) = long_poll(&h, &id, "wait=300ms", 20).await;
    assert_eq!(status, 200, "{same}");
    assert_eq!(same["updated_at"], before["updated_at"]);
    assert_eq!(same["status"], "waiting");
    // `after` equal to the current version waits too, then answers as is.
    let (status, same) = long_poll(
        &h,
        &id,
        &format!(
            "wait=300ms&after={}",
            before["updated_at"].as_str().unwrap()
        ),
        20,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(same["updated_at"], before["updated_at"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ended_session_answers_at_once() {
    let h = Harness::start().await;
    let (id, _) = waiting_session(&h, "lp-ended").await;
    let pid = h.provider_id(&id).await;
    h.complete(&pid, 10).await;
    h.wait_ended(&id).await;
    // A wait the server caps at its maximum (60 s): the client gives up at
    // 20 s, so only an immediate answer passes.
    let (status, s) = long_poll(&h, &id, "wait=1h", 20).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["outcome"], "declined");
}

#[tokio::test(flavor = "multi_thread")]
async fn long_polls_are_bounded_per_node_and_bad_queries_are_problems() {
    let h = Harness::start_with(Options {
        extra_toml: "[limits]\nlong_polls = 1\n",
        ..Default::default()
    })
    .await;
    let (id, _) = waiting_session(&h, "lp-limit").await;
    let holder = {
        let http = h.http.clone();
        let url = h.url(&format!("/v1/sessions/{id}?wait=30s"));
        let key = h.api_key.clone();
        tokio::spawn(async move {
            http.get(url)
                .bearer_auth(key)
                .send()
                .await
                .map(|r| r.status())
        })
    };
    // Probing before the holder is counted could take the only slot from
    // it (and send the holder away with 429): wait for it first.
    long_poll_waits(&h).await;
    let refused = h
        .http
        .get(h.url(&format!("/v1/sessions/{id}?wait=100ms")))
        .bearer_auth(&h.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("limits.long_polls"),
        "{body}"
    );
    // A plain read is never limited.
    let (status, _) = h.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(status, 200);
    holder.abort();

    for (query, what) in [
        ("wait=soon", "`wait`"),
        ("after=2026-01-01T00:00:00Z", "`after` needs `wait`"),
        ("wait=1s&after=yesterday", "`after`"),
    ] {
        let r = h
            .http
            .get(h.url(&format!("/v1/sessions/{id}?{query}")))
            .bearer_auth(&h.api_key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{query}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["detail"].as_str().unwrap().contains(what),
            "{query}: {body}"
        );
    }
}
