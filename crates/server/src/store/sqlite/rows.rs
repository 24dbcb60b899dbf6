//! Rows to domain values: one place that knows the column order (that of
//! `select_sessions!` in store/sql.rs).

use super::super::{Error, Result, SessionRow, seal::Seal, sql};
use gangway_core::engine::SessionState;
use rusqlite::{Connection, Row};
use serde_json::Value;

/// A sealed JSON column, opened.
pub(super) fn json_col(row: &Row<'_>, idx: usize, what: &str, seal: &Seal) -> Result<Value> {
    let text: String = row.get(idx)?;
    seal.parse(&text, what)
}

pub(super) fn session(row: &Row<'_>, seal: &Seal) -> Result<SessionRow> {
    let state_text: String = row.get(5)?;
    let state: SessionState = seal.parse(&state_text, "session state")?;
    let version: i64 = row.get(2)?;
    Ok(SessionRow {
        id: row.get(0)?,
        workflow_id: row.get(1)?,
        version: u32::try_from(version).map_err(|_| Error::Corrupt("version".into()))?,
        reference: row.get(3)?,
        input: json_col(row, 4, "input", seal)?,
        state,
        created_at: row.get(6)?,
        updated_at: row.get(7)?,
        client_secret_hash: row.get(8)?,
        client_secret_expires_at: row.get(9)?,
        api_key_id: row.get(10)?,
        idempotency_key: row.get(11)?,
        request_hash: row.get(12)?,
        timeline_seq: row.get(13)?,
        client_seq: row.get(14)?,
    })
}

/// All rows of a prepared query, each converted by `f`.
pub(super) fn collect<T>(
    stmt: &mut rusqlite::Statement<'_>,
    params: impl rusqlite::Params,
    f: impl Fn(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(f(row)?);
    }
    Ok(out)
}

pub(super) fn session_by_id(
    conn: &Connection,
    id: &str,
    seal: &Seal,
) -> Result<Option<SessionRow>> {
    let mut stmt = conn.prepare_cached(sql::SESSION_BY_ID)?;
    let mut rows = stmt.query([id])?;
    rows.next()?.map(|r| session(r, seal)).transpose()
}
