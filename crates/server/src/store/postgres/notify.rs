//! Cluster signals over PostgreSQL `LISTEN/NOTIFY`. A transaction queues its
//! notifications and they go out with its commit (never for a rolled-back
//! one); every node listens on one dedicated connection and skips its own.

use super::super::{Result, Signal};
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::time::Duration;
use tokio::sync::mpsc;

/// Jobs no node holds became due: payload `<node> <unix ms>`.
pub(super) const JOBS: &str = "gangway_jobs";
/// Client events were committed: payload `{"node": .., "events": [[session, seq], ..]}`.
pub(super) const CLIENT: &str = "gangway_client";
/// Sessions were created or updated: payload `{"node": .., "sessions": [id, ..]}`.
pub(super) const SESSIONS: &str = "gangway_sessions";
/// An API key was revoked or rotated: payload `<node> <key id>`.
pub(super) const KEYS: &str = "gangway_keys";
/// Workflow versions were deployed: payload `<node>`.
pub(super) const WORKFLOWS: &str = "gangway_workflows";
/// PostgreSQL refuses payloads of 8000 bytes and more; stay well below.
const MAX_PAYLOAD: usize = 7000;

pub(super) fn jobs_payload(node: &str, at: i64) -> String {
    format!("{node} {at}")
}

pub(super) fn keys_payload(node: &str, key_id: &str) -> String {
    format!("{node} {key_id}")
}

/// Client-event payloads, split so that each stays under the size limit.
pub(super) fn client_payloads(node: &str, events: &[(String, i64)]) -> Vec<String> {
    let mut out = Vec::new();
    let mut chunk: Vec<Value> = Vec::new();
    let mut size = node.len() + 32;
    for (session, seq) in events {
        let item = json!([session, seq]);
        let len = session.len() + 24;
        if size + len > MAX_PAYLOAD && !chunk.is_empty() {
            out.push(json!({"node": node, "events": chunk}).to_string());
            chunk = Vec::new();
            size = node.len() + 32;
        }
        size += len;
        chunk.push(item);
    }
    if !chunk.is_empty() {
        out.push(json!({"node": node, "events": chunk}).to_string());
    }
    out
}

/// Session-change payloads, split so that each stays under the size limit.
pub(super) fn session_payloads<'a>(
    node: &str,
    ids: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut chunk: Vec<&str> = Vec::new();
    let mut size = node.len() + 32;
    for id in ids {
        let len = id.len() + 4;
        if size + len > MAX_PAYLOAD && !chunk.is_empty() {
            out.push(json!({"node": node, "sessions": chunk}).to_string());
            chunk = Vec::new();
            size = node.len() + 32;
        }
        size += len;
        chunk.push(id);
    }
    if !chunk.is_empty() {
        out.push(json!({"node": node, "sessions": chunk}).to_string());
    }
    out
}

/// The signal a notification carries, unless it came from `node` itself or
/// cannot be read.
pub(super) fn decode(channel: &str, payload: &str, node: &str) -> Option<Signal> {
    match channel {
        JOBS => {
            let (from, at) = payload.split_once(' ')?;
            (from != node).then_some(())?;
            Some(Signal::JobsDue(at.parse().ok()?))
        }
        CLIENT => {
            let v: Value = serde_json::from_str(payload).ok()?;
            (v.get("node")?.as_str()? != node).then_some(())?;
            let events = v
                .get("events")?
                .as_array()?
                .iter()
                .filter_map(|e| Some((e.get(0)?.as_str()?.to_string(), e.get(1)?.as_i64()?)))
                .collect();
            Some(Signal::ClientEvents(events))
        }
        SESSIONS => {
            let v: Value = serde_json::from_str(payload).ok()?;
            (v.get("node")?.as_str()? != node).then_some(())?;
            let ids = v
                .get("sessions")?
                .as_array()?
                .iter()
                .filter_map(|s| Some(s.as_str()?.to_string()))
                .collect();
            Some(Signal::SessionsChanged(ids))
        }
        KEYS => {
            let (from, id) = payload.split_once(' ')?;
            (from != node).then_some(())?;
            Some(Signal::KeyChanged(id.to_string()))
        }
        WORKFLOWS => (payload != node).then_some(Signal::WorkflowsDeployed),
        _ => None,
    }
}

async fn connect(pool: &PgPool) -> std::result::Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener
        .listen_all([JOBS, CLIENT, SESSIONS, KEYS, WORKFLOWS])
        .await?;
    Ok(listener)
}

/// Starts listening; the task reconnects on its own after the database
/// went away and then sends `Signal::Lost`. It ends when the receiver is
/// dropped.
pub(super) async fn listen(pool: PgPool, node: String) -> Result<mpsc::UnboundedReceiver<Signal>> {
    let mut listener = connect(&pool).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let lost = match listener.try_recv().await {
                Ok(Some(n)) => {
                    if let Some(signal) = decode(n.channel(), n.payload(), &node)
                        && tx.send(signal).is_err()
                    {
                        return;
                    }
                    continue;
                }
                Ok(None) => "the connection closed".to_string(),
                Err(e) => e.to_string(),
            };
            tracing::warn!(error = %lost, "lost the database notification channel; reconnecting");
            let mut delay = Duration::from_millis(100);
            listener = loop {
                if tx.is_closed() {
                    return;
                }
                tokio::time::sleep(delay).await;
                match connect(&pool).await {
                    Ok(l) => break l,
                    Err(e) => {
                        tracing::debug!(error = %e, "notification channel: reconnect failed");
                        delay = (delay * 2).min(Duration::from_secs(2));
                    }
                }
            };
            tracing::info!("database notification channel is back");
            if tx.send(Signal::Lost).is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_skip_own() {
        assert_eq!(
            decode(JOBS, &jobs_payload("a", 42), "b"),
            Some(Signal::JobsDue(42))
        );
        assert_eq!(decode(JOBS, &jobs_payload("a", 42), "a"), None);
        let events: Vec<(String, i64)> = (0..1000).map(|i| (format!("ses_{i:030}"), i)).collect();
        let payloads = client_payloads("a", &events);
        assert!(payloads.len() > 1);
        let mut back = Vec::new();
        for p in &payloads {
            assert!(p.len() < 8000, "{}", p.len());
            assert_eq!(decode(CLIENT, p, "a"), None);
            match decode(CLIENT, p, "b") {
                Some(Signal::ClientEvents(e)) => back.extend(e),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(back, events);
        assert_eq!(decode(CLIENT, "not json", "b"), None);
        let ids: Vec<String> = (0..1000).map(|i| format!("ses_{i:028}")).collect();
        let payloads = session_payloads("a", ids.iter().map(String::as_str));
        assert!(payloads.len() > 1);
        let mut back = Vec::new();
        for p in &payloads {
            assert!(p.len() < 8000, "{}", p.len());
            assert_eq!(decode(SESSIONS, p, "a"), None);
            match decode(SESSIONS, p, "b") {
                Some(Signal::SessionsChanged(s)) => back.extend(s),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(back, ids);
        assert_eq!(
            decode(KEYS, &keys_payload("a", "key_1"), "b"),
            Some(Signal::KeyChanged("key_1".into()))
        );
        assert_eq!(decode(KEYS, &keys_payload("a", "key_1"), "a"), None);
        assert_eq!(decode(WORKFLOWS, "a", "b"), Some(Signal::WorkflowsDeployed));
        assert_eq!(decode(WORKFLOWS, "a", "a"), None);
        assert_eq!(decode("other", "x", "b"), None);
    }
}
