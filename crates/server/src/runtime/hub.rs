//! The event hub: live client events fan out to the browser streams of one
//! session. Only sessions with a connected stream have a channel. Events
//! committed on other nodes reach it through cluster.rs; streams drop
//! events they have already seen (by `seq`), so a repeat is harmless.

use crate::store::ClientEvent;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::broadcast;

#[derive(Default)]
pub struct Hub {
    channels: Mutex<HashMap<String, broadcast::Sender<ClientEvent>>>,
}

impl Hub {
    /// Subscribes, unless `max` streams on this node follow the session
    /// already (`limits.streams_per_session`). A stream counts until its
    /// receiver is dropped.
    pub fn subscribe_at_most(
        &self,
        session_id: &str,
        max: usize,
    ) -> Option<broadcast::Receiver<ClientEvent>> {
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        let tx = map
            .entry(session_id.to_string())
            .or_insert_with(|| broadcast::channel(64).0);
        (tx.receiver_count() < max).then(|| tx.subscribe())
    }

    pub fn publish(&self, session_id: &str, ev: ClientEvent) {
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = map.get(session_id) {
            if tx.receiver_count() == 0 {
                map.remove(session_id);
            } else {
                let _ = tx.send(ev);
            }
        }
    }

    /// True when a stream on this node follows the session.
    pub fn is_followed(&self, session_id: &str) -> bool {
        let map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        map.get(session_id).is_some_and(|t| t.receiver_count() > 0)
    }

    /// The sessions followed by a stream on this node.
    pub fn followed(&self) -> Vec<String> {
        let map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .filter(|(_, t)| t.receiver_count() > 0)
            .map(|(s, _)| s.clone())
            .collect()
    }

    /// Number of sessions with at least one live stream (for metrics).
    pub fn streams(&self) -> usize {
        let map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        map.values().filter(|t| t.receiver_count() > 0).count()
    }
}
