//! Connectors: the engine's one door to the providers (crate::providers,
//! one folder each). [`Connectors`] runs an action through the provider that
//! lists it; what is shared by every provider's client lives here: the call's
//! result and error types, failures classified as transient (retried until
//! the step's deadline) or permanent, and the redaction of timeline data.

mod redact;

// The clients under their former paths (the fuzz targets and tests use them).
pub use crate::providers::dialog360::client as dialog360;
pub use crate::providers::http::client as http;
pub use crate::providers::incode::client as incode;
pub use crate::providers::ockto::client as ockto;
pub use crate::providers::oih::client as oih;

pub use redact::redact;

use crate::providers::{self, Provider};
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
    let resp = crate::otel::send(req).await.map_err(|e| {
        if let Some(refused) = refused(&e, what) {
            return refused;
        }
        let kind = if e.is_timeout() {
            "timed out"
        } else {
            "failed to connect"
        };
        let status = if e.is_timeout() { "timeout" } else { "connect" };
        metrics::counter!("gangway_provider_call_errors_total", "action" => connector, "status" => status)
            .increment(1);
        CallError {
            transient: true,
            retry_after: None,
            message: format!("{what} {kind}"),
            record: serde_json::json!({"call": what, "error": kind}),
        }
    })?;
    let status = resp.status().as_u16();
    let retry_after = parse_retry_after(resp.headers());
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

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when =
        time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822).ok()?;
    let delta = when - time::OffsetDateTime::now_utc();
    Some(Duration::from_millis(
        u64::try_from(delta.whole_milliseconds()).unwrap_or(0),
    ))
}

/// A request the egress policy stopped (a redirect to another origin), as a
/// permanent call error: it names both origins and never the redirect's path
/// or query, which may carry tokens.
pub(crate) fn refused(e: &reqwest::Error, what: &str) -> Option<CallError> {
    let r = crate::egress::refusal(e)?;
    crate::egress::note(r, what);
    let record = match r {
        crate::egress::Refused::Redirect { from, to } => {
            serde_json::json!({"call": what, "error": "redirect refused", "from": from, "to": to})
        }
        crate::egress::Refused::Address { .. } => {
            serde_json::json!({"call": what, "error": "address refused"})
        }
    };
    Some(CallError {
        transient: false,
        retry_after: None,
        message: format!("{what} {r}"),
        record,
    })
}

/// Every registered provider's client, built from the config.
pub struct Connectors {
    providers: Vec<(&'static str, Box<dyn Provider>)>,
    sealer: crate::crypto::Sealer,
}

impl Connectors {
    /// Fails only when an HTTP client cannot be built (a broken TLS backend).
    pub fn new(
        config: &crate::config::Config,
        sealer: crate::crypto::Sealer,
    ) -> Result<Connectors, String> {
        let cx = providers::Context {
            config,
            sealer: &sealer,
        };
        let providers = providers::REGISTRY
            .iter()
            .map(|p| Ok((p.name, (p.connect)(&cx)?)))
            .collect::<Result<_, String>>()?;
        Ok(Connectors { providers, sealer })
    }

    /// The client of the provider that lists `action`.
    fn provider(&self, action: &str) -> Option<(&'static str, &dyn Provider)> {
        let name = providers::provider_of(action)?.name;
        self.providers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, p)| (*n, p.as_ref()))
    }

    /// What must be chosen and committed before a call is sent (the OIH
    /// request id and callback token), correlated to the session in the
    /// transaction that records the call, so an early callback finds it.
    pub fn prepare(&self, action: &str, args: &Value) -> Option<providers::Prepared> {
        self.provider(action)?.1.prepare(action, args)
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
        match self.provider(action) {
            Some((_, p)) => p.call(action, args, idempotency_key).await,
            None => Err(providers::unlisted(action)),
        }
    }

    /// The namespace provider references of this call live in; inbound events
    /// name the same namespace.
    pub fn namespace(&self, action: &str, args: &Value) -> String {
        let fallback = || action.split('.').next().unwrap_or(action).to_string();
        match self.provider(action) {
            Some((name, p)) => p
                .namespace(action, args)
                .unwrap_or_else(|| name.to_string()),
            None => fallback(),
        }
    }
}
