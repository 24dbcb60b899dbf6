//! Rows a transaction kept until its commit, each kind one `UNNEST` part of
//! the commit's statement whatever the batch size (a round trip and a
//! statement per row was most of a group commit's cost).

use super::super::seal::Seal;
use super::super::{
    ClientEvent, DeliveryAttempt, NewAudit, NewDelivery, SessionRow, TimelineEntry,
};
use super::flush::Flush;

/// Sessions created in this transaction, with their latest state.
pub(super) fn insert_sessions(f: &mut Flush<'_>, rows: &[SessionRow], seal: &Seal) {
    if rows.is_empty() {
        return;
    }
    let col = |g: fn(&SessionRow) -> Option<String>| rows.iter().map(g).collect::<Vec<_>>();
    let int = |g: fn(&SessionRow) -> Option<i64>| rows.iter().map(g).collect::<Vec<_>>();
    f.part(|p| {
        p.sql(
            "INSERT INTO sessions (id, workflow_id, version, status, outcome, reason, reference,
               input, state, created_at, updated_at, ended_at, client_secret_hash,
               client_secret_expires_at, api_key_id, idempotency_key, request_hash, timeline_seq,
               client_seq)
             SELECT * FROM UNNEST(",
        )
        .columns(|c| {
            c.col(col(|r| Some(r.id.clone())), "text[]")
                .col(col(|r| Some(r.workflow_id.clone())), "text[]")
                .col(int(|r| Some(i64::from(r.version))), "int8[]")
                .col(col(|r| Some(r.state.status.as_str().to_string())), "text[]")
                .col(
                    col(|r| r.state.outcome.map(|o| o.as_str().to_string())),
                    "text[]",
                )
                .col(
                    rows.iter()
                        .map(|r| r.state.reason.clone().map(|t| seal.text(t)))
                        .collect::<Vec<_>>(),
                    "text[]",
                )
                .col(col(|r| r.reference.clone()), "text[]")
                .col(
                    rows.iter().map(|r| seal.json(&r.input)).collect::<Vec<_>>(),
                    "text[]",
                )
                .col(
                    rows.iter()
                        .map(|r| seal.text(super::super::sql::state_json(&r.state)))
                        .collect::<Vec<_>>(),
                    "text[]",
                )
                .col(int(|r| Some(r.created_at)), "int8[]")
                .col(int(|r| Some(r.updated_at)), "int8[]")
                .col(int(|r| r.state.ended_ms), "int8[]")
                .col(col(|r| Some(r.client_secret_hash.clone())), "text[]")
                .col(int(|r| Some(r.client_secret_expires_at)), "int8[]")
                .col(col(|r| Some(r.api_key_id.clone())), "text[]")
                .col(col(|r| r.idempotency_key.clone()), "text[]")
                .col(col(|r| r.request_hash.clone()), "text[]")
                .col(int(|r| Some(r.timeline_seq)), "int8[]")
                .col(int(|r| Some(r.client_seq)), "int8[]");
        })
        .sql(")");
    });
}

/// Sessions that existed before this transaction and changed in it.
pub(super) fn update_sessions(f: &mut Flush<'_>, rows: &[SessionRow], seal: &Seal) {
    if rows.is_empty() {
        return;
    }
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    f.part(|p| {
        p.sql(
            "UPDATE sessions AS s SET status = u.status, outcome = u.outcome, reason = u.reason,
               state = u.state, updated_at = u.updated_at, ended_at = u.ended_at,
               timeline_seq = u.timeline_seq, client_seq = u.client_seq
             FROM UNNEST(",
        )
        .columns(|c| {
            c.col(ids.clone(), "text[]")
                .col(
                    rows.iter()
                        .map(|r| r.state.status.as_str().to_string())
                        .collect::<Vec<_>>(),
                    "text[]",
                )
                .col(
                    rows.iter()
                        .map(|r| r.state.outcome.map(|o| o.as_str().to_string()))
                        .collect::<Vec<_>>(),
                    "text[]",
                )
                .col(
                    rows.iter()
                        .map(|r| r.state.reason.clone().map(|t| seal.text(t)))
                        .collect::<Vec<_>>(),
                    "text[]",
                )
                .col(
                    rows.iter()
                        .map(|r| seal.text(super::super::sql::state_json(&r.state)))
                        .collect::<Vec<_>>(),
                    "text[]",
                )
                .col(
                    rows.iter().map(|r| r.updated_at).collect::<Vec<_>>(),
                    "int8[]",
                )
                .col(
                    rows.iter().map(|r| r.state.ended_ms).collect::<Vec<_>>(),
                    "int8[]",
                )
                .col(
                    rows.iter().map(|r| r.timeline_seq).collect::<Vec<_>>(),
                    "int8[]",
                )
                .col(
                    rows.iter().map(|r| r.client_seq).collect::<Vec<_>>(),
                    "int8[]",
                );
        })
        .sql(
            ") AS u(id, status, outcome, reason, state, updated_at, ended_at, timeline_seq,
                    client_seq)
             WHERE s.id = u.id AND s.id = ANY(",
        )
        // The `ANY` keeps the plan an index lookup whatever the statistics.
        .array(ids, "text[]")
        .sql(")");
    });
}

/// Customer webhook deliveries created in this transaction.
pub(super) fn insert_deliveries(f: &mut Flush<'_>, rows: &[NewDelivery], seal: &Seal) {
    if rows.is_empty() {
        return;
    }
    let col = |g: fn(&NewDelivery) -> String| rows.iter().map(g).collect::<Vec<_>>();
    f.part(|p| {
        p.sql(
            "INSERT INTO deliveries (id, session_id, endpoint, event_type, payload, status,
               attempts, created_at, next_attempt_at)
             SELECT d.id, d.session_id, d.endpoint, d.event_type, d.payload, 'pending', 0, d.at, d.at
             FROM UNNEST(",
        )
        .columns(|c| {
            c.col(col(|d| d.id.clone()), "text[]")
                .col(col(|d| d.session_id.clone()), "text[]")
                .col(col(|d| d.endpoint.clone()), "text[]")
                .col(col(|d| d.event_type.clone()), "text[]")
                .col(
                    rows.iter().map(|d| seal.json(&d.payload)).collect::<Vec<_>>(),
                    "text[]",
                )
                .col(rows.iter().map(|d| d.created_at).collect::<Vec<_>>(), "int8[]");
        })
        .sql(") AS d(id, session_id, endpoint, event_type, payload, at)");
    });
}

/// A delivery attempt recorded in this transaction, with the delivery's
/// status after it.
pub(super) struct AttemptWrite {
    pub delivery_id: String,
    pub attempt: DeliveryAttempt,
    pub status: String,
    pub next_attempt_at: Option<i64>,
}

/// Delivery attempts of this transaction, and their deliveries' new status.
/// The deliveries must exist before the statement.
pub(super) fn record_attempts(f: &mut Flush<'_>, rows: &[AttemptWrite]) {
    if rows.is_empty() {
        return;
    }
    f.part(|p| {
        p.sql(
            "INSERT INTO delivery_attempts (delivery_id, attempt, at, status_code, error,
               duration_ms)
             SELECT * FROM UNNEST(",
        )
        .columns(|c| {
            c.col(
                rows.iter()
                    .map(|r| r.delivery_id.clone())
                    .collect::<Vec<_>>(),
                "text[]",
            )
            .col(
                rows.iter().map(|r| r.attempt.attempt).collect::<Vec<_>>(),
                "int8[]",
            )
            .col(
                rows.iter().map(|r| r.attempt.at).collect::<Vec<_>>(),
                "int8[]",
            )
            .col(
                rows.iter()
                    .map(|r| r.attempt.status_code)
                    .collect::<Vec<_>>(),
                "int8[]",
            )
            .col(
                rows.iter()
                    .map(|r| r.attempt.error.clone())
                    .collect::<Vec<_>>(),
                "text[]",
            )
            .col(
                rows.iter()
                    .map(|r| r.attempt.duration_ms)
                    .collect::<Vec<_>>(),
                "int8[]",
            );
        })
        .sql(") ON CONFLICT DO NOTHING");
    });
    // A delivery's last attempt in the batch sets its status.
    let mut last: std::collections::HashMap<&str, &AttemptWrite> = Default::default();
    for r in rows {
        last.insert(r.delivery_id.as_str(), r);
    }
    let last: Vec<&AttemptWrite> = last.into_values().collect();
    let ids: Vec<String> = last.iter().map(|r| r.delivery_id.clone()).collect();
    f.part(|p| {
        p.sql(
            "UPDATE deliveries AS d SET status = u.status, attempts = u.attempt,
               next_attempt_at = u.next_attempt_at,
               delivered_at = COALESCE(u.delivered_at, d.delivered_at)
             FROM UNNEST(",
        )
        .columns(|c| {
            c.col(ids.clone(), "text[]")
                .col(
                    last.iter().map(|r| r.status.clone()).collect::<Vec<_>>(),
                    "text[]",
                )
                .col(
                    last.iter().map(|r| r.attempt.attempt).collect::<Vec<_>>(),
                    "int8[]",
                )
                .col(
                    last.iter().map(|r| r.next_attempt_at).collect::<Vec<_>>(),
                    "int8[]",
                )
                .col(
                    last.iter()
                        .map(|r| (r.status == "delivered").then_some(r.attempt.at))
                        .collect::<Vec<_>>(),
                    "int8[]",
                );
        })
        .sql(
            ") AS u(id, status, attempt, next_attempt_at, delivered_at)
             WHERE d.id = u.id AND d.id = ANY(",
        )
        .array(ids, "text[]")
        .sql(")");
    });
}

/// Timeline entries of many sessions.
pub(super) fn insert_timeline(f: &mut Flush<'_>, entries: &[(String, TimelineEntry)], seal: &Seal) {
    if entries.is_empty() {
        return;
    }
    f.part(|p| {
        p.sql("INSERT INTO timeline (session_id, seq, at, kind, step, data) SELECT * FROM UNNEST(")
            .columns(|c| {
                c.col(
                    entries.iter().map(|(s, _)| s.clone()).collect::<Vec<_>>(),
                    "text[]",
                )
                .col(
                    entries.iter().map(|(_, e)| e.seq).collect::<Vec<_>>(),
                    "int8[]",
                )
                .col(
                    entries.iter().map(|(_, e)| e.at).collect::<Vec<_>>(),
                    "int8[]",
                )
                .col(
                    entries
                        .iter()
                        .map(|(_, e)| e.kind.clone())
                        .collect::<Vec<_>>(),
                    "text[]",
                )
                .col(
                    entries
                        .iter()
                        .map(|(_, e)| e.step.clone())
                        .collect::<Vec<_>>(),
                    "text[]",
                )
                .col(
                    entries
                        .iter()
                        .map(|(_, e)| seal.json(&e.data))
                        .collect::<Vec<_>>(),
                    "text[]",
                );
            })
            .sql(")");
    });
}

/// Audit entries of a batch's commands.
pub(super) fn insert_audit(f: &mut Flush<'_>, entries: &[NewAudit]) {
    if entries.is_empty() {
        return;
    }
    f.part(|p| {
        p.sql("INSERT INTO audit_log (at, action, actor, session_id, target, data) SELECT * FROM UNNEST(")
            .columns(|c| {
                c.col(entries.iter().map(|e| e.at).collect::<Vec<_>>(), "int8[]")
                    .col(
                        entries.iter().map(|e| e.action.clone()).collect::<Vec<_>>(),
                        "text[]",
                    )
                    .col(
                        entries.iter().map(|e| e.actor.clone()).collect::<Vec<_>>(),
                        "text[]",
                    )
                    .col(
                        entries.iter().map(|e| e.session_id.clone()).collect::<Vec<_>>(),
                        "text[]",
                    )
                    .col(
                        entries.iter().map(|e| e.target.clone()).collect::<Vec<_>>(),
                        "text[]",
                    )
                    .col(
                        entries.iter().map(|e| e.data.to_string()).collect::<Vec<_>>(),
                        "text[]",
                    );
            })
            .sql(")");
    });
}

/// Client events of many sessions.
pub(super) fn insert_client_events(
    f: &mut Flush<'_>,
    events: &[(String, ClientEvent)],
    seal: &Seal,
) {
    if events.is_empty() {
        return;
    }
    f.part(|p| {
        p.sql("INSERT INTO client_events (session_id, seq, at, event, data) SELECT * FROM UNNEST(")
            .columns(|c| {
                c.col(
                    events.iter().map(|(s, _)| s.clone()).collect::<Vec<_>>(),
                    "text[]",
                )
                .col(
                    events.iter().map(|(_, e)| e.seq).collect::<Vec<_>>(),
                    "int8[]",
                )
                .col(
                    events.iter().map(|(_, e)| e.at).collect::<Vec<_>>(),
                    "int8[]",
                )
                .col(
                    events
                        .iter()
                        .map(|(_, e)| e.event.clone())
                        .collect::<Vec<_>>(),
                    "text[]",
                )
                .col(
                    events
                        .iter()
                        .map(|(_, e)| seal.json(&e.data))
                        .collect::<Vec<_>>(),
                    "text[]",
                );
            })
            .sql(")");
    });
}
