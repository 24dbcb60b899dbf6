//! One typed configuration: the embedded defaults (`config.default.toml`),
//! then an optional file, then `GANGWAY_*` environment variables
//! (`GANGWAY_LISTEN`, `GANGWAY_DATABASE_URL`, and `GANGWAY_A__B` for `a.b`).
//! Strings of the form `${env:NAME}` or `${file:PATH}` are replaced by the
//! variable or file content, so secrets need not sit in the file.
//! Every error names the key it is about.

use indexmap::IndexMap;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_TOML: &str = include_str!("../../../config.default.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: String, message: String },
    #[error("config key `{key}`: {message}")]
    Key { key: String, message: String },
}

fn key_err(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Key {
        key: key.into(),
        message: message.into(),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    /// The URL browsers and providers reach this server at (links, callbacks).
    pub public_url: Option<String>,
    pub workflows_dir: PathBuf,
    pub client: ClientConfig,
    pub engine: EngineConfig,
    pub webhooks: WebhooksConfig,
    /// AES-256-GCM key (base64 of 32 bytes) sealing provider tokens and keys
    /// at rest. Without one, a random key is used per process and sealed
    /// tokens are renewed from the provider after a restart.
    #[serde(default)]
    pub encryption_key: Option<String>,
    #[serde(default)]
    pub http: HttpConnectorConfig,
    #[serde(default)]
    pub incode: Option<IncodeConfig>,
    #[serde(default)]
    pub ockto: Option<OcktoConfig>,
    #[serde(default)]
    pub dialog360: Option<Dialog360Config>,
    #[serde(default)]
    pub oih: Option<OihConfig>,
    pub postgres: PostgresConfig,
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

/// The Ockto connector (providers.md 3): Basic credentials, provider code and
/// an optional client certificate for mutual TLS. PEM values are the file
/// contents, normally given as `${file:/path}`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OcktoConfig {
    /// The Ockto endpoint (staging or production).
    pub base_url: String,
    pub username: String,
    pub password: String,
    /// Sent as `X-Ockto-Provider-Code`.
    pub provider_code: String,
    /// Client certificate (PEM, chain allowed) for mutual TLS.
    pub client_cert: Option<String>,
    /// Its private key (PEM: PKCS#8, RSA or SEC1).
    pub client_key: Option<String>,
    /// Extra root certificate (PEM) to trust for the endpoint, for a private
    /// PKI or the simulator's CA; public CAs are trusted anyway.
    pub ca_cert: Option<String>,
    /// Default set of sources (`ocktoType`), issued by Ockto.
    #[serde(default = "default_ockto_type")]
    pub ockto_type: String,
    /// Default consent wording code shown by the app.
    pub consent_code: Option<String>,
}

fn default_ockto_type() -> String {
    "P".into()
}

impl std::fmt::Debug for OcktoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: &Option<String>| if v.is_some() { "<set>" } else { "<none>" };
        f.debug_struct("OcktoConfig")
            .field("base_url", &self.base_url)
            .field("username", &"<redacted>")
            .field("password", &"<redacted>")
            .field("provider_code", &"<redacted>")
            .field("client_cert", &set(&self.client_cert))
            .field(
                "client_key",
                &if self.client_key.is_some() {
                    "<redacted>"
                } else {
                    "<none>"
                },
            )
            .field("ca_cert", &set(&self.ca_cert))
            .field("ockto_type", &self.ockto_type)
            .finish()
    }
}

impl OcktoConfig {
    /// The client identity for mutual TLS, if configured. Errors name the
    /// key and the problem, never the material.
    pub fn identity(&self) -> Result<Option<reqwest::Identity>, ConfigError> {
        match (&self.client_cert, &self.client_key) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(key_err(
                "ockto.client_key",
                "client_cert is set but client_key is not",
            )),
            (None, Some(_)) => Err(key_err(
                "ockto.client_cert",
                "client_key is set but client_cert is not",
            )),
            (Some(cert), Some(key)) => {
                if !cert.contains("-----BEGIN CERTIFICATE-----") {
                    return Err(key_err(
                        "ockto.client_cert",
                        "is not a PEM certificate (-----BEGIN CERTIFICATE-----)",
                    ));
                }
                if !key.contains("PRIVATE KEY-----") {
                    return Err(key_err(
                        "ockto.client_key",
                        "is not a PEM private key (-----BEGIN PRIVATE KEY-----)",
                    ));
                }
                let pem = format!("{}\n{}\n", cert.trim_end(), key.trim_end());
                reqwest::Identity::from_pem(pem.as_bytes())
                    .map(Some)
                    .map_err(|_| {
                        key_err(
                            "ockto.client_key",
                            "the certificate and key could not be loaded together (unsupported key type or unreadable PEM)",
                        )
                    })
            }
        }
    }

    /// The extra root certificate, if configured.
    pub fn root(&self) -> Result<Option<reqwest::Certificate>, ConfigError> {
        self.ca_cert
            .as_ref()
            .map(|pem| {
                reqwest::Certificate::from_pem(pem.as_bytes())
                    .map_err(|_| key_err("ockto.ca_cert", "is not a PEM certificate"))
            })
            .transpose()
    }
}

/// The Open Integration Hub connector (providers.md 5): flows are triggered
/// through the hub's Webhooks service with an HMAC over the body.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OihConfig {
    /// The Webhooks service base: flows are triggered at `{base_url}/hook/{flowId}`.
    pub base_url: String,
    /// The HMAC key of flows that have no key of their own (the `key` of the
    /// hub's API_KEY secret that `hmacAuthSecret` names).
    #[serde(default)]
    pub hmac_key: Option<String>,
    /// Per flow id: its own key, header and algorithm.
    #[serde(default)]
    pub flows: IndexMap<String, OihFlowConfig>,
}

#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OihFlowConfig {
    pub hmac_key: Option<String>,
    /// `hmacHeaderKey` of the flow; `x-hmac` by default.
    pub hmac_header: Option<String>,
    /// `hmacAlgorithm` of the flow: `sha256` (default) or `sha512`.
    pub hmac_algorithm: Option<String>,
}

impl std::fmt::Debug for OihConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OihConfig")
            .field("base_url", &self.base_url)
            .field("hmac_key", &self.hmac_key.as_ref().map(|_| "<redacted>"))
            .field("flows", &self.flows.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The 360dialog Partner API connector (WhatsApp number onboarding).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dialog360Config {
    /// Partner API base, `https://hub.360dialog.io/api/v2`.
    #[serde(default = "default_d360_api")]
    pub base_url: String,
    /// Where the permissions page lives, `https://hub.360dialog.com`.
    #[serde(default = "default_d360_hub")]
    pub hub_url: String,
    /// The token in the webhook URL registered at the hub
    /// (`/v1/webhooks/360dialog?token=...`), at least 32 characters.
    pub webhook_token: String,
    /// The hub a workflow uses when it names none; else the first listed.
    pub default_hub: Option<String>,
    /// One entry per partner hub (e.g. Partner Payment and Direct Payment).
    pub hubs: IndexMap<String, Dialog360Hub>,
}

/// One 360dialog partner hub.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dialog360Hub {
    /// The public partner id (it appears in the permissions URL).
    pub partner_id: String,
    /// The partner API key (`X-API-Key`); server-side only.
    pub api_key: String,
    /// `partner` (the partner pays) or `direct` (Direct Payment: the client
    /// must also allow API key creation).
    #[serde(default)]
    pub payment: Dialog360Payment,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialog360Payment {
    #[default]
    Partner,
    Direct,
}

impl Dialog360Payment {
    pub fn as_str(self) -> &'static str {
        match self {
            Dialog360Payment::Partner => "partner",
            Dialog360Payment::Direct => "direct",
        }
    }
}

fn default_d360_api() -> String {
    "https://hub.360dialog.io/api/v2".into()
}

fn default_d360_hub() -> String {
    "https://hub.360dialog.com".into()
}

/// The Incode Omni connector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncodeConfig {
    /// `https://demo-api.incodesmile.com` or `https://api.incodesmile.com`.
    pub base_url: String,
    /// `x-api-key`: used only to start sessions.
    pub api_key: String,
    /// The flow (configuration) id sessions start with, unless the workflow names one.
    pub configuration_id: String,
    #[serde(default = "default_language")]
    pub language: String,
    /// OAuth2 client credentials Incode uses at `POST /v1/webhooks/incode/token`.
    pub webhook_client_id: Option<String>,
    pub webhook_client_secret: Option<String>,
    /// Alternative: a static header `X-Gangway-Webhook-Secret` set in Incode's dashboard.
    pub webhook_header_secret: Option<String>,
}

fn default_language() -> String {
    "en-US".into()
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
    /// Most provider status polls this node starts per second. Polls due
    /// beyond it wait their turn, oldest first, so a crowd of waiting
    /// sessions stretches every session's polling interval instead of
    /// flooding the provider. 0: no limit.
    pub poll_rate: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    #[serde(with = "humantime_serde_vec")]
    pub retry_schedule: Vec<Duration>,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    pub endpoints: Vec<EndpointConfig>,
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
    vec!["session.updated".into(), "session.ended".into()]
}

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

impl Config {
    /// Loads defaults, then `file` (if any), then the environment.
    pub fn load(file: Option<&std::path::Path>) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_with(file, &env)
    }

    pub fn load_with(
        file: Option<&std::path::Path>,
        env: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let mut root: toml::Table =
            DEFAULT_TOML
                .parse()
                .map_err(|e: toml::de::Error| ConfigError::Syntax {
                    path: "config.default.toml".into(),
                    message: e.to_string(),
                })?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            })?;
            let overlay: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::Syntax {
                        path: path.display().to_string(),
                        message: e.message().to_string(),
                    })?;
            merge(&mut root, overlay);
        }
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("GANGWAY_") else {
                continue;
            };
            if rest.starts_with("DEMO_") || rest.is_empty() {
                continue; // read by `gangway demo` itself
            }
            if rest.starts_with("TEST_") {
                continue; // read by the test suites (GANGWAY_TEST_BACKEND)
            }
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            let parsed = parse_env_value(value);
            set_path(&mut root, &path, parsed).map_err(|m| key_err(path.join("."), m))?;
        }
        let mut value = toml::Value::Table(root);
        expand_secrets(&mut value, &mut Vec::new(), env)?;
        let config: Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            key_err(
                if path == "." { "(root)".into() } else { path },
                e.into_inner().to_string(),
            )
        })?;
        config.check()?;
        Ok(config)
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

    fn check(&self) -> Result<(), ConfigError> {
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres:")
            || self.database_url.starts_with("postgresql:"))
        {
            return Err(key_err(
                "database_url",
                format!(
                    "`{}` is neither sqlite://... nor postgres://...",
                    redact_url(&self.database_url)
                ),
            ));
        }
        if self.engine.batch_size == 0 {
            return Err(key_err("engine.batch_size", "must be at least 1"));
        }
        if self.postgres.pool_size < 2 {
            return Err(key_err("postgres.pool_size", "must be at least 2"));
        }
        if self.postgres.committers == 0
            || self.postgres.committers >= self.postgres.pool_size as usize
        {
            return Err(key_err(
                "postgres.committers",
                "must be at least 1 and less than postgres.pool_size",
            ));
        }
        if self.engine.max_inflight == 0 {
            return Err(key_err("engine.max_inflight", "must be at least 1"));
        }
        if self.webhooks.retry_schedule.is_empty() {
            return Err(key_err(
                "webhooks.retry_schedule",
                "must list at least one delay",
            ));
        }
        for (i, ep) in self.webhooks.endpoints.iter().enumerate() {
            if reqwest::Url::parse(&ep.url).is_err() {
                return Err(key_err(
                    format!("webhooks.endpoints[{i}].url"),
                    "not a valid URL",
                ));
            }
            if standardwebhooks::Webhook::new(&ep.secret).is_err() {
                return Err(key_err(
                    format!("webhooks.endpoints[{i}].secret"),
                    "must be `whsec_` followed by base64",
                ));
            }
            for ev in &ep.events {
                if ev != "session.updated" && ev != "session.ended" {
                    return Err(key_err(
                        format!("webhooks.endpoints[{i}].events"),
                        format!("unknown event `{ev}`; expected session.updated or session.ended"),
                    ));
                }
            }
        }
        for (name, svc) in &self.http.services {
            if reqwest::Url::parse(&svc.base_url).is_err() {
                return Err(key_err(
                    format!("http.services.{name}.base_url"),
                    "not a valid URL",
                ));
            }
        }
        for (name, wh) in &self.http.webhooks {
            if !self.http.services.contains_key(&wh.service) {
                return Err(key_err(
                    format!("http.webhooks.{name}.service"),
                    format!("no service `{}` under [http.services]", wh.service),
                ));
            }
            if wh.secret.len() < 16 {
                return Err(key_err(
                    format!("http.webhooks.{name}.secret"),
                    "must be at least 16 characters",
                ));
            }
        }
        if let Some(k) = &self.encryption_key
            && crate::crypto::Sealer::from_base64(k).is_err()
        {
            return Err(key_err(
                "encryption_key",
                "must be 32 random bytes, base64-encoded (e.g. `openssl rand -base64 32`)",
            ));
        }
        if let Some(inc) = &self.incode {
            if reqwest::Url::parse(&inc.base_url).is_err() {
                return Err(key_err("incode.base_url", "not a valid URL"));
            }
            if inc.api_key.is_empty() {
                return Err(key_err(
                    "incode.api_key",
                    "must not be empty (use `${env:INCODE_API_KEY}`)",
                ));
            }
            if inc.configuration_id.is_empty() {
                return Err(key_err("incode.configuration_id", "must not be empty"));
            }
            let oauth = inc.webhook_client_id.is_some() || inc.webhook_client_secret.is_some();
            if oauth
                && (inc
                    .webhook_client_id
                    .as_deref()
                    .unwrap_or_default()
                    .is_empty()
                    || inc
                        .webhook_client_secret
                        .as_deref()
                        .unwrap_or_default()
                        .len()
                        < 16)
            {
                return Err(key_err(
                    "incode.webhook_client_secret",
                    "OAuth2 webhook auth needs webhook_client_id and a webhook_client_secret of at least 16 characters",
                ));
            }
            if inc
                .webhook_header_secret
                .as_deref()
                .is_some_and(|s| s.len() < 16)
            {
                return Err(key_err(
                    "incode.webhook_header_secret",
                    "must be at least 16 characters",
                ));
            }
            if !oauth && inc.webhook_header_secret.is_none() {
                return Err(key_err(
                    "incode",
                    "configure webhook authentication: webhook_client_id + webhook_client_secret (OAuth2) or webhook_header_secret",
                ));
            }
        }
        if let Some(o) = &self.ockto {
            if !reqwest::Url::parse(&o.base_url)
                .is_ok_and(|u| u.scheme() == "https" || u.scheme() == "http")
            {
                return Err(key_err("ockto.base_url", "not a valid http(s) URL"));
            }
            for (key, value) in [
                ("ockto.username", &o.username),
                ("ockto.password", &o.password),
                ("ockto.provider_code", &o.provider_code),
            ] {
                if value.is_empty() {
                    return Err(key_err(
                        key,
                        "must not be empty (use `${env:...}` or `${file:...}`)",
                    ));
                }
            }
            o.identity()?;
            o.root()?;
        }
        if let Some(d) = &self.dialog360 {
            for (key, url) in [("base_url", &d.base_url), ("hub_url", &d.hub_url)] {
                if reqwest::Url::parse(url).is_err() {
                    return Err(key_err(format!("dialog360.{key}"), "not a valid URL"));
                }
            }
            if d.webhook_token.len() < 32 {
                return Err(key_err(
                    "dialog360.webhook_token",
                    "must be at least 32 characters (32 random bytes, base64url)",
                ));
            }
            if d.hubs.is_empty() {
                return Err(key_err(
                    "dialog360.hubs",
                    "configure at least one hub: [dialog360.hubs.<name>] with partner_id and api_key",
                ));
            }
            if let Some(h) = &d.default_hub
                && !d.hubs.contains_key(h)
            {
                return Err(key_err(
                    "dialog360.default_hub",
                    format!("no hub `{h}` under [dialog360.hubs]"),
                ));
            }
            for (name, hub) in &d.hubs {
                let id_ok = !hub.partner_id.is_empty()
                    && hub
                        .partner_id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if !id_ok {
                    return Err(key_err(
                        format!("dialog360.hubs.{name}.partner_id"),
                        "must be letters, digits, `_` or `-`",
                    ));
                }
                if hub.api_key.is_empty() {
                    return Err(key_err(
                        format!("dialog360.hubs.{name}.api_key"),
                        "must not be empty (use `${env:D360_PARTNER_API_KEY}`)",
                    ));
                }
            }
        }
        if let Some(o) = &self.oih {
            if !reqwest::Url::parse(&o.base_url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
            {
                return Err(key_err("oih.base_url", "not a valid http(s) URL"));
            }
            if o.hmac_key.as_deref() == Some("") {
                return Err(key_err(
                    "oih.hmac_key",
                    "must not be empty (use `${env:OIH_HMAC_KEY}`)",
                ));
            }
            for (id, flow) in &o.flows {
                if let Some(a) = &flow.hmac_algorithm
                    && !matches!(a.as_str(), "sha256" | "sha512")
                {
                    return Err(key_err(
                        format!("oih.flows.{id}.hmac_algorithm"),
                        "must be `sha256` or `sha512`",
                    ));
                }
                if flow.hmac_key.as_deref() == Some("") {
                    return Err(key_err(
                        format!("oih.flows.{id}.hmac_key"),
                        "must not be empty",
                    ));
                }
            }
        }
        for origin in &self.client.allowed_origins {
            if reqwest::Url::parse(origin).is_err() {
                return Err(key_err(
                    "client.allowed_origins",
                    format!("`{origin}` is not an origin like https://shop.example"),
                ));
            }
        }
        Ok(())
    }

    /// The base URL for links and callbacks: `public_url`, else the listener.
    pub fn base_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
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

fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (k, v) in overlay {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn parse_env_value(raw: &str) -> toml::Value {
    // `GANGWAY_X=5` is an integer, `["a","b"]` a list; anything else a string.
    let probe = format!("v = {raw}");
    match probe.parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

fn set_path(root: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("empty key".into());
    };
    let mut table = root;
    for p in parents {
        let entry = table
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{p}` is not a section"))?;
    }
    table.insert(last.clone(), value);
    Ok(())
}

fn expand_secrets(
    v: &mut toml::Value,
    path: &mut Vec<String>,
    env: &[(String, String)],
) -> Result<(), ConfigError> {
    match v {
        toml::Value::String(s) => {
            if let Some(name) = s.strip_prefix("${env:").and_then(|r| r.strip_suffix('}')) {
                let found = env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
                *s = found.ok_or_else(|| {
                    key_err(
                        path.join("."),
                        format!("environment variable `{name}` is not set"),
                    )
                })?;
            } else if let Some(file) = s.strip_prefix("${file:").and_then(|r| r.strip_suffix('}')) {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| key_err(path.join("."), format!("cannot read `{file}`: {e}")))?;
                *s = text.trim_end().to_string();
            }
        }
        toml::Value::Table(t) => {
            for (k, v) in t.iter_mut() {
                path.push(k.clone());
                expand_secrets(v, path, env)?;
                path.pop();
            }
        }
        toml::Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                expand_secrets(v, path, env)?;
                path.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load() {
        let c = Config::load_with(None, &[]).expect("defaults are valid");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://gangway.db");
    }

    #[test]
    fn env_overrides_and_errors_name_the_key() {
        let c = Config::load_with(
            None,
            &env(&[
                ("GANGWAY_LISTEN", "127.0.0.1:9999"),
                ("GANGWAY_ENGINE__BATCH_SIZE", "7"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.engine.batch_size, 7);
        let e = Config::load_with(None, &env(&[("GANGWAY_LISTEN", "nope")])).expect_err("invalid");
        assert!(e.to_string().contains("`listen`"), "{e}");
        let e = Config::load_with(None, &env(&[("GANGWAY_ENGINE__LEASE", "forever")]))
            .expect_err("invalid");
        assert!(e.to_string().contains("engine.lease"), "{e}");
        let e = Config::load_with(None, &env(&[("GANGWAY_DATABASE_URL", "mysql://x")]))
            .expect_err("invalid");
        assert!(e.to_string().contains("database_url"), "{e}");
        let e = Config::load_with(None, &env(&[("GANGWAY_NOPE", "1")])).expect_err("unknown key");
        assert!(e.to_string().contains("nope"), "{e}");
    }

    #[test]
    fn env_secret_references() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("g.toml");
        std::fs::write(&f, "[http.services.s]\nbase_url = \"http://x\"\nheaders = { Authorization = \"${env:S_KEY}\" }\n").expect("write");
        let e = Config::load_with(Some(&f), &[]).expect_err("unset var");
        assert!(
            e.to_string()
                .contains("http.services.s.headers.Authorization"),
            "{e}"
        );
        let c = Config::load_with(Some(&f), &env(&[("S_KEY", "Bearer k")])).expect("valid");
        assert_eq!(c.http.services["s"].headers["Authorization"], "Bearer k");
    }
}
