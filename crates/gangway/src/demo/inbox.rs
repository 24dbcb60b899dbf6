//! The demo customer backend's webhook receiver: verifies each delivery with
//! the Standard Webhooks library, keeps the last ones in memory, and lists
//! them for the demo's webhooks page.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use gangway_server::ids;
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
        let verdict = match stale_timestamp(&header("webhook-timestamp"), unix_now()) {
            Some(why) => Err(why),
            None => self
                .webhook
                .verify(body, headers)
                .map_err(|e| e.to_string()),
        };
        let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let field = |v: &Value| v.as_str().map(str::to_string);
        let entry = Received {
            received_at: now(),
            webhook_id: header("webhook-id"),
            webhook_timestamp: header("webhook-timestamp"),
            verified: verdict.is_ok(),
            error: verdict.err(),
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

/// The Standard Webhooks tolerance (the library's own, five minutes).
const TOLERANCE: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// Why a delivery's `webhook-timestamp` is refused before the library sees
/// it: the library subtracts the timestamp from now unchecked, so a value
/// such as `now - 2^63` would overflow there (a panic in a debug build, a
/// wrapped difference that passes in a release build). An unreadable value
/// is left to the library, which refuses it without arithmetic.
fn stale_timestamp(value: &str, now_s: i64) -> Option<String> {
    let t: i64 = value.trim().parse().ok()?;
    (!ids::within_tolerance(now_s, t, TOLERANCE))
        .then(|| "timestamp outside the tolerance window".to_string())
}

fn unix_now() -> i64 {
    ids::now_ms() / 1000
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn delivery(inbox: &Inbox, ts: i64) -> (StatusCode, Received) {
        let wh = standardwebhooks::Webhook::new(&inbox_secret()).expect("secret");
        let body = br#"{"type":"session.ended","data":{"id":"ses_1"}}"#;
        let sig = wh.sign("msg_1", ts, body).expect("sign");
        let mut h = HeaderMap::new();
        h.insert("webhook-id", HeaderValue::from_static("msg_1"));
        h.insert(
            "webhook-timestamp",
            HeaderValue::from_str(&ts.to_string()).expect("header"),
        );
        h.insert(
            "webhook-signature",
            HeaderValue::from_str(&sig).expect("header"),
        );
        let status = inbox.receive(&h, &Bytes::from_static(body));
        (status, inbox.list().remove(0))
    }

    fn inbox_secret() -> String {
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()
    }

    #[test]
    fn timestamps_far_from_now_are_outside_the_window_not_an_overflow() {
        let inbox = Inbox::new(&inbox_secret()).expect("inbox");
        let now = unix_now();
        let (status, got) = delivery(&inbox, now);
        assert_eq!(status, StatusCode::NO_CONTENT, "{:?}", got.error);
        for ts in [now + i64::MIN, i64::MIN, i64::MAX, now - 301, now + 301] {
            let (status, got) = delivery(&inbox, ts);
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{ts}");
            assert_eq!(
                got.error.as_deref(),
                Some("timestamp outside the tolerance window"),
                "{ts}"
            );
        }
    }
}
