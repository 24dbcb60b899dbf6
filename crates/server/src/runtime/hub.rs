//! The event hub: live client events fan out to the browser streams of one
//! session. Only sessions with a connected stream have a channel.

use crate::store::ClientEvent;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::broadcast;

#[derive(Default)]
pub struct Hub {
    channels: Mutex<HashMap<String, broadcast::Sender<ClientEvent>>>,
}

impl Hub {
    pub fn subscribe(&self, session_id: &str) -> broadcast::Receiver<ClientEvent> {
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(session_id.to_string())
            .or_insert_with(|| broadcast::channel(64).0)
            .subscribe()
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

    /// Number of sessions with at least one live stream (for metrics).
    pub fn streams(&self) -> usize {
        let map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        map.values().filter(|t| t.receiver_count() > 0).count()
    }
}
