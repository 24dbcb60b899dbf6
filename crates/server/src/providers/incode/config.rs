//! The `[incode]` config section: its types (the file format) and what the
//! types cannot check. Errors name the key and the fix, never the secret.

use crate::config::{Config, ConfigError, MIN_SECRET, http_url, key_err};
use serde::Deserialize;

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

impl crate::config::Section for IncodeConfig {
    const KEY: &'static str = "incode";
}

/// What the types of the section cannot check.
pub(crate) fn check(config: &Config) -> Result<(), ConfigError> {
    let Some(inc) = config.section::<IncodeConfig>() else {
        return Ok(());
    };
    http_url(
        "incode.base_url",
        &inc.base_url,
        "https://demo-api.incodesmile.com",
    )?;
    if inc.api_key.is_empty() {
        return Err(key_err(
            "incode.api_key",
            "must not be empty (use `${env:INCODE_API_KEY}`)",
        ));
    }
    if inc.configuration_id.is_empty() {
        return Err(key_err("incode.configuration_id", "must not be empty"));
    }
    if inc.language.trim().is_empty() {
        return Err(key_err(
            "incode.language",
            "must not be empty (e.g. \"en-US\")",
        ));
    }
    match (&inc.webhook_client_id, &inc.webhook_client_secret) {
        (None, None) => {}
        (Some(id), Some(secret)) => {
            if id.trim().is_empty() {
                return Err(key_err("incode.webhook_client_id", "must not be empty"));
            }
            if secret.len() < MIN_SECRET {
                return Err(key_err(
                    "incode.webhook_client_secret",
                    format!(
                        "must be at least {MIN_SECRET} characters (Incode's OAuth2 client credentials; e.g. `openssl rand -hex 24`)"
                    ),
                ));
            }
        }
        (Some(_), None) => {
            return Err(key_err(
                "incode.webhook_client_secret",
                "is missing: OAuth2 webhook authentication needs webhook_client_id and webhook_client_secret",
            ));
        }
        (None, Some(_)) => {
            return Err(key_err(
                "incode.webhook_client_id",
                "is missing: OAuth2 webhook authentication needs webhook_client_id and webhook_client_secret",
            ));
        }
    }
    if inc
        .webhook_header_secret
        .as_deref()
        .is_some_and(|s| s.len() < MIN_SECRET)
    {
        return Err(key_err(
            "incode.webhook_header_secret",
            format!("must be at least {MIN_SECRET} characters"),
        ));
    }
    if inc.webhook_client_id.is_none() && inc.webhook_header_secret.is_none() {
        return Err(key_err(
            "incode",
            "configure webhook authentication: webhook_client_id + webhook_client_secret (OAuth2) or webhook_header_secret",
        ));
    }
    Ok(())
}
