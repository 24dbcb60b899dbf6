//! Data keys: the keys personal data is sealed under at rest (session input
//! and state, timeline and client-event payloads, inbound events, customer
//! webhook payloads, job payloads). Several keys can be configured, one
//! active: new writes use the active one, reads open whichever key the
//! ciphertext names, so keys can rotate while the data is re-sealed in the
//! background (`gangway keys rotate-encryption`).
//!
//! A sealed value is `gw1:<key id>:<base64url(nonce ‖ AES-256-GCM ciphertext)>`;
//! the key id is derived from the key (8 hex digits of a SHA-256), so it
//! needs no configuration and names no secret. Text without the prefix is
//! plaintext (written before encryption was turned on, or with it off) and
//! reads as it is.

use super::Error;
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::Digest;
use std::borrow::Cow;

const PREFIX: &str = "gw1:";

struct DataKey {
    id: String,
    cipher: Aes256Gcm,
}

/// The configured data keys; the first is the active one.
pub struct DataKeys {
    keys: Vec<DataKey>,
}

impl std::fmt::Debug for DataKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        write!(f, "DataKeys({ids:?})")
    }
}

/// The id a key is named by in ciphertexts.
pub fn key_id(key: &[u8]) -> String {
    let digest = sha2::Sha256::new()
        .chain_update(b"gangway data key id\0")
        .chain_update(key)
        .finalize();
    hex::encode(&digest[..4])
}

fn decode_key(b64: &str) -> Result<Vec<u8>, Error> {
    let bytes = STANDARD.decode(b64.trim()).map_err(|_| Error::BadKey)?;
    if bytes.len() != 32 {
        return Err(Error::BadKey);
    }
    Ok(bytes)
}

impl DataKeys {
    /// The active key and the previous ones (read only), base64 of 32 bytes
    /// each. A previous key equal to the active one is dropped.
    pub fn from_base64(active: &str, previous: &[String]) -> Result<DataKeys, Error> {
        let mut keys = Vec::new();
        for b64 in std::iter::once(active).chain(previous.iter().map(String::as_str)) {
            let bytes = decode_key(b64)?;
            let id = key_id(&bytes);
            if keys.iter().any(|k: &DataKey| k.id == id) {
                continue;
            }
            keys.push(DataKey {
                id,
                cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes)),
            });
        }
        Ok(DataKeys { keys })
    }

    /// The id new writes are sealed under.
    pub fn active_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Every configured key id, the active one first.
    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    /// Seals text under the active key.
    pub fn seal(&self, plaintext: &str) -> String {
        let key = &self.keys[0];
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        // Encryption with a fresh nonce cannot fail for inputs this size.
        let ct = key
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes())
            .unwrap_or_default();
        let mut raw = nonce.to_vec();
        raw.extend(ct);
        let mut out = String::with_capacity(PREFIX.len() + 9 + raw.len() * 4 / 3 + 4);
        out.push_str(PREFIX);
        out.push_str(&key.id);
        out.push(':');
        URL_SAFE_NO_PAD.encode_string(raw, &mut out);
        out
    }

    /// The plaintext of a stored value: opened if sealed, as it is if not.
    pub fn open<'a>(&self, stored: &'a str) -> Result<Cow<'a, str>, Error> {
        let Some((id, body)) = sealed_parts(stored) else {
            return Ok(Cow::Borrowed(stored));
        };
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| Error::UnknownDataKey(id.to_string()))?;
        let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| Error::Malformed)?;
        if bytes.len() < 12 + 16 {
            return Err(Error::Malformed);
        }
        let (nonce, ct) = bytes.split_at(12);
        let pt = key
            .cipher
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| Error::WrongKey)?;
        String::from_utf8(pt)
            .map(Cow::Owned)
            .map_err(|_| Error::Malformed)
    }

    /// True when the value is sealed under the active key (nothing to
    /// re-seal).
    pub fn is_current(&self, stored: &str) -> bool {
        sealed_parts(stored).is_some_and(|(id, _)| id == self.active_id())
    }
}

/// `(key id, body)` of a sealed value; `None` for plaintext.
pub fn sealed_parts(stored: &str) -> Option<(&str, &str)> {
    stored.strip_prefix(PREFIX)?.split_once(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> String {
        super::super::generate_key()
    }

    #[test]
    fn sealed_under_the_active_key_opened_by_any_configured_one() {
        let (old, new) = (key(), key());
        let before = DataKeys::from_base64(&old, &[]).expect("test value");
        let sealed = before.seal(r#"{"name":"Jane"}"#);
        assert!(!sealed.contains("Jane"));
        assert!(sealed.starts_with(&format!("gw1:{}:", before.active_id())));
        let after = DataKeys::from_base64(&new, std::slice::from_ref(&old)).expect("test value");
        assert_eq!(
            after.open(&sealed).expect("test value"),
            r#"{"name":"Jane"}"#
        );
        assert!(!after.is_current(&sealed));
        assert!(after.is_current(&after.seal("x")));
        assert_eq!(after.ids(), [after.active_id(), before.active_id()]);
        // Without the old key: named, not guessed.
        let only_new = DataKeys::from_base64(&new, &[]).expect("test value");
        match only_new.open(&sealed) {
            Err(Error::UnknownDataKey(id)) => assert_eq!(id, before.active_id()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn plaintext_reads_as_it_is_and_tampering_is_refused() {
        let keys = DataKeys::from_base64(&key(), &[]).expect("test value");
        assert_eq!(keys.open(r#"{"a":1}"#).expect("test value"), r#"{"a":1}"#);
        assert!(!keys.is_current(r#"{"a":1}"#));
        let sealed = keys.seal("secret");
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("test value");
        assert!(keys.open(&tampered).is_err());
        assert!(matches!(
            DataKeys::from_base64("c2hvcnQ=", &[]),
            Err(Error::BadKey)
        ));
    }
}
