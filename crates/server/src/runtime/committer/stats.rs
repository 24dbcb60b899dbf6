//! What the dashboard counts, noted while a batch changes sessions and
//! written with it (store/stats.rs): each step a session enters and leaves
//! (from the transition's `step.entered` records, so steps passed through
//! in one transition count too), and each provider call or poll attempt
//! per connector and minute. Merged in memory first, so that a batch writes
//! one row per visit and per counter.

use super::*;
use crate::store::{CallStat, StepVisit};
use gangway_core::engine::{Record, SessionState};
use std::collections::BTreeMap;

#[derive(Default)]
pub(in crate::runtime) struct Noted {
    visits: BTreeMap<(String, i64), StepVisit>,
    calls: BTreeMap<(i64, String), CallStat>,
}

impl Noted {
    /// The visits a transition of `row` (still in its old state) to
    /// `next` entered and left.
    pub(super) fn transition(
        &mut self,
        row: &SessionRow,
        records: &[Record],
        next: &SessionState,
        now: i64,
    ) {
        let mut visit = i64::from(row.state.visit);
        let mut step = row.state.step.clone();
        for r in records.iter().filter(|r| r.kind == "step.entered") {
            let Some(entered) = r.step.clone() else {
                continue;
            };
            if let Some(left) = step.take() {
                self.left(row, visit, left, now, entered.clone());
            }
            visit += 1;
            // Back to a step it entered earlier in this batch (a loop of
            // steps without I/O): the statement cannot see that row yet.
            let repeat = self
                .visits
                .range((row.id.clone(), 0)..(row.id.clone(), visit))
                .any(|(_, v)| v.step == entered && v.entered_at.is_some());
            self.merge(StepVisit {
                entered_at: Some(now),
                repeat,
                ..self.base(row, visit, entered.clone())
            });
            step = Some(entered);
        }
        let ends_now =
            row.state.status != SessionStatus::Ended && next.status == SessionStatus::Ended;
        if ends_now && let Some(last) = step {
            let outcome = next.outcome.map_or("none", |o| o.as_str());
            self.left(row, visit, last, now, format!("outcome:{outcome}"));
        }
    }

    fn base(&self, row: &SessionRow, visit: i64, step: String) -> StepVisit {
        StepVisit {
            session_id: row.id.clone(),
            visit,
            workflow_id: row.workflow_id.clone(),
            version: i64::from(row.version),
            step,
            entered_at: None,
            left_at: None,
            exit_to: None,
            repeat: false,
        }
    }

    fn left(&mut self, row: &SessionRow, visit: i64, step: String, now: i64, exit_to: String) {
        self.merge(StepVisit {
            left_at: Some(now),
            exit_to: Some(exit_to),
            ..self.base(row, visit, step)
        });
    }

    fn merge(&mut self, v: StepVisit) {
        let key = (v.session_id.clone(), v.visit);
        match self.visits.get_mut(&key) {
            Some(old) => {
                old.entered_at = old.entered_at.or(v.entered_at);
                old.left_at = v.left_at.or(old.left_at);
                old.exit_to = v.exit_to.or(old.exit_to.take());
                old.repeat |= v.repeat;
            }
            None => {
                self.visits.insert(key, v);
            }
        }
    }

    /// The provider attempts a timeline entry records: `provider.call`
    /// (every attempt), `provider.poll`, `poll.failed`. Entries without an
    /// action (written by an earlier release) are not counted.
    pub(super) fn calls(&mut self, kind: &str, data: &Value, now: i64) {
        let attempts: Vec<&Value> = match kind {
            "provider.call" => data["attempts"]
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default(),
            "provider.poll" | "poll.failed" => vec![data],
            _ => return,
        };
        let Some(action) = data["action"].as_str() else {
            return;
        };
        let connector = action.split('.').next().unwrap_or(action).to_string();
        let minute = now - now.rem_euclid(60_000);
        let stat = self
            .calls
            .entry((minute, connector.clone()))
            .or_insert_with(|| CallStat {
                minute,
                connector,
                ..CallStat::default()
            });
        for a in attempts {
            let failed = kind == "poll.failed"
                || a.get("error").is_some_and(|e| !e.is_null())
                || a["status"]
                    .as_i64()
                    .is_some_and(|s| !(200..300).contains(&s));
            let ms = a["duration_ms"].as_i64().unwrap_or(0).max(0);
            stat.calls += 1;
            stat.errors += i64::from(failed);
            stat.total_ms += ms;
            stat.max_ms = stat.max_ms.max(ms);
        }
    }

    /// What to write, once per batch.
    pub(super) fn take(&mut self) -> (Vec<StepVisit>, Vec<CallStat>) {
        (
            std::mem::take(&mut self.visits).into_values().collect(),
            std::mem::take(&mut self.calls).into_values().collect(),
        )
    }
}
