//! The generic HMAC webhook (`/v1/webhooks/http/{name}`): the signature
//! and timestamp check, then the body's fields. A flag signs the fuzzed
//! body correctly so the parser behind the check is reached.

use crate::Target;
use crate::split::Parts;
use gangway_server::api::inbound::{http_event, verify_http_webhook};
use gangway_server::providers::http::config::HttpWebhook;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

pub const TARGET: Target = Target {
    name: "webhook_http",
    about: "generic HMAC webhook: verify (signature, timestamp tolerance) + body fields",
    run,
    dict: &[
        "sha256=",
        "\"id\"",
        "\"status\"",
        "\"event_id\"",
        "\"completed\"",
        "9223372036854775807",
        "-9223372036854775808",
        " ",
    ],
};

const SECRET: &str = "0123456789abcdef0123";

fn cfg(parts: &Parts<'_>) -> HttpWebhook {
    HttpWebhook {
        service: "score".into(),
        secret: SECRET.into(),
        signature_header: "x-sig".into(),
        signature_prefix: if parts.flag(3) {
            String::new()
        } else {
            "sha256=".into()
        },
        timestamp_header: parts.flag(1).then(|| "x-ts".into()),
        tolerance: Duration::from_secs(if parts.flag(4) { u64::MAX } else { 300 }),
        reference_field: "id".into(),
        event_field: "status".into(),
        id_field: parts.flag(2).then(|| "event_id".into()),
    }
}

pub fn run(data: &[u8]) {
    let parts = Parts::new(data);
    let cfg = cfg(&parts);
    let ts = parts.text(1);
    let body = parts.bytes(2);
    let now = parts.number(3);
    let sig = if parts.flag(0) {
        // Signed correctly: only the timestamp and the body can fail.
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("HMAC key");
        if cfg.timestamp_header.is_some() {
            mac.update(ts.trim().as_bytes());
            mac.update(b".");
        }
        mac.update(body);
        format!(
            "{}{}",
            cfg.signature_prefix,
            hex::encode(mac.finalize().into_bytes())
        )
    } else {
        parts.text(0)
    };
    let mut headers = gangway_server::api::inbound::HeaderMap::new();
    if let Ok(v) = sig.parse() {
        headers.insert("x-sig", v);
    }
    if let Ok(v) = ts.parse() {
        headers.insert("x-ts", v);
    }
    let _ = gangway_server::ids::within_tolerance(now, parts.number(1), cfg.tolerance);
    if verify_http_webhook(&cfg, &headers, body, now).is_ok() {
        let _ = http_event(&cfg, body);
    }
}
