//! What the store seals at rest: the columns that hold a person's data
//! (session input and state, timeline and client-event payloads, inbound
//! events, customer webhook payloads, job payloads, review facts) go through `Seal` on
//! their way in and out. Ids, statuses, outcomes, timestamps, references,
//! hashes and the audit log stay clear: they are what the store queries,
//! indexes and orders by, and hold no personal data (docs/deploy.md, "Data
//! protection").

use super::{Error, Result};
use crate::crypto::{DataKeys, sealed_parts};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::borrow::Cow;
use std::sync::Arc;

/// The data keys, or none (`encryption = "off"`, and stores opened by
/// commands that read no personal data).
#[derive(Clone, Default, Debug)]
pub struct Seal(Option<Arc<DataKeys>>);

impl Seal {
    pub fn new(keys: Option<Arc<DataKeys>>) -> Seal {
        Seal(keys)
    }

    pub fn keys(&self) -> Option<&DataKeys> {
        self.0.as_deref()
    }

    /// The stored form of a JSON value.
    pub fn json(&self, value: &Value) -> String {
        self.text(value.to_string())
    }

    /// The stored form of text.
    pub fn text(&self, text: String) -> String {
        match &self.0 {
            Some(keys) => keys.seal(&text),
            None => text,
        }
    }

    /// Plaintext of a stored value; `what` names it in errors.
    pub fn open<'a>(&self, stored: &'a str, what: &str) -> Result<Cow<'a, str>> {
        match &self.0 {
            Some(keys) => keys
                .open(stored)
                .map_err(|e| Error::Corrupt(format!("{what}: {e}"))),
            None if sealed_parts(stored).is_some() => Err(Error::Corrupt(format!(
                "{what} is sealed, and this process has no encryption_key: configure the keys it was sealed under"
            ))),
            None => Ok(Cow::Borrowed(stored)),
        }
    }

    /// A stored JSON value, opened and parsed.
    pub fn parse<T: DeserializeOwned>(&self, stored: &str, what: &str) -> Result<T> {
        let text = self.open(stored, what)?;
        serde_json::from_str(&text).map_err(|e| Error::Corrupt(format!("{what}: {e}")))
    }
}
