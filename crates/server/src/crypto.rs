//! Secrets at rest: provider tokens and keys are sealed with AES-256-GCM
//! under the configured `encryption_key` before they reach the database.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;

mod data_keys;

pub use data_keys::{DataKeys, key_id, sealed_parts};

const PREFIX: &str = "sealed:v1:";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("encryption_key must be 32 bytes, base64-encoded")]
    BadKey,
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed value does not open with this key")]
    WrongKey,
    #[error(
        "data sealed under key {0}, which is not configured: add it to `encryption_keys` (or run `gangway keys rotate-encryption` while it still is)"
    )]
    UnknownDataKey(String),
}

/// A new random `encryption_key` value (base64 of 32 bytes).
pub fn generate_key() -> String {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    STANDARD.encode(key)
}

/// Seals and opens secrets, and derives secrets that need not be stored;
/// `Clone` is cheap.
#[derive(Clone)]
pub struct Sealer {
    cipher: std::sync::Arc<Aes256Gcm>,
    /// Keys of before a rotation (`encryption_keys` after the first): tried when
    /// the current one does not open a value.
    previous: std::sync::Arc<Vec<Aes256Gcm>>,
    /// HMAC key for [`Sealer::derive`], itself derived from the key so that
    /// the AES key is never used for anything else.
    derive_key: std::sync::Arc<[u8; 32]>,
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key");
    for p in parts {
        mac.update(p);
        mac.update(&[0]);
    }
    mac.finalize().into_bytes().into()
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// From a base64 (standard) 32-byte key.
    pub fn from_base64(key: &str) -> Result<Sealer, Error> {
        let bytes = STANDARD.decode(key.trim()).map_err(|_| Error::BadKey)?;
        if bytes.len() != 32 {
            return Err(Error::BadKey);
        }
        Ok(Sealer::with_key(&bytes))
    }

    /// From the current key and the previous ones (base64, 32 bytes each).
    pub fn with_previous(key: &str, previous: &[String]) -> Result<Sealer, Error> {
        let mut sealer = Sealer::from_base64(key)?;
        let mut old = Vec::new();
        for p in previous {
            let bytes = STANDARD.decode(p.trim()).map_err(|_| Error::BadKey)?;
            if bytes.len() != 32 {
                return Err(Error::BadKey);
            }
            old.push(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes)));
        }
        sealer.previous = std::sync::Arc::new(old);
        Ok(sealer)
    }

    fn with_key(key: &[u8]) -> Sealer {
        Sealer {
            previous: std::sync::Arc::default(),
            cipher: std::sync::Arc::new(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key))),
            derive_key: std::sync::Arc::new(hmac_sha256(key, &[b"gangway derive v1"])),
        }
    }

    /// A secret for `purpose` and `input` (hex of an HMAC-SHA256 under a key
    /// derived from `encryption_key`): the same for the same input as long
    /// as the key stays, so it can be computed again instead of stored.
    pub fn derive(&self, purpose: &str, input: &str) -> String {
        hex::encode(hmac_sha256(
            self.derive_key.as_slice(),
            &[purpose.as_bytes(), input.as_bytes()],
        ))
    }

    /// A random key, for a process that has none configured: what it seals
    /// cannot be opened after a restart.
    pub fn ephemeral() -> Sealer {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Sealer::with_key(&key)
    }

    pub fn seal(&self, plaintext: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        // Encryption with a fresh nonce cannot fail for inputs this size.
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes())
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(ct);
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out))
    }

    pub fn open(&self, sealed: &str) -> Result<String, Error> {
        let body = sealed.strip_prefix(PREFIX).ok_or(Error::Malformed)?;
        let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| Error::Malformed)?;
        if bytes.len() < 12 + 16 {
            return Err(Error::Malformed);
        }
        let (nonce, ct) = bytes.split_at(12);
        let nonce = Nonce::from_slice(nonce);
        let pt = std::iter::once(self.cipher.as_ref())
            .chain(self.previous.iter())
            .find_map(|c| c.decrypt(nonce, ct).ok())
            .ok_or(Error::WrongKey)?;
        String::from_utf8(pt).map_err(|_| Error::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_previous_key_still_opens_what_it_sealed() {
        let (old, new) = (generate_key(), generate_key());
        let sealed = Sealer::from_base64(&old).expect("test value").seal("token");
        assert!(
            Sealer::from_base64(&new)
                .expect("test value")
                .open(&sealed)
                .is_err()
        );
        let rotated = Sealer::with_previous(&new, std::slice::from_ref(&old)).expect("test value");
        assert_eq!(rotated.open(&sealed).expect("test value"), "token");
        assert_eq!(rotated.open(&rotated.seal("t2")).expect("test value"), "t2");
    }

    #[test]
    fn round_trip_and_wrong_key() {
        let a = Sealer::ephemeral();
        let sealed = a.seal("session-token");
        assert!(!sealed.contains("session-token"));
        assert_eq!(a.open(&sealed).expect("opens"), "session-token");
        assert!(matches!(
            Sealer::ephemeral().open(&sealed),
            Err(Error::WrongKey)
        ));
        assert!(matches!(a.open("plain"), Err(Error::Malformed)));
        let k = STANDARD.encode([7u8; 32]);
        assert!(Sealer::from_base64(&k).is_ok());
        assert!(Sealer::from_base64("c2hvcnQ=").is_err());
    }

    #[test]
    fn derived_secrets_follow_the_key_purpose_and_input() {
        let k = STANDARD.encode([7u8; 32]);
        let a = Sealer::from_base64(&k).expect("key");
        let again = Sealer::from_base64(&k).expect("key");
        let d = a.derive("oih-callback", "r1");
        assert_eq!(d.len(), 64);
        assert_eq!(d, again.derive("oih-callback", "r1"));
        assert_ne!(d, a.derive("oih-callback", "r2"));
        assert_ne!(d, a.derive("other", "r1"));
        assert_ne!(d, Sealer::ephemeral().derive("oih-callback", "r1"));
    }
}
