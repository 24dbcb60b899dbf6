//! Operators and console sessions on PostgreSQL. Every node reads them from
//! the database on each console request, so a sign-out or a disabled
//! operator holds on all nodes at once, with nothing to notify.

use super::super::operators::{
    ConsoleSessionRow, Lockout, OPERATOR_COLUMNS, OperatorRow, Operators,
};
use super::super::{NewAudit, Result};
use super::PgStore;
use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgRow;

fn operator_from_row(r: &PgRow, at: usize) -> Result<OperatorRow> {
    Ok(OperatorRow {
        id: r.try_get(at)?,
        email: r.try_get(at + 1)?,
        role: r.try_get(at + 2)?,
        password_hash: r.try_get(at + 3)?,
        created_at: r.try_get(at + 4)?,
        disabled_at: r.try_get(at + 5)?,
        failed_logins: r.try_get(at + 6)?,
        locked_until: r.try_get(at + 7)?,
        last_login_at: r.try_get(at + 8)?,
    })
}

#[async_trait]
impl Operators for PgStore {
    async fn create_operator(&self, op: &OperatorRow, audit: &NewAudit) -> Result<bool> {
        let mut tx = self.begin_tx().await?;
        let created = sqlx::query(
            "INSERT INTO operators (id, email, role, password_hash, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (email) DO NOTHING",
        )
        .bind(&op.id)
        .bind(&op.email)
        .bind(&op.role)
        .bind(&op.password_hash)
        .bind(op.created_at)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if created {
            super::audit::append(&mut *tx, std::slice::from_ref(audit)).await?;
        }
        tx.commit().await?;
        Ok(created)
    }

    async fn operator_by_email(&self, email: &str) -> Result<Option<OperatorRow>> {
        sqlx::query(&format!(
            "SELECT {OPERATOR_COLUMNS} FROM operators o WHERE o.email = $1"
        ))
        .bind(email)
        .fetch_optional(&mut *self.conn().await?)
        .await?
        .map(|r| operator_from_row(&r, 0))
        .transpose()
    }

    async fn operators(&self) -> Result<Vec<OperatorRow>> {
        sqlx::query(&format!(
            "SELECT {OPERATOR_COLUMNS} FROM operators o ORDER BY o.created_at, o.id"
        ))
        .fetch_all(&mut *self.conn().await?)
        .await?
        .iter()
        .map(|r| operator_from_row(r, 0))
        .collect()
    }

    async fn set_operator_password(&self, id: &str, hash: &str, audit: &NewAudit) -> Result<bool> {
        let mut tx = self.begin_tx().await?;
        let changed = sqlx::query(
            "UPDATE operators SET password_hash = $1, failed_logins = 0, locked_until = 0 WHERE id = $2",
        )
        .bind(hash)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if changed {
            sqlx::query("DELETE FROM console_sessions WHERE operator_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            super::audit::append(&mut *tx, std::slice::from_ref(audit)).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    async fn disable_operator(&self, id: &str, at: i64, audit: &NewAudit) -> Result<bool> {
        let mut tx = self.begin_tx().await?;
        let changed = sqlx::query(
            "UPDATE operators SET disabled_at = COALESCE(disabled_at, $1) WHERE id = $2",
        )
        .bind(at)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if changed {
            sqlx::query("DELETE FROM console_sessions WHERE operator_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            super::audit::append(&mut *tx, std::slice::from_ref(audit)).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    async fn record_failed_login(
        &self,
        id: &str,
        now: i64,
        lockout: Lockout,
        audit: &NewAudit,
    ) -> Result<(i64, i64)> {
        let mut tx = self.begin_tx().await?;
        // The row stays locked by this UPDATE until commit: concurrent
        // failures count one after another.
        let failures: i64 = sqlx::query_scalar(
            "UPDATE operators SET failed_logins = failed_logins + 1 WHERE id = $1 RETURNING failed_logins",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let until = lockout.locked_until(failures, now);
        sqlx::query("UPDATE operators SET locked_until = $1 WHERE id = $2")
            .bind(until)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let mut audit = audit.clone();
        crate::operators::note_failure(&mut audit, failures, until);
        super::audit::append(&mut *tx, std::slice::from_ref(&audit)).await?;
        tx.commit().await?;
        Ok((failures, until))
    }

    async fn start_console_session(&self, s: &ConsoleSessionRow, audit: &NewAudit) -> Result<()> {
        let mut tx = self.begin_tx().await?;
        sqlx::query(
            "INSERT INTO console_sessions (token_hash, operator_id, created_at, last_seen_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&s.token_hash)
        .bind(&s.operator_id)
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.expires_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE operators SET failed_logins = 0, locked_until = 0, last_login_at = $1 WHERE id = $2",
        )
        .bind(s.created_at)
        .bind(&s.operator_id)
        .execute(&mut *tx)
        .await?;
        // Sessions that ended by themselves go when their operator next signs in.
        sqlx::query("DELETE FROM console_sessions WHERE operator_id = $1 AND expires_at <= $2")
            .bind(&s.operator_id)
            .bind(s.created_at)
            .execute(&mut *tx)
            .await?;
        super::audit::append(&mut *tx, std::slice::from_ref(audit)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn console_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<(ConsoleSessionRow, OperatorRow)>> {
        let Some(r) = sqlx::query(&format!(
            "SELECT s.token_hash, s.operator_id, s.created_at, s.last_seen_at, s.expires_at, {OPERATOR_COLUMNS}
             FROM console_sessions s JOIN operators o ON o.id = s.operator_id
             WHERE s.token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&mut *self.conn().await?)
        .await?
        else {
            return Ok(None);
        };
        let session = ConsoleSessionRow {
            token_hash: r.try_get(0)?,
            operator_id: r.try_get(1)?,
            created_at: r.try_get(2)?,
            last_seen_at: r.try_get(3)?,
            expires_at: r.try_get(4)?,
        };
        Ok(Some((session, operator_from_row(&r, 5)?)))
    }

    async fn touch_console_session(&self, token_hash: &str, at: i64) -> Result<()> {
        sqlx::query("UPDATE console_sessions SET last_seen_at = $1 WHERE token_hash = $2")
            .bind(at)
            .bind(token_hash)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    async fn end_console_session(
        &self,
        token_hash: &str,
        audit: Option<&NewAudit>,
    ) -> Result<bool> {
        let mut tx = self.begin_tx().await?;
        let ended = sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if ended && let Some(audit) = audit {
            super::audit::append(&mut *tx, std::slice::from_ref(audit)).await?;
        }
        tx.commit().await?;
        Ok(ended)
    }
}
