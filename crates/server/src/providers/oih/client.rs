//! The Open Integration Hub connector (providers.md 5): triggers a flow
//! through the hub's Webhooks service with `POST /hook/{flowId}` (never GET,
//! which skips authentication), signed with an HMAC over the exact body
//! bytes. The flow answers later, at a per-run callback URL; the request id
//! and the callback token are chosen before the call ([`prepare`]) and
//! correlated in the same transaction as the call's job, so a callback that
//! beats the hook's 200 still finds its session.

use crate::connectors::{CallError, CallOutput};
use crate::ids;
use crate::providers::oih::config::{OihConfig, OihFlowConfig};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Namespace of request ids (inbound callbacks name them).
pub const NAMESPACE: &str = "oih";
/// Namespace of callback tokens, stored as SHA-256 hashes.
pub const TOKEN_NAMESPACE: &str = "oih-token";

pub struct OihConnector {
    config: Option<OihConfig>,
    client: reqwest::Client,
    /// Derives callback tokens (see [`callback_token`]).
    sealer: crate::crypto::Sealer,
    /// Gangway's public base URL: callbacks come back there.
    base_url: String,
}

pub use crate::providers::Prepared;

/// Adds a fresh `request_id` to an `oih.trigger` call's arguments, and the
/// SHA-256 of its callback token. The token itself is never stored: it is
/// derived from the request id under `encryption_key` ([`callback_token`]),
/// here to correlate its hash and again when the trigger is sent, so a
/// retried or re-run trigger sends the same one (workflows cannot set
/// these arguments: the catalog does not accept them).
pub fn prepare(args: &Value, sealer: &crate::crypto::Sealer) -> Prepared {
    let mut args = args.clone();
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    let request_id = hex::encode(b);
    let token_hash = ids::hash_secret(&callback_token(sealer, &request_id));
    args["request_id"] = json!(request_id);
    args["callback_token_hash"] = json!(token_hash);
    Prepared {
        args,
        correlations: vec![
            (NAMESPACE.to_string(), request_id),
            (TOKEN_NAMESPACE.to_string(), token_hash),
        ],
    }
}

/// The callback token of the trigger with this request id: `gwcb_` and 64
/// hex digits, an HMAC of the request id under a key derived from
/// `encryption_key`.
pub fn callback_token(sealer: &crate::crypto::Sealer, request_id: &str) -> String {
    format!("gwcb_{}", sealer.derive("oih-callback", request_id))
}

fn fail(transient: bool, message: impl Into<String>, record: Value) -> CallError {
    CallError {
        transient,
        retry_after: None,
        message: message.into(),
        record,
    }
}

/// A flow id as OIH issues them (24-hex ObjectIds) or as the simulator and
/// configs name them: short, URL-safe.
pub fn valid_flow_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Base64 of the HMAC of `body` under `key` (what the hub compares).
pub fn sign(algorithm: &str, key: &[u8], body: &[u8]) -> String {
    use base64::Engine as _;
    let mac = match algorithm {
        "sha512" => {
            let mut m = Hmac::<sha2::Sha512>::new_from_slice(key).expect("HMAC takes any key");
            m.update(body);
            m.finalize().into_bytes().to_vec()
        }
        _ => {
            let mut m = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key");
            m.update(body);
            m.finalize().into_bytes().to_vec()
        }
    };
    base64::engine::general_purpose::STANDARD.encode(mac)
}

impl OihConnector {
    pub fn new(
        config: Option<OihConfig>,
        timeout: Duration,
        base_url: String,
        sealer: crate::crypto::Sealer,
    ) -> Result<OihConnector, String> {
        let client = crate::egress::provider_client(reqwest::Client::builder().timeout(timeout))?;
        Ok(OihConnector {
            config,
            client,
            sealer,
            base_url,
        })
    }

    fn config(&self) -> Result<&OihConfig, CallError> {
        self.config.as_ref().ok_or_else(|| {
            fail(
                false,
                "the `oih` connector is not configured ([oih] base_url and hmac_key)",
                json!({"error": "not configured"}),
            )
        })
    }

    /// The token a prepared trigger sends: derived again, and checked
    /// against the hash its session was correlated with. A job written
    /// before tokens were derived still carries its token.
    fn token_of(&self, args: &Value, request_id: &str, flow: &str) -> Result<String, CallError> {
        if let Some(stored) = args["callback_token"].as_str().filter(|t| !t.is_empty()) {
            return Ok(stored.to_string());
        }
        let hash = args["callback_token_hash"].as_str().unwrap_or_default();
        if request_id.is_empty() || hash.is_empty() {
            return Err(fail(
                false,
                "oih.trigger ran without a prepared request id and callback token",
                json!({"flow": flow}),
            ));
        }
        let token = callback_token(&self.sealer, request_id);
        if !ids::secure_eq(ids::hash_secret(&token).as_bytes(), hash.as_bytes()) {
            // Sending another token would strand the run's callbacks.
            return Err(fail(
                false,
                "the trigger's callback token cannot be derived again: encryption_key changed since the trigger was prepared (set a fixed encryption_key)",
                json!({"flow": flow, "request_id": request_id}),
            ));
        }
        Ok(token)
    }

    /// Triggers `flow` with `{requestId, sessionId, input, callbackUrl}`.
    pub async fn trigger(&self, args: &Value) -> Result<CallOutput, CallError> {
        let config = self.config()?;
        let flow = args.get("flow").and_then(Value::as_str).unwrap_or_default();
        if !valid_flow_id(flow) {
            return Err(fail(
                false,
                format!(
                    "`{}` is not a flow id (letters, digits, `_` or `-`)",
                    flow.chars().take(64).collect::<String>()
                ),
                json!({"flow": flow.chars().take(64).collect::<String>()}),
            ));
        }
        let request_id = args["request_id"].as_str().unwrap_or_default();
        let token = self.token_of(args, request_id, flow)?;
        let fallback = OihFlowConfig::default();
        let flow_cfg = config.flows.get(flow).unwrap_or(&fallback);
        let Some(key) = flow_cfg.hmac_key.as_ref().or(config.hmac_key.as_ref()) else {
            return Err(fail(
                false,
                format!(
                    "no HMAC key for flow `{flow}`: set [oih] hmac_key or [oih.flows.{flow}] hmac_key"
                ),
                json!({"flow": flow}),
            ));
        };
        let header = flow_cfg.hmac_header.as_deref().unwrap_or("x-hmac");
        let algorithm = flow_cfg.hmac_algorithm.as_deref().unwrap_or("sha256");
        let body = json!({
            "requestId": request_id,
            "sessionId": args.get("session_id").cloned().unwrap_or(Value::Null),
            "input": args.get("input").cloned().unwrap_or_else(|| json!({})),
            "callbackUrl": format!("{}/v1/callbacks/oih/{token}", self.base_url),
        });
        // Serialised once: the HMAC covers exactly the bytes sent.
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let signature = sign(algorithm, key.as_bytes(), &bytes);
        let url = format!("{}/hook/{flow}", config.base_url.trim_end_matches('/'));
        let started = Instant::now();
        let record = |status: Option<u16>, error: Option<&str>| json!({"flow": flow, "request_id": request_id, "status": status, "error": error});
        let resp = crate::otel::send(
            self.client
                .post(&url)
                .header("content-type", "application/json")
                .header("x-request-id", request_id)
                .header(header, signature)
                .body(bytes),
        )
        .await
        .map_err(|e| {
            let kind = if e.is_timeout() {
                "timed out"
            } else {
                "failed to connect"
            };
            fail(
                true,
                format!("triggering flow `{flow}` {kind}"),
                record(None, Some(kind)),
            )
        })?;
        let status = resp.status().as_u16();
        let retry_after = crate::connectors::parse_retry_after(resp.headers());
        let bytes = resp.bytes().await.unwrap_or_default();
        metrics::histogram!("gangway_provider_call_seconds", "action" => "oih", "call" => "trigger")
            .record(started.elapsed().as_secs_f64());
        let answer: Option<Value> = serde_json::from_slice(&bytes).ok();
        if (200..300).contains(&status) {
            // The 200 only says "queued"; the request id is ours either way.
            let echoed = answer
                .as_ref()
                .and_then(|a| a.pointer("/data/requestId"))
                .and_then(Value::as_str);
            if echoed.is_some_and(|e| e != request_id) {
                tracing::warn!(
                    flow,
                    "the hub answered with another request id than the one sent"
                );
            }
            return Ok(CallOutput {
                result: json!({"request_id": request_id, "flow": flow, "sent_ms": ids::now_ms()}),
                record: record(Some(status), None),
            });
        }
        metrics::counter!("gangway_provider_call_errors_total", "action" => "oih", "status" => status.to_string()).increment(1);
        let detail: String = answer
            .as_ref()
            .and_then(|a| a.get("error"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect();
        let message = match status {
            404 => format!("flow `{flow}` does not exist or is not started at the hub ({detail})"),
            403 => format!(
                "the hub refused the signature for flow `{flow}` (check its HMAC key and header)"
            ),
            415 => format!("the hub refused the request's content type ({detail})"),
            _ => format!("triggering flow `{flow}` answered HTTP {status} {detail}")
                .trim_end()
                .to_string(),
        };
        Err(CallError {
            transient: status >= 500 || status == 429 || status == 408,
            retry_after,
            message,
            record: record(Some(status), Some(&detail)),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn prepare_chooses_a_fresh_request_id_and_keeps_only_the_tokens_hash() {
        let sealer = crate::crypto::Sealer::ephemeral();
        let first = prepare(&json!({"flow": "f"}), &sealer);
        let again = prepare(&first.args, &sealer);
        let request_id = first.args["request_id"].as_str().unwrap();
        assert_ne!(request_id, again.args["request_id"].as_str().unwrap());
        assert_eq!(request_id.len(), 32);
        let token = callback_token(&sealer, request_id);
        assert!(
            token.starts_with("gwcb_") && token.len() == 5 + 64,
            "{token}"
        );
        assert!(!first.args.to_string().contains(&token));
        assert_eq!(first.correlations[1].1, ids::hash_secret(&token));
        assert_eq!(first.args["callback_token_hash"], ids::hash_secret(&token));
        // Sent again (a retry, a re-run after a restart): the same token.
        let connector =
            OihConnector::new(None, Duration::from_secs(1), "http://gw".into(), sealer).unwrap();
        assert_eq!(
            connector.token_of(&first.args, request_id, "f").unwrap(),
            token
        );
        // Under another key it cannot be: refused, never another token.
        let other = OihConnector::new(
            None,
            Duration::from_secs(1),
            "http://gw".into(),
            crate::crypto::Sealer::ephemeral(),
        )
        .unwrap();
        assert!(other.token_of(&first.args, request_id, "f").is_err());
    }

    #[test]
    fn signs_like_the_hub_checks() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), base64.
        assert_eq!(
            sign(
                "sha256",
                b"key",
                b"The quick brown fox jumps over the lazy dog"
            ),
            "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg="
        );
    }
}
