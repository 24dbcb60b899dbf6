//! One typed configuration: the embedded defaults (`config.default.toml`),
//! then an optional file, then `GANGWAY_*` environment variables
//! (`GANGWAY_LISTEN`, `GANGWAY_DATABASE_URL`, and `GANGWAY_A__B` for `a.b`).
//! `${env:NAME}` and `${file:PATH}` anywhere in a string are replaced by the
//! variable or file content, so secrets need not sit in the file.
//! Every error names the key it is about and where it was set.
//!
//! This file holds the types; `load.rs` reads and layers the sources,
//! `env.rs` maps `GANGWAY_*` variables to keys, `expand.rs` replaces
//! references, `origin.rs` remembers where each key was set, and
//! `validate.rs` and `providers.rs` check values the types cannot.
//! Provider sections (`[incode]`, `[http]`, ...) are not fields here: each
//! registered provider declares its own (`sections.rs`).

mod env;
mod expand;
mod limits;
mod load;
mod origin;
mod otel;
mod providers;
mod sections;
mod server;
#[cfg(test)]
mod tests;
mod validate;

pub use limits::LimitsConfig;
pub use otel::OtelConfig;
pub(crate) use providers::{MIN_SECRET, header_name};
pub use sections::{ConfigSection, Section, SectionError, SectionValue, Sections};
pub use server::{ServerConfig, TlsConfig};
pub(crate) use validate::http_url;

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_TOML: &str = include_str!("../../../config.default.toml");

// The messages carry their causes' text, and no error here exposes a
// `source()`: a report that prints the chain says each thing once.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{path}:{line}:{column}: not valid TOML: {message}")]
    Syntax {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// `origin`: where the key was set (`gangway.toml:12:1`, `environment
    /// variable GANGWAY_LISTEN`), when known.
    #[error("{}config key `{key}`: {message}", .origin.as_deref().map(|o| format!("{o}: ")).unwrap_or_default())]
    Key {
        key: String,
        message: String,
        origin: Option<String>,
    },
}

pub(crate) fn key_err(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Key {
        key: key.into(),
        message: message.into(),
        origin: None,
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    /// Where the operations endpoints (`/metrics`) are served instead of
    /// on `listen`; unset: on `listen`.
    #[serde(default)]
    pub admin_listen: Option<SocketAddr>,
    pub database_url: String,
    /// The URL browsers and providers reach this server at (links, callbacks).
    pub public_url: Option<String>,
    pub workflows_dir: PathBuf,
    pub client: ClientConfig,
    /// Connection timeouts, the connection cap and the shutdown drain.
    pub server: ServerConfig,
    /// HTTPS on `listen`, when set.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    pub engine: EngineConfig,
    pub webhooks: WebhooksConfig,
    pub log: LogConfig,
    /// Traces over OTLP/HTTP; off by default.
    pub otel: OtelConfig,
    /// AES-256-GCM key (base64 of 32 bytes): the active key personal data
    /// (session input and state, timelines, client events, inbound events,
    /// webhook payloads, job payloads) and provider tokens are sealed under
    /// at rest. `gangway serve` refuses to start without one unless
    /// `encryption = "off"`.
    #[serde(default)]
    pub encryption_key: Option<String>,
    /// Several keys, for a rotation: the first is the active one (as
    /// `encryption_key`), the others are only read, until `gangway keys
    /// rotate-encryption` has re-sealed what they sealed. Instead of
    /// `encryption_key`, never with it.
    #[serde(default)]
    pub encryption_keys: Vec<String>,
    /// `on` (default): personal data is sealed at rest; `off`: stored in
    /// the clear (every start warns).
    #[serde(default)]
    pub encryption: Encryption,
    pub postgres: PostgresConfig,
    /// How long sessions' personal data is kept, and the erasure sweep.
    pub retention: RetentionConfig,
    pub limits: LimitsConfig,
    /// Rate limits, failed-authentication lockouts, trusted proxies.
    pub rate_limits: crate::limits::RateLimitConfig,
    /// The operator console's sessions and sign-in lockout.
    pub console: ConsoleConfig,
    /// The registered providers' sections (`[incode]`, `[http]`, ...), read
    /// by the loader apart from the rest: [`Config::section`].
    #[serde(skip)]
    pub sections: Sections,
}

/// Retention of sessions' personal data (runtime/erasure.rs).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// How long after its end a session's personal data is kept when its
    /// workflow declares no `retention`; fixed when the session starts.
    #[serde(with = "humantime_serde")]
    pub default: Duration,
    /// Sessions one sweep erases at most, per node.
    pub batch_size: usize,
    /// The pause between sweeps (none while a full batch was found).
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

/// The operator console (`[console]`, crate::operators).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// A console session ends after this long without a request.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// A console session ends this long after sign-in at the latest.
    #[serde(with = "humantime_serde")]
    pub lifetime: Duration,
    /// Consecutive failed sign-ins from which an account is locked.
    pub lockout_after: u32,
    /// The first lock; doubled at each further failure.
    #[serde(with = "humantime_serde")]
    pub lockout_base: Duration,
    /// The longest lock.
    #[serde(with = "humantime_serde")]
    pub lockout_max: Duration,
}

/// Connection pool of the PostgreSQL store (ignored with SQLite).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// Most connections this node opens (one more listens for notifications).
    pub pool_size: u32,
    /// How long a request waits for a connection before it fails with 503.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    /// Group-commit transactions this node runs at once.
    pub committers: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    #[serde(with = "humantime_serde")]
    pub secret_ttl: Duration,
    /// Origins allowed to call `/v1/client/*` from a browser (CORS).
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// Most transitions committed in one transaction (group commit).
    pub batch_size: usize,
    /// How long a node owns a job it claimed before others may take it over.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// Provider calls and deliveries running at once.
    pub max_inflight: usize,
    /// Timeout of one outbound HTTP request.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Names this node on the jobs it leases. Empty: `<hostname>:<port>`
    /// from `listen`, or a random id when the port is 0.
    #[serde(default)]
    pub node_id: String,
    /// How long a stopping node waits for its running jobs before it frees
    /// their leases.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// How often this node renews its heartbeat in the `nodes` table; a
    /// node whose heartbeat stopped for three intervals counts as gone.
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// Most provider status polls this node starts per second. Polls due
    /// beyond it wait their turn, oldest first, so a crowd of waiting
    /// sessions stretches every session's polling interval instead of
    /// flooding the provider. 0: no limit.
    pub poll_rate: u32,
}

/// What the server logs and how (stderr).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A level (`info`) or a filter (`info,gangway::access=off`); `RUST_LOG`
    /// wins when it is set.
    pub level: String,
    pub format: LogFormat,
    /// One line per HTTP request (method, route, status, latency, key id).
    pub access: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines; coloured only on a terminal.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    #[serde(with = "humantime_serde_vec")]
    pub retry_schedule: Vec<Duration>,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    pub endpoints: Vec<EndpointConfig>,
    /// Endpoints on loopback, private, link-local and other non-public
    /// addresses are refused unless this is true (or the address is in
    /// `allowed_networks`).
    #[serde(default)]
    pub allow_private: bool,
    /// Non-public networks (`10.20.0.0/16`) or addresses endpoints may use.
    #[serde(default)]
    pub allowed_networks: Vec<String>,
}

impl WebhooksConfig {
    /// Where deliveries may connect (`allow_private`, `allowed_networks`).
    pub fn address_policy(&self) -> Result<crate::egress::AddressPolicy, ConfigError> {
        crate::egress::AddressPolicy::new(self.allow_private, &self.allowed_networks)
            .map_err(|e| key_err("webhooks.allowed_networks", e.to_string()))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    pub url: String,
    /// Standard Webhooks secret, `whsec_` + base64.
    pub secret: String,
    #[serde(default = "all_events")]
    pub events: Vec<String>,
}

fn all_events() -> Vec<String> {
    vec![
        "session.updated".into(),
        "session.ended".into(),
        "session.erased".into(),
    ]
}

mod humantime_serde_vec {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        let items = Vec::<String>::deserialize(d)?;
        items
            .iter()
            .map(|s| {
                humantime::parse_duration(s)
                    .map_err(|e| serde::de::Error::custom(format!("`{s}`: {e}")))
            })
            .collect()
    }
}

/// Whether personal data is sealed at rest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encryption {
    #[default]
    On,
    Off,
}

impl Config {
    /// The data keys personal data is sealed under: none when `encryption`
    /// is off or no key is configured (`gangway serve` refuses the latter).
    pub fn data_keys(&self) -> Result<Option<crate::crypto::DataKeys>, crate::crypto::Error> {
        match (&self.encryption, self.encryption_keys()) {
            (Encryption::On, Some((active, read))) => {
                crate::crypto::DataKeys::from_base64(active, read).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// The active key and the keys only read: `encryption_keys` (the first
    /// active) or `encryption_key` alone; `None` without either.
    pub fn encryption_keys(&self) -> Option<(&str, &[String])> {
        match (self.encryption_keys.split_first(), &self.encryption_key) {
            (Some((active, read)), _) => Some((active.as_str(), read)),
            (None, Some(key)) => Some((key.as_str(), &[])),
            (None, None) => None,
        }
    }

    /// Why `gangway serve` must not start with this configuration's
    /// encryption settings, if it must not.
    pub fn encryption_refusal(&self) -> Option<&'static str> {
        (self.encryption == Encryption::On && self.encryption_keys().is_none()).then_some(
            "no encryption_key: personal data would be stored unsealed. Set `encryption_key` \
             (`openssl rand -base64 32`, or GANGWAY_ENCRYPTION_KEY), or set `encryption = \"off\"` \
             to run without sealing (every start then warns)",
        )
    }

    /// This node's id and whether it stays the same across restarts.
    pub fn node_id(&self) -> (String, bool) {
        if !self.engine.node_id.trim().is_empty() {
            return (self.engine.node_id.trim().to_string(), true);
        }
        if self.listen.port() == 0 {
            return (crate::ids::new_id("node"), false);
        }
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        (format!("{host}:{}", self.listen.port()), true)
    }

    /// `https` when `[tls]` is set, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// The base URL for links and callbacks: `public_url`, else the listener.
    pub fn base_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("{}://{}", self.scheme(), self.listen))
            .trim_end_matches('/')
            .to_string()
    }
}

/// Hides a password in a database URL for messages.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}
