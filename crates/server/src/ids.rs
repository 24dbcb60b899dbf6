//! Identifiers and secrets: prefixed, time-sortable ids and random secrets
//! that are stored only as SHA-256 hashes.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Whether the Unix time `t` lies within `tolerance` of `now` (same unit:
/// seconds). Signature schemes check their timestamps with it: the distance
/// is an unsigned difference, so no timestamp a sender can write (`i64::MIN`,
/// `now - 2^63`) overflows, wraps into the window or panics.
pub fn within_tolerance(now: i64, t: i64, tolerance: std::time::Duration) -> bool {
    now.abs_diff(t) <= tolerance.as_secs()
}

/// `prefix_` + 12 hex digits of milliseconds + 16 random hex digits: sortable
/// by creation time, so cursors can page by id.
pub fn new_id(prefix: &str) -> String {
    let ms = u64::try_from(now_ms()).unwrap_or_default();
    let r = rand::rng().next_u64();
    format!("{prefix}_{ms:012x}{r:016x}")
}

/// A random secret with a readable prefix, 32 bytes of entropy.
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}_{}", hex::encode(bytes))
}

/// Hex SHA-256: how API keys and client secrets are stored and looked up.
/// The secrets are 256-bit random values, so a fast hash is the right tool.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Constant-time equality for secrets.
pub fn secure_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Hex SHA-256 of arbitrary bytes (request fingerprints, event keys).
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
