//! The `[dialog360]` config section: its types (the file format) and what the
//! types cannot check. Errors name the key and the fix, never the secret.

use crate::config::{Config, ConfigError, http_url, key_err};
use indexmap::IndexMap;
use serde::Deserialize;

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

impl crate::config::Section for Dialog360Config {
    const KEY: &'static str = "dialog360";
}

/// What the types of the section cannot check.
pub(crate) fn check(config: &Config) -> Result<(), ConfigError> {
    let Some(d) = config.section::<Dialog360Config>() else {
        return Ok(());
    };
    http_url(
        "dialog360.base_url",
        &d.base_url,
        "https://hub.360dialog.io/api/v2",
    )?;
    http_url("dialog360.hub_url", &d.hub_url, "https://hub.360dialog.com")?;
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
    Ok(())
}
