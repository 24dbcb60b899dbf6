//! One process per node id. At start a node takes its `engine.node_id` in
//! the `nodes` table with a random token, and renews a heartbeat every
//! `engine.heartbeat`. Another process that starts with the same id finds
//! the row: if the heartbeat advances while it watches, a live node has the
//! id and it refuses to start (before it frees any lease); if the heartbeat
//! stays still for three intervals, the holder is gone (crashed) and it
//! takes the id over. A clean shutdown deletes the row, so a restart with
//! the same id starts at once; so does a restart after a crash on the same
//! machine (Linux): the row names the process (boot id, PID namespace, pid
//! and start time), and one that no longer runs is gone without waiting.

use crate::store::{self, NodeHolder, Store};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Heartbeats a holder may miss before it counts as gone.
const MISSED: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error(
        "engine.node_id `{node_id}` is in use by a running node (its heartbeat advanced while this \
         process watched; it started {started_ms_ago} ms ago): give every node its own \
         `engine.node_id` (GANGWAY_ENGINE__NODE_ID), or leave it empty for <hostname>:<port>. \
         A node that crashed frees its id {gone_after:?} after its last heartbeat"
    )]
    InUse {
        node_id: String,
        started_ms_ago: i64,
        gone_after: Duration,
    },
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// This process's hold on its node id; renews the heartbeat until `leave`
/// or drop.
pub struct Membership {
    node_id: String,
    token: String,
    store: Weak<dyn Store>,
    beat: tokio::task::JoinHandle<()>,
}

/// Takes `node_id` for this process, waiting up to three heartbeat
/// intervals to tell a crashed holder from a live one.
pub async fn join(
    store: Arc<dyn Store>,
    node_id: &str,
    interval: Duration,
) -> Result<Membership, JoinError> {
    let token = crate::ids::new_id("proc");
    let process = this_process();
    let gone_after = interval * MISSED;
    let gone_ms = i64::try_from(gone_after.as_millis()).unwrap_or(i64::MAX);
    let mut watched: Option<(NodeHolder, Instant)> = None;
    loop {
        let now = crate::ids::now_ms();
        let Some(holder) = store.node_holder(node_id).await? else {
            if store
                .claim_node(node_id, &token, &process, now, None)
                .await?
            {
                break;
            }
            continue;
        };
        let gone = match &watched {
            // It beat (or another process took it) while we watched: alive.
            Some((seen, _)) if *seen != holder => {
                return Err(JoinError::InUse {
                    node_id: node_id.to_string(),
                    started_ms_ago: now - holder.started_at,
                    gone_after,
                });
            }
            Some((_, since)) => since.elapsed() >= gone_after,
            // A heartbeat this old is from a node that is gone; so is a
            // process on this machine that no longer runs.
            None => now - holder.heartbeat_at >= gone_ms || has_ended(&holder.process, &process),
        };
        if gone {
            if store
                .claim_node(node_id, &token, &process, now, Some(&holder))
                .await?
            {
                tracing::warn!(
                    node = %node_id,
                    last_heartbeat_ms_ago = now - holder.heartbeat_at,
                    "took over the node id of a process that stopped without shutting down"
                );
                break;
            }
            watched = None;
            continue;
        }
        if watched.is_none() {
            tracing::info!(
                node = %node_id,
                last_heartbeat_ms_ago = now - holder.heartbeat_at,
                "another process holds this engine.node_id; waiting up to {gone_after:?} to see whether it is alive"
            );
            watched = Some((holder, Instant::now()));
        }
        tokio::time::sleep(interval / 4).await;
    }
    let weak = Arc::downgrade(&store);
    let beat = tokio::spawn(heartbeat(
        weak.clone(),
        node_id.to_string(),
        token.clone(),
        interval,
    ));
    Ok(Membership {
        node_id: node_id.to_string(),
        token,
        store: weak,
        beat,
    })
}

/// This process as `<boot id>/<pid namespace>/<pid>/<start time>`, or
/// empty where /proc does not tell (then only the heartbeat does).
fn this_process() -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id");
    let ns = std::fs::read_link("/proc/self/ns/pid");
    let pid = std::process::id();
    match (boot, ns, start_time(pid)) {
        (Ok(boot), Ok(ns), Some(start)) => {
            format!("{}/{}/{pid}/{start}", boot.trim(), ns.display())
        }
        _ => String::new(),
    }
}

/// The start time of a running process (field 22 of /proc/<pid>/stat).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields after it.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// True when `holder` names a process on this machine and in this PID
/// namespace that no longer runs (its pid is free or reused by another).
fn has_ended(holder: &str, ours: &str) -> bool {
    let parts = |p: &str| -> Option<(String, u32, u64)> {
        let mut it = p.rsplitn(3, '/');
        let start = it.next()?.parse().ok()?;
        let pid = it.next()?.parse().ok()?;
        Some((it.next()?.to_string(), pid, start))
    };
    let (Some((machine, pid, start)), Some((our_machine, ..))) = (parts(holder), parts(ours))
    else {
        return false;
    };
    machine == our_machine && start_time(pid) != Some(start)
}

async fn heartbeat(store: Weak<dyn Store>, node_id: String, token: String, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut lost = false;
    loop {
        tick.tick().await;
        let Some(store) = store.upgrade() else { return };
        match store
            .node_heartbeat(&node_id, &token, crate::ids::now_ms())
            .await
        {
            Ok(true) => lost = false,
            Ok(false) if !lost => {
                lost = true;
                tracing::error!(
                    node = %node_id,
                    "another process took over this engine.node_id (this node's heartbeat had stopped): two processes now run as one node; stop one of them"
                );
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(node = %node_id, error = %e, "node heartbeat failed"),
        }
    }
}

impl Membership {
    /// Gives the id up, so that a restart takes it at once.
    pub async fn leave(self) {
        self.beat.abort();
        if let Some(store) = self.store.upgrade()
            && let Err(e) = store.leave_node(&self.node_id, &self.token).await
        {
            tracing::warn!(error = %e, "shutdown: cannot give up the node id; a restart waits for its heartbeat to go stale");
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.beat.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_ended_is_gone() {
        let me = this_process();
        if me.is_empty() {
            return; // no /proc here
        }
        assert!(!has_ended(&me, &me), "{me}");
        let (prefix, _) = me.rsplit_once('/').unwrap_or_default();
        // Same pid, other start time: the pid was reused.
        assert!(has_ended(&format!("{prefix}/1"), &me));
        // Another machine or namespace: only the heartbeat tells.
        assert!(!has_ended("other-boot/pid:[1]/1/1", &me));
        assert!(!has_ended("", &me));
    }
}
