//! The browser's live stream: Server-Sent Events, resumable with
//! Last-Event-ID; operations endpoints.
#![allow(clippy::unwrap_used)]

mod common;

use common::Harness;
use futures::StreamExt;
use serde_json::Value;
use std::time::Duration;

/// Reads SSE frames until `until` returns true; returns `(id, event, data)`.
async fn read_events(
    resp: reqwest::Response,
    until: impl Fn(&str, &Value) -> bool,
) -> Vec<(String, String, Value)> {
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("events in time")
            .expect("stream open")
            .unwrap();
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let (mut id, mut ev, mut data) = (String::new(), String::new(), String::new());
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().into();
                } else if let Some(v) = line.strip_prefix("event:") {
                    ev = v.trim().into();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if ev.is_empty() {
                continue; // keep-alive comment
            }
            let data: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
            let done = until(&ev, &data);
            out.push((id, ev, data));
            if done {
                return out;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn events_stream_live_and_resume_after_last_event_id() {
    let h = Harness::start().await;
    let s = h.create_score_session("sse").await;
    let id = s["id"].as_str().unwrap();
    let secret = s["client_secret"].as_str().unwrap();
    let pid = h.provider_id(id).await;
    h.wait_session(id, "waiting", |s| s["status"] == "waiting")
        .await;
    let url = h.url(&format!("/v1/client/sessions/{id}/events"));

    // A first connection sees the step, then stops reading (network loss).
    let resp = h.http.get(&url).bearer_auth(secret).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let first = read_events(resp, |e, d| e == "step" && d["status"] == "waiting").await;
    assert_eq!(
        first[0].2["status"], "running",
        "the backlog starts at the first step"
    );
    let last_id = first.last().unwrap().0.clone();
    assert_eq!(first.last().unwrap().2["status"], "waiting");

    // While disconnected, the session ends.
    h.complete(&pid, 66).await;
    h.wait_ended(id).await;

    // EventSource-style reconnect with the query secret and Last-Event-ID.
    let resp = h
        .http
        .get(format!("{url}?client_secret={secret}"))
        .header("Last-Event-ID", &last_id)
        .send()
        .await
        .unwrap();
    let missed = read_events(resp, |e, _| e == "ended").await;
    assert!(
        missed
            .iter()
            .all(|(i, _, _)| i.parse::<i64>().unwrap() > last_id.parse::<i64>().unwrap()),
        "only events after Last-Event-ID: {missed:?}"
    );
    let (_, ev, data) = missed.last().unwrap();
    assert_eq!(ev, "ended");
    assert_eq!(data["outcome"], "approved");
    assert!(data.get("input").is_none() && !data.to_string().contains(common::SIM_API_KEY));
}

#[tokio::test(flavor = "multi_thread")]
async fn live_event_reaches_a_connected_stream() {
    let h = Harness::start().await;
    let s = h.create_score_session("sse-live").await;
    let id = s["id"].as_str().unwrap();
    let secret = s["client_secret"].as_str().unwrap();
    let pid = h.provider_id(id).await;
    h.wait_session(id, "waiting", |s| s["status"] == "waiting")
        .await;
    let resp = h
        .http
        .get(h.url(&format!("/v1/client/sessions/{id}/events")))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    let reader = tokio::spawn(read_events(resp, |e, _| e == "ended"));
    h.complete(&pid, 10).await;
    let events = reader.await.unwrap();
    assert_eq!(events.last().unwrap().2["outcome"], "declined");
}

#[tokio::test(flavor = "multi_thread")]
async fn health_metrics_and_openapi() {
    let h = Harness::start().await;
    let s = h.create_score_session("ops").await;
    h.provider_id(s["id"].as_str().unwrap()).await;
    assert_eq!(
        h.http.get(h.url("/healthz")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        h.http.get(h.url("/readyz")).send().await.unwrap().status(),
        200
    );
    let metrics = h
        .http
        .get(h.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "gangway_cluster_sessions{status=\"waiting\"}",
        "gangway_transitions_total",
        "gangway_provider_call_seconds",
    ] {
        assert!(metrics.contains(name), "metrics lack {name}:\n{metrics}");
    }
    let doc: Value = h
        .http
        .get(h.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/v1/sessions",
        "/v1/sessions/{id}",
        "/v1/sessions/{id}/cancel",
        "/v1/sessions/{id}/timeline",
        "/v1/sessions/{id}/deliveries",
        "/v1/workflows",
        "/v1/client/sessions/{id}",
        "/v1/client/sessions/{id}/events",
        "/v1/client/sessions/{id}/signal",
        "/v1/webhooks/http/{name}",
        "/v1/sessions/{id}/secrets",
        "/v1/redirect/360dialog/{state}",
        "/v1/webhooks/360dialog",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(doc["paths"].get(path).is_some(), "OpenAPI lacks {path}");
    }
    let (status, wf) = h.get("/v1/workflows").await;
    assert_eq!(status, 200);
    assert!(
        wf["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["id"] == "http-score" && w["version"] == 4)
    );
}
