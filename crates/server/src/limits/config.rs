//! `[rate_limits]`: the limits' settings (defaults in config.default.toml)
//! and their validation, every error naming its key.

use crate::config::ConfigError;
use ipnet::IpNet;
use serde::Deserialize;
use std::net::IpAddr;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Proxies (addresses or CIDRs) whose `X-Forwarded-For` names the
    /// client; from anyone else the header is ignored.
    pub trusted_proxies: Vec<String>,
    /// Per API key, after it authenticated.
    pub api_key: Rate,
    /// Per session, requests carrying its client secret.
    pub client_secret: Rate,
    /// Per source address, on the routes without an API key or client
    /// secret (provider webhooks, callbacks, the redirect page).
    pub source: Rate,
    pub failed_auth: FailedAuthConfig,
}

/// A token bucket: `per_second` requests a second on average, `burst` at
/// once. `per_second = 0` turns the limit off.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailedAuthConfig {
    /// Failed authentications a source address may make per minute (and at
    /// once); 0 turns the limit off.
    pub per_minute: u32,
    /// After that, how long every request from the address that carries
    /// credentials gets 429.
    #[serde(with = "humantime_serde")]
    pub lockout: Duration,
    /// Failed authentications are logged as counts per source address, one
    /// line per address per interval.
    #[serde(with = "humantime_serde")]
    pub log_interval: Duration,
}

fn err(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Key {
        key: format!("rate_limits.{key}"),
        message: message.into(),
        origin: None,
    }
}

impl RateLimitConfig {
    /// The trusted proxies as networks (a bare address is a /32 or /128).
    pub fn proxies(&self) -> Result<Vec<IpNet>, ConfigError> {
        self.trusted_proxies
            .iter()
            .map(|p| {
                let p = p.trim();
                p.parse::<IpNet>()
                    .or_else(|_| p.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        err(
                            "trusted_proxies",
                            format!("`{p}` is neither an address nor a CIDR such as 10.0.0.0/8"),
                        )
                    })
            })
            .collect()
    }

    pub fn check(&self) -> Result<(), ConfigError> {
        self.proxies()?;
        for (key, rate) in [
            ("api_key", self.api_key),
            ("client_secret", self.client_secret),
            ("source", self.source),
        ] {
            if rate.per_second > 0 && rate.burst == 0 {
                return Err(err(
                    &format!("{key}.burst"),
                    "must be at least 1 when per_second is set (0 turns the limit off)",
                ));
            }
        }
        let f = &self.failed_auth;
        if f.per_minute > 0 && f.lockout.is_zero() {
            return Err(err(
                "failed_auth.lockout",
                "must be longer than 0s when per_minute is set",
            ));
        }
        if f.log_interval < Duration::from_secs(1) {
            return Err(err("failed_auth.log_interval", "must be at least 1s"));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::config::Config;

    fn load(extra: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("g.toml");
        std::fs::write(&file, extra).unwrap();
        Config::load_with(Some(&file), &[]).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_load_and_bad_values_name_their_key() {
        let cfg = load("").unwrap();
        assert!(cfg.rate_limits.trusted_proxies.is_empty());
        assert_eq!(cfg.rate_limits.failed_auth.per_minute, 30);
        assert_eq!(cfg.rate_limits.api_key.per_second, 0);
        let ok = load(
            "[rate_limits]\ntrusted_proxies = [\"10.0.0.0/8\", \"192.0.2.7\", \"2001:db8::/32\"]\n",
        )
        .unwrap();
        assert_eq!(ok.rate_limits.proxies().unwrap().len(), 3);
        for (toml, key) in [
            (
                "[rate_limits]\ntrusted_proxies = [\"10.0.0.0/33\"]\n",
                "rate_limits.trusted_proxies",
            ),
            (
                "[rate_limits.api_key]\nper_second = 5\nburst = 0\n",
                "rate_limits.api_key.burst",
            ),
            (
                "[rate_limits.failed_auth]\nlockout = \"0s\"\n",
                "rate_limits.failed_auth.lockout",
            ),
            (
                "[rate_limits.failed_auth]\nlog_interval = \"10ms\"\n",
                "rate_limits.failed_auth.log_interval",
            ),
            ("[rate_limits.source]\nper_sec = 5\n", "rate_limits.source"),
        ] {
            let err = load(toml).unwrap_err();
            assert!(err.contains(key), "{toml}: {err}");
        }
    }
}
