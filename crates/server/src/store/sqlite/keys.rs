//! API keys on SQLite. One process serves the database, so revoking or
//! rotating needs to tell no other node: the server that does it drops the
//! key from its own cache, and one that learns of it only through the file
//! (the CLI changed it) re-reads cached keys often enough (`keys::cache`).

use super::super::keys::{ApiKeyMatch, ApiKeyRow, ApiKeys, NewApiKey, join_scopes, split_scopes};
use super::super::{Error, NewAudit, Result};
use super::SqliteStore;
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

/// The columns `key_from_row` reads; `?1` is the read time.
const SELECT_KEYS: &str = "SELECT k.id, k.name, k.scopes, k.created_at, k.expires_at, k.revoked_at, k.rotated_at,
        (SELECT MAX(p.expires_at) FROM api_key_predecessors p WHERE p.key_id = k.id AND p.expires_at > ?1)
     FROM api_keys k";

fn key_from_row(r: &Row<'_>) -> rusqlite::Result<ApiKeyRow> {
    let scopes: String = r.get(2)?;
    Ok(ApiKeyRow {
        id: r.get(0)?,
        name: r.get(1)?,
        scopes: split_scopes(&scopes),
        created_at: r.get(3)?,
        expires_at: r.get(4)?,
        revoked_at: r.get(5)?,
        rotated_at: r.get(6)?,
        previous_expires_at: r.get(7)?,
    })
}

fn key_by_id(c: &Connection, id: &str, now: i64) -> Result<Option<ApiKeyRow>> {
    Ok(c.prepare_cached(&format!("{SELECT_KEYS} WHERE k.id = ?2"))?
        .query_row(params![now, id], key_from_row)
        .optional()?)
}

#[async_trait]
impl ApiKeys for SqliteStore {
    async fn create_api_key(&self, key: &NewApiKey, audit: &NewAudit) -> Result<bool> {
        let (key, audit) = (key.clone(), audit.clone());
        self.run(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let n = tx
                .prepare_cached(
                    "INSERT INTO api_keys (id, name, key_hash, created_at, scopes, expires_at)
                     VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key_hash) DO NOTHING",
                )?
                .execute(params![
                    key.id,
                    key.name,
                    key.key_hash,
                    key.created_at,
                    join_scopes(&key.scopes),
                    key.expires_at
                ])?;
            if n == 1 {
                super::audit::append(&tx, &[audit])?;
            }
            tx.commit()?;
            Ok(n == 1)
        })
        .await
    }

    async fn api_key_by_hash(&self, key_hash: &str, now: i64) -> Result<Option<ApiKeyMatch>> {
        let key_hash = key_hash.to_owned();
        self.run(move |c| {
            let current = c
                .prepare_cached(&format!("{SELECT_KEYS} WHERE k.key_hash = ?2"))?
                .query_row(params![now, key_hash], key_from_row)
                .optional()?;
            if let Some(key) = current {
                return Ok(Some(ApiKeyMatch {
                    key,
                    secret_expires_at: None,
                }));
            }
            let previous: Option<(String, i64)> = c
                .prepare_cached(
                    "SELECT key_id, expires_at FROM api_key_predecessors WHERE key_hash = ?",
                )?
                .query_row(params![key_hash], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((id, until)) = previous else {
                return Ok(None);
            };
            Ok(key_by_id(c, &id, now)?.map(|key| ApiKeyMatch {
                key,
                secret_expires_at: Some(until),
            }))
        })
        .await
    }

    async fn api_keys(&self, now: i64) -> Result<Vec<ApiKeyRow>> {
        self.run(move |c| {
            let mut stmt =
                c.prepare_cached(&format!("{SELECT_KEYS} ORDER BY k.created_at, k.id"))?;
            let rows = stmt
                .query_map(params![now], key_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn api_key(&self, id: &str, now: i64) -> Result<Option<ApiKeyRow>> {
        let id = id.to_owned();
        self.run(move |c| key_by_id(c, &id, now)).await
    }

    async fn revoke_api_key(
        &self,
        id: &str,
        at: i64,
        audit: &NewAudit,
    ) -> Result<Option<ApiKeyRow>> {
        let (id, audit) = (id.to_owned(), audit.clone());
        self.run(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let changed = tx
                .prepare_cached(
                    "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                )?
                .execute(params![at, id])?;
            if changed == 1 {
                super::audit::append(&tx, &[audit])?;
            }
            tx.commit()?;
            key_by_id(c, &id, at)
        })
        .await
    }

    async fn rotate_api_key(
        &self,
        id: &str,
        new_hash: &str,
        at: i64,
        grace_until: i64,
        audit: &NewAudit,
    ) -> Result<Option<ApiKeyRow>> {
        let (id, new_hash, audit) = (id.to_owned(), new_hash.to_owned(), audit.clone());
        self.run(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let old: Option<String> = tx
                .prepare_cached("SELECT key_hash FROM api_keys WHERE id = ? AND revoked_at IS NULL")?
                .query_row([&id], |r| r.get(0))
                .optional()?;
            let Some(old) = old else {
                return Ok(None);
            };
            // Replaced secrets whose grace has passed are of no use any more.
            tx.prepare_cached("DELETE FROM api_key_predecessors WHERE key_id = ? AND expires_at <= ?")?
                .execute(params![id, at])?;
            if grace_until > at {
                tx.prepare_cached(
                    "INSERT INTO api_key_predecessors (key_hash, key_id, expires_at) VALUES (?, ?, ?)",
                )?
                .execute(params![old, id, grace_until])?;
            }
            let changed = tx
                .prepare_cached("UPDATE api_keys SET key_hash = ?, rotated_at = ? WHERE id = ?")?
                .execute(params![new_hash, at, id])?;
            if changed != 1 {
                return Err(Error::Corrupt(format!("sqlite: api key {id} vanished while rotating")));
            }
            super::audit::append(&tx, &[audit])?;
            tx.commit()?;
            key_by_id(c, &id, at)
        })
        .await
    }
}
