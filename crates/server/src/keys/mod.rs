//! API keys: what a key may do (scopes), how its expiry and a rotation's
//! grace period are written, and the JSON a key is shown as (admin API and
//! `gangway keys list --json`). The cache of authenticated keys is cache.rs.

mod cache;

pub use cache::{CacheLookup, CachedKey, KeyCache, LOCAL_TTL, SHARED_TTL};

use crate::store::ApiKeyRow;
use serde_json::{Value, json};
use std::time::Duration;

/// What a key may do. Every `/v1` route that takes an API key requires
/// exactly one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Read sessions, their timelines and webhook deliveries.
    SessionsRead,
    /// Create and cancel sessions.
    SessionsWrite,
    /// Read the provider secrets a session produced (360dialog channel keys).
    SecretsRead,
    /// List the loaded workflows.
    WorkflowsRead,
    /// Dry-run a workflow against the simulators.
    WorkflowsDryRun,
    /// Erase a session's personal data (`DELETE /v1/sessions/{id}/data`).
    /// Never a default, and not part of `admin`: it destroys data, so a
    /// key is given it on purpose.
    SessionsErase,
    /// Manage API keys (`/v1/admin/keys`); implies the review scopes.
    Admin,
    /// Read the review queue (`/v1/reviews`).
    ReviewsRead,
    /// Claim and decide reviews.
    ReviewsDecide,
}

impl Scope {
    pub const ALL: [Scope; 9] = [
        Scope::SessionsRead,
        Scope::SessionsWrite,
        Scope::SecretsRead,
        Scope::WorkflowsRead,
        Scope::WorkflowsDryRun,
        Scope::SessionsErase,
        Scope::Admin,
        Scope::ReviewsRead,
        Scope::ReviewsDecide,
    ];

    /// A key created without `--scope`, and every key made before scopes
    /// existed (migration 3): everything but key management.
    pub const DEFAULT: [Scope; 5] = [
        Scope::SessionsRead,
        Scope::SessionsWrite,
        Scope::SecretsRead,
        Scope::WorkflowsRead,
        Scope::WorkflowsDryRun,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::SessionsRead => "sessions:read",
            Scope::SessionsWrite => "sessions:write",
            Scope::SecretsRead => "secrets:read",
            Scope::WorkflowsRead => "workflows:read",
            Scope::WorkflowsDryRun => "workflows:dry-run",
            Scope::SessionsErase => "sessions:erase",
            Scope::Admin => "admin",
            Scope::ReviewsRead => "reviews:read",
            Scope::ReviewsDecide => "reviews:decide",
        }
    }

    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scopes(u16);

impl Scopes {
    /// The scopes among stored names; names this build does not know (a
    /// newer node wrote them) grant nothing here.
    pub fn from_names(names: &[String]) -> Scopes {
        Scopes(
            names
                .iter()
                .filter_map(|n| Scope::parse(n))
                .fold(0, |bits, s| bits | s.bit()),
        )
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Whether a key with these scopes may use a route requiring `scope`:
    /// `admin` implies the review scopes (an administrator may review; the
    /// defaults, for keys made before they existed, do not hold them).
    pub fn grants(self, scope: Scope) -> bool {
        self.contains(scope)
            || (matches!(scope, Scope::ReviewsRead | Scope::ReviewsDecide)
                && self.contains(Scope::Admin))
    }
}

/// Scope names given by a person (`--scope`, the admin API): each must be
/// known; duplicates go; the order is `Scope::ALL`'s. Empty: the defaults.
pub fn parse_scopes(names: &[String]) -> Result<Vec<String>, String> {
    let mut chosen = Vec::new();
    for name in names.iter().map(|n| n.trim()) {
        let Some(scope) = Scope::parse(name) else {
            return Err(format!(
                "unknown scope `{name}`; the scopes are {}",
                Scope::ALL.map(Scope::as_str).join(", ")
            ));
        };
        chosen.push(scope);
    }
    let list: &[Scope] = if chosen.is_empty() {
        &Scope::DEFAULT
    } else {
        &Scope::ALL
    };
    Ok(list
        .iter()
        .filter(|s| chosen.is_empty() || chosen.contains(s))
        .map(|s| s.as_str().to_string())
        .collect())
}

/// Longest key name.
const MAX_NAME: usize = 100;

/// A key name: 1 to 100 characters, no control characters.
pub fn check_name(name: &str) -> Result<(), String> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > MAX_NAME || n.chars().any(char::is_control) {
        return Err(format!(
            "a key name is 1 to {MAX_NAME} characters without control characters"
        ));
    }
    Ok(())
}

/// How long a rotated key's previous secret keeps working by default.
pub const DEFAULT_ROTATION_GRACE: Duration = Duration::from_secs(24 * 3600);
/// The longest grace a rotation may give: past it, rotating is no longer
/// replacing a secret but keeping two.
pub const MAX_ROTATION_GRACE: Duration = Duration::from_secs(30 * 24 * 3600);

/// A rotation's grace period, e.g. `1h`, `0s` (the old secret stops at once).
pub fn parse_grace(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("`{text}` is not a duration such as 1h or 30m: {e}"))?;
    if d > MAX_ROTATION_GRACE {
        return Err(format!(
            "`{text}` is longer than the 30 days a grace may last"
        ));
    }
    Ok(d)
}

/// A key's expiry, as a duration from `now_ms` (`90d`) or an RFC 3339 time
/// (`2027-01-01T00:00:00Z`); it must lie in the future.
pub fn parse_expiry(text: &str, now_ms: i64) -> Result<i64, String> {
    let text = text.trim();
    let at = if let Ok(d) = humantime::parse_duration(text) {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        now_ms.saturating_add(ms)
    } else {
        let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .map_err(|_| {
                format!(
                    "`{text}` is neither a duration (90d, 12h) nor an RFC 3339 time (2027-01-01T00:00:00Z)"
                )
            })?;
        i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
    };
    if at <= now_ms {
        return Err(format!("`{text}` is not in the future"));
    }
    Ok(at)
}

/// `active`, `expired` or `revoked` at `now_ms`.
pub fn status(key: &ApiKeyRow, now_ms: i64) -> &'static str {
    if key.revoked_at.is_some() {
        "revoked"
    } else if key.expires_at.is_some_and(|e| e <= now_ms) {
        "expired"
    } else {
        "active"
    }
}

/// A key as the admin API and `keys list --json` show it (never a secret).
pub fn key_json(key: &ApiKeyRow, now_ms: i64) -> Value {
    let time = |ms| crate::runtime::view::time_json(ms);
    json!({
        "id": key.id,
        "name": key.name,
        "scopes": key.scopes,
        "status": status(key, now_ms),
        "created_at": time(Some(key.created_at)),
        "expires_at": time(key.expires_at),
        "revoked_at": time(key.revoked_at),
        "rotated_at": time(key.rotated_at),
        "previous_secret_expires_at": time(key.previous_expires_at.filter(|_| key.revoked_at.is_none())),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_in_order_and_refuse_unknown_names() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_scopes(&names(&["admin", "sessions:read", "admin"])).unwrap(),
            names(&["sessions:read", "admin"])
        );
        assert_eq!(parse_scopes(&[]).unwrap().len(), Scope::DEFAULT.len());
        let err = parse_scopes(&names(&["sessions:delete"])).unwrap_err();
        assert!(
            err.contains("sessions:delete") && err.contains("secrets:read"),
            "{err}"
        );
        let set = Scopes::from_names(&names(&["sessions:read", "from-a-newer-node"]));
        assert!(set.contains(Scope::SessionsRead));
        assert!(!set.contains(Scope::Admin));
    }

    #[test]
    fn expiry_is_a_duration_or_a_time_in_the_future() {
        assert_eq!(parse_expiry("1h", 1_000).unwrap(), 3_601_000);
        assert_eq!(
            parse_expiry("2027-01-01T00:00:00Z", 0).unwrap(),
            1_798_761_600_000
        );
        assert!(parse_expiry("2001-01-01T00:00:00Z", 1_798_761_600_000).is_err());
        assert!(parse_expiry("soon", 0).is_err());
        assert!(parse_grace("31d").is_err());
        assert_eq!(parse_grace("0s").unwrap(), Duration::ZERO);
    }
}
