//! Statements that read the same in both dialects, written once. They use
//! `$1`, `$2`... placeholders, numbered in order of first use: PostgreSQL
//! binds them by number, and SQLite takes `$1` as a named parameter that it
//! numbers in order of first appearance, so the same arguments bind alike.
//! What differs (locking, `GREATEST` against `MAX`, batched `UNNEST`
//! writes, `RETURNING`) stays in each backend's folder.

use super::SessionFilter;
use gangway_core::engine::SessionState;

/// A session's state as both backends store it (JSON text).
pub fn state_json(state: &SessionState) -> String {
    serde_json::to_string(state).unwrap_or_else(|_| "{}".into())
}

/// `SELECT` of the columns of `sessions`, in the order each backend's rows
/// module reads them (a macro, so that statement texts are built at
/// compile time).
macro_rules! select_sessions {
    () => {
        "SELECT id, workflow_id, version, reference, input, state, created_at, updated_at,
           client_secret_hash, client_secret_expires_at, api_key_id, idempotency_key,
           request_hash, timeline_seq, client_seq, retain_ms, erased_at FROM sessions"
    };
}

pub const SESSION_BY_ID: &str = concat!(select_sessions!(), " WHERE id = $1");
/// PostgreSQL locks the row; SQLite's `BEGIN IMMEDIATE` holds the database.
pub const SESSION_BY_ID_FOR_UPDATE: &str = concat!(select_sessions!(), " WHERE id = $1 FOR UPDATE");
pub const SESSIONS_BY_IDS_FOR_UPDATE: &str = concat!(
    select_sessions!(),
    " WHERE id = ANY($1) ORDER BY id FOR UPDATE"
);

pub const SET_CLIENT_SECRET: &str =
    "UPDATE sessions SET client_secret_hash = $1, client_secret_expires_at = $2 WHERE id = $3";
pub const FIND_IDEMPOTENT: &str =
    "SELECT id, request_hash FROM sessions WHERE api_key_id = $1 AND idempotency_key = $2";
/// Per workflow version, status and outcome: answered from the index
/// `sessions_counts` alone (it holds every column read).
pub const SESSION_COUNTS: &str = "SELECT workflow_id, version, status, outcome, COUNT(*)
     FROM sessions GROUP BY workflow_id, version, status, outcome";
pub const SESSION_COUNTS_OF: &str = "SELECT workflow_id, version, status, outcome, COUNT(*)
     FROM sessions WHERE workflow_id = $1 GROUP BY workflow_id, version, status, outcome";
pub const COUNT_BY_STATUS: &str = "SELECT status, COUNT(*) AS n FROM sessions GROUP BY status";

pub const WORKFLOW_HASH: &str =
    "SELECT source_hash FROM workflow_versions WHERE workflow_id = $1 AND version = $2";
pub const INSERT_WORKFLOW_VERSION: &str =
    "INSERT INTO workflow_versions (workflow_id, version, source, source_hash, loaded_at)
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";
pub const WORKFLOW_VERSIONS: &str =
    "SELECT workflow_id, version, source FROM workflow_versions ORDER BY workflow_id, version";
pub const WORKFLOW_SOURCE: &str =
    "SELECT source FROM workflow_versions WHERE workflow_id = $1 AND version = $2";

pub const TIMELINE: &str =
    "SELECT seq, at, kind, step, data FROM timeline WHERE session_id = $1 ORDER BY seq";
pub const CLIENT_EVENTS_AFTER: &str = "SELECT seq, at, event, data FROM client_events WHERE session_id = $1 AND seq > $2 ORDER BY seq";

pub const DELIVERIES: &str =
    "SELECT id, session_id, endpoint, event_type, status, attempts, created_at,
       next_attempt_at, delivered_at
     FROM deliveries WHERE session_id = $1 ORDER BY created_at, id";
pub const DELIVERY_ATTEMPTS: &str =
    "SELECT attempt, at, status_code, error, duration_ms FROM delivery_attempts
     WHERE delivery_id = $1 ORDER BY attempt";
pub const DELIVERY_PAYLOAD: &str =
    "SELECT endpoint, event_type, payload, attempts FROM deliveries WHERE id = $1";

pub const CORRELATION: &str =
    "SELECT session_id FROM correlations WHERE namespace = $1 AND reference = $2";

/// The first event of that name won: the session's others are consumed.
pub const CONSUME_EVENTS_NAMED: &str = "UPDATE inbound_events SET consumed_at = $1
     WHERE session_id = $2 AND name = $3 AND consumed_at IS NULL";

/// Erasure (runtime/erasure.rs): the session's own row keeps its tombstone
/// columns; `state` is written by the transaction's session update.
pub const ERASE_SESSION: &str = "UPDATE sessions SET erased_at = $1, input = '{}' WHERE id = $2";
/// Payloads of what the session recorded, sent and received. Rows are
/// rewritten, not deleted: kinds, times and sequence numbers stay, and an
/// inbound event keeps deduplicating a provider's retry.
pub const ERASE_TIMELINE: &str = "UPDATE timeline SET data = '{}' WHERE session_id = $1";
pub const ERASE_CLIENT_EVENTS: &str = "UPDATE client_events SET data = '{}' WHERE session_id = $1";
pub const ERASE_INBOUND_EVENTS: &str =
    "UPDATE inbound_events SET data = '{}' WHERE session_id = $1";
/// Ended sessions past their retention, not yet erased, soonest due first
/// (the partial index `sessions_erase_due` answers it).
pub const ERASURES_DUE: &str = "SELECT id FROM sessions
     WHERE erased_at IS NULL AND ended_at IS NOT NULL AND retain_ms IS NOT NULL
       AND ended_at + retain_ms <= $1
     ORDER BY ended_at + retain_ms LIMIT $2";
pub const ERASURE_BACKLOG: &str = "SELECT COUNT(*) FROM sessions
     WHERE erased_at IS NULL AND ended_at IS NOT NULL AND retain_ms IS NOT NULL
       AND ended_at + retain_ms <= $1";

pub const DELETE_JOB: &str = "DELETE FROM jobs WHERE id = $1";
/// Only jobs no node holds: a leased one is running already.
pub const EXPEDITE_JOBS: &str = "UPDATE jobs SET due_at = $1
     WHERE session_id = $2 AND kind = $3 AND due_at > $1 AND lease_until < $1";

/// An argument of a statement built at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Text(String),
    Int(i64),
}

/// The `sessions` listing for a filter: the statement and its arguments,
/// then the limit as the last argument. Every filter is an equality on an
/// indexed column or a range on `created_at`, and the page is a keyset
/// range on `id` (ids sort by creation time), newest first: each page
/// reads about `limit` index entries whatever the table's size.
pub fn sessions(f: &SessionFilter) -> (String, Vec<Arg>) {
    let mut sql = String::from(concat!(select_sessions!(), " WHERE 1 = 1"));
    let mut args = Vec::with_capacity(6);
    let mut push = |sql: &mut String, cond: &str, arg: Arg| {
        args.push(arg);
        sql.push_str(&format!(" AND {cond} ${}", args.len()));
    };
    let filters = [
        ("status =", &f.status),
        ("workflow_id =", &f.workflow),
        ("reference =", &f.reference),
        ("outcome =", &f.outcome),
    ];
    for (cond, value) in filters {
        if let Some(v) = value {
            push(&mut sql, cond, Arg::Text(v.clone()));
        }
    }
    if let Some(t) = f.created_since {
        push(&mut sql, "created_at >=", Arg::Int(t));
    }
    if let Some(t) = f.created_until {
        push(&mut sql, "created_at <", Arg::Int(t));
    }
    if let Some(before) = &f.before {
        push(&mut sql, "id <", Arg::Text(before.clone()));
    }
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", args.len() + 1));
    (sql, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_number_their_arguments_in_order() {
        let f = SessionFilter {
            workflow: Some("wf".into()),
            before: Some("ses_b".into()),
            limit: 5,
            ..SessionFilter::default()
        };
        let (sql, args) = sessions(&f);
        assert!(
            sql.ends_with("AND workflow_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"),
            "{sql}"
        );
        assert_eq!(args, [Arg::Text("wf".into()), Arg::Text("ses_b".into())]);
        let f = SessionFilter {
            outcome: Some("approved".into()),
            created_since: Some(5),
            created_until: Some(9),
            limit: 5,
            ..SessionFilter::default()
        };
        let (sql, args) = sessions(&f);
        assert!(
            sql.ends_with(
                "AND outcome = $1 AND created_at >= $2 AND created_at < $3 ORDER BY id DESC LIMIT $4"
            ),
            "{sql}"
        );
        assert_eq!(
            args,
            [Arg::Text("approved".into()), Arg::Int(5), Arg::Int(9)]
        );
    }
}
