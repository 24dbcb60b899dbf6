//! `GET /v1/sessions/changes` (scope `sessions:read`): a Server-Sent Events
//! stream of sessions as they change, for operators (the console's live
//! session list and detail), on any node of a cluster (runtime/changes.rs
//! says where the changes come from).
//!
//! Events: `ready` once subscribed (read the list after it, so nothing
//! falls in between); `session` with a changed session's JSON (as
//! `GET /v1/sessions/{id}` shows it), each at most once per
//! [`WINDOW`]; `resync` when changes may have been missed (this stream fell
//! behind, or the node lost its cluster channel): read the list again;
//! `reconnect` when the node shuts down.

use super::AppState;
use super::auth::{ApiKey, scope};
use super::client::async_stream;
use super::error::Problem;
use crate::runtime::changes::{Change, MAX_STREAMS};
use crate::runtime::view;
use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures::Stream;
use std::collections::BTreeSet;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// Changes to one session within this window are sent once, read after it:
/// a session that moves through several steps in one burst costs one read.
const WINDOW: Duration = Duration::from_millis(200);
/// At most this many sessions are read per window; more wait for the next.
const BATCH: usize = 200;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/sessions/changes", get(changes))
}

async fn changes(
    State(st): State<AppState>,
    _key: ApiKey<scope::SessionsRead>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Problem> {
    let Some(mut sub) = st.engine.subscribe_session_changes() else {
        return Err(Problem::limit(format!(
            "{MAX_STREAMS} session change streams are open on this node; close one first"
        )));
    };
    let engine = st.engine.clone();
    let mut shutdown = st.engine.shutdown_signal();
    let stream = async_stream(move |tx| async move {
        if tx
            .send(Event::default().event("ready").data("{}"))
            .await
            .is_err()
        {
            return;
        }
        let mut pending: BTreeSet<String> = BTreeSet::new();
        loop {
            // Wait for the first change; then gather the window's others.
            let first = tokio::select! {
                c = sub.changes.recv() => c,
                () = tx.closed() => return,
                _ = async { let _ = shutdown.wait_for(|s| *s).await; } => {
                    let _ = tx.send(Event::default().event("reconnect").retry(Duration::from_millis(500)).data("{}")).await;
                    return;
                }
            };
            let mut resync = false;
            let mut take = |c: Result<Change, RecvError>, pending: &mut BTreeSet<String>| match c {
                Ok(Change::Session(id)) => {
                    pending.insert(id);
                    true
                }
                Ok(Change::Resync) | Err(RecvError::Lagged(_)) => {
                    resync = true;
                    true
                }
                Err(RecvError::Closed) => false,
            };
            if !take(first, &mut pending) {
                return;
            }
            let until = tokio::time::Instant::now() + WINDOW;
            while pending.len() < BATCH {
                tokio::select! {
                    c = sub.changes.recv() => if !take(c, &mut pending) { return },
                    () = tokio::time::sleep_until(until) => break,
                }
            }
            if resync {
                // The list is read again: the sessions gathered are in it.
                pending.clear();
                if tx
                    .send(Event::default().event("resync").data("{}"))
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            }
            for id in std::mem::take(&mut pending) {
                let row = match engine.session(&id).await {
                    Ok(Some(row)) => row,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, session_id = %id, "change stream: cannot read the session");
                        let _ = tx.send(Event::default().event("resync").data("{}")).await;
                        continue;
                    }
                };
                let ev = Event::default()
                    .event("session")
                    .data(view::session_json(&row).to_string());
                if tx.send(ev).await.is_err() {
                    return;
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
