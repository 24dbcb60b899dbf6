//! What a session takes from outside, bounded: nothing after its end;
//! browser input (signals, 360dialog redirects, chat lines) up to
//! `limits.signals_per_session`; and once its timeline holds
//! `limits.timeline_per_session` entries, only the events it waits for.
//! A refused input is never stored: it is counted in the session
//! (`intake.refused`, shown as `refused_events`), and only the first gets a
//! timeline entry, so replaying a used link a thousand times costs a counter.

use super::committer::AfterCommit;
use crate::config::LimitsConfig;
use crate::store::{NewEvent, SessionRow};
use gangway_core::SessionStatus;
use serde_json::json;

/// Why an input was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The session has ended.
    Ended,
    /// The session stored `limits.signals_per_session` browser inputs.
    Signals,
    /// The session's timeline reached `limits.timeline_per_session`.
    Timeline,
}

impl Refused {
    pub fn metric(self) -> &'static str {
        match self {
            Refused::Ended => "refused_ended",
            Refused::Signals | Refused::Timeline => "refused_limit",
        }
    }

    /// For the timeline and for problem details.
    pub fn reason(self) -> &'static str {
        match self {
            Refused::Ended => "the session has ended",
            Refused::Signals => {
                "the session has stored as many signals and chat lines as it may (limits.signals_per_session)"
            }
            Refused::Timeline => {
                "the session's timeline is full (limits.timeline_per_session); it takes only the events it waits for"
            }
        }
    }
}

/// Input that a browser sent, counted against `signals_per_session`.
fn from_browser(ev: &NewEvent) -> bool {
    ev.source == "browser" || ev.source == "dialog360:redirect"
}

pub(super) fn waits_for(row: &SessionRow, event: &str) -> bool {
    row.state
        .wait
        .as_ref()
        .is_some_and(|w| w.events.iter().any(|e| e == event))
}

/// Whether the session refuses this event, and why.
pub(super) fn refusal(limits: &LimitsConfig, row: &SessionRow, ev: &NewEvent) -> Option<Refused> {
    if row.state.status == SessionStatus::Ended {
        return Some(Refused::Ended);
    }
    if from_browser(ev) && row.state.intake.signals >= limits.signals_per_session {
        return Some(Refused::Signals);
    }
    timeline_full(limits, row, &ev.name)
}

/// A chat line: refused like a signal (the caller has checked the end).
pub(super) fn chat_refusal(limits: &LimitsConfig, row: &SessionRow) -> Option<Refused> {
    if row.state.intake.signals >= limits.signals_per_session {
        return Some(Refused::Signals);
    }
    // A line is never waited for as an event: the timeline bound applies.
    timeline_full(limits, row, "")
}

/// An entry the session did not ask for (an audit record) once the
/// timeline is full.
pub(super) fn record_refusal(limits: &LimitsConfig, row: &SessionRow) -> Option<Refused> {
    (row.timeline_seq >= limits.timeline_per_session).then_some(Refused::Timeline)
}

fn timeline_full(limits: &LimitsConfig, row: &SessionRow, event: &str) -> Option<Refused> {
    (row.timeline_seq >= limits.timeline_per_session && !waits_for(row, event))
        .then_some(Refused::Timeline)
}

/// Counts a refused input; the first one of the session gets a timeline
/// entry (`events.refused`), later ones only the count. The caller writes
/// the row.
pub(super) fn refuse(
    after: &mut AfterCommit,
    row: &mut SessionRow,
    ev: &NewEvent,
    why: Refused,
    now: i64,
) {
    count_refusal(after, row, &ev.name, &ev.source, why, now);
}

pub(super) fn count_refusal(
    after: &mut AfterCommit,
    row: &mut SessionRow,
    event: &str,
    source: &str,
    why: Refused,
    now: i64,
) {
    row.state.intake.refused += 1;
    if row.state.intake.refused == 1 {
        let step = row.state.step.clone();
        after.timeline(
            row,
            now,
            "events.refused",
            step,
            json!({
                "event": event,
                "source": source,
                "reason": why.reason(),
                "note": "the first input refused; the session's `refused_events` counts them all",
            }),
        );
    }
}

/// An event was stored for the session.
pub(super) fn stored(row: &mut SessionRow, ev: &NewEvent) {
    if from_browser(ev) {
        row.state.intake.signals += 1;
    }
}
