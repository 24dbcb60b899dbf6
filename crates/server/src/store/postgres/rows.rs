//! Rows to domain values, read by column name.

use super::super::seal::Seal;
use super::super::{ClientEvent, Error, Job, JobKind, Result, SessionRow, TimelineEntry};
use serde_json::Value;
use sqlx::Row;
use sqlx::postgres::PgRow;

/// A sealed JSON column, opened.
pub(super) fn json(row: &PgRow, col: &str, seal: &Seal) -> Result<Value> {
    let text: String = row.try_get(col)?;
    seal.parse(&text, col)
}

pub(super) fn session(row: &PgRow, seal: &Seal) -> Result<SessionRow> {
    let state: String = row.try_get("state")?;
    let version: i64 = row.try_get("version")?;
    Ok(SessionRow {
        id: row.try_get("id")?,
        workflow_id: row.try_get("workflow_id")?,
        version: u32::try_from(version).map_err(|_| Error::Corrupt("version".into()))?,
        reference: row.try_get("reference")?,
        input: json(row, "input", seal)?,
        state: seal.parse(&state, "session state")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        client_secret_hash: row.try_get("client_secret_hash")?,
        client_secret_expires_at: row.try_get("client_secret_expires_at")?,
        api_key_id: row.try_get("api_key_id")?,
        idempotency_key: row.try_get("idempotency_key")?,
        request_hash: row.try_get("request_hash")?,
        timeline_seq: row.try_get("timeline_seq")?,
        client_seq: row.try_get("client_seq")?,
    })
}

pub(super) fn job(row: &PgRow, seal: &Seal) -> Result<Job> {
    let kind: String = row.try_get("kind")?;
    Ok(Job {
        id: row.try_get("id")?,
        session_id: row.try_get("session_id")?,
        kind: JobKind::parse(&kind).ok_or_else(|| Error::Corrupt(format!("job kind `{kind}`")))?,
        payload: json(row, "payload", seal)?,
        due_at: row.try_get("due_at")?,
        attempts: row.try_get("attempts")?,
    })
}

pub(super) fn timeline(row: &PgRow, seal: &Seal) -> Result<TimelineEntry> {
    Ok(TimelineEntry {
        seq: row.try_get("seq")?,
        at: row.try_get("at")?,
        kind: row.try_get("kind")?,
        step: row.try_get("step")?,
        data: json(row, "data", seal)?,
    })
}

pub(super) fn client_event(row: &PgRow, seal: &Seal) -> Result<ClientEvent> {
    Ok(ClientEvent {
        seq: row.try_get("seq")?,
        at: row.try_get("at")?,
        event: row.try_get("event")?,
        data: json(row, "data", seal)?,
    })
}
