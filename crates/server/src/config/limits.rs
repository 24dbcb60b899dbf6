//! `[limits]`: what one caller may make this node hold or store, so that a
//! careless or hostile client cannot grow a session, or the process, without
//! bound.

use super::{ConfigError, key_err};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Dry runs (each an isolated engine) running at once on this node.
    pub dry_runs: usize,
    /// Browser input (signals, 360dialog redirects, chat lines) one
    /// session stores.
    pub signals_per_session: u64,
    /// Event streams and chat sockets open at once for one session on this
    /// node.
    pub streams_per_session: usize,
    /// Timeline entries after which a session takes only the events it
    /// waits for.
    pub timeline_per_session: i64,
    /// Long polls (`GET /v1/sessions/{id}?wait=`) waiting at once on this node.
    pub long_polls: usize,
    /// The longest a long poll waits, whatever it asks for.
    #[serde(with = "humantime_serde")]
    pub long_poll_max_wait: std::time::Duration,
}

impl LimitsConfig {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if self.dry_runs == 0 {
            return Err(key_err("limits.dry_runs", "must be at least 1"));
        }
        if self.signals_per_session == 0 {
            return Err(key_err("limits.signals_per_session", "must be at least 1"));
        }
        if self.streams_per_session == 0 {
            return Err(key_err("limits.streams_per_session", "must be at least 1"));
        }
        if self.long_polls == 0 {
            return Err(key_err("limits.long_polls", "must be at least 1"));
        }
        if self.long_poll_max_wait.is_zero()
            || self.long_poll_max_wait > std::time::Duration::from_secs(300)
        {
            return Err(key_err(
                "limits.long_poll_max_wait",
                "must be between 1ms and 5m (proxies and load balancers cut idle requests)",
            ));
        }
        if self.timeline_per_session < 10 {
            return Err(key_err(
                "limits.timeline_per_session",
                "must be at least 10 (a session's own steps write entries too)",
            ));
        }
        Ok(())
    }
}
