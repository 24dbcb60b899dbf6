//! `POST /v1/webhooks/stripe`: Stripe's signed events about
//! VerificationSessions. The `Stripe-Signature` header (`t=<unix
//! seconds>,v1=<hex>[,v1=<hex>…]`) is checked first: HMAC-SHA256 over
//! `<t>.<raw body>` under the endpoint's signing secret, `t` within the
//! tolerance, accepted when any `v1` matches any configured secret (Stripe
//! sends one per live secret while a secret is being rolled). Nothing is
//! parsed or stored before that. The event's body is a hint: workflows read
//! the session back with `stripe.retrieve`.

use crate::api::AppState;
use crate::api::auth::{ClientAddr, auth_failed};
use crate::api::error::Problem;
use crate::ids;
use crate::store::NewEvent;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::time::Duration;

/// More `v1` values than this is not a header Stripe sends.
const MAX_SIGNATURES: usize = 8;

pub async fn webhook(
    State(st): State<AppState>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, Problem> {
    let Some(cfg) = st.engine.config().section::<super::config::StripeConfig>() else {
        return Err(Problem::not_found("the stripe connector is not configured"));
    };
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    verify(
        &cfg.webhook_secrets,
        cfg.tolerance,
        header,
        &body,
        ids::now_ms() / 1000,
    )
    .map_err(|why| {
        metrics::counter!("gangway_inbound_rejected_total", "source" => "stripe").increment(1);
        // Logged as counts per address (limits/failures.rs), not one by one.
        tracing::debug!(reason = why, %source, "stripe webhook rejected");
        auth_failed(&st, source, "webhook:stripe", Problem::unauthorized(why))
    })?;
    let Some(event) = parse_event(&body)? else {
        return Ok(Json(json!({"received": true, "ignored": true})));
    };
    let ingested = st
        .engine
        .ingest(NewEvent {
            source: "stripe".into(),
            // Stripe resends an event with the same id: stored once.
            event_key: event.id,
            namespace: "stripe".into(),
            reference: event.session,
            name: event.name.to_string(),
            data: event.data,
            received_at: ids::now_ms(),
        })
        .await?;
    Ok(Json(
        json!({"received": true, "duplicate": ingested.duplicate}),
    ))
}

/// The parts of a `Stripe-Signature` header Gangway reads.
#[derive(Debug, PartialEq)]
pub struct SignatureHeader {
    /// `t`, as the number Stripe's libraries sign (`<t>.<body>`).
    pub timestamp: i64,
    /// Every `v1` value, decoded.
    pub signatures: Vec<Vec<u8>>,
}

/// Reads `t=…,v1=…[,v1=…][,v0=…]` (pure: fuzzed in `fuzz/`). Other schemes
/// (`v0`, Stripe's test scheme) are ignored; a header without exactly one
/// `t` or without a `v1` is refused.
pub fn parse_signature_header(header: &str) -> Result<SignatureHeader, &'static str> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.trim().split_once('=') else {
            continue;
        };
        match key {
            "t" => {
                if timestamp.is_some() {
                    return Err("malformed Stripe-Signature: more than one timestamp");
                }
                let t: i64 = value
                    .parse()
                    .map_err(|_| "malformed Stripe-Signature: timestamp is not a number")?;
                timestamp = Some(t);
            }
            "v1" => {
                if signatures.len() == MAX_SIGNATURES {
                    return Err("malformed Stripe-Signature: too many signatures");
                }
                // A value that is not hex can match nothing; keep going, as
                // Stripe's libraries do, in case another one matches.
                if let Ok(sig) = hex::decode(value) {
                    signatures.push(sig);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or("malformed Stripe-Signature: no timestamp")?;
    if signatures.is_empty() {
        return Err("malformed Stripe-Signature: no v1 signature");
    }
    Ok(SignatureHeader {
        timestamp,
        signatures,
    })
}

/// The `Stripe-Signature` check (pure: unit-tested here, fuzzed in `fuzz/`,
/// and tested against headers made by Stripe's own library in
/// tests/browser/stripe-signature.test.mjs).
pub fn verify(
    secrets: &[String],
    tolerance: Duration,
    header: Option<&str>,
    body: &[u8],
    now_s: i64,
) -> Result<(), &'static str> {
    let header = header.ok_or("missing Stripe-Signature header")?;
    let parsed = parse_signature_header(header)?;
    // Checked arithmetic: any i64 is outside the window, never an overflow.
    if !ids::within_tolerance(now_s, parsed.timestamp, tolerance) {
        return Err("timestamp outside the tolerance window");
    }
    let signed = parsed.timestamp.to_string();
    let mut matched = false;
    for secret in secrets {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
            continue;
        };
        mac.update(signed.as_bytes());
        mac.update(b".");
        mac.update(body);
        let expected = mac.finalize().into_bytes();
        for given in &parsed.signatures {
            // No early exit: every pair is compared in constant time.
            matched |= ids::secure_eq(&expected, given);
        }
    }
    if matched {
        Ok(())
    } else {
        Err("signature does not match")
    }
}

/// What a verified Stripe event names.
#[derive(Debug)]
pub struct StripeEvent {
    /// The event id (`evt_…`), the deduplication key.
    pub id: String,
    /// The VerificationSession (`vs_…`), the provider reference.
    pub session: String,
    /// The workflow event: `stripe.verified`, `.requires_input`,
    /// `.processing`, `.canceled` or `.redacted`.
    pub name: &'static str,
    pub data: Value,
}

/// Reads a verified event (pure: fuzzed in `fuzz/`): `None` for an event
/// type that means nothing to a workflow (`…created`, or another object's
/// events sent to the same endpoint), answered 2xx so Stripe stops sending it.
pub fn parse_event(body: &[u8]) -> Result<Option<StripeEvent>, Problem> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Problem::bad_request(format!("malformed JSON: {e}")))?;
    let kind = v.get("type").and_then(Value::as_str).unwrap_or_default();
    let name = match kind {
        "identity.verification_session.verified" => "stripe.verified",
        "identity.verification_session.requires_input" => "stripe.requires_input",
        "identity.verification_session.processing" => "stripe.processing",
        "identity.verification_session.canceled" => "stripe.canceled",
        "identity.verification_session.redacted" => "stripe.redacted",
        _ => return Ok(None),
    };
    let short = |s: &&str| !s.is_empty() && s.len() <= 255;
    let id = v.get("id").and_then(Value::as_str).filter(short);
    let object = v.pointer("/data/object");
    let session = object
        .and_then(|o| o.get("id"))
        .and_then(Value::as_str)
        .filter(short);
    let (Some(id), Some(session)) = (id, session) else {
        return Err(Problem::validation(
            "the event needs string fields `id` and `data.object.id`",
        ));
    };
    let field = |p: &str| {
        object
            .and_then(|o| o.pointer(p))
            .cloned()
            .unwrap_or(Value::Null)
    };
    Ok(Some(StripeEvent {
        id: id.to_string(),
        session: session.to_string(),
        name,
        data: json!({
            "type": kind,
            "status": field("/status"),
            "last_error_code": field("/last_error/code"),
            "livemode": v.get("livemode").cloned().unwrap_or(Value::Null),
        }),
    }))
}

/// `Stripe-Signature` for `body` at `t` under `secret`: what Stripe sends
/// (the simulator signs with it; tests too).
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "whsec_old_0123456789abcdef";
    const NEW: &str = "whsec_new_0123456789abcdef";
    const TOL: Duration = Duration::from_secs(300);

    fn secrets() -> Vec<String> {
        vec![OLD.to_string(), NEW.to_string()]
    }

    #[test]
    fn accepts_any_secret_and_any_v1_during_rotation() {
        let body = br#"{"id":"evt_1"}"#;
        let now = 1_767_225_600;
        for secret in [OLD, NEW] {
            let h = format!("t={now},v1={}", sign(secret, now, body));
            assert_eq!(verify(&secrets(), TOL, Some(&h), body, now), Ok(()));
        }
        // Stripe sends one v1 per live secret; one matching is enough.
        let h = format!(
            "t={now},v1={},v1={},v0=ffff",
            sign("whsec_gone_0123456789abcdef", now, body),
            sign(NEW, now, body)
        );
        assert_eq!(verify(&[NEW.to_string()], TOL, Some(&h), body, now), Ok(()));
        assert_eq!(
            verify(&[OLD.to_string()], TOL, Some(&h), body, now),
            Err("signature does not match")
        );
    }

    #[test]
    fn refuses_tampered_stale_and_malformed() {
        let body = br#"{"id":"evt_1"}"#;
        let now = 1_767_225_600;
        let good = format!("t={now},v1={}", sign(NEW, now, body));
        assert_eq!(
            verify(&secrets(), TOL, Some(&good), br#"{"id":"evt_2"}"#, now),
            Err("signature does not match")
        );
        assert_eq!(
            verify(&secrets(), TOL, Some(&good), body, now + 301),
            Err("timestamp outside the tolerance window")
        );
        assert_eq!(
            verify(&secrets(), TOL, Some(&good), body, now - 301),
            Err("timestamp outside the tolerance window")
        );
        assert_eq!(
            verify(&secrets(), TOL, None, body, now),
            Err("missing Stripe-Signature header")
        );
        for bad in [
            "",
            "v1=00",
            &format!("t={now}"),
            &format!("t={now},t={now},v1=00"),
            "t=abc,v1=00",
        ] {
            assert!(
                verify(&secrets(), TOL, Some(bad), body, now).is_err(),
                "{bad}"
            );
        }
    }

    /// Timestamps as far from now as an i64 allows are outside the window,
    /// never an overflow.
    #[test]
    fn extreme_timestamps_are_outside_the_window() {
        let body = b"{}";
        let now: i64 = 1_767_225_600;
        for t in [i64::MIN, i64::MIN + 1, i64::MAX, -1, 0] {
            let h = format!("t={t},v1={}", sign(NEW, t, body));
            assert_eq!(
                verify(&secrets(), TOL, Some(&h), body, now),
                Err("timestamp outside the tolerance window"),
                "{t}"
            );
        }
    }

    #[test]
    fn events_name_their_session() {
        let e = parse_event(
            br#"{"id":"evt_1","type":"identity.verification_session.requires_input","livemode":false,
                "data":{"object":{"id":"vs_9","status":"requires_input","last_error":{"code":"document_expired"}}}}"#,
        )
        .expect("valid")
        .expect("a workflow event");
        assert_eq!(
            (e.id.as_str(), e.session.as_str(), e.name),
            ("evt_1", "vs_9", "stripe.requires_input")
        );
        assert_eq!(e.data["last_error_code"], "document_expired");
        assert!(
            parse_event(br#"{"id":"evt_1","type":"identity.verification_session.created","data":{"object":{"id":"vs_9"}}}"#)
                .expect("valid")
                .is_none()
        );
        assert!(
            parse_event(br#"{"id":"evt_1","type":"identity.verification_session.verified"}"#)
                .is_err()
        );
        assert!(parse_event(b"not json").is_err());
    }
}
