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
