//! The audit log on PostgreSQL: appends in one statement, reads by keyset.

use super::super::Result;
use super::super::audit::{AuditFilter, AuditLog, AuditRow, Bind, NewAudit, audit_query};
use super::PgStore;
use async_trait::async_trait;
use sqlx::{Postgres, QueryBuilder, Row};

/// Appends entries on a connection or in a transaction.
pub(super) async fn append<'e, E: sqlx::Executor<'e, Database = Postgres>>(
    exec: E,
    entries: &[NewAudit],
) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut qb: QueryBuilder<'_, Postgres> =
        QueryBuilder::new("INSERT INTO audit_log (at, action, actor, session_id, target, data) ");
    qb.push_values(entries, |mut b, e| {
        b.push_bind(e.at)
            .push_bind(&e.action)
            .push_bind(&e.actor)
            .push_bind(&e.session_id)
            .push_bind(&e.target)
            .push_bind(e.data.to_string());
    });
    qb.build().execute(exec).await?;
    Ok(())
}

#[async_trait]
impl AuditLog for PgStore {
    async fn append_audit(&self, entries: &[NewAudit]) -> Result<()> {
        append(&mut *self.conn().await?, entries).await
    }

    async fn audit_entries(&self, filter: &AuditFilter) -> Result<Vec<AuditRow>> {
        let (sql, binds) = audit_query(filter, 1);
        let mut query = sqlx::query(&sql);
        for b in binds {
            query = match b {
                Bind::Text(t) => query.bind(t),
                Bind::Int(i) => query.bind(i),
            };
        }
        let rows = query.fetch_all(&mut *self.conn().await?).await?;
        rows.iter()
            .map(|r| {
                let data: String = r.try_get(6)?;
                Ok(AuditRow {
                    id: r.try_get(0)?,
                    entry: NewAudit {
                        at: r.try_get(1)?,
                        action: r.try_get(2)?,
                        actor: r.try_get(3)?,
                        session_id: r.try_get(4)?,
                        target: r.try_get(5)?,
                        data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
                    },
                })
            })
            .collect()
    }
}
