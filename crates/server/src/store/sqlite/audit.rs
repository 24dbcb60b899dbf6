//! The audit log on SQLite: appends in one transaction, reads by keyset.

use super::super::Result;
use super::super::audit::{AuditFilter, AuditLog, AuditRow, Bind, NewAudit, audit_query};
use super::SqliteStore;
use async_trait::async_trait;
use rusqlite::{Connection, Row, params};

/// Appends entries on a connection (the caller's transaction, if any).
pub(super) fn append(c: &Connection, entries: &[NewAudit]) -> Result<()> {
    let mut stmt = c.prepare_cached(
        "INSERT INTO audit_log (at, action, actor, session_id, target, data) VALUES (?, ?, ?, ?, ?, ?)",
    )?;
    for e in entries {
        stmt.execute(params![
            e.at,
            e.action,
            e.actor,
            e.session_id,
            e.target,
            e.data.to_string()
        ])?;
    }
    Ok(())
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<AuditRow> {
    let data: String = r.get(6)?;
    Ok(AuditRow {
        id: r.get(0)?,
        entry: NewAudit {
            at: r.get(1)?,
            action: r.get(2)?,
            actor: r.get(3)?,
            session_id: r.get(4)?,
            target: r.get(5)?,
            data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
        },
    })
}

#[async_trait]
impl AuditLog for SqliteStore {
    async fn append_audit(&self, entries: &[NewAudit]) -> Result<()> {
        let entries = entries.to_vec();
        self.run(move |c| {
            let tx = c.transaction()?;
            append(&tx, &entries)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn audit_entries(&self, filter: &AuditFilter) -> Result<Vec<AuditRow>> {
        let (sql, binds) = audit_query(filter, 1);
        self.run(move |c| {
            let values: Vec<Box<dyn rusqlite::ToSql>> = binds
                .into_iter()
                .map(|b| -> Box<dyn rusqlite::ToSql> {
                    match b {
                        Bind::Text(t) => Box::new(t),
                        Bind::Int(i) => Box::new(i),
                    }
                })
                .collect();
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(values.iter()), from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }
}
