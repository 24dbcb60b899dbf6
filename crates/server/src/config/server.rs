//! `[server]`: how the HTTP listeners treat connections (timeouts, a cap,
//! the drain on shutdown), and `[tls]`: serving HTTPS directly.

use super::{ConfigError, key_err};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Connections open at once on each listener; one more is answered
    /// `503` and closed at once.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers (and a new
    /// connection its first byte).
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// How long a request's body may take to arrive, from the end of its
    /// headers; then `408` and the connection is closed.
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// On SIGTERM: how long the node keeps serving with `/readyz` answering
    /// `503` before it stops accepting connections, so that a load balancer
    /// takes it out of rotation first.
    #[serde(with = "humantime_serde")]
    pub drain_period: Duration,
}

impl ServerConfig {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if self.max_connections == 0 {
            return Err(key_err(
                "server.max_connections",
                "must be at least 1 (e.g. 10000; keep it under the process's open-file limit)",
            ));
        }
        for (key, d) in [
            ("server.header_timeout", self.header_timeout),
            ("server.body_timeout", self.body_timeout),
            ("server.idle_timeout", self.idle_timeout),
        ] {
            if d < Duration::from_millis(100) {
                return Err(key_err(key, "must be at least 100ms (e.g. \"10s\")"));
            }
        }
        Ok(())
    }
}

/// HTTPS on `listen`: a certificate chain and its key, read from files and
/// read again when they change.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, the server's certificate first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, RSA or SEC1).
    pub key_file: PathBuf,
    /// How often the files are read again; a changed pair is served to new
    /// connections (SIGHUP reads them at once).
    #[serde(with = "humantime_serde", default = "default_reload_interval")]
    pub reload_interval: Duration,
    /// `Strict-Transport-Security: max-age=...` on every response; `0s`
    /// sends none.
    #[serde(with = "humantime_serde", default = "default_hsts_max_age")]
    pub hsts_max_age: Duration,
}

fn default_reload_interval() -> Duration {
    Duration::from_secs(60)
}

fn default_hsts_max_age() -> Duration {
    Duration::from_secs(365 * 24 * 3600)
}

impl TlsConfig {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        for (key, path) in [
            ("tls.cert_file", &self.cert_file),
            ("tls.key_file", &self.key_file),
        ] {
            if path.as_os_str().is_empty() {
                return Err(key_err(
                    key,
                    "must name a PEM file (e.g. \"/etc/gangway/tls/fullchain.pem\")",
                ));
            }
        }
        if self.reload_interval < Duration::from_secs(1) {
            return Err(key_err(
                "tls.reload_interval",
                "must be at least 1s (e.g. \"1m\"); send SIGHUP to reload at once",
            ));
        }
        Ok(())
    }

    /// The `Strict-Transport-Security` value, if one is sent.
    pub fn hsts(&self) -> Option<String> {
        let secs = self.hsts_max_age.as_secs();
        (secs > 0).then(|| format!("max-age={secs}"))
    }
}
