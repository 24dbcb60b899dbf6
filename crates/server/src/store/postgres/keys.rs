//! API keys on PostgreSQL. Revoking and rotating queue a notification in
//! the same transaction, so every other node (and every node when the CLI
//! did it) drops the key from its cache as soon as the change commits.

use super::super::keys::{ApiKeyMatch, ApiKeyRow, ApiKeys, NewApiKey, join_scopes, split_scopes};
use super::super::{Error, NewAudit, Result};
use super::{PgStore, notify};
use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row};

/// The columns `key_from_row` reads; `$1` is the read time.
const SELECT_KEYS: &str = "SELECT k.id, k.name, k.scopes, k.created_at, k.expires_at, k.revoked_at, k.rotated_at,
        (SELECT MAX(p.expires_at) FROM api_key_predecessors p WHERE p.key_id = k.id AND p.expires_at > $1)
     FROM api_keys k";

fn key_from_row(r: &PgRow) -> Result<ApiKeyRow> {
    let scopes: String = r.try_get(2)?;
    Ok(ApiKeyRow {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        scopes: split_scopes(&scopes),
        created_at: r.try_get(3)?,
        expires_at: r.try_get(4)?,
        revoked_at: r.try_get(5)?,
        rotated_at: r.try_get(6)?,
        previous_expires_at: r.try_get(7)?,
    })
}

async fn key_by_id<'e, E: sqlx::Executor<'e, Database = Postgres>>(
    exec: E,
    id: &str,
    now: i64,
) -> Result<Option<ApiKeyRow>> {
    sqlx::query(&format!("{SELECT_KEYS} WHERE k.id = $2"))
        .bind(now)
        .bind(id)
        .fetch_optional(exec)
        .await?
        .as_ref()
        .map(key_from_row)
        .transpose()
}

impl PgStore {
    /// Commits `tx` with a notification that key `id` changed.
    async fn commit_key_change(
        &self,
        mut tx: sqlx::Transaction<'static, Postgres>,
        id: &str,
    ) -> Result<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(notify::KEYS)
            .bind(notify::keys_payload(&self.node, id))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl ApiKeys for PgStore {
    async fn create_api_key(&self, key: &NewApiKey, audit: &NewAudit) -> Result<bool> {
        let mut tx = self.begin_tx().await?;
        let done = sqlx::query(
            "INSERT INTO api_keys (id, name, key_hash, created_at, scopes, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key_hash) DO NOTHING",
        )
        .bind(&key.id)
        .bind(&key.name)
        .bind(&key.key_hash)
        .bind(key.created_at)
        .bind(join_scopes(&key.scopes))
        .bind(key.expires_at)
        .execute(&mut *tx)
        .await?;
        let created = done.rows_affected() == 1;
        if created {
            super::audit::append(&mut *tx, std::slice::from_ref(audit)).await?;
        }
        tx.commit().await?;
        Ok(created)
    }

    async fn api_key_by_hash(&self, key_hash: &str, now: i64) -> Result<Option<ApiKeyMatch>> {
        let current = sqlx::query(&format!("{SELECT_KEYS} WHERE k.key_hash = $2"))
            .bind(now)
            .bind(key_hash)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        if let Some(row) = current {
            return Ok(Some(ApiKeyMatch {
                key: key_from_row(&row)?,
                secret_expires_at: None,
            }));
        }
        let previous: Option<(String, i64)> = sqlx::query_as(
            "SELECT key_id, expires_at FROM api_key_predecessors WHERE key_hash = $1",
        )
        .bind(key_hash)
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        let Some((id, until)) = previous else {
            return Ok(None);
        };
        Ok(key_by_id(&mut *self.conn().await?, &id, now)
            .await?
            .map(|key| ApiKeyMatch {
                key,
                secret_expires_at: Some(until),
            }))
    }

    async fn api_keys(&self, now: i64) -> Result<Vec<ApiKeyRow>> {
        sqlx::query(&format!("{SELECT_KEYS} ORDER BY k.created_at, k.id"))
            .bind(now)
            .fetch_all(&mut *self.conn().await?)
            .await?
            .iter()
            .map(key_from_row)
            .collect()
    }

    async fn api_key(&self, id: &str, now: i64) -> Result<Option<ApiKeyRow>> {
        key_by_id(&mut *self.conn().await?, id, now).await
    }

    async fn revoke_api_key(
        &self,
        id: &str,
        at: i64,
        audit: &NewAudit,
    ) -> Result<Option<ApiKeyRow>> {
        let mut tx = self.begin_tx().await?;
        let changed =
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(at)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if changed == 1 {
            super::audit::append(&mut *tx, std::slice::from_ref(audit)).await?;
            self.commit_key_change(tx, id).await?;
        } else {
            tx.rollback().await?;
        }
        key_by_id(&mut *self.conn().await?, id, at).await
    }

    async fn rotate_api_key(
        &self,
        id: &str,
        new_hash: &str,
        at: i64,
        grace_until: i64,
        audit: &NewAudit,
    ) -> Result<Option<ApiKeyRow>> {
        let mut tx = self.begin_tx().await?;
        let old: Option<(String,)> = sqlx::query_as(
            "SELECT key_hash FROM api_keys WHERE id = $1 AND revoked_at IS NULL FOR UPDATE",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((old,)) = old else {
            return Ok(None);
        };
        // Replaced secrets whose grace has passed are of no use any more.
        sqlx::query("DELETE FROM api_key_predecessors WHERE key_id = $1 AND expires_at <= $2")
            .bind(id)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        if grace_until > at {
            sqlx::query(
                "INSERT INTO api_key_predecessors (key_hash, key_id, expires_at) VALUES ($1, $2, $3)",
            )
            .bind(&old)
            .bind(id)
            .bind(grace_until)
            .execute(&mut *tx)
            .await?;
        }
        let changed =
            sqlx::query("UPDATE api_keys SET key_hash = $1, rotated_at = $2 WHERE id = $3")
                .bind(new_hash)
                .bind(at)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if changed != 1 {
            return Err(Error::Corrupt(format!(
                "postgres: api key {id} vanished while rotating"
            )));
        }
        super::audit::append(&mut *tx, std::slice::from_ref(audit)).await?;
        self.commit_key_change(tx, id).await?;
        key_by_id(&mut *self.conn().await?, id, at).await
    }
}
