//! Rate limits (GCRA token buckets from `governor`), per API key, per
//! session for client secrets, and per source address for the routes that
//! take neither (provider webhooks, callbacks, the redirect page); failed
//! authentications are limited hardest: past `failed_auth.per_minute` from
//! one address, every request from it that carries credentials gets 429
//! for `failed_auth.lockout`, before its credentials are even checked, so
//! that guessing costs neither the database nor the log. (A key this node
//! authenticated recently still passes: a working backend is not locked
//! out by a guesser behind the same address.)
//!
//! Limits are per node: with N nodes behind a balancer an address gets up
//! to N times the allowance. Refusals are counted in
//! `gangway_rate_limited_total{limit}`, failed authentications in
//! `gangway_auth_failures_total{kind}` and logged per address per interval
//! (failures.rs).

mod config;
mod failures;
pub mod source;

pub use config::{FailedAuthConfig, Rate, RateLimitConfig};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Which limit refused a request (the metric's `limit` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    ApiKey,
    ClientSecret,
    Source,
    FailedAuth,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::ApiKey => "api_key",
            Limit::ClientSecret => "client_secret",
            Limit::Source => "source",
            Limit::FailedAuth => "failed_auth",
        }
    }
}

/// A refused request: which limit, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub limit: Limit,
    pub retry_after: Duration,
}

impl Refused {
    /// `Retry-After` in whole seconds, rounded up, at least 1.
    pub fn retry_after_s(&self) -> u64 {
        let s = self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0);
        s.max(1)
    }
}

struct Bucket<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
}

impl<K: Hash + Eq + Clone> Bucket<K> {
    fn new(quota: Option<Quota>) -> Option<Bucket<K>> {
        quota.map(|q| Bucket {
            limiter: RateLimiter::keyed(q),
        })
    }

    /// Takes one token; how long until one is free when there is none.
    fn take(&self, key: &K) -> Result<(), Duration> {
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

fn rate_quota(rate: Rate) -> Option<Quota> {
    let per_second = NonZeroU32::new(rate.per_second)?;
    let burst = NonZeroU32::new(rate.burst).unwrap_or(per_second);
    Some(Quota::per_second(per_second).allow_burst(burst))
}

pub struct Limits {
    proxies: Vec<IpNet>,
    api_key: Option<Bucket<String>>,
    client_secret: Option<Bucket<String>>,
    source: Option<Bucket<IpAddr>>,
    failures: Option<Bucket<IpAddr>>,
    lockout: Duration,
    /// Addresses that failed too often, until when.
    locked: Mutex<HashMap<IpAddr, Instant>>,
    log: failures::FailureLog,
    log_interval: Duration,
}

impl Limits {
    /// The limits of a checked configuration (an unreadable proxy entry was
    /// refused at start and is skipped here).
    pub fn new(cfg: &RateLimitConfig) -> Limits {
        let f = &cfg.failed_auth;
        Limits {
            proxies: cfg.proxies().unwrap_or_default(),
            api_key: Bucket::new(rate_quota(cfg.api_key)),
            client_secret: Bucket::new(rate_quota(cfg.client_secret)),
            source: Bucket::new(rate_quota(cfg.source)),
            failures: Bucket::new(NonZeroU32::new(f.per_minute).map(Quota::per_minute)),
            lockout: f.lockout,
            locked: Mutex::default(),
            log: failures::FailureLog::default(),
            log_interval: f.log_interval.max(Duration::from_secs(1)),
        }
    }

    /// The client's address (see source.rs).
    pub fn client_address(
        &self,
        peer: Option<SocketAddr>,
        headers: &axum::http::HeaderMap,
    ) -> IpAddr {
        source::client_address(peer, headers, &self.proxies)
    }

    fn refuse(&self, limit: Limit, retry_after: Duration) -> Refused {
        metrics::counter!("gangway_rate_limited_total", "limit" => limit.as_str()).increment(1);
        Refused { limit, retry_after }
    }

    /// Refused while `source` is locked out after too many failed
    /// authentications.
    pub fn check_lockout(&self, source: IpAddr) -> Result<(), Refused> {
        let key = source::limit_key(source);
        let mut locked = self.locked.lock().unwrap_or_else(|p| p.into_inner());
        let Some(until) = locked.get(&key).copied() else {
            return Ok(());
        };
        let now = Instant::now();
        if until <= now {
            locked.remove(&key);
            return Ok(());
        }
        drop(locked);
        self.log.refused(source);
        Err(self.refuse(Limit::FailedAuth, until - now))
    }

    /// Records a failed authentication of `kind` from `source`; refused
    /// (and the address locked out) when it was one too many.
    pub fn failed(&self, source: IpAddr, kind: &'static str) -> Result<(), Refused> {
        metrics::counter!("gangway_auth_failures_total", "kind" => kind).increment(1);
        self.log.failure(source, kind);
        let Some(bucket) = &self.failures else {
            return Ok(());
        };
        let key = source::limit_key(source);
        bucket.take(&key).map_err(|wait| {
            let for_ = self.lockout.max(wait);
            self.locked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key, Instant::now() + for_);
            self.refuse(Limit::FailedAuth, for_)
        })
    }

    /// One request of an authenticated API key.
    pub fn check_api_key(&self, key_id: &str) -> Result<(), Refused> {
        match &self.api_key {
            Some(b) => b
                .take(&key_id.to_string())
                .map_err(|wait| self.refuse(Limit::ApiKey, wait)),
            None => Ok(()),
        }
    }

    /// One request with a session's (valid) client secret.
    pub fn check_client_secret(&self, session_id: &str) -> Result<(), Refused> {
        match &self.client_secret {
            Some(b) => b
                .take(&session_id.to_string())
                .map_err(|wait| self.refuse(Limit::ClientSecret, wait)),
            None => Ok(()),
        }
    }

    /// One request to a route without API key or client secret.
    pub fn check_source(&self, source: IpAddr) -> Result<(), Refused> {
        match &self.source {
            Some(b) => b
                .take(&source::limit_key(source))
                .map_err(|wait| self.refuse(Limit::Source, wait)),
            None => Ok(()),
        }
    }

    /// Logs the failed authentications counted so far and forgets idle
    /// buckets and ended lockouts.
    fn maintain(&self) {
        self.log.flush(self.log_interval.as_secs());
        for b in [&self.api_key, &self.client_secret].into_iter().flatten() {
            b.forget_idle();
        }
        for b in [&self.source, &self.failures].into_iter().flatten() {
            b.forget_idle();
        }
        let now = Instant::now();
        self.locked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, until| *until > now);
    }

    /// Every `failed_auth.log_interval`: the failure log line(s) and
    /// housekeeping, until `stop` flips (or the limits are dropped); a last
    /// log then.
    pub fn spawn_maintenance(self: &Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let limits: Weak<Limits> = Arc::downgrade(self);
        let every = self.log_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.wait_for(|s| *s) => {
                        if let Some(l) = limits.upgrade() {
                            l.log.flush(every.as_secs());
                        }
                        return;
                    }
                }
                match limits.upgrade() {
                    Some(l) => l.maintain(),
                    None => return,
                }
            }
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cfg(per_minute: u32) -> RateLimitConfig {
        RateLimitConfig {
            trusted_proxies: vec![],
            api_key: Rate {
                per_second: 1,
                burst: 2,
            },
            client_secret: Rate {
                per_second: 0,
                burst: 0,
            },
            source: Rate {
                per_second: 0,
                burst: 0,
            },
            failed_auth: FailedAuthConfig {
                per_minute,
                lockout: Duration::from_secs(60),
                log_interval: Duration::from_secs(60),
            },
        }
    }

    #[test]
    fn failures_past_the_allowance_lock_the_address_out() {
        let l = Limits::new(&cfg(3));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(l.check_lockout(a), Ok(()));
            assert_eq!(l.failed(a, "api_key"), Ok(()));
        }
        let refused = l.failed(a, "api_key").unwrap_err();
        assert_eq!(refused.limit, Limit::FailedAuth);
        assert_eq!(refused.retry_after_s(), 60);
        assert!(l.check_lockout(a).is_err());
        assert_eq!(l.check_lockout(b), Ok(()));
        // Off: failures are only counted.
        let off = Limits::new(&cfg(0));
        for _ in 0..100 {
            assert_eq!(off.failed(a, "api_key"), Ok(()));
        }
        assert_eq!(off.check_lockout(a), Ok(()));
    }

    #[test]
    fn buckets_refuse_with_the_time_to_wait() {
        let l = Limits::new(&cfg(3));
        assert_eq!(l.check_api_key("k"), Ok(()));
        assert_eq!(l.check_api_key("k"), Ok(()));
        let refused = l.check_api_key("k").unwrap_err();
        assert_eq!(refused.limit, Limit::ApiKey);
        assert_eq!(refused.retry_after_s(), 1);
        assert_eq!(l.check_api_key("other"), Ok(()));
        assert_eq!(l.check_client_secret("s"), Ok(()));
        assert_eq!(l.check_source("192.0.2.1".parse().unwrap()), Ok(()));
    }
}
