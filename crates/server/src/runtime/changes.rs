//! The operators' feed of session changes (`GET /v1/sessions/changes`, the
//! console's live session list and detail): which sessions changed, never
//! what changed, so a stream reads each one again (a session is small and
//! the reader's own scope decides what it sees).
//!
//! Fed by the same signals as long polls (watch.rs): on this node, every
//! commit's changed sessions (committer `finish`); from other nodes, the
//! `SessionsChanged` signal each node's PostgreSQL transaction sends with
//! its commit, and the client-event signal. After the cluster channel was
//! interrupted, a `Resync` tells every stream to read its list again. A
//! stream that falls behind gets the same.

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};

/// Changes buffered per stream before it is told to resync.
const BUFFER: usize = 4096;
/// Operator streams open at once on one node: each reads every changed
/// session again, so they are bounded; operators are few.
pub const MAX_STREAMS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// This session changed (created, moved, ended, erased).
    Session(String),
    /// Changes may have been missed: read the list again.
    Resync,
}

pub struct Changes {
    tx: broadcast::Sender<Change>,
    streams: Arc<Semaphore>,
}

impl Default for Changes {
    fn default() -> Self {
        Changes {
            tx: broadcast::Sender::new(BUFFER),
            streams: Arc::new(Semaphore::new(MAX_STREAMS)),
        }
    }
}

/// One operator stream: its changes, and its place among `MAX_STREAMS`.
pub struct Subscription {
    pub changes: broadcast::Receiver<Change>,
    _permit: OwnedSemaphorePermit,
}

impl Changes {
    /// These sessions changed. Nothing is done while nobody listens.
    pub fn changed<'a>(&self, ids: impl IntoIterator<Item = &'a String>) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        for id in ids {
            let _ = self.tx.send(Change::Session(id.clone()));
        }
    }

    pub fn resync(&self) {
        let _ = self.tx.send(Change::Resync);
    }

    /// A new stream, or `None` when `MAX_STREAMS` are open on this node.
    pub fn subscribe(&self) -> Option<Subscription> {
        let permit = self.streams.clone().try_acquire_owned().ok()?;
        Some(Subscription {
            changes: self.tx.subscribe(),
            _permit: permit,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn streams_get_changes_and_are_bounded() {
        let c = Changes::default();
        // Nobody listens: nothing is kept.
        c.changed(&["ses_0".to_string()]);
        let mut s = c.subscribe().unwrap();
        c.changed(&["ses_1".to_string(), "ses_2".to_string()]);
        c.resync();
        assert_eq!(
            s.changes.recv().await.unwrap(),
            Change::Session("ses_1".into())
        );
        assert_eq!(
            s.changes.recv().await.unwrap(),
            Change::Session("ses_2".into())
        );
        assert_eq!(s.changes.recv().await.unwrap(), Change::Resync);
        let more: Vec<Subscription> = (1..MAX_STREAMS).map(|_| c.subscribe().unwrap()).collect();
        assert!(c.subscribe().is_none());
        drop(more);
        assert!(c.subscribe().is_some());
    }
}
