//! The bench's fake provider (the score API) and the customer's webhook
//! receiver, both in the generator process so that their CPU is not counted
//! as the server's.

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

pub const API_KEY: &str = "bench-provider-key-000000000001";
pub const WEBHOOK_SECRET: &str = "bench-provider-webhook-secret-01";
pub const RECEIVER_SECRET: &str = "whsec_YmVuY2gtcmVjZWl2ZXItc2VjcmV0LTAwMDAwMDAx";

/// The ending a generator task waits for.
pub struct Ending {
    pub outcome: String,
    pub at: Instant,
}

#[derive(Default)]
pub struct Shared {
    /// reference -> when the provider sent its webhook
    pub webhook_sent: Mutex<HashMap<String, Instant>>,
    /// reference -> who waits for its ending
    pub waiters: Mutex<HashMap<String, oneshot::Sender<Ending>>>,
    pub starts: AtomicU64,
    pub bad_signatures: AtomicU64,
    pub latency: Duration,
    /// The nodes under test: webhooks go to each in turn, as through a
    /// round-robin load balancer.
    pub gangway: Mutex<Vec<String>>,
    pub next_node: AtomicU64,
    /// When false the provider sends no webhook by itself (idle and stream benches).
    pub auto_webhook: std::sync::atomic::AtomicBool,
    /// When true the score stays `pending` (sessions keep waiting).
    pub pending: std::sync::atomic::AtomicBool,
    /// Status reads (polls) received.
    pub status_reads: AtomicU64,
    /// Bytes and count of create answers (from their Content-Length) and of
    /// `session.ended` webhook bodies: the floor must match Gangway's.
    pub create_bytes: AtomicU64,
    pub creates: AtomicU64,
    pub ended_bytes: AtomicU64,
    pub endings: AtomicU64,
    /// reference -> the idempotency keys its starts carried (`bench chaos`:
    /// more than one is a second provider session for the session).
    pub start_keys: Mutex<HashMap<String, HashSet<String>>>,
    /// reference -> the webhook-ids of its `session.ended` deliveries and
    /// the outcome (`bench chaos`: one id per session, repeats under it).
    pub ended: Mutex<HashMap<String, (HashSet<String>, String)>>,
}

impl Shared {
    pub fn new(latency: Duration) -> Shared {
        Shared {
            latency,
            auto_webhook: std::sync::atomic::AtomicBool::new(true),
            ..Default::default()
        }
    }
}

/// Deterministic score from the reference, as the real simulator does.
pub fn score_for(reference: &str) -> u64 {
    let d = gangway_server::ids::digest(reference.as_bytes());
    u64::from_str_radix(&d[..2], 16).unwrap_or(0) % 101
}

pub fn router(shared: Arc<Shared>, client: reqwest::Client) -> gangway_server::Router {
    use axum::Json;
    use axum::body::Bytes;
    use axum::extract::Path;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::{get, post};
    let s1 = shared.clone();
    let s2 = shared.clone();
    let s3 = shared;
    gangway_server::Router::new()
        .route(
            "/v1/sessions",
            post(move |headers: HeaderMap, body: Json<Value>| {
                let shared = s1.clone();
                let client = client.clone();
                async move {
                    shared.starts.fetch_add(1, Ordering::Relaxed);
                    let reference = body.0["reference"].as_str().unwrap_or_default().to_string();
                    if let (Some(key), Ok(mut keys)) = (
                        headers.get("idempotency-key").and_then(|k| k.to_str().ok()),
                        shared.start_keys.lock(),
                    ) {
                        keys.entry(reference.clone())
                            .or_default()
                            .insert(key.to_string());
                    }
                    if !shared.latency.is_zero() {
                        tokio::time::sleep(shared.latency).await;
                    }
                    let id = format!("b_{reference}");
                    let turn = shared.next_node.fetch_add(1, Ordering::Relaxed);
                    let webhook_to = shared
                        .gangway
                        .lock()
                        .ok()
                        .and_then(|g| {
                            let n = usize::try_from(turn).unwrap_or(0) % g.len().max(1);
                            g.get(n).cloned()
                        })
                        .unwrap_or_default();
                    let hook_id = id.clone();
                    let auto = shared.auto_webhook.load(Ordering::Relaxed);
                    tokio::spawn(async move {
                        if !auto {
                            return;
                        }
                        // Let the start call's answer land first: this measures the
                        // webhook path, not the early-event buffer.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        send_webhook(&client, &webhook_to, &hook_id, &reference, &shared).await;
                    });
                    (
                        StatusCode::CREATED,
                        Json(json!({"id": id, "reference": body.0["reference"]})),
                    )
                }
            }),
        )
        .route(
            "/v1/sessions/{id}/score",
            get(move |Path(id): Path<String>| {
                let shared = s2.clone();
                async move {
                    if !shared.latency.is_zero() {
                        tokio::time::sleep(shared.latency).await;
                    }
                    shared.status_reads.fetch_add(1, Ordering::Relaxed);
                    let reference = id.strip_prefix("b_").unwrap_or(&id).to_string();
                    let status = if shared.pending.load(Ordering::Relaxed) {
                        "pending"
                    } else {
                        "completed"
                    };
                    Json(json!({"id": id, "score": score_for(&reference), "status": status}))
                }
            }),
        )
        .route(
            "/hooks",
            post(move |headers: HeaderMap, body: Bytes| {
                let shared = s3.clone();
                async move {
                    let at = Instant::now();
                    let ok = standardwebhooks::Webhook::new(RECEIVER_SECRET)
                        .and_then(|w| w.verify(&body, &headers))
                        .is_ok();
                    if !ok {
                        shared.bad_signatures.fetch_add(1, Ordering::Relaxed);
                        return StatusCode::UNAUTHORIZED;
                    }
                    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    if v["type"] == "session.ended" {
                        shared
                            .ended_bytes
                            .fetch_add(body.len() as u64, Ordering::Relaxed);
                        shared.endings.fetch_add(1, Ordering::Relaxed);
                        let reference = v["data"]["reference"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string();
                        let outcome = v["data"]["outcome"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string();
                        let webhook_id = headers
                            .get("webhook-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string();
                        if let Ok(mut ended) = shared.ended.lock() {
                            let e = ended
                                .entry(reference.clone())
                                .or_insert_with(|| (HashSet::new(), outcome.clone()));
                            e.0.insert(webhook_id);
                        }
                        let waiter = shared
                            .waiters
                            .lock()
                            .ok()
                            .and_then(|mut w| w.remove(&reference));
                        if let Some(tx) = waiter {
                            let _ = tx.send(Ending { outcome, at });
                        }
                    }
                    StatusCode::NO_CONTENT
                }
            }),
        )
}

/// The score provider's webhook for session `id`, signed as Gangway's
/// `[http.webhooks.score]` expects: `(body, timestamp, signature)`.
pub fn signed_webhook(id: &str) -> (String, String, String) {
    let body = json!({"id": id, "status": "completed"}).to_string();
    let ts = (gangway_server::ids::now_ms() / 1000).to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    (body, ts, sig)
}

pub async fn send_webhook(
    client: &reqwest::Client,
    gangway: &str,
    id: &str,
    reference: &str,
    shared: &Shared,
) {
    let (body, ts, sig) = signed_webhook(id);
    if let Ok(mut m) = shared.webhook_sent.lock() {
        m.insert(reference.to_string(), Instant::now());
    }
    // As a provider does: re-sent until accepted, backing off from 200 ms
    // to 2 s, for a minute; after a failure to the next node (a load
    // balancer passing it on), as nodes die and come back (`bench chaos`).
    let mut target = gangway.to_string();
    let mut pause = Duration::from_millis(200);
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        let r = client
            .post(format!("{target}/v1/webhooks/http/score"))
            .header("content-type", "application/json")
            .header("X-Score-Timestamp", &ts)
            .header("X-Score-Signature", &sig)
            .body(body.clone())
            .send()
            .await;
        if r.is_ok_and(|r| r.status().is_success()) || Instant::now() > give_up {
            return;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
        let turn = shared.next_node.fetch_add(1, Ordering::Relaxed);
        if let Some(next) = shared.gangway.lock().ok().and_then(|g| {
            let n = usize::try_from(turn).unwrap_or(0) % g.len().max(1);
            g.get(n).cloned()
        }) {
            target = next;
        }
    }
}
