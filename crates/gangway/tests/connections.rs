//! What `serve` does with connections that do not behave (issue 18 #2):
//! headers that never end, bodies that stall, more connections than the
//! cap, and clients that hold on through SIGTERM; and that event streams
//! and WebSockets outlive the idle and body timeouts. Raw TCP, against the
//! real binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Harness, Options, eventually};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

async fn connect(h: &Harness) -> TcpStream {
    TcpStream::connect(("127.0.0.1", h.port)).await.unwrap()
}

/// Reads until the server closes the connection (EOF or reset); panics if
/// it is still open after `secs`. Returns what was received.
async fn until_closed(stream: &mut TcpStream, secs: u64, what: &str) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => panic!(
                "{what}: still open after {secs}s; received {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => return got,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

fn status_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_that_never_finish_their_headers_are_closed() {
    let h = Harness::start_with(Options {
        extra_toml: "[server]\nheader_timeout = \"1s\"\n",
        ..Default::default()
    })
    .await;
    let mut stalled = Vec::new();
    for i in 0..250 {
        let mut s = connect(&h).await;
        // Half of them send part of a request, half nothing at all.
        if i % 2 == 0 {
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: gangway\r\nX-Slow: ")
                .await
                .unwrap();
        }
        stalled.push(s);
    }
    let closing = stalled.into_iter().map(|mut s| async move {
        until_closed(&mut s, 20, "a connection with unfinished headers").await
    });
    let received = futures::future::join_all(closing).await;
    assert!(
        received.iter().all(|r| r.is_empty()),
        "closed without an answer"
    );
    // The server still answers, and counted the timeouts.
    let metrics = h
        .http
        .get(h.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("gangway_http_timeouts_total{listener=\"api\",kind=\"header\"} 250"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_stalls_is_cut_off() {
    let h = Harness::start_with(Options {
        extra_toml: "[server]\nbody_timeout = \"1s\"\n",
        ..Default::default()
    })
    .await;
    // A huge announced body, and one within the size limit; 2 bytes each.
    for length in ["99999999999", "1000"] {
        let mut s = connect(&h).await;
        let head = format!(
            "POST /v1/sessions HTTP/1.1\r\nHost: gangway\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n{{\"",
            h.api_key
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let got = until_closed(&mut s, 20, "a POST whose body stalls").await;
        let status = status_line(&got);
        if length == "1000" {
            assert_eq!(status, "HTTP/1.1 408 Request Timeout", "{got:?}");
            let text = String::from_utf8_lossy(&got);
            assert!(text.contains("application/problem+json"), "{text}");
            assert!(text.contains("server.body_timeout"), "{text}");
        } else {
            assert!(
                status.is_empty() || status.starts_with("HTTP/1.1 4"),
                "{status}"
            );
        }
    }
    // A body that arrives in time is served.
    let s = h
        .post(
            "/v1/sessions",
            json!({"workflow": "http-score", "reference": "r"}),
        )
        .await;
    assert_eq!(s.0, 201, "{}", s.1);
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_beyond_the_cap_are_refused_at_once() {
    let h = Harness::start_with(Options {
        extra_toml: "[server]\nmax_connections = 20\nheader_timeout = \"60s\"\n",
        ..Default::default()
    })
    .await;
    // The cap's worth of connections that hold on (no request yet).
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(connect(&h).await);
    }
    // One more is answered 503 (or just closed) instead of waiting.
    let mut extra = connect(&h).await;
    let got = until_closed(&mut extra, 10, "a connection over the cap").await;
    let status = status_line(&got);
    assert!(
        status.is_empty() || status == "HTTP/1.1 503 Service Unavailable",
        "{status}"
    );
    // Once some close, new connections are served again.
    held.truncate(10);
    // Until the server has seen them close, a new connection may still be
    // refused (503, with a body): only a served one counts.
    let metrics = eventually("a connection slot", 20, || async {
        let r = reqwest::Client::new()
            .get(h.url("/metrics"))
            .send()
            .await
            .ok()?;
        if r.status() != 200 {
            return None;
        }
        r.text().await.ok()
    })
    .await;
    // The one above, and any the wait for a slot made.
    let refused = metrics
        .lines()
        .find_map(|l| l.strip_prefix("gangway_http_connections_refused_total{listener=\"api\"} "))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(refused.is_some_and(|n| n >= 1), "{metrics}");
    drop(held);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_exits_within_the_grace_whatever_clients_do() {
    let mut h = Harness::start_with(Options {
        extra_toml: "[server]\nheader_timeout = \"300s\"\nbody_timeout = \"300s\"\ndrain_period = \"0s\"\n",
        shutdown_grace: Some("2s"),
        ..Default::default()
    })
    .await;
    // One client stuck in its headers, one in a huge body.
    let mut headers = connect(&h).await;
    headers
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gangway\r\n")
        .await
        .unwrap();
    let mut body = connect(&h).await;
    let head = format!(
        "POST /v1/sessions HTTP/1.1\r\nHost: gangway\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n{{\"",
        h.api_key
    );
    body.write_all(head.as_bytes()).await.unwrap();
    // Both reached the server (the body's request is in a handler).
    eventually("both connections open", 10, || async {
        let m = h
            .http
            .get(h.url("/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        m.lines()
            .any(|l| {
                l.starts_with("gangway_http_connections{listener=\"api\"}")
                    && l.split_whitespace()
                        .last()
                        .and_then(|n| n.parse::<f64>().ok())
                        .is_some_and(|n| n >= 3.0)
            })
            .then_some(())
    })
    .await;
    // Far sooner than either timeout: the grace bounds the exit.
    let exit = h.sigterm_server(30);
    assert!(exit.success(), "exit status {exit:?}");
    let log = h.server_log();
    assert!(log.contains("closing them"), "{log}");
    assert!(log.contains("freed this node's job leases"), "{log}");
    // The grace went to the clients; no job was running, none is blamed.
    assert!(!log.contains("jobs still running"), "{log}");
    until_closed(&mut headers, 5, "the stalled headers after exit").await;
    until_closed(&mut body, 5, "the stalled body after exit").await;
}

/// Reads SSE frames until one of `event` arrives.
async fn next_event<S, B>(stream: &mut S, text: &mut String, event: &str)
where
    S: futures::Stream<Item = reqwest::Result<B>> + Unpin,
    B: AsRef<[u8]>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !text.contains(&format!("event: {event}")) {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, stream.next())
            .await
            .unwrap_or_else(|_| panic!("no `{event}` event; got {text}"))
            .unwrap_or_else(|| panic!("stream ended before `{event}`; got {text}"))
            .unwrap();
        text.push_str(&String::from_utf8_lossy(chunk.as_ref()));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn event_streams_and_websockets_outlive_the_idle_and_body_timeouts() {
    let h = Harness::start_with(Options {
        extra_toml: "[server]\nheader_timeout = \"1s\"\nidle_timeout = \"1s\"\nbody_timeout = \"1s\"\n",
        ..Default::default()
    })
    .await;
    // An event stream of a waiting session.
    let session = h.create_score_session("stream").await;
    let id = session["id"].as_str().unwrap().to_string();
    let pid = h.provider_id(&id).await;
    let resp = h
        .http
        .get(h.url(&format!("/v1/client/sessions/{id}/events")))
        .bearer_auth(session["client_secret"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut events = resp.bytes_stream();
    let mut text = String::new();
    next_event(&mut events, &mut text, "step").await;
    // A chat socket.
    let (status, chat) = h
        .post("/v1/sessions", json!({"workflow": "oih-assistant-fast"}))
        .await;
    assert_eq!(status, 201, "{chat}");
    let url = format!(
        "ws://127.0.0.1:{}/v1/client/sessions/{}/chat",
        h.port,
        chat["id"].as_str().unwrap()
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let hello = json!({"type": "hello", "secret": chat["client_secret"], "last_id": 0});
    ws.send(Message::text(hello.to_string())).await.unwrap();
    ws_until(&mut ws, |f| f["type"] == "ready").await;

    // An idle keep-alive connection opened now is closed by the idle
    // timeout: once it is, the stream and the socket have been quiet for
    // longer than the idle timeout too.
    let mut idle = connect(&h).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: gangway\r\n\r\n")
        .await
        .unwrap();
    let got = until_closed(&mut idle, 20, "an idle kept-alive connection").await;
    assert_eq!(status_line(&got), "HTTP/1.1 200 OK");

    // Both still carry what comes next.
    ws.send(Message::text(
        json!({"type": "say", "text": "/help", "client_id": "c1"}).to_string(),
    ))
    .await
    .unwrap();
    let ack = ws_until(&mut ws, |f| f["client_id"] == "c1").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    h.complete(&pid, 90).await;
    next_event(&mut events, &mut text, "ended").await;
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_until(ws: &mut Socket, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, ws.next())
            .await
            .expect("a frame in time")
            .expect("the socket is open")
            .unwrap();
        if let Message::Text(t) = msg {
            let f: Value = serde_json::from_str(&t).unwrap();
            if pred(&f) {
                return f;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_do_not_hold_a_stopping_node() {
    let mut h = Harness::start_with(Options {
        extra_toml: "[server]\nheader_timeout = \"300s\"\nidle_timeout = \"300s\"\ndrain_period = \"0s\"\n",
        shutdown_grace: Some("120s"),
        ..Default::default()
    })
    .await;
    // A connection that has sent nothing yet, and one kept alive after a
    // request.
    let mut fresh = connect(&h).await;
    let mut kept = connect(&h).await;
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: gangway\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = kept.read(&mut buf).await.unwrap();
    assert!(status_line(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Neither holds the stop for the 120 s grace: both close at once.
    let exit = h.sigterm_server(60);
    assert!(exit.success(), "exit status {exit:?}");
    assert!(!h.server_log().contains("closing them"));
    until_closed(&mut fresh, 5, "a fresh connection after exit").await;
    until_closed(&mut kept, 5, "a kept-alive connection after exit").await;
}
