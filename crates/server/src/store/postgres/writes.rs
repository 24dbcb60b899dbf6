//! Rows a transaction kept until its commit, each kind written in one
//! `UNNEST` statement whatever the batch size (a round trip and a statement
//! per row was most of a group commit's cost).

use super::super::{DeliveryAttempt, NewDelivery, Result, SessionRow};
use sqlx::{Postgres, Transaction};

type Tx = Transaction<'static, Postgres>;

/// Sessions created in this transaction, with their latest state.
pub(super) async fn insert_sessions(tx: &mut Tx, rows: &[SessionRow]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&SessionRow) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    let int = |f: fn(&SessionRow) -> Option<i64>| rows.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO sessions (id, workflow_id, version, status, outcome, reason, reference, input,
           state, created_at, updated_at, ended_at, client_secret_hash, client_secret_expires_at,
           api_key_id, idempotency_key, request_hash, timeline_seq, client_seq)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[],
           $6::text[], $7::text[], $8::text[], $9::text[], $10::int8[], $11::int8[], $12::int8[],
           $13::text[], $14::int8[], $15::text[], $16::text[], $17::text[], $18::int8[], $19::int8[])",
    )
    .bind(col(|r| Some(r.id.clone())))
    .bind(col(|r| Some(r.workflow_id.clone())))
    .bind(int(|r| Some(i64::from(r.version))))
    .bind(col(|r| Some(r.state.status.as_str().to_string())))
    .bind(col(|r| r.state.outcome.map(|o| o.as_str().to_string())))
    .bind(col(|r| r.state.reason.clone()))
    .bind(col(|r| r.reference.clone()))
    .bind(col(|r| Some(r.input.to_string())))
    .bind(col(|r| Some(super::state_json(&r.state))))
    .bind(int(|r| Some(r.created_at)))
    .bind(int(|r| Some(r.updated_at)))
    .bind(int(|r| r.state.ended_ms))
    .bind(col(|r| Some(r.client_secret_hash.clone())))
    .bind(int(|r| Some(r.client_secret_expires_at)))
    .bind(col(|r| Some(r.api_key_id.clone())))
    .bind(col(|r| r.idempotency_key.clone()))
    .bind(col(|r| r.request_hash.clone()))
    .bind(int(|r| Some(r.timeline_seq)))
    .bind(int(|r| Some(r.client_seq)))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Sessions that existed before this transaction and changed in it.
pub(super) async fn update_sessions(tx: &mut Tx, rows: &[SessionRow]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let statuses: Vec<&str> = rows.iter().map(|r| r.state.status.as_str()).collect();
    let outcomes: Vec<Option<&str>> = rows
        .iter()
        .map(|r| r.state.outcome.map(|o| o.as_str()))
        .collect();
    let reasons: Vec<Option<&str>> = rows.iter().map(|r| r.state.reason.as_deref()).collect();
    let states: Vec<String> = rows.iter().map(|r| super::state_json(&r.state)).collect();
    let updated_at: Vec<i64> = rows.iter().map(|r| r.updated_at).collect();
    let ended_at: Vec<Option<i64>> = rows.iter().map(|r| r.state.ended_ms).collect();
    let timeline_seq: Vec<i64> = rows.iter().map(|r| r.timeline_seq).collect();
    let client_seq: Vec<i64> = rows.iter().map(|r| r.client_seq).collect();
    sqlx::query(
        "UPDATE sessions AS s SET status = u.status, outcome = u.outcome, reason = u.reason,
           state = u.state, updated_at = u.updated_at, ended_at = u.ended_at,
           timeline_seq = u.timeline_seq, client_seq = u.client_seq
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[],
                     $7::int8[], $8::int8[], $9::int8[])
           AS u(id, status, outcome, reason, state, updated_at, ended_at, timeline_seq, client_seq)
         WHERE s.id = u.id",
    )
    .bind(ids)
    .bind(statuses)
    .bind(outcomes)
    .bind(reasons)
    .bind(states)
    .bind(updated_at)
    .bind(ended_at)
    .bind(timeline_seq)
    .bind(client_seq)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Customer webhook deliveries created in this transaction.
pub(super) async fn insert_deliveries(tx: &mut Tx, rows: &[NewDelivery]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&NewDelivery) -> String| rows.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO deliveries (id, session_id, endpoint, event_type, payload, status, attempts,
           created_at, next_attempt_at)
         SELECT d.id, d.session_id, d.endpoint, d.event_type, d.payload, 'pending', 0, d.at, d.at
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[])
           AS d(id, session_id, endpoint, event_type, payload, at)",
    )
    .bind(col(|d| d.id.clone()))
    .bind(col(|d| d.session_id.clone()))
    .bind(col(|d| d.endpoint.clone()))
    .bind(col(|d| d.event_type.clone()))
    .bind(col(|d| d.payload.to_string()))
    .bind(rows.iter().map(|d| d.created_at).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A delivery attempt recorded in this transaction, with the delivery's
/// status after it.
pub(super) struct AttemptWrite {
    pub delivery_id: String,
    pub attempt: DeliveryAttempt,
    pub status: String,
    pub next_attempt_at: Option<i64>,
}

/// Delivery attempts of this transaction, and their deliveries' new status,
/// in one statement.
pub(super) async fn record_attempts(tx: &mut Tx, rows: &[AttemptWrite]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    // A delivery's last attempt in the batch sets its status.
    let mut last: std::collections::HashMap<&str, &AttemptWrite> = Default::default();
    for r in rows {
        last.insert(r.delivery_id.as_str(), r);
    }
    let last: Vec<&AttemptWrite> = last.into_values().collect();
    sqlx::query(
        "WITH a AS (INSERT INTO delivery_attempts (delivery_id, attempt, at, status_code, error, duration_ms)
                    SELECT * FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::text[], $6::int8[])
                    ON CONFLICT DO NOTHING)
         UPDATE deliveries AS d SET status = u.status, attempts = u.attempt,
           next_attempt_at = u.next_attempt_at, delivered_at = COALESCE(u.delivered_at, d.delivered_at)
         FROM UNNEST($7::text[], $8::text[], $9::int8[], $10::int8[], $11::int8[])
           AS u(id, status, attempt, next_attempt_at, delivered_at)
         WHERE d.id = u.id AND d.id = ANY($7)",
    )
    .bind(rows.iter().map(|r| r.delivery_id.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.attempt.attempt).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.attempt.at).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.attempt.status_code).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.attempt.error.as_deref()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.attempt.duration_ms).collect::<Vec<_>>())
    .bind(last.iter().map(|r| r.delivery_id.as_str()).collect::<Vec<_>>())
    .bind(last.iter().map(|r| r.status.as_str()).collect::<Vec<_>>())
    .bind(last.iter().map(|r| r.attempt.attempt).collect::<Vec<_>>())
    .bind(last.iter().map(|r| r.next_attempt_at).collect::<Vec<_>>())
    .bind(
        last.iter()
            .map(|r| (r.status == "delivered").then_some(r.attempt.at))
            .collect::<Vec<_>>(),
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}
