//! Re-sealing after a key rotation (`gangway keys rotate-encryption`): every
//! sealed column, read in bounded batches by primary key (keyset, so a batch
//! costs the same at the start and the end of a table), each value not under
//! the active key (an older key, or plaintext written before encryption was
//! on) sealed again and written back only if it is still the value read, so
//! that a running server's newer write always wins. Running it again resumes
//! where a crash stopped it: it skips what is already current.

use super::seal::Seal;
use super::{Error, Result};

/// A table with sealed columns, and the primary key it is walked by.
#[derive(Debug)]
pub struct SealedTable {
    pub table: &'static str,
    /// Primary key columns; `true` for an integer column.
    pub key: &'static [(&'static str, bool)],
    pub columns: &'static [&'static str],
}

/// Every table that holds sealed values (store/seal.rs lists why).
pub const SEALED: &[SealedTable] = &[
    SealedTable {
        table: "sessions",
        key: &[("id", false)],
        columns: &["input", "state", "reason"],
    },
    SealedTable {
        table: "timeline",
        key: &[("session_id", false), ("seq", true)],
        columns: &["data"],
    },
    SealedTable {
        table: "client_events",
        key: &[("session_id", false), ("seq", true)],
        columns: &["data"],
    },
    SealedTable {
        table: "inbound_events",
        key: &[("id", true)],
        columns: &["data"],
    },
    SealedTable {
        table: "deliveries",
        key: &[("id", false)],
        columns: &["payload"],
    },
    SealedTable {
        table: "jobs",
        key: &[("id", true)],
        columns: &["payload"],
    },
    // What a review step hands the reviewer, rendered from the state.
    SealedTable {
        table: "reviews",
        key: &[("session_id", false)],
        columns: &["facts"],
    },
];

/// One part of a primary key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    Text(String),
    Int(i64),
}

/// What one batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Resealed {
    /// Rows read.
    pub rows: u64,
    /// Values written again under the active key.
    pub values: u64,
    /// Values left because a writer changed them meanwhile (already under
    /// the active key, then).
    pub raced: u64,
    /// Where the next batch starts; `None` at the end of the table.
    pub next: Option<Vec<KeyPart>>,
}

impl SealedTable {
    /// The batch read: key columns, then the sealed columns, after `$1..`
    /// (the cursor, when `after`) in key order, at most `$n` rows.
    pub(crate) fn select(&self, after: bool) -> String {
        let keys: Vec<&str> = self.key.iter().map(|(k, _)| *k).collect();
        let mut sql = format!(
            "SELECT {}, {} FROM {}",
            keys.join(", "),
            self.columns.join(", "),
            self.table
        );
        let n = keys.len();
        if after {
            let params: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
            sql.push_str(&format!(
                " WHERE ({}) > ({})",
                keys.join(", "),
                params.join(", ")
            ));
        }
        let limit = if after { n + 1 } else { 1 };
        sql.push_str(&format!(" ORDER BY {} LIMIT ${limit}", keys.join(", ")));
        sql
    }

    /// The compare-and-set write of one column: `$1` the new value, `$2`
    /// the value read, then the key.
    pub(crate) fn update(&self, column: &str) -> String {
        let keys: Vec<String> = self
            .key
            .iter()
            .enumerate()
            .map(|(i, (k, _))| format!("{k} = ${}", i + 3))
            .collect();
        format!(
            "UPDATE {} SET {column} = $1 WHERE {column} = $2 AND {}",
            self.table,
            keys.join(" AND ")
        )
    }
}

/// The value to write instead of `stored`, if it is not under the active
/// key; an error if it cannot be opened (a key missing from the config).
pub(crate) fn resealed(seal: &Seal, stored: &str, what: &str) -> Result<Option<String>> {
    let keys = seal.keys().ok_or_else(|| {
        Error::Corrupt("re-sealing needs encryption on and an encryption_key".into())
    })?;
    if keys.is_current(stored) {
        return Ok(None);
    }
    let plain = seal.open(stored, what)?;
    Ok(Some(keys.seal(&plain)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_walk_the_primary_key_and_write_only_what_they_read() {
        let t = &SEALED[1];
        assert_eq!(
            t.select(false),
            "SELECT session_id, seq, data FROM timeline ORDER BY session_id, seq LIMIT $1"
        );
        assert_eq!(
            t.select(true),
            "SELECT session_id, seq, data FROM timeline WHERE (session_id, seq) > ($1, $2) ORDER BY session_id, seq LIMIT $3"
        );
        assert_eq!(
            t.update("data"),
            "UPDATE timeline SET data = $1 WHERE data = $2 AND session_id = $3 AND seq = $4"
        );
    }

    #[test]
    fn only_values_off_the_active_key_are_sealed_again() {
        use crate::crypto::{DataKeys, generate_key};
        use std::sync::Arc;
        let (old, new) = (generate_key(), generate_key());
        let before = DataKeys::from_base64(&old, &[]).expect("test value");
        let after = Seal::new(Some(Arc::new(
            DataKeys::from_base64(&new, std::slice::from_ref(&old)).expect("test value"),
        )));
        let sealed_old = before.seal("{\"a\":1}");
        let again = resealed(&after, &sealed_old, "data")
            .expect("test value")
            .expect("test value");
        assert!(after.keys().expect("test value").is_current(&again));
        assert_eq!(after.open(&again, "data").expect("test value"), "{\"a\":1}");
        assert_eq!(resealed(&after, &again, "data").expect("test value"), None);
        let from_plain = resealed(&after, "{\"b\":2}", "data")
            .expect("test value")
            .expect("test value");
        assert_eq!(
            after.open(&from_plain, "data").expect("test value"),
            "{\"b\":2}"
        );
        assert!(resealed(&Seal::default(), "{}", "data").is_err());
    }
}
