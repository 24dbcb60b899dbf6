//! API keys as stored: a hashed secret per key, its scopes, expiry and
//! revocation, and the secrets a rotation replaced (each valid until its own
//! grace period ends). Secrets themselves are never stored.

use super::{NewAudit, Result};
use async_trait::async_trait;

/// An API key, without any secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    /// Scope names as stored; names this build does not know are kept (a
    /// newer node may have written them) and grant nothing here.
    pub scopes: Vec<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// When the secret was last replaced.
    pub rotated_at: Option<i64>,
    /// Until when a replaced secret still works (the latest, if several are
    /// in their grace period at the time of the read).
    pub previous_expires_at: Option<i64>,
}

/// A key to store.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: String,
    pub name: String,
    /// SHA-256 of the secret (`ids::hash_secret`).
    pub key_hash: String,
    pub scopes: Vec<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// The key a presented secret belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyMatch {
    pub key: ApiKeyRow,
    /// Set when the secret is one a rotation replaced: it works until then.
    pub secret_expires_at: Option<i64>,
}

/// Scopes as one column: names separated by spaces (as OAuth writes them).
pub(crate) fn join_scopes(scopes: &[String]) -> String {
    scopes.join(" ")
}

pub(crate) fn split_scopes(text: &str) -> Vec<String> {
    text.split_ascii_whitespace().map(str::to_string).collect()
}

/// Key management verbs, implemented by every backend. On a shared
/// database, revoking and rotating tell the other nodes (their caches of
/// authenticated keys drop the key at once).
#[async_trait]
pub trait ApiKeys: Send + Sync {
    /// Stores a new key and its audit entry; false (and nothing changes)
    /// when a key with this secret exists already. Every change below
    /// appends its `audit` entry in the change's own transaction, and only
    /// when something changed.
    async fn create_api_key(&self, key: &NewApiKey, audit: &NewAudit) -> Result<bool>;
    /// The key whose current secret, or one of whose replaced secrets, has
    /// this hash (`secret_expires_at` says until when a replaced one works;
    /// replaced secrets are forgotten at the key's next rotation after their
    /// grace). Revoked and expired keys and secrets are returned as such:
    /// the caller says why they are refused. `now` is the read time.
    async fn api_key_by_hash(&self, key_hash: &str, now: i64) -> Result<Option<ApiKeyMatch>>;
    /// Every key, oldest first (`previous_expires_at` as of `now`).
    async fn api_keys(&self, now: i64) -> Result<Vec<ApiKeyRow>>;
    async fn api_key(&self, id: &str, now: i64) -> Result<Option<ApiKeyRow>>;
    /// Revokes the key: none of its secrets works any longer. A key revoked
    /// before keeps its first `revoked_at`. `None` for an unknown id.
    async fn revoke_api_key(
        &self,
        id: &str,
        at: i64,
        audit: &NewAudit,
    ) -> Result<Option<ApiKeyRow>>;
    /// Gives a key that is not revoked a new secret; the current one keeps
    /// working until `grace_until` (not at all when that is not after `at`).
    /// `None` for an unknown or revoked key.
    async fn rotate_api_key(
        &self,
        id: &str,
        new_hash: &str,
        at: i64,
        grace_until: i64,
        audit: &NewAudit,
    ) -> Result<Option<ApiKeyRow>>;
}
