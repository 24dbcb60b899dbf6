//! Graceful shutdown on SIGTERM: the node stops taking work, lets the
//! provider call it is in the middle of finish (or hands it back), tells
//! browser streams to reconnect, frees its job leases and exits cleanly;
//! after a restart nothing is lost and nothing ran twice.
#![allow(clippy::unwrap_used)]

mod common;

use common::Harness;
use futures::StreamExt;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_work_and_tells_streams_to_reconnect() {
    let mut h = Harness::start().await;
    let a = h.create_score_session("a").await;
    let a_id = a["id"].as_str().unwrap().to_string();
    let a_pid = h.provider_id(&a_id).await;

    // A browser follows session a.
    let stream = h
        .http
        .get(h.url(&format!("/v1/client/sessions/{a_id}/events")))
        .bearer_auth(a["client_secret"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    let (text_tx, text_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut body = stream.bytes_stream();
        let mut text = String::new();
        while let Some(Ok(chunk)) = body.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        let _ = text_tx.send(text);
    });

    // Session b's provider start is slow: it is in flight at SIGTERM.
    let (status, body) = h
        .sim_post(
            "/control/faults",
            json!({"rules": [{"match": {"method": "POST", "path": "/v1/sessions"}, "fault": {"delay_ms": 1500}}]}),
        )
        .await;
    assert!(status < 300, "{body}");
    let b = h.create_score_session("b").await;
    let b_id = b["id"].as_str().unwrap().to_string();

    let exit = h.sigterm_server(30);
    assert!(exit.success(), "exit status {exit:?}");
    let text = tokio::time::timeout(std::time::Duration::from_secs(10), text_rx)
        .await
        .expect("the stream closed")
        .unwrap();
    assert!(text.contains("event: reconnect"), "{text}");
    assert!(text.contains("retry: 500"), "{text}");
    let log = h.server_log();
    assert!(log.contains("shutting down"), "{log}");
    assert!(log.contains("freed this node's job leases"), "{log}");

    // Started again: b reaches its provider exactly once, a still completes.
    h.start_server();
    h.provider_id(&b_id).await;
    h.complete(&a_pid, 90).await;
    assert_eq!(h.wait_ended(&a_id).await["outcome"], "approved");
    let starts: Vec<_> = h
        .sim_requests()
        .await
        .into_iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/v1/sessions")
        .collect();
    let sessions: std::collections::HashSet<String> = starts
        .iter()
        .filter_map(|r| r["ref"].as_str().map(String::from))
        .collect();
    assert_eq!(sessions.len(), 2, "one provider session each: {starts:?}");
}

/// Issue 23 #8: on SIGTERM `/readyz` answers 503 `stopping` at once while
/// the node keeps serving everything (new sessions too) for
/// `server.drain_period`, so that a load balancer takes it out of rotation
/// before it stops accepting; a second signal ends the wait.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_turns_readiness_off_first_and_serves_through_the_drain_period() {
    let mut h = Harness::start_with(common::Options {
        extra_toml: "[server]\ndrain_period = \"120s\"\n",
        ..Default::default()
    })
    .await;
    let ready = h.http.get(h.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);

    h.signal_server("TERM");
    let body = common::eventually("/readyz to answer 503", 10, || async {
        let r = h.http.get(h.url("/readyz")).send().await.ok()?;
        (r.status().as_u16() == 503).then_some(())?;
        r.json::<serde_json::Value>().await.ok()
    })
    .await;
    assert_eq!(body, json!({"status": "stopping"}));
    // Still serving: a request the balancer sent before it noticed works,
    // on a new connection too.
    let fresh = reqwest::Client::new();
    let health = fresh.get(h.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    // Kept-alive clients are told to reconnect (and so leave this node).
    assert_eq!(health.headers()["connection"], "close");
    let s = h.create_score_session("during-the-drain").await;
    let id = s["id"].as_str().unwrap().to_string();
    h.provider_id(&id).await;

    // A second signal ends the drain period: the node stops and exits long
    // before the 120 s are over, and accepts no more connections.
    h.signal_server("TERM");
    let exit = h.wait_server_exit(60);
    assert!(exit.success(), "exit status {exit:?}");
    assert!(
        reqwest::Client::new()
            .get(h.url("/healthz"))
            .send()
            .await
            .is_err()
    );
    let log = h.server_log();
    assert!(log.contains("/readyz answers 503"), "{log}");
    assert!(log.contains("drain period ended"), "{log}");
}
