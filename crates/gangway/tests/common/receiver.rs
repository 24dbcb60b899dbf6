//! The customer's webhook receiver: a real HTTP server that verifies every
//! delivery with the `standardwebhooks` crate and can be switched down.
#![allow(dead_code, clippy::unwrap_used)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub struct Received {
    pub webhook_id: String,
    pub verified: bool,
    pub body: Value,
    /// Whether the receiver answered 2xx to this attempt.
    pub accepted: bool,
    /// The request's `User-Agent`.
    pub user_agent: String,
    /// The request's W3C `traceparent`, if it had one.
    pub traceparent: Option<String>,
}

#[derive(Clone)]
pub struct Receiver {
    inner: Arc<Inner>,
    url: String,
}

struct Inner {
    secret: String,
    down: AtomicBool,
    /// Holds each request this long before answering (0: answer at once).
    hang_ms: AtomicU64,
    got: Mutex<Vec<Received>>,
}

impl Receiver {
    pub async fn start(secret: &str) -> Receiver {
        let inner = Arc::new(Inner {
            secret: secret.to_string(),
            down: AtomicBool::new(false),
            hang_ms: AtomicU64::new(0),
            got: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new()
            .route("/hooks", post(receive))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { inner, url }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn set_down(&self, down: bool) {
        self.inner.down.store(down, Ordering::SeqCst);
    }

    /// Holds every request this long before answering, as an endpoint that
    /// hangs (0: answer at once).
    pub fn set_hang(&self, hang: std::time::Duration) {
        let ms = u64::try_from(hang.as_millis()).unwrap_or(u64::MAX);
        self.inner.hang_ms.store(ms, Ordering::SeqCst);
    }

    pub fn all(&self) -> Vec<Received> {
        self.inner.got.lock().unwrap().clone()
    }

    /// Accepted deliveries of `event_type` for a session.
    pub fn for_session(&self, session_id: &str, event_type: &str) -> Vec<Received> {
        self.all()
            .into_iter()
            .filter(|r| r.body["type"] == event_type && r.body["data"]["id"] == session_id)
            .collect()
    }
}

async fn receive(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let wh = standardwebhooks::Webhook::new(&inner.secret).unwrap();
    let verified = wh.verify(&body, &headers).is_ok();
    let webhook_id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let hang = inner.hang_ms.load(Ordering::SeqCst);
    if hang > 0 {
        // The sender gives up first; this answer is never read.
        tokio::time::sleep(std::time::Duration::from_millis(hang)).await;
        return StatusCode::GATEWAY_TIMEOUT;
    }
    let down = inner.down.load(Ordering::SeqCst);
    inner.got.lock().unwrap().push(Received {
        webhook_id,
        verified,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        accepted: !down,
        user_agent: headers
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        traceparent: headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    });
    if down {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::NO_CONTENT
    }
}
