//! Operators and console sessions on SQLite.

use super::super::operators::{
    ConsoleSessionRow, Lockout, OPERATOR_COLUMNS, OperatorRow, Operators,
};
use super::super::{NewAudit, Result};
use super::SqliteStore;
use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

fn operator_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<OperatorRow> {
    Ok(OperatorRow {
        id: r.get(at)?,
        email: r.get(at + 1)?,
        role: r.get(at + 2)?,
        password_hash: r.get(at + 3)?,
        created_at: r.get(at + 4)?,
        disabled_at: r.get(at + 5)?,
        failed_logins: r.get(at + 6)?,
        locked_until: r.get(at + 7)?,
        last_login_at: r.get(at + 8)?,
    })
}

#[async_trait]
impl Operators for SqliteStore {
    async fn create_operator(&self, op: &OperatorRow, audit: &NewAudit) -> Result<bool> {
        let (op, audit) = (op.clone(), audit.clone());
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let n = tx
                .prepare_cached(
                    "INSERT INTO operators (id, email, role, password_hash, created_at)
                     VALUES (?, ?, ?, ?, ?) ON CONFLICT (email) DO NOTHING",
                )?
                .execute(params![
                    op.id,
                    op.email,
                    op.role,
                    op.password_hash,
                    op.created_at
                ])?;
            if n == 1 {
                super::audit::append(&tx, &[audit])?;
            }
            tx.commit()?;
            Ok(n == 1)
        })
        .await
    }

    async fn operator_by_email(&self, email: &str) -> Result<Option<OperatorRow>> {
        let email = email.to_owned();
        self.run(move |c| {
            Ok(c.prepare_cached(&format!(
                "SELECT {OPERATOR_COLUMNS} FROM operators o WHERE o.email = ?"
            ))?
            .query_row([email], |r| operator_from_row(r, 0))
            .optional()?)
        })
        .await
    }

    async fn operators(&self) -> Result<Vec<OperatorRow>> {
        self.run(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {OPERATOR_COLUMNS} FROM operators o ORDER BY o.created_at, o.id"
            ))?;
            let rows = stmt
                .query_map([], |r| operator_from_row(r, 0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn set_operator_password(&self, id: &str, hash: &str, audit: &NewAudit) -> Result<bool> {
        let (id, hash, audit) = (id.to_owned(), hash.to_owned(), audit.clone());
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let n = tx
                .prepare_cached(
                    "UPDATE operators SET password_hash = ?, failed_logins = 0, locked_until = 0 WHERE id = ?",
                )?
                .execute(params![hash, id])?;
            if n == 1 {
                tx.prepare_cached("DELETE FROM console_sessions WHERE operator_id = ?")?
                    .execute([&id])?;
                super::audit::append(&tx, &[audit])?;
            }
            tx.commit()?;
            Ok(n == 1)
        })
        .await
    }

    async fn disable_operator(&self, id: &str, at: i64, audit: &NewAudit) -> Result<bool> {
        let (id, audit) = (id.to_owned(), audit.clone());
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let n = tx
                .prepare_cached(
                    "UPDATE operators SET disabled_at = COALESCE(disabled_at, ?) WHERE id = ?",
                )?
                .execute(params![at, id])?;
            if n == 1 {
                tx.prepare_cached("DELETE FROM console_sessions WHERE operator_id = ?")?
                    .execute([&id])?;
                super::audit::append(&tx, &[audit])?;
            }
            tx.commit()?;
            Ok(n == 1)
        })
        .await
    }

    async fn record_failed_login(
        &self,
        id: &str,
        now: i64,
        lockout: Lockout,
        audit: &NewAudit,
    ) -> Result<(i64, i64)> {
        let (id, mut audit) = (id.to_owned(), audit.clone());
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let failures: i64 = tx
                .prepare_cached(
                    "UPDATE operators SET failed_logins = failed_logins + 1 WHERE id = ? RETURNING failed_logins",
                )?
                .query_row([&id], |r| r.get(0))?;
            let until = lockout.locked_until(failures, now);
            tx.prepare_cached("UPDATE operators SET locked_until = ? WHERE id = ?")?
                .execute(params![until, id])?;
            crate::operators::note_failure(&mut audit, failures, until);
            super::audit::append(&tx, &[audit])?;
            tx.commit()?;
            Ok((failures, until))
        })
        .await
    }

    async fn start_console_session(
        &self,
        session: &ConsoleSessionRow,
        audit: &NewAudit,
    ) -> Result<()> {
        let (s, audit) = (session.clone(), audit.clone());
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.prepare_cached(
                "INSERT INTO console_sessions (token_hash, operator_id, created_at, last_seen_at, expires_at)
                 VALUES (?, ?, ?, ?, ?)",
            )?
            .execute(params![s.token_hash, s.operator_id, s.created_at, s.last_seen_at, s.expires_at])?;
            tx.prepare_cached(
                "UPDATE operators SET failed_logins = 0, locked_until = 0, last_login_at = ? WHERE id = ?",
            )?
            .execute(params![s.created_at, s.operator_id])?;
            // Sessions that ended by themselves go when their operator next signs in.
            tx.prepare_cached(
                "DELETE FROM console_sessions WHERE operator_id = ? AND expires_at <= ?",
            )?
            .execute(params![s.operator_id, s.created_at])?;
            super::audit::append(&tx, &[audit])?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn console_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<(ConsoleSessionRow, OperatorRow)>> {
        let token_hash = token_hash.to_owned();
        self.run(move |c| {
            Ok(c.prepare_cached(&format!(
                "SELECT s.token_hash, s.operator_id, s.created_at, s.last_seen_at, s.expires_at, {OPERATOR_COLUMNS}
                 FROM console_sessions s JOIN operators o ON o.id = s.operator_id
                 WHERE s.token_hash = ?"
            ))?
            .query_row([token_hash], |r| {
                Ok((
                    ConsoleSessionRow {
                        token_hash: r.get(0)?,
                        operator_id: r.get(1)?,
                        created_at: r.get(2)?,
                        last_seen_at: r.get(3)?,
                        expires_at: r.get(4)?,
                    },
                    operator_from_row(r, 5)?,
                ))
            })
            .optional()?)
        })
        .await
    }

    async fn touch_console_session(&self, token_hash: &str, at: i64) -> Result<()> {
        let token_hash = token_hash.to_owned();
        self.run(move |c| {
            c.prepare_cached("UPDATE console_sessions SET last_seen_at = ? WHERE token_hash = ?")?
                .execute(params![at, token_hash])?;
            Ok(())
        })
        .await
    }

    async fn end_console_session(
        &self,
        token_hash: &str,
        audit: Option<&NewAudit>,
    ) -> Result<bool> {
        let (token_hash, audit) = (token_hash.to_owned(), audit.cloned());
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let n = tx
                .prepare_cached("DELETE FROM console_sessions WHERE token_hash = ?")?
                .execute([&token_hash])?;
            if n == 1
                && let Some(audit) = audit
            {
                super::audit::append(&tx, &[audit])?;
            }
            tx.commit()?;
            Ok(n == 1)
        })
        .await
    }
}
