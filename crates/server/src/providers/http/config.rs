//! The `[http]` (services and webhooks of the generic connector) config section: its types (the file format) and what the
//! types cannot check. Errors name the key and the fix, never the secret.

use crate::config::{Config, ConfigError, MIN_SECRET, header_name, http_url, key_err};
use indexmap::IndexMap;
use reqwest::header::HeaderValue;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConnectorConfig {
    #[serde(default)]
    pub services: IndexMap<String, HttpService>,
    #[serde(default)]
    pub webhooks: IndexMap<String, HttpWebhook>,
}

/// Header name -> value, in file order.
pub type Headers = IndexMap<String, String>;

/// A provider reached through the generic `http` connector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpService {
    pub base_url: String,
    /// Sent on every request; the place for API keys (use `${env:...}`).
    #[serde(default)]
    pub headers: Headers,
}

/// An inbound webhook at `POST /v1/webhooks/http/{name}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpWebhook {
    /// The service whose provider references this webhook carries.
    pub service: String,
    /// HMAC-SHA256 key.
    pub secret: String,
    pub signature_header: String,
    /// Text before the hex digest in the header, e.g. `sha256=`.
    #[serde(default)]
    pub signature_prefix: String,
    /// When set, the signed payload is `<timestamp>.<body>` and the timestamp
    /// must be within `tolerance` of now.
    pub timestamp_header: Option<String>,
    #[serde(with = "humantime_serde", default = "default_tolerance")]
    pub tolerance: Duration,
    /// JSON field holding the provider reference.
    pub reference_field: String,
    /// JSON field whose value names the event: `<name>.<value>`.
    pub event_field: String,
    /// JSON field with a unique event id; without it the body itself is the key.
    pub id_field: Option<String>,
}

fn default_tolerance() -> Duration {
    Duration::from_secs(300)
}

impl crate::config::Section for HttpConnectorConfig {
    const KEY: &'static str = "http";
}

/// What the types of the section cannot check.
pub(crate) fn check(config: &Config) -> Result<(), ConfigError> {
    let Some(http) = config.section::<HttpConnectorConfig>() else {
        return Ok(());
    };
    for (name, svc) in &http.services {
        let key = |k: &str| format!("http.services.{name}.{k}");
        http_url(&key("base_url"), &svc.base_url, "https://score.example.com")?;
        for (header, value) in &svc.headers {
            header_name(&key(&format!("headers.{header}")), header)?;
            // The value is usually an API key: say what is wrong with
            // it, never what it is.
            if HeaderValue::from_str(value).is_err() {
                return Err(key_err(
                    key(&format!("headers.{header}")),
                    "is not a valid header value (a line break or control character; a file read with ${file:} must hold one line)",
                ));
            }
        }
    }
    for (name, wh) in &http.webhooks {
        let key = |k: &str| format!("http.webhooks.{name}.{k}");
        if !http.services.contains_key(&wh.service) {
            return Err(key_err(
                key("service"),
                format!("no service `{}` under [http.services]", wh.service),
            ));
        }
        if wh.secret.len() < MIN_SECRET {
            return Err(key_err(
                key("secret"),
                format!("must be at least {MIN_SECRET} characters"),
            ));
        }
        header_name(&key("signature_header"), &wh.signature_header)?;
        if let Some(h) = &wh.timestamp_header {
            header_name(&key("timestamp_header"), h)?;
        }
        if wh.tolerance.is_zero() {
            return Err(key_err(
                key("tolerance"),
                "must be longer than 0s (e.g. \"5m\")",
            ));
        }
        for (field, value) in [
            ("reference_field", Some(&wh.reference_field)),
            ("event_field", Some(&wh.event_field)),
            ("id_field", wh.id_field.as_ref()),
        ] {
            if value.is_some_and(|v| v.trim().is_empty()) {
                return Err(key_err(
                    key(field),
                    "must name a JSON field of the webhook's body",
                ));
            }
        }
    }
    Ok(())
}
