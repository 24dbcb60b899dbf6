//! Long polls (`GET /v1/sessions/{id}?wait=`): a backend waits for a
//! session's next change without polling. A commit that touches a session
//! wakes its waiters on this node; a change committed on another node wakes
//! them through the client-event signal (cluster.rs), and a waiter re-reads
//! the session at least every [`RECHECK`] so that a change no signal
//! carries is still seen. Only sessions with a waiter have an entry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// The longest a waiter goes without re-reading its session.
pub const RECHECK: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct SessionWatch {
    waiters: Mutex<HashMap<String, Arc<Notify>>>,
}

impl SessionWatch {
    /// A handle that is woken when `session_id` changes; its entry goes
    /// when the last handle for the session is dropped.
    pub fn watch(self: &Arc<Self>, session_id: &str) -> Watcher {
        let mut map = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        let notify = map
            .entry(session_id.to_string())
            .or_insert_with(|| Arc::new(Notify::new()))
            .clone();
        Watcher {
            watch: self.clone(),
            session_id: session_id.to_string(),
            notify,
        }
    }

    /// Wakes the waiters of `session_id` on this node, if any.
    pub fn changed(&self, session_id: &str) {
        let map = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get(session_id) {
            n.notify_waiters();
        }
    }

    /// Sessions with a waiter on this node (for tests and metrics).
    pub fn watched(&self) -> usize {
        self.waiters.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

pub struct Watcher {
    watch: Arc<SessionWatch>,
    session_id: String,
    notify: Arc<Notify>,
}

impl Watcher {
    /// The notifier to wait on; create its `notified()` future before
    /// reading the session, so that a change in between is not missed.
    pub fn notify(&self) -> &Notify {
        &self.notify
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let mut map = self.watch.waiters.lock().unwrap_or_else(|p| p.into_inner());
        // The map's own reference and this one: no other waiter is left.
        if Arc::strong_count(&self.notify) <= 2 {
            map.remove(&self.session_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_change_wakes_the_waiter_and_the_entry_goes_with_it() {
        let watch = Arc::new(SessionWatch::default());
        let w = watch.watch("s1");
        {
            let woken = w.notify().notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            watch.changed("s2");
            watch.changed("s1");
            tokio::time::timeout(Duration::from_secs(5), woken)
                .await
                .expect("woken");
        }
        let second = watch.watch("s1");
        drop(w);
        assert_eq!(watch.watched(), 1);
        drop(second);
        assert_eq!(watch.watched(), 0);
    }
}
