//! Checks of the provider sections: each registered provider checks its own
//! (providers/<name>/config.rs) with the helpers here. Errors name the key
//! and the fix, never the secret.

use super::{Config, ConfigError, key_err};
use reqwest::header::HeaderName;

/// Shortest shared secret accepted where a provider authenticates to us.
pub(crate) const MIN_SECRET: usize = 16;

impl Config {
    /// Each registered provider checks its own section.
    pub(super) fn check_providers(&self) -> Result<(), ConfigError> {
        for p in crate::providers::REGISTRY {
            (p.config.check)(self)?;
        }
        Ok(())
    }
}

pub(crate) fn header_name(key: &str, name: &str) -> Result<(), ConfigError> {
    if HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(key_err(
            key,
            format!("`{name}` is not a valid HTTP header name (letters, digits and `-`)"),
        ));
    }
    Ok(())
}
