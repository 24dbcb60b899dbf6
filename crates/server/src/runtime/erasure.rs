//! Erasure of a session's personal data (issue 20), on request (`DELETE
//! /v1/sessions/{id}/data`) or once its retention ran out (the sweep below).
//!
//! An erasure is a committer command, so it serializes with everything else
//! that writes the session. In one transaction it rewrites the session into
//! a tombstone (id, workflow and version, reference, status, outcome, step,
//! times, provider session ids, `erased_at`), blanks the payloads of its
//! timeline, client events and inbound events, puts the tombstone in place
//! of its deliveries' data, drops its pending timers, polls and calls, and
//! then, as the session's last words: a `session.erased` timeline entry, a
//! `Task::Release` job with purpose `redact` per provider session whose
//! provider can redact (release.rs), a `provider.retained` note for the
//! others (what their documentation says they keep), and the
//! `session.erased` webhook, and the `session.erased` audit entry (ids and
//! the trigger only). Only ended sessions are erased: the API cancels a
//! running one first (audited as a cancel by the same key). Anything written to an erased session
//! later (a release's outcome, a late call result) keeps only the fields
//! of [`KEPT_FIELDS`].
//!
//! Rows are rewritten, so erased values leave the database files too:
//! SQLite zeroes freed space (`secure_delete`, store/sqlite/pool.rs) and
//! each erasure ends with a truncating WAL checkpoint
//! (`Store::reclaim_erased`); PostgreSQL keeps the old row versions as dead
//! tuples until vacuum (docs/deploy.md, "Data protection").

use super::committer::Out;
use super::job::{Release, Task};
use super::{Command, Engine, Error, Reply, Work};
use crate::audit::Actor;
use crate::ids;
use crate::providers;
use crate::store::SessionRow;
use gangway_core::SessionStatus;
use gangway_core::engine::SessionState;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Why a session is erased: the label of `gangway_sessions_erased_total`
/// and of its `session.erased` timeline entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// `DELETE /v1/sessions/{id}/data`.
    Request,
    /// Its retention period ran out.
    Retention,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Request => "request",
            Trigger::Retention => "retention",
        }
    }
}

/// The webhook event an erasure sends.
pub const EVENT: &str = "session.erased";

/// The timeline kind of a provider that keeps its copy.
const RETAINED: &str = "provider.retained";

/// Of what is written to an erased session's timeline later, the fields
/// kept: which provider session, which action, what went wrong; never a
/// result or a request record.
const KEPT_FIELDS: &[&str] = &[
    "connector",
    "provider_session_id",
    "action",
    "error",
    "trigger",
    "note",
];

/// A timeline entry's data as an erased session keeps it.
pub(super) fn tombstone_data(data: Value) -> Value {
    let Value::Object(map) = data else {
        return Value::Object(Map::new());
    };
    Value::Object(
        map.into_iter()
            .filter(|(k, _)| KEPT_FIELDS.contains(&k.as_str()))
            .collect(),
    )
}

/// The state a tombstone keeps: where the session ended and how, and the
/// provider sessions it started (their ids, for the redaction and for the
/// customer to follow up with the provider); nothing it computed or was told.
fn tombstone_state(state: &SessionState) -> SessionState {
    SessionState {
        status: state.status,
        step: state.step.clone(),
        visit: state.visit,
        outcome: state.outcome,
        providers: state.providers.clone(),
        ended_ms: state.ended_ms,
        intake: state.intake.clone(),
        released: state.released.clone(),
        ..SessionState::default()
    }
}

/// The committer's side of an erasure, in the batch's transaction.
/// `Ok(None)`: no such session; `Err(Error::Running)`: not ended yet.
pub(super) async fn erase(
    engine: &Arc<Engine>,
    out: &mut Out<'_>,
    session_id: &str,
    trigger: Trigger,
    actor: &Actor,
) -> Result<Result<Option<SessionRow>, Error>, crate::store::Error> {
    let Some(mut row) = out.tx.lock_session(session_id).await? else {
        return Ok(Ok(None));
    };
    if row.erased_at.is_some() {
        // Idempotent: the same tombstone.
        return Ok(Ok(Some(row)));
    }
    if row.state.status != SessionStatus::Ended {
        return Ok(Err(Error::Running));
    }
    let now = out.now;
    // What this batch already wrote for the session goes too.
    out.forget_payloads(&row.id);
    row.input = Value::Object(Map::new());
    row.state = tombstone_state(&row.state);
    row.erased_at = Some(now);
    row.updated_at = now;
    let view = super::view::session_json(&row);
    out.tx.erase_session(&row.id, now, &view).await?;
    out.timeline(
        &mut row,
        "session.erased",
        None,
        json!({"trigger": trigger.as_str()}),
    );
    // Ids only: the audit log outlives the data (crate::audit).
    out.audit(crate::audit::session(
        crate::audit::action::SESSION_ERASED,
        actor,
        &row.id,
        now,
        json!({"trigger": trigger.as_str()}),
    ));
    let mut seen = Vec::new();
    for p in row.state.providers.clone() {
        if seen.contains(&p) {
            continue;
        }
        seen.push(p.clone());
        let registration = providers::named(&p.connector);
        match registration
            .and_then(|r| r.release.as_ref())
            .and_then(|r| r.redact)
        {
            Some(action) => {
                let task = Task::Release(Release {
                    purpose: super::release::REDACT.into(),
                    action: action.into(),
                    reference: p.provider_session_id.clone(),
                    deadline_ms: now + super::release::WINDOW_MS,
                });
                let lease_until = now + out.lease_ms;
                out.run_now(&row, task, lease_until).await?;
            }
            None => {
                let note = registration.map_or(
                    "this provider keeps its own copy under its own retention",
                    |r| r.retained,
                );
                out.timeline(
                    &mut row,
                    RETAINED,
                    None,
                    json!({
                        "connector": p.connector,
                        "provider_session_id": p.provider_session_id,
                        "note": note,
                    }),
                );
            }
        }
    }
    out.tx.update_session(&row).await?;
    out.notify(engine, &row, EVENT).await?;
    out.erased(trigger);
    Ok(Ok(Some(row)))
}

/// What a session erased on request is canceled with, if it still runs.
const CANCEL_REASON: &str = "canceled for the erasure of its data";

impl Engine {
    /// `DELETE /v1/sessions/{id}/data`: the session, canceled first if it
    /// still runs, and the sessions it started (`run` steps, chat runs,
    /// whose data came from it), each canceled and erased before the
    /// session itself: should one fail, a repeated request still finds
    /// them in the session's timeline. Answers the session's tombstone.
    pub async fn erase_on_request(
        &self,
        session_id: &str,
        actor: &Actor,
    ) -> Result<SessionRow, Error> {
        let row = self
            .store
            .session(session_id)
            .await?
            .ok_or(Error::NotFound)?;
        if row.erased_at.is_some() {
            return Ok(row);
        }
        self.cancel_for_erasure(&row, actor).await?;
        let row = self.erase_tree(session_id, actor).await?;
        if let Err(e) = self.store.reclaim_erased().await {
            tracing::warn!(error = %e, "cannot reclaim the space of erased data; retried at the next erasure");
        }
        Ok(row)
    }

    /// The session's children first (theirs before them), then the session.
    async fn erase_tree(&self, session_id: &str, actor: &Actor) -> Result<SessionRow, Error> {
        for child in self.children_of(session_id).await? {
            let Some(row) = self.store.session(&child).await? else {
                continue;
            };
            if row.erased_at.is_none() {
                self.cancel_for_erasure(&row, actor).await?;
                Box::pin(self.erase_tree(&child, actor)).await?;
            }
        }
        self.erase(session_id, Trigger::Request, actor).await
    }

    /// The sessions this one started, as its timeline names them
    /// (`child.started`, `child.created`: `session_id`; `chat.command`,
    /// `chat.run_started`: `run`).
    async fn children_of(&self, session_id: &str) -> Result<Vec<String>, Error> {
        let mut children: Vec<String> = Vec::new();
        for entry in self.store.timeline(session_id).await? {
            for key in ["session_id", "run"] {
                if let Some(id) = entry.data.get(key).and_then(Value::as_str)
                    && gangway_core::engine::parent_of(id) == Some(session_id)
                    && !children.iter().any(|c| c == id)
                {
                    children.push(id.to_string());
                }
            }
        }
        Ok(children)
    }

    /// Cancels a session that still runs, so that it can be erased.
    async fn cancel_for_erasure(&self, row: &SessionRow, actor: &Actor) -> Result<(), Error> {
        if row.erased_at.is_some() || row.state.status == SessionStatus::Ended {
            return Ok(());
        }
        let cancel = gangway_core::engine::Input::Cancel {
            reason: CANCEL_REASON.into(),
        };
        // It may end on its own meanwhile: erased all the same.
        // Audited as a cancel by the same actor.
        let audit = crate::audit::session(
            crate::audit::action::SESSION_CANCELED,
            actor,
            &row.id,
            ids::now_ms(),
            json!({}),
        );
        self.apply_audited(&row.id, cancel, Some(audit))
            .await
            .map(|_| ())
    }

    /// Erases an ended session's personal data (see the module comment);
    /// the session after it, a tombstone. A session erased before answers
    /// its tombstone again. The caller reclaims the space afterwards.
    async fn erase(
        &self,
        session_id: &str,
        trigger: Trigger,
        actor: &Actor,
    ) -> Result<SessionRow, Error> {
        let (reply, rx) = oneshot::channel();
        self.send(Command {
            work: Work::Erase {
                session_id: session_id.to_string(),
                trigger,
                actor: Arc::new(actor.clone()),
            },
            reply: Reply::Apply(Some(reply)),
        })
        .await?;
        rx.await
            .map_err(|_| Error::ShuttingDown)??
            .ok_or(Error::NotFound)
    }

    async fn reclaim(&self) {
        if let Err(e) = self.store.reclaim_erased().await {
            tracing::warn!(error = %e, "cannot reclaim the space of erased data; retried at the next erasure");
        }
    }
}

/// The retention sweep: every `retention.interval`, up to
/// `retention.batch_size` ended sessions past their period are erased, one
/// command each, then the store reclaims their space; a full batch is
/// followed by the next at once. `gangway_erasure_backlog` is what is due
/// and not erased yet. On several nodes each sweeps: a session two nodes
/// pick is erased once (the second finds the tombstone).
pub(super) async fn sweep(engine: Arc<Engine>) {
    let cfg = engine.config.retention.clone();
    let limit = i64::try_from(cfg.batch_size).unwrap_or(100);
    let mut shutdown = engine.shutdown_signal();
    loop {
        let full = match sweep_once(&engine, limit).await {
            Ok(erased) => erased as i64 == limit,
            Err(e) => {
                tracing::warn!(error = %e, "retention sweep failed; trying again later");
                false
            }
        };
        if engine.is_stopping() {
            return;
        }
        let pause = if full { Duration::ZERO } else { cfg.interval };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One batch: how many sessions it erased.
async fn sweep_once(engine: &Arc<Engine>, limit: i64) -> Result<usize, Error> {
    let now = ids::now_ms();
    let due = engine.store.erasures_due(now, limit).await?;
    let mut erased = 0;
    for id in &due {
        if engine.is_stopping() {
            break;
        }
        match engine.erase(id, Trigger::Retention, &Actor::System).await {
            Ok(_) => erased += 1,
            Err(Error::NotFound | Error::Running) => {}
            Err(e) => {
                tracing::warn!(session_id = %id, error = %e, "erasure failed; retried at the next sweep");
            }
        }
    }
    if erased > 0 {
        engine.reclaim().await;
    }
    let backlog = engine.store.erasure_backlog(ids::now_ms()).await?;
    metrics::gauge!("gangway_erasure_backlog").set(backlog as f64);
    Ok(erased)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_entries_keep_only_identifying_fields() {
        let data = json!({
            "connector": "stripe",
            "provider_session_id": "vs_1",
            "result": {"verified_outputs": {"first_name": "Jan"}},
            "attempts": [{"response": "..."}],
        });
        assert_eq!(
            tombstone_data(data),
            json!({"connector": "stripe", "provider_session_id": "vs_1"})
        );
        assert_eq!(tombstone_data(json!("text")), json!({}));
    }

    #[test]
    fn the_tombstone_keeps_no_vars_output_or_reason() {
        let state = SessionState {
            status: SessionStatus::Ended,
            outcome: Some(gangway_core::Outcome::Approved),
            reason: Some("score 91 for Jan".into()),
            output: Some(json!({"name": "Jan"})),
            vars: [("score".to_string(), json!(91))].into_iter().collect(),
            ended_ms: Some(5),
            ..SessionState::default()
        };
        let t = tombstone_state(&state);
        assert_eq!(t.outcome, state.outcome);
        assert_eq!(t.ended_ms, Some(5));
        assert!(t.reason.is_none() && t.output.is_none() && t.vars.is_empty());
    }
}
