//! What a batch writes besides session rows, kept until its commit
//! (`AfterCommit`), and the narrow face of it that commands and hooks
//! outside the committer get (`Out`): timeline entries, client events, jobs
//! to run at once, events for other sessions. Chat and child sessions plug
//! in after a transition through `AfterTransition`, registered in
//! runtime/mod.rs, instead of reaching into the committer.

use super::*;
use async_trait::async_trait;

/// What to do once the batch is durable.
#[derive(Default)]
pub(in crate::runtime) struct AfterCommit {
    pub(super) run_now: Vec<Ready>,
    pub(super) earliest_timer: Option<i64>,
    pub(super) publish: Vec<(String, ClientEvent)>,
    pub(super) timeline: Vec<(String, TimelineEntry)>,
    pub(super) client_events: Vec<(String, ClientEvent)>,
    /// Audit entries of the batch's commands (crate::audit).
    pub(in crate::runtime) audit: Vec<crate::store::NewAudit>,
    /// Sessions this batch changed (deduplicated by nobody: waking twice is harmless).
    pub(super) changed: Vec<String>,
    pub(super) transitions: u64,
    /// References to check again for early events once committed (shared
    /// databases only).
    pub(super) adopt: Vec<(String, String)>,
    /// Sessions erased, by trigger (counted once committed).
    pub(super) erased: Vec<crate::runtime::erasure::Trigger>,
    /// The dashboard's step visits and call counts (stats.rs).
    pub(super) stats: super::stats::Noted,
}

impl AfterCommit {
    /// Numbers a timeline entry; entries are written with the batch.
    pub(in crate::runtime) fn timeline(
        &mut self,
        row: &mut SessionRow,
        now: i64,
        kind: &str,
        step: Option<String>,
        data: Value,
    ) {
        row.timeline_seq += 1;
        // An erased session keeps no payload (erasure.rs).
        let data = if row.erased_at.is_some() {
            crate::runtime::erasure::tombstone_data(data)
        } else {
            data
        };
        self.timeline.push((
            row.id.clone(),
            TimelineEntry {
                seq: row.timeline_seq,
                at: now,
                kind: kind.to_string(),
                step,
                data,
            },
        ));
    }

    /// Numbers a client event (written with the batch, pushed to live
    /// streams after the commit); the caller writes the session row.
    pub(super) fn client_event(
        &mut self,
        row: &mut SessionRow,
        now: i64,
        event: &str,
        data: Value,
    ) -> i64 {
        row.client_seq += 1;
        let ev = ClientEvent {
            seq: row.client_seq,
            at: now,
            event: event.to_string(),
            data,
        };
        self.client_events.push((row.id.clone(), ev.clone()));
        self.publish.push((row.id.clone(), ev));
        row.client_seq
    }

    /// Records a client event when what the browser sees changed.
    pub(super) fn client_view(&mut self, row: &mut SessionRow, before: Value, now: i64) -> bool {
        let client_after = view::client_json(row);
        if client_after == before {
            return false;
        }
        let event = if row.state.status == SessionStatus::Ended {
            "ended"
        } else {
            "step"
        };
        self.client_event(row, now, event, client_after);
        true
    }

    pub(super) fn wake_at(&mut self, at: i64) {
        self.earliest_timer = Some(self.earliest_timer.map_or(at, |t| t.min(at)));
    }
}

/// What a transition changed, for the hooks that act on it.
#[derive(Debug, Clone, Copy)]
pub(in crate::runtime) struct Change {
    /// The session ended in this transition.
    pub ended_now: bool,
    /// What its browser sees changed.
    pub view_changed: bool,
}

/// Runs after each transition of a session, in the batch's transaction,
/// once the session's row is written.
#[async_trait]
pub(in crate::runtime) trait AfterTransition: Send + Sync {
    async fn after_transition(
        &self,
        out: &mut Out<'_>,
        row: &SessionRow,
        change: Change,
    ) -> Result<(), crate::store::Error>;
}

/// The batch's transaction and writes, as a command or a hook outside the
/// committer sees them.
pub(in crate::runtime) struct Out<'a> {
    pub tx: &'a mut dyn Tx,
    after: &'a mut AfterCommit,
    pub now: i64,
    /// How long a job run at once is leased.
    pub lease_ms: i64,
    /// Events for other sessions, which the committer ingests (stored,
    /// deduplicated, applied) once the hook returns.
    pub(super) events: Vec<NewEvent>,
}

impl<'a> Out<'a> {
    pub(super) fn new(
        tx: &'a mut dyn Tx,
        after: &'a mut AfterCommit,
        now: i64,
        lease_ms: i64,
    ) -> Out<'a> {
        Out {
            tx,
            after,
            now,
            lease_ms,
            events: Vec::new(),
        }
    }

    pub fn timeline(
        &mut self,
        row: &mut SessionRow,
        kind: &str,
        step: Option<String>,
        data: Value,
    ) {
        self.after.timeline(row, self.now, kind, step, data);
    }

    /// A client event of `row`; returns its sequence number.
    pub fn client_event(&mut self, row: &mut SessionRow, event: &str, data: Value) -> i64 {
        self.after.client_event(row, self.now, event, data)
    }

    /// A client event when what `row`'s browser sees changed since `before`.
    pub fn client_view(&mut self, row: &mut SessionRow, before: Value) -> bool {
        self.after.client_view(row, before, self.now)
    }

    /// Counts an input `row` refused (intake.rs), in its timeline.
    pub fn refused(
        &mut self,
        row: &mut SessionRow,
        kind: &str,
        origin: &str,
        why: crate::runtime::intake::Refused,
    ) {
        crate::runtime::intake::count_refusal(self.after, row, kind, origin, why, self.now);
    }

    /// A job of `row` that runs as soon as the batch commits.
    pub async fn run_now(
        &mut self,
        row: &SessionRow,
        task: Task,
        lease_until: i64,
    ) -> Result<(), crate::store::Error> {
        effects::run_now(self.tx, row, self.after, task, self.now, lease_until).await
    }

    /// Blanks what this batch kept for the session so far (timeline and
    /// client event payloads, events to push, jobs to run once committed):
    /// it is being erased. Its deliveries read their erased row instead of
    /// the body they carried; its calls, polls and timers do not run (their
    /// rows go too); releases and child cancels still do.
    pub fn forget_payloads(&mut self, session_id: &str) {
        self.after.run_now.retain_mut(|job| {
            if job.session_id != session_id {
                return true;
            }
            match &mut job.task {
                Task::Deliver(d) => {
                    d.body = None;
                    true
                }
                Task::Release(_) | Task::CancelChild(_) => true,
                _ => false,
            }
        });
        let empty = || Value::Object(serde_json::Map::new());
        for (id, e) in &mut self.after.timeline {
            if id == session_id {
                e.data = empty();
            }
        }
        for (id, e) in self
            .after
            .client_events
            .iter_mut()
            .chain(self.after.publish.iter_mut())
        {
            if id == session_id {
                e.data = empty();
            }
        }
    }

    /// The customer webhook `event_type` about `row`, to every endpoint
    /// that takes it.
    pub async fn notify(
        &mut self,
        engine: &Arc<Engine>,
        row: &SessionRow,
        event_type: &str,
    ) -> Result<(), crate::store::Error> {
        effects::notify(engine, self.tx, row, event_type, self.now, self.after).await
    }

    /// An audit entry, appended with the batch.
    pub fn audit(&mut self, entry: crate::store::NewAudit) {
        self.after.audit.push(entry);
    }

    /// Counts an erasure once the batch commits.
    pub fn erased(&mut self, trigger: crate::runtime::erasure::Trigger) {
        self.after.erased.push(trigger);
    }

    /// An event for another session (a child's ending for its parent).
    pub fn ingest(&mut self, ev: NewEvent) {
        self.events.push(ev);
    }
}
