//! The `[stripe]` config section: its type (the file format) and what the
//! type cannot check. Errors name the key and the fix, never the secret.

use crate::config::{Config, ConfigError, MIN_SECRET, http_url, key_err};
use serde::Deserialize;
use std::time::Duration;

/// The Stripe Identity connector.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StripeConfig {
    /// `https://api.stripe.com` (or the simulator's `/sim/stripe`).
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The secret (`sk_…`) or restricted (`rk_…`) key: server-side only.
    pub secret_key: String,
    /// Signing secrets (`whsec_…`) of the webhook endpoint. A webhook is
    /// accepted when any of its `v1` signatures matches any of these, so
    /// during a secret rotation both the old and the new one are listed.
    pub webhook_secrets: Vec<String>,
    /// How far a webhook's `t=` may be from now (Stripe's libraries: 300 s).
    #[serde(default = "default_tolerance", with = "humantime_serde")]
    pub tolerance: Duration,
    /// Whether document checks also take a selfie matched against the photo
    /// (`options[document][require_matching_selfie]`), unless the workflow says.
    #[serde(default = "default_true")]
    pub require_matching_selfie: bool,
    /// Where Stripe's hosted page sends the user at the end, unless the
    /// workflow passes `return_url`.
    #[serde(default)]
    pub return_url: Option<String>,
    /// `Stripe-Version` sent with every request; unset: the account's default.
    #[serde(default)]
    pub api_version: Option<String>,
}

fn default_base_url() -> String {
    "https://api.stripe.com".into()
}

fn default_tolerance() -> Duration {
    Duration::from_secs(300)
}

fn default_true() -> bool {
    true
}

impl std::fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeConfig")
            .field("base_url", &self.base_url)
            .field("secret_key", &"[redacted]")
            .field(
                "webhook_secrets",
                &format!("[{} redacted]", self.webhook_secrets.len()),
            )
            .field("tolerance", &self.tolerance)
            .field("require_matching_selfie", &self.require_matching_selfie)
            .field("return_url", &self.return_url)
            .field("api_version", &self.api_version)
            .finish()
    }
}

impl crate::config::Section for StripeConfig {
    const KEY: &'static str = "stripe";
}

/// What the types of the section cannot check.
pub(crate) fn check(config: &Config) -> Result<(), ConfigError> {
    let Some(s) = config.section::<StripeConfig>() else {
        return Ok(());
    };
    http_url("stripe.base_url", &s.base_url, "https://api.stripe.com")?;
    if s.secret_key.trim().is_empty() {
        return Err(key_err(
            "stripe.secret_key",
            "must not be empty (use `${env:STRIPE_SECRET_KEY}`)",
        ));
    }
    if s.secret_key.starts_with("pk_") {
        return Err(key_err(
            "stripe.secret_key",
            "is a publishable key (pk_…); the connector needs the secret key (sk_…) or a restricted key (rk_…)",
        ));
    }
    if s.webhook_secrets.is_empty() {
        return Err(key_err(
            "stripe.webhook_secrets",
            "must list the webhook endpoint's signing secret (whsec_…; both during a rotation)",
        ));
    }
    for (i, secret) in s.webhook_secrets.iter().enumerate() {
        if secret.len() < MIN_SECRET {
            return Err(key_err(
                format!("stripe.webhook_secrets[{i}]"),
                format!(
                    "must be at least {MIN_SECRET} characters (the endpoint's signing secret, whsec_…)"
                ),
            ));
        }
    }
    if s.tolerance.is_zero() || s.tolerance > Duration::from_secs(3600) {
        return Err(key_err(
            "stripe.tolerance",
            "must be between 1s and 1h (Stripe's libraries use 5m)",
        ));
    }
    if let Some(url) = &s.return_url {
        http_url("stripe.return_url", url, "https://shop.example/verified")?;
    }
    if s.api_version
        .as_deref()
        .is_some_and(|v| v.is_empty() || !v.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(key_err(
            "stripe.api_version",
            "must be a Stripe API version such as \"2025-03-31.basil\"",
        ));
    }
    Ok(())
}
