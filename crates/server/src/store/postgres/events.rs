//! Inbound events of the sessions a transaction holds locked, read once
//! when it locks them, then kept in step with its own writes; consumptions
//! are written at commit in one statement. Without this a group commit
//! asked the database again on every new wait ("has an event for it come
//! early?") and spent a statement on every consumption: about four round
//! trips per session on the bench workload.
//!
//! Why the kept list stays complete: an event is given to a session only by
//! a writer that holds that session's lock (an ingest locks the session its
//! reference names before storing the event; a correlation, and the
//! adoption of early events, happen in a transition of the locked session).
//! So once this transaction holds the lock, no other can add an event for
//! that session until it commits. Sessions locked one by one, not up front,
//! are not kept and are asked about as before.

use super::super::seal::Seal;
use super::super::{EventRow, Result};
use super::flush::Flush;
use super::rows;
use sqlx::{Postgres, Row, Transaction};
use std::collections::{BTreeMap, HashMap};

type Tx = Transaction<'static, Postgres>;

#[derive(Default)]
pub(super) struct EventCache {
    /// Unconsumed events of each kept session, oldest first.
    by_session: HashMap<String, Vec<EventRow>>,
    /// Event ids consumed in this transaction, by consumption time.
    consumed: BTreeMap<i64, Vec<i64>>,
}

impl EventCache {
    /// Reads the unconsumed events of sessions just locked.
    pub(super) async fn load(&mut self, tx: &mut Tx, ids: &[String], seal: &Seal) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let found = sqlx::query(
            "SELECT id, session_id, name, source, data FROM inbound_events
             WHERE session_id = ANY($1) AND consumed_at IS NULL ORDER BY id",
        )
        .bind(ids)
        .fetch_all(&mut **tx)
        .await?;
        for id in ids {
            self.by_session.entry(id.clone()).or_default();
        }
        for r in &found {
            let session: String = r.try_get("session_id")?;
            let ev = event(r, seal)?;
            self.add(&session, ev);
        }
        Ok(())
    }

    /// Keeps a session created in this transaction: nothing else can name
    /// it before the commit.
    pub(super) fn keep_new(&mut self, session_id: &str) {
        self.by_session.entry(session_id.to_string()).or_default();
    }

    /// An event given to a session in this transaction.
    pub(super) fn add(&mut self, session_id: &str, ev: EventRow) {
        if let Some(list) = self.by_session.get_mut(session_id) {
            // Adopted early events are older than ones stored since.
            let at = list.partition_point(|e| e.id < ev.id);
            list.insert(at, ev);
        }
    }

    /// The kept session's unconsumed events with one of these names, oldest
    /// first; `None` when the session is not kept.
    pub(super) fn pending(&self, session_id: &str, names: &[String]) -> Option<Vec<EventRow>> {
        let list = self.by_session.get(session_id)?;
        Some(
            list.iter()
                .filter(|e| names.contains(&e.name))
                .cloned()
                .collect(),
        )
    }

    /// True when `id` was consumed in this transaction (not yet written).
    pub(super) fn is_consumed(&self, id: i64) -> bool {
        self.consumed.values().any(|ids| ids.contains(&id))
    }

    pub(super) fn consume(&mut self, id: i64, at: i64) {
        for list in self.by_session.values_mut() {
            list.retain(|e| e.id != id);
        }
        self.consumed.entry(at).or_default().push(id);
    }

    /// Consumes the kept session's unconsumed events of that name; false
    /// when the session is not kept (the caller asks the database).
    pub(super) fn consume_named(&mut self, session_id: &str, name: &str, at: i64) -> bool {
        let Some(list) = self.by_session.get_mut(session_id) else {
            return false;
        };
        let (gone, kept): (Vec<EventRow>, Vec<EventRow>) = std::mem::take(list)
            .into_iter()
            .partition(|e| e.name == name);
        *list = kept;
        self.consumed
            .entry(at)
            .or_default()
            .extend(gone.iter().map(|e| e.id));
        true
    }

    /// Adds the consumptions to the commit's statement.
    pub(super) fn push(&mut self, f: &mut Flush<'_>) {
        let mut ids = Vec::new();
        let mut ats = Vec::new();
        for (at, consumed) in std::mem::take(&mut self.consumed) {
            ats.extend(std::iter::repeat_n(at, consumed.len()));
            ids.extend(consumed);
        }
        if ids.is_empty() {
            return;
        }
        f.part(|p| {
            p.sql("UPDATE inbound_events AS e SET consumed_at = c.at FROM UNNEST(")
                .columns(|c| {
                    c.col(ids.clone(), "int8[]").col(ats, "int8[]");
                })
                // By primary key: the `ANY` keeps the plan an index lookup.
                .sql(") AS c(id, at) WHERE e.id = c.id AND e.id = ANY(")
                .array(ids, "int8[]")
                .sql(")");
        });
    }
}

/// An event row read with `id, name, source, data`.
pub(super) fn event(r: &sqlx::postgres::PgRow, seal: &Seal) -> Result<EventRow> {
    Ok(EventRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        source: r.try_get("source")?,
        data: rows::json(r, "data", seal)?,
    })
}
