//! The `[oih]` config section: its types (the file format) and what the
//! types cannot check. Errors name the key and the fix, never the secret.

use crate::config::{Config, ConfigError, header_name, http_url, key_err};
use indexmap::IndexMap;
use serde::Deserialize;

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

impl crate::config::Section for OihConfig {
    const KEY: &'static str = "oih";
}

/// What the types of the section cannot check.
pub(crate) fn check(config: &Config) -> Result<(), ConfigError> {
    let Some(o) = config.section::<OihConfig>() else {
        return Ok(());
    };
    http_url(
        "oih.base_url",
        &o.base_url,
        "https://webhooks.oih.example.com",
    )?;
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
        if let Some(h) = &flow.hmac_header {
            header_name(&format!("oih.flows.{id}.hmac_header"), h)?;
        }
    }
    Ok(())
}
