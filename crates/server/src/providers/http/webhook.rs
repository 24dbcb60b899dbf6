//! Inbound provider webhooks. Authenticate first (401, nothing stored), then
//! store (deduplicated), then answer 2xx. The body is a hint: workflows read
//! results from the provider server-side.

use crate::api::AppState;
use crate::api::auth::{ClientAddr, auth_failed};
use crate::api::error::Problem;
use crate::ids;
use crate::providers::http::config::HttpWebhook;
use crate::store::NewEvent;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/webhooks/http/{name}", post(http_webhook))
}

async fn http_webhook(
    State(st): State<AppState>,
    ClientAddr(source): ClientAddr,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, Problem> {
    let Some(cfg) = st
        .engine
        .config()
        .section::<super::config::HttpConnectorConfig>()
        .and_then(|h| h.webhooks.get(&name))
    else {
        return Err(Problem::not_found(format!(
            "no webhook `{name}` is configured under [http.webhooks]"
        )));
    };
    verify(cfg, &headers, &body, ids::now_ms() / 1000).map_err(|why| {
        metrics::counter!("gangway_inbound_rejected_total", "source" => format!("http:{name}"))
            .increment(1);
        // Logged as counts per address (limits/failures.rs), not one by one.
        tracing::debug!(webhook = %name, reason = why, %source, "webhook rejected");
        auth_failed(&st, source, "webhook:http", Problem::unauthorized(why))
    })?;
    let HttpEvent {
        data,
        reference,
        value,
        event_key,
    } = http_event(cfg, &body)?;
    let ingested = st
        .engine
        .ingest(NewEvent {
            source: format!("http:{name}"),
            event_key,
            namespace: super::client::namespace(&cfg.service),
            reference,
            name: format!("{name}.{value}"),
            data,
            received_at: ids::now_ms(),
        })
        .await?;
    Ok(Json(
        json!({"received": true, "duplicate": ingested.duplicate}),
    ))
}

/// What a verified generic webhook names: its body, the session reference,
/// the event value and the deduplication key.
#[derive(Debug)]
pub struct HttpEvent {
    pub data: Value,
    pub reference: String,
    pub value: String,
    pub event_key: String,
}

/// Reads a verified generic webhook's body (pure: fuzzed in `fuzz/`).
pub fn http_event(cfg: &HttpWebhook, body: &[u8]) -> Result<HttpEvent, Problem> {
    let data: Value = serde_json::from_slice(body)
        .map_err(|e| Problem::bad_request(format!("malformed JSON: {e}")))?;
    let field = |f: &str| -> Result<String, Problem> {
        match data.get(f) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            _ => Err(Problem::validation(format!(
                "the webhook body has no string field `{f}`"
            ))),
        }
    };
    let reference = field(&cfg.reference_field)?;
    let value = field(&cfg.event_field)?;
    let event_key = match &cfg.id_field {
        Some(f) => field(f)?,
        None => ids::digest(body),
    };
    Ok(HttpEvent {
        data,
        reference,
        value,
        event_key,
    })
}

/// HMAC-SHA256 over the raw body (or `<timestamp>.<body>`), in constant time.
pub fn verify(
    cfg: &HttpWebhook,
    headers: &HeaderMap,
    body: &[u8],
    now_s: i64,
) -> Result<(), &'static str> {
    let sig = headers
        .get(cfg.signature_header.as_str())
        .and_then(|v| v.to_str().ok())
        .ok_or("missing signature header")?;
    let hex_sig = sig
        .strip_prefix(cfg.signature_prefix.as_str())
        .ok_or("malformed signature")?;
    let given = hex::decode(hex_sig.trim()).map_err(|_| "malformed signature")?;
    let mut mac = Hmac::<Sha256>::new_from_slice(cfg.secret.as_bytes())
        .map_err(|_| "bad webhook configuration")?;
    if let Some(ts_header) = &cfg.timestamp_header {
        let ts = headers
            .get(ts_header.as_str())
            .and_then(|v| v.to_str().ok())
            .ok_or("missing timestamp header")?;
        let t: i64 = ts.trim().parse().map_err(|_| "malformed timestamp")?;
        if !ids::within_tolerance(now_s, t, cfg.tolerance) {
            return Err("timestamp outside the tolerance window");
        }
        mac.update(ts.trim().as_bytes());
        mac.update(b".");
    }
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| "signature does not match")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cfg() -> HttpWebhook {
        HttpWebhook {
            service: "s".into(),
            secret: "0123456789abcdef0123".into(),
            signature_header: "x-sig".into(),
            signature_prefix: "sha256=".into(),
            timestamp_header: Some("x-ts".into()),
            tolerance: Duration::from_secs(300),
            reference_field: "id".into(),
            event_field: "status".into(),
            id_field: None,
        }
    }

    fn sign(secret: &str, ts: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(ts.as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    fn headers(sig: &str, ts: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-sig", sig.parse().expect("header"));
        h.insert("x-ts", ts.parse().expect("header"));
        h
    }

    #[test]
    fn accepts_good_rejects_bad_old_and_tampered() {
        let c = cfg();
        let body = br#"{"id":"a","status":"completed"}"#;
        let good = sign(&c.secret, "1000", body);
        assert!(verify(&c, &headers(&good, "1000"), body, 1000).is_ok());
        assert_eq!(
            verify(&c, &headers(&good, "1000"), body, 2000),
            Err("timestamp outside the tolerance window")
        );
        assert_eq!(
            verify(&c, &headers(&good, "1000"), b"{}", 1000),
            Err("signature does not match")
        );
        let wrong = sign("another-secret-000000", "1000", body);
        assert_eq!(
            verify(&c, &headers(&wrong, "1000"), body, 1000),
            Err("signature does not match")
        );
        assert_eq!(
            verify(&c, &HeaderMap::new(), body, 1000),
            Err("missing signature header")
        );
    }

    /// Timestamps as far from now as an i64 allows are outside the window,
    /// never an overflow (a panic, or a wrapped difference that passes).
    #[test]
    fn extreme_timestamps_are_outside_the_window() {
        let c = cfg();
        let body = br#"{"id":"a","status":"completed"}"#;
        let now: i64 = 1_767_225_600;
        for t in [
            now + i64::MIN, // now - 2^63
            i64::MIN,
            i64::MIN + 1,
            i64::MAX,
            -1,
        ] {
            let ts = t.to_string();
            let good = sign(&c.secret, &ts, body);
            assert_eq!(
                verify(&c, &headers(&good, &ts), body, now),
                Err("timestamp outside the tolerance window"),
                "{ts}"
            );
        }
        for (now, t) in [(i64::MAX, i64::MAX - 300), (i64::MIN, i64::MIN + 300)] {
            assert!(ids::within_tolerance(now, t, Duration::from_secs(300)));
            assert!(!ids::within_tolerance(now, t, Duration::from_secs(299)));
        }
    }
}
