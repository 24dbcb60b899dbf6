//! Signals from the other nodes on a shared database: a free job became due
//! (wake the scheduler if it sleeps past it) and client events were
//! committed (read them and feed the streams on this node that follow those
//! sessions), sessions changed (the operators' change streams, changes.rs),
//! an API key was revoked or rotated (drop cached keys). After the channel was interrupted, every followed session is
//! read again and the scheduler wakes, so nothing missed is lost.

use super::Engine;
use crate::store::Signal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;

pub(super) async fn run(engine: Arc<Engine>, mut signals: mpsc::UnboundedReceiver<Signal>) {
    while let Some(signal) = signals.recv().await {
        if engine.is_stopping() {
            return;
        }
        match signal {
            Signal::JobsDue(at) => {
                if at < engine.next_wake.load(Ordering::Relaxed) {
                    engine.wake.notify_one();
                }
            }
            Signal::ClientEvents(events) => {
                engine.changes.changed(events.iter().map(|(id, _)| id));
                for (session_id, seq) in events {
                    engine.session_watch.changed(&session_id);
                    if engine.hub.is_followed(&session_id) {
                        forward(&engine, &session_id, seq - 1).await;
                    }
                }
            }
            Signal::SessionsChanged(ids) => {
                engine.changes.changed(&ids);
                // A long poll of one of them wakes too (a change that made
                // no client event, such as a cancel before any step).
                for id in &ids {
                    engine.session_watch.changed(id);
                }
            }
            Signal::KeyChanged(_) => engine.keys.invalidate(),
            Signal::WorkflowsDeployed => refresh_workflows(&engine).await,
            Signal::Lost => {
                // A key may have changed, a workflow been deployed meanwhile.
                engine.keys.invalidate();
                refresh_workflows(&engine).await;
                engine.wake.notify_one();
                engine.changes.resync();
                for session_id in engine.hub.followed() {
                    forward(&engine, &session_id, 0).await;
                }
            }
        }
    }
}

/// Another node deployed workflow versions: load them from the database.
async fn refresh_workflows(engine: &Engine) {
    if let Err(e) = engine.workflows.refresh(engine.store.as_ref()).await {
        tracing::warn!(error = %e, "cannot load the workflow versions another node deployed");
    }
}

/// Publishes the session's client events after `seq` to this node's streams.
async fn forward(engine: &Engine, session_id: &str, seq: i64) {
    match engine.store.client_events_after(session_id, seq).await {
        Ok(events) => {
            for ev in events {
                engine.hub.publish(session_id, ev);
            }
        }
        Err(e) => tracing::warn!(error = %e, session_id = %session_id, "cannot read client events"),
    }
}
