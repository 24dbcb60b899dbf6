//! Connectors: one module per provider. Each turns a workflow action and its
//! arguments into provider calls, classifying failures as transient (retried
//! until the step's deadline) or permanent.

pub mod dialog360;
pub mod http;
pub mod incode;
pub mod ockto;
pub mod oih;
mod redact;

pub use redact::redact;

use serde_json::Value;
use std::time::Duration;

/// A successful call: the result stored in state, and a redacted summary for
/// the timeline.
#[derive(Debug, Clone)]
pub struct CallOutput {
    pub result: Value,
    pub record: Value,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct CallError {
    /// Worth retrying: timeouts, connection errors, 5xx, 429, unreadable 2xx.
    pub transient: bool,
    /// The provider's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
    /// Safe to show: never contains secrets.
    pub message: String,
    pub record: Value,
}

/// Sends a provider request and classifies the answer (providers.md 1.4):
/// a transport error, 408, 429 and 5xx are transient; a 2xx must carry JSON
/// (else transient too). `detail` lists JSON pointers of an error body's
/// message, quoted (200 characters at most) in the error.
pub(crate) async fn send_json(
    req: reqwest::RequestBuilder,
    connector: &'static str,
    what: &str,
    detail: &[&str],
) -> Result<(Value, u16), CallError> {
    let started = std::time::Instant::now();
    let resp = req.send().await.map_err(|e| {
        let kind = if e.is_timeout() {
            "timed out"
        } else {
            "failed to connect"
        };
        CallError {
            transient: true,
            retry_after: None,
            message: format!("{what} {kind}"),
            record: serde_json::json!({"call": what, "error": kind}),
        }
    })?;
    let status = resp.status().as_u16();
    let retry_after = http::parse_retry_after(resp.headers());
    let bytes = resp.bytes().await.unwrap_or_default();
    metrics::histogram!("gangway_provider_call_seconds", "action" => connector, "call" => what.to_string())
        .record(started.elapsed().as_secs_f64());
    let body: Option<Value> = serde_json::from_slice(&bytes).ok();
    if (200..300).contains(&status) {
        return body.map(|b| (b, status)).ok_or_else(|| CallError {
            transient: true,
            retry_after: None,
            message: format!("{what} answered {status} with a body that is not JSON"),
            record: serde_json::json!({"call": what, "status": status}),
        });
    }
    metrics::counter!("gangway_provider_call_errors_total", "action" => connector, "status" => status.to_string()).increment(1);
    let quoted: String = body
        .as_ref()
        .and_then(|b| detail.iter().find_map(|p| b.pointer(p)))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    Err(CallError {
        transient: status >= 500 || status == 429 || status == 408,
        retry_after,
        message: format!("{what} answered HTTP {status} {quoted}")
            .trim_end()
            .to_string(),
        record: serde_json::json!({"call": what, "status": status, "response": body.as_ref().map(redact)}),
    })
}

pub struct Connectors {
    pub http: http::HttpConnector,
    pub incode: incode::IncodeConnector,
    pub ockto: ockto::OcktoConnector,
    pub dialog360: dialog360::Dialog360Connector,
    pub oih: oih::OihConnector,
    sealer: crate::crypto::Sealer,
}

impl Connectors {
    pub fn new(config: &crate::config::Config, sealer: crate::crypto::Sealer) -> Connectors {
        Connectors {
            http: http::HttpConnector::new(config.http.clone(), config.engine.request_timeout),
            incode: incode::IncodeConnector::new(
                config.incode.clone(),
                config.engine.request_timeout,
                sealer.clone(),
            ),
            ockto: ockto::OcktoConnector::new(config.ockto.clone(), config.engine.request_timeout),
            dialog360: dialog360::Dialog360Connector::new(
                config.dialog360.clone(),
                config.engine.request_timeout,
                sealer.clone(),
                config.base_url(),
                config.client.allowed_origins.clone(),
            ),
            oih: oih::OihConnector::new(
                config.oih.clone(),
                config.engine.request_timeout,
                config.base_url(),
            ),
            sealer,
        }
    }

    /// What must be chosen and committed before a call is sent: the OIH
    /// request id and callback token, correlated to the session in the
    /// transaction that records the call, so an early callback finds it.
    pub fn prepare(&self, action: &str, args: &Value) -> Option<oih::Prepared> {
        (action == "oih.trigger").then(|| oih::prepare(args))
    }

    /// Opens a value a connector sealed (for the audited secrets endpoint).
    pub fn open_sealed(&self, sealed: &str) -> Result<String, crate::crypto::Error> {
        self.sealer.open(sealed)
    }

    /// Runs `action`; `idempotency_key` is stable across retries of one step visit.
    pub async fn call(
        &self,
        action: &str,
        args: &Value,
        idempotency_key: &str,
    ) -> Result<CallOutput, CallError> {
        match action {
            "http.request" => self.http.request(args, idempotency_key).await,
            // Incode documents no idempotency header: a crash between start
            // and commit can leave one orphan session, never presented.
            "incode.start" => self.incode.start(args).await,
            "incode.status" => self.incode.status(args).await,
            "incode.score" => self.incode.score(args).await,
            "ockto.sources" => self.ockto.sources(args).await,
            // Ockto documents no idempotency header either; the step's key
            // becomes our `sessionId` at Ockto.
            "ockto.start" => self.ockto.start(args, idempotency_key).await,
            "ockto.status" => self.ockto.status(args).await,
            "ockto.result" => self.ockto.result(args).await,
            "dialog360.start" => self.dialog360.start(args),
            "dialog360.confirm" => self.dialog360.confirm(args).await,
            "dialog360.channels" => self.dialog360.channels(args).await,
            "dialog360.create_keys" => self.dialog360.create_keys(args).await,
            "dialog360.key_permission" => self.dialog360.key_permission(args).await,
            // The hub never deduplicates: a retried trigger may run the flow
            // twice, with the same request id (flows should be idempotent on it).
            "oih.trigger" => self.oih.trigger(args).await,
            other => Err(CallError {
                transient: false,
                retry_after: None,
                message: format!("no connector implements `{other}`"),
                record: Value::Null,
            }),
        }
    }

    /// The namespace provider references of this call live in; inbound events
    /// name the same namespace.
    pub fn namespace(&self, action: &str, args: &Value) -> String {
        match action {
            "http.request" => http::namespace(
                args.get("service")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            ),
            other => other.split('.').next().unwrap_or(other).to_string(),
        }
    }

    /// Every action the workflow catalog lists is implemented here.
    pub fn implements(action: &str) -> bool {
        matches!(
            action,
            "http.request"
                | "incode.start"
                | "incode.status"
                | "incode.score"
                | "ockto.sources"
                | "ockto.start"
                | "ockto.status"
                | "ockto.result"
                | "dialog360.start"
                | "dialog360.confirm"
                | "dialog360.channels"
                | "dialog360.create_keys"
                | "dialog360.key_permission"
                | "oih.trigger"
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn catalog_and_connectors_agree() {
        for a in gangway_core::catalog::ACTIONS {
            assert!(
                super::Connectors::implements(a.name),
                "{} is in the catalog but not implemented",
                a.name
            );
        }
    }
}
