//! `[otel]`: traces over OTLP/HTTP (crate::otel). Off by default; when off
//! nothing is exported, no span is made for it and no `traceparent` is sent.

use super::{ConfigError, key_err};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtelConfig {
    pub enabled: bool,
    /// The collector's OTLP/HTTP traces URL, path included
    /// (`http://otel-collector:4318/v1/traces`).
    pub endpoint: String,
    /// `service.name` of every span.
    pub service_name: String,
    /// The share of new traces kept (0.0 to 1.0); a caller's sampled
    /// `traceparent` is followed whatever this says.
    pub sample_ratio: f64,
    /// The longest one export request may take; also bounds the flush at
    /// shutdown.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// The longest a finished span waits before it is exported (sooner
    /// when 512 are waiting); what is left is flushed at shutdown.
    #[serde(with = "humantime_serde")]
    pub batch_delay: Duration,
}

impl OtelConfig {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        let url = super::validate::http_url(
            "otel.endpoint",
            &self.endpoint,
            "http://otel-collector:4318/v1/traces",
        )?;
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            return Err(key_err(
                "otel.endpoint",
                "must be a plain URL without user, query or fragment, e.g. http://otel-collector:4318/v1/traces",
            ));
        }
        if self.service_name.trim().is_empty() {
            return Err(key_err(
                "otel.service_name",
                "must not be empty (e.g. \"gangway\")",
            ));
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(key_err(
                "otel.sample_ratio",
                "must be between 0.0 (keep no new trace) and 1.0 (keep every trace)",
            ));
        }
        if self.timeout.is_zero() || self.timeout > Duration::from_secs(60) {
            return Err(key_err(
                "otel.timeout",
                "must be between 1ms and 60s (e.g. \"10s\")",
            ));
        }
        if self.batch_delay.is_zero() || self.batch_delay > Duration::from_secs(300) {
            return Err(key_err(
                "otel.batch_delay",
                "must be between 1ms and 5m (e.g. \"5s\")",
            ));
        }
        Ok(())
    }
}
