//! Checks of values that their types cannot express: URLs, secrets'
//! formats, limits, references between keys. Each error names the key and
//! the fix; none repeats a secret. Provider sections are checked in
//! `providers.rs`.

use super::{Config, ConfigError, key_err, redact_url};
use std::time::Duration;

impl Config {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        self.check_server()?;
        self.server.check()?;
        if let Some(tls) = &self.tls {
            tls.check()?;
        }
        if self
            .admin_listen
            .is_some_and(|a| a == self.listen && a.port() != 0)
        {
            return Err(key_err(
                "admin_listen",
                "must differ from `listen` (e.g. \"127.0.0.1:9090\"), or be left out to serve /metrics on `listen`",
            ));
        }
        self.check_engine()?;
        self.limits.check()?;
        self.rate_limits.check()?;
        self.otel.check()?;
        self.check_webhooks()?;
        self.check_providers()?;
        Ok(())
    }

    fn check_server(&self) -> Result<(), ConfigError> {
        check_database_url(&self.database_url)?;
        if self.workflows_dir.as_os_str().is_empty() {
            return Err(key_err(
                "workflows_dir",
                "must not be empty (a directory of *.yaml files, e.g. \"workflows\")",
            ));
        }
        if let Some(url) = &self.public_url {
            let u = http_url("public_url", url, "https://gangway.example.com")?;
            if u.query().is_some() || u.fragment().is_some() || !u.username().is_empty() {
                return Err(key_err(
                    "public_url",
                    format!(
                        "`{}` must be a plain base URL without user, query or fragment, e.g. https://gangway.example.com",
                        shown_url(url)
                    ),
                ));
            }
        }
        if self.encryption_key.is_some() && !self.encryption_keys.is_empty() {
            return Err(key_err(
                "encryption_keys",
                "set `encryption_key` (one key) or `encryption_keys` (several, the first active), not both",
            ));
        }
        for (i, k) in self.encryption_keys.iter().enumerate() {
            if crate::crypto::Sealer::from_base64(k).is_err() {
                return Err(key_err(
                    format!("encryption_keys[{i}]"),
                    "must be 32 random bytes, base64-encoded (e.g. `openssl rand -base64 32`)",
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
        crate::logging::filter(&self.log.level).map_err(|m| key_err("log.level", m))?;
        positive("client.secret_ttl", self.client.secret_ttl)?;
        for (i, origin) in self.client.allowed_origins.iter().enumerate() {
            check_origin(&format!("client.allowed_origins[{i}]"), origin)?;
        }
        Ok(())
    }

    fn check_engine(&self) -> Result<(), ConfigError> {
        let e = &self.engine;
        if e.batch_size == 0 {
            return Err(key_err("engine.batch_size", "must be at least 1"));
        }
        if e.max_inflight == 0 {
            return Err(key_err("engine.max_inflight", "must be at least 1"));
        }
        if e.lease < Duration::from_secs(1) {
            return Err(key_err(
                "engine.lease",
                "must be at least 1s: a shorter lease lets other nodes take jobs that are still running",
            ));
        }
        positive("engine.request_timeout", e.request_timeout)?;
        if e.heartbeat < Duration::from_millis(100) {
            return Err(key_err(
                "engine.heartbeat",
                "must be at least 100ms (e.g. \"5s\"): the node renews its heartbeat that often",
            ));
        }
        if e.node_id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(key_err(
                "engine.node_id",
                "must not contain spaces or control characters (e.g. \"gangway-a\"), or be empty for <hostname>:<port>",
            ));
        }
        let pg = &self.postgres;
        if pg.pool_size < 2 {
            return Err(key_err("postgres.pool_size", "must be at least 2"));
        }
        if pg.committers == 0 || pg.committers >= pg.pool_size as usize {
            return Err(key_err(
                "postgres.committers",
                "must be at least 1 and less than postgres.pool_size",
            ));
        }
        positive("postgres.acquire_timeout", pg.acquire_timeout)?;
        let r = &self.retention;
        positive("retention.default", r.default)?;
        if r.default > Duration::from_secs(36_500 * 24 * 3600) {
            return Err(key_err(
                "retention.default",
                "must be at most 36500d (100 years)",
            ));
        }
        positive("retention.interval", r.interval)?;
        if !(1..=10_000).contains(&r.batch_size) {
            return Err(key_err(
                "retention.batch_size",
                "must be between 1 and 10000",
            ));
        }
        let c = &self.console;
        positive("console.idle_timeout", c.idle_timeout)?;
        positive("console.lifetime", c.lifetime)?;
        positive("console.lockout_base", c.lockout_base)?;
        if c.lockout_max < c.lockout_base {
            return Err(key_err(
                "console.lockout_max",
                "must be at least console.lockout_base",
            ));
        }
        if c.lockout_after == 0 {
            return Err(key_err("console.lockout_after", "must be at least 1"));
        }
        Ok(())
    }

    fn check_webhooks(&self) -> Result<(), ConfigError> {
        if self.webhooks.retry_schedule.is_empty() {
            return Err(key_err(
                "webhooks.retry_schedule",
                "must list at least one delay",
            ));
        }
        positive("webhooks.timeout", self.webhooks.timeout)?;
        let addresses = self.webhooks.address_policy()?;
        for (i, ep) in self.webhooks.endpoints.iter().enumerate() {
            let key = |k: &str| format!("webhooks.endpoints[{i}].{k}");
            let url = http_url(&key("url"), &ep.url, "https://backend.example.com/gangway")?;
            // Hosts given as names are checked when each delivery connects.
            if let Err(refused) = addresses.check_url(&url) {
                return Err(key_err(key("url"), refused.to_string()));
            }
            check_whsec(&key("secret"), &ep.secret)?;
            if ep.events.is_empty() {
                return Err(key_err(
                    key("events"),
                    "must list at least one event (session.updated, session.ended, session.erased), or be left out for all",
                ));
            }
            for ev in &ep.events {
                if !["session.updated", "session.ended", "session.erased"].contains(&ev.as_str()) {
                    return Err(key_err(
                        key("events"),
                        format!(
                            "unknown event `{ev}`; expected session.updated, session.ended or session.erased"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn check_database_url(url: &str) -> Result<(), ConfigError> {
    let key = "database_url";
    if let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let path = rest.split_once('?').map_or(rest, |(p, _)| p);
        if path.is_empty() || path == ":memory:" {
            return Err(key_err(
                key,
                "names no database file; write sqlite://path/to/gangway.db (created if missing)",
            ));
        }
        return Ok(());
    }
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        return match url.parse::<sqlx::postgres::PgConnectOptions>() {
            Ok(_) => Ok(()),
            // The error text of a URL parser never holds the password.
            Err(e) => Err(key_err(
                key,
                format!(
                    "`{}` is not a valid PostgreSQL URL ({e}); write postgres://user:password@host:5432/database",
                    redact_url(url)
                ),
            )),
        };
    }
    Err(key_err(
        key,
        format!(
            "`{}` is neither sqlite://... nor postgres://...",
            redact_url(url)
        ),
    ))
}

/// A `whsec_` secret as Standard Webhooks defines it. (The library that
/// signs takes one without the prefix too; the docs and the receivers'
/// libraries want it, so a value without it is a mistake.)
fn check_whsec(key: &str, secret: &str) -> Result<(), ConfigError> {
    use base64::Engine;
    let fix = "write `whsec_` followed by the base64 of 24 to 64 random bytes, e.g. the output of `echo \"whsec_$(openssl rand -base64 32)\"`";
    let Some(b64) = secret.strip_prefix("whsec_") else {
        return Err(key_err(key, format!("does not start with `whsec_`; {fix}")));
    };
    match base64::engine::general_purpose::STANDARD.decode(b64) {
        Err(_) => Err(key_err(
            key,
            format!("the part after `whsec_` is not valid base64; {fix}"),
        )),
        Ok(bytes) if !(24..=64).contains(&bytes.len()) => Err(key_err(
            key,
            format!(
                "holds {} bytes after `whsec_`, not 24 to 64; {fix}",
                bytes.len()
            ),
        )),
        Ok(_) => Ok(()),
    }
}

/// A browser origin: scheme, host and port, nothing else (CORS compares it
/// with the `Origin` header as text).
fn check_origin(key: &str, origin: &str) -> Result<(), ConfigError> {
    let u = http_url(key, origin, "https://shop.example")?;
    let fix = "an origin is scheme://host[:port] only, e.g. https://shop.example";
    if !u.username().is_empty() || u.password().is_some() {
        return Err(key_err(
            key,
            format!("`{}` holds user credentials; {fix}", shown_url(origin)),
        ));
    }
    if u.path() != "/" || u.query().is_some() || u.fragment().is_some() {
        let origin_only = u.origin().ascii_serialization();
        return Err(key_err(
            key,
            format!(
                "`{}` has a path, query or fragment; {fix}: write `{origin_only}`",
                shown_url(origin)
            ),
        ));
    }
    Ok(())
}

/// An absolute http(s) URL with a host; the error shows the value without
/// credentials or query (either may hold a secret) and an example.
pub(crate) fn http_url(key: &str, value: &str, example: &str) -> Result<reqwest::Url, ConfigError> {
    let shown = shown_url(value);
    if value.trim().is_empty() {
        return Err(key_err(
            key,
            format!("must not be empty; write e.g. {example}"),
        ));
    }
    let scheme = value.split_once(':').map(|(s, _)| s).filter(|s| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-')
    });
    match scheme {
        None => {
            return Err(key_err(
                key,
                format!(
                    "`{shown}` has no scheme; write it with http:// or https://, e.g. https://{}",
                    shown.trim_start_matches('/')
                ),
            ));
        }
        Some(s) if !s.eq_ignore_ascii_case("http") && !s.eq_ignore_ascii_case("https") => {
            return Err(key_err(
                key,
                format!(
                    "`{shown}` is not an http:// or https:// URL (scheme `{s}`); write e.g. {example}"
                ),
            ));
        }
        Some(_) => {}
    }
    if !value.contains("://") {
        return Err(key_err(
            key,
            format!(
                "`{shown}` must start with http:// or https:// and a host; write e.g. {example}"
            ),
        ));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(key_err(
            key,
            format!("`{shown}` contains a space or control character; write e.g. {example}"),
        ));
    }
    let u = reqwest::Url::parse(value).map_err(|e| {
        key_err(
            key,
            format!("`{shown}` is not a URL ({e}); write e.g. {example}"),
        )
    })?;
    if u.host_str().is_none_or(str::is_empty) {
        return Err(key_err(
            key,
            format!("`{shown}` names no host; write e.g. {example}"),
        ));
    }
    Ok(u)
}

/// A URL as errors show it: no user or password, no query, no fragment.
fn shown_url(value: &str) -> String {
    let cut = value.find(['?', '#']).map_or(value, |i| &value[..i]);
    let masked = match cut.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
                None => cut.to_string(),
            }
        }
        None => cut.to_string(),
    };
    let mut shown: String = masked.chars().take(120).collect();
    if shown.len() < masked.len() {
        shown.push('…');
    }
    if cut.len() < value.len() {
        shown.push_str("?…");
    }
    shown
}

fn positive(key: &str, d: Duration) -> Result<(), ConfigError> {
    if d.is_zero() {
        return Err(key_err(key, "must be longer than 0s (e.g. \"10s\")"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_secrets() {
        assert_eq!(
            shown_url("https://u:pw@host.example/p?token=s#f"),
            "https://***@host.example/p?…"
        );
        assert_eq!(
            shown_url("htp:/127.0.0.1 gangway"),
            "htp:/127.0.0.1 gangway"
        );
    }
}
