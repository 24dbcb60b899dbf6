//! The demo customer backend's webhook receiver: verifies each delivery with
//! the Standard Webhooks library, keeps the last ones in memory, and lists
//! them for the demo's webhooks page.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Deliveries kept for the page.
const KEEP: usize = 100;

/// One delivery as the demo backend received it.
#[derive(Clone, Debug, Serialize)]
pub struct Received {
    pub received_at: String,
    pub webhook_id: String,
    pub webhook_timestamp: String,
    /// Whether `webhook-signature` verified against the endpoint's secret.
    pub verified: bool,
    /// Why it did not verify.
    pub error: Option<String>,
    /// The event type, session id, status and outcome, when the body is readable.
    pub event_type: Option<String>,
    pub session_id: Option<String>,
    pub status: Option<String>,
    pub outcome: Option<String>,
    pub body: Value,
}

#[derive(Clone)]
pub struct Inbox {
    webhook: Arc<standardwebhooks::Webhook>,
    got: Arc<Mutex<VecDeque<Received>>>,
}

impl Inbox {
    pub fn new(secret: &str) -> anyhow::Result<Inbox> {
        let webhook = standardwebhooks::Webhook::new(secret)
            .map_err(|e| anyhow::anyhow!("demo webhook secret: {e}"))?;
        Ok(Inbox {
            webhook: Arc::new(webhook),
            got: Arc::default(),
        })
    }

    /// Verifies and records a delivery; a bad signature is refused (401),
    /// as a real backend would, and still shown on the page.
    pub fn receive(&self, headers: &HeaderMap, body: &Bytes) -> StatusCode {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let verdict = self.webhook.verify(body, headers);
        let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let field = |v: &Value| v.as_str().map(str::to_string);
        let entry = Received {
            received_at: now(),
            webhook_id: header("webhook-id"),
            webhook_timestamp: header("webhook-timestamp"),
            verified: verdict.is_ok(),
            error: verdict.err().map(|e| e.to_string()),
            event_type: field(&parsed["type"]),
            session_id: field(&parsed["data"]["id"]),
            status: field(&parsed["data"]["status"]),
            outcome: field(&parsed["data"]["outcome"]),
            body: parsed,
        };
        let ok = entry.verified;
        let mut got = self.got.lock().unwrap_or_else(|p| p.into_inner());
        got.push_front(entry);
        got.truncate(KEEP);
        if ok {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::UNAUTHORIZED
        }
    }

    /// Newest first.
    pub fn list(&self) -> Vec<Received> {
        self.got
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A fresh Standard Webhooks secret: `whsec_` + base64 of 32 random bytes.
pub fn new_secret() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}
