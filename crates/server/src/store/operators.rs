//! Operators (the console's users) and their console sessions as stored.
//! Passwords are kept only as Argon2id hashes and session tokens only as
//! SHA-256 hashes; the policy (roles, lockout, timeouts) is crate::operators.

use super::{NewAudit, Result};
use async_trait::async_trait;

/// An operator account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorRow {
    pub id: String,
    /// Lowercased.
    pub email: String,
    /// `viewer`, `reviewer` or `admin` as stored; a name this build does not
    /// know grants nothing.
    pub role: String,
    /// An Argon2id PHC string.
    pub password_hash: String,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
    /// Consecutive failed sign-ins since the last success.
    pub failed_logins: i64,
    /// Sign-ins are refused until then (Unix ms; 0: not locked).
    pub locked_until: i64,
    pub last_login_at: Option<i64>,
}

/// A signed-in console session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSessionRow {
    /// SHA-256 of the cookie's token (`ids::hash_secret`).
    pub token_hash: String,
    pub operator_id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

/// How a failed sign-in locks the account: from the `after`-th consecutive
/// failure on, for `base_ms` doubled at each further failure, at most `max_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    pub after: i64,
    pub base_ms: i64,
    pub max_ms: i64,
}

impl Lockout {
    /// Until when an account with `failures` consecutive failures is locked
    /// (0: it is not).
    pub fn locked_until(self, failures: i64, now: i64) -> i64 {
        if failures < self.after {
            return 0;
        }
        let doublings = (failures - self.after).min(20) as u32;
        now + self.base_ms.saturating_mul(1 << doublings).min(self.max_ms)
    }
}

/// Operator and console-session verbs, implemented by every backend. Each
/// change appends its audit entry in its own transaction.
#[async_trait]
pub trait Operators: Send + Sync {
    /// Stores a new operator; false (and nothing changes) when one with this
    /// email exists.
    async fn create_operator(&self, op: &OperatorRow, audit: &NewAudit) -> Result<bool>;
    async fn operator_by_email(&self, email: &str) -> Result<Option<OperatorRow>>;
    /// Every operator, oldest first.
    async fn operators(&self) -> Result<Vec<OperatorRow>>;
    /// Replaces the password hash, clears the lockout and ends the
    /// operator's console sessions. False for an unknown id.
    async fn set_operator_password(&self, id: &str, hash: &str, audit: &NewAudit) -> Result<bool>;
    /// Disables the operator (a first `disabled_at` is kept) and ends its
    /// console sessions. False for an unknown id.
    async fn disable_operator(&self, id: &str, at: i64, audit: &NewAudit) -> Result<bool>;
    /// Counts a failed sign-in and locks the account by `lockout`; answers
    /// the new count and lock.
    async fn record_failed_login(
        &self,
        id: &str,
        now: i64,
        lockout: Lockout,
        audit: &NewAudit,
    ) -> Result<(i64, i64)>;
    /// A successful sign-in: the session stored, failures cleared,
    /// `last_login_at` set.
    async fn start_console_session(
        &self,
        session: &ConsoleSessionRow,
        audit: &NewAudit,
    ) -> Result<()>;
    /// The session with this token hash and its operator.
    async fn console_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<(ConsoleSessionRow, OperatorRow)>>;
    /// Marks the session used at `at`.
    async fn touch_console_session(&self, token_hash: &str, at: i64) -> Result<()>;
    /// Ends the session (sign-out, or found expired: then without an audit
    /// entry). False when there was none.
    async fn end_console_session(&self, token_hash: &str, audit: Option<&NewAudit>)
    -> Result<bool>;
}

/// The columns both backends' `operator_from_row` read, in order.
pub(crate) const OPERATOR_COLUMNS: &str = "o.id, o.email, o.role, o.password_hash, o.created_at, \
     o.disabled_at, o.failed_logins, o.locked_until, o.last_login_at";

#[cfg(test)]
mod tests {
    use super::Lockout;

    #[test]
    fn lockout_doubles_from_the_threshold_up_to_its_cap() {
        let l = Lockout {
            after: 5,
            base_ms: 30_000,
            max_ms: 900_000,
        };
        assert_eq!(l.locked_until(4, 1000), 0);
        assert_eq!(l.locked_until(5, 1000), 31_000);
        assert_eq!(l.locked_until(6, 1000), 61_000);
        assert_eq!(l.locked_until(50, 1000), 901_000);
    }
}
