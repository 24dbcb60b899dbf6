//! The SQLite backend: one file, WAL journal, `synchronous = FULL` so that a
//! committed transition survives a crash of the process or the machine.
//! Writers take the lock up front (`BEGIN IMMEDIATE`) so that concurrent
//! writers queue on the busy timeout instead of failing on lock upgrade.

use super::*;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};
use std::str::FromStr;
use std::time::Duration;

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn open(url: &str) -> Result<SqliteStore> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(false)
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-16000");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .connect_with(opts)
            .await?;
        Ok(SqliteStore { pool })
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

fn json_col(row: &SqliteRow, col: &str) -> Result<Value> {
    let text: String = row.try_get(col)?;
    serde_json::from_str(&text).map_err(|e| Error::Corrupt(format!("{col}: {e}")))
}

fn session_from_row(row: &SqliteRow) -> Result<SessionRow> {
    let state_text: String = row.try_get("state")?;
    let state: SessionState = serde_json::from_str(&state_text)
        .map_err(|e| Error::Corrupt(format!("session state: {e}")))?;
    let version: i64 = row.try_get("version")?;
    Ok(SessionRow {
        id: row.try_get("id")?,
        workflow_id: row.try_get("workflow_id")?,
        version: u32::try_from(version).map_err(|_| Error::Corrupt("version".into()))?,
        reference: row.try_get("reference")?,
        input: json_col(row, "input")?,
        state,
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

fn state_json(state: &SessionState) -> String {
    serde_json::to_string(state).unwrap_or_else(|_| "{}".into())
}

pub struct SqliteTx {
    tx: Transaction<'static, Sqlite>,
}

#[async_trait]
impl Tx for SqliteTx {
    async fn lock_session(&mut self, id: &str) -> Result<Option<SessionRow>> {
        // BEGIN IMMEDIATE already holds the database write lock.
        let row = sqlx::query("SELECT * FROM sessions WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn insert_session(&mut self, r: &SessionRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (id, workflow_id, version, status, outcome, reason, reference, input, state,
               created_at, updated_at, ended_at, client_secret_hash, client_secret_expires_at, api_key_id,
               idempotency_key, request_hash, timeline_seq, client_seq)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&r.id)
        .bind(&r.workflow_id)
        .bind(i64::from(r.version))
        .bind(r.state.status.as_str())
        .bind(r.state.outcome.map(|o| o.as_str()))
        .bind(&r.state.reason)
        .bind(&r.reference)
        .bind(r.input.to_string())
        .bind(state_json(&r.state))
        .bind(r.created_at)
        .bind(r.updated_at)
        .bind(r.state.ended_ms)
        .bind(&r.client_secret_hash)
        .bind(r.client_secret_expires_at)
        .bind(&r.api_key_id)
        .bind(&r.idempotency_key)
        .bind(&r.request_hash)
        .bind(r.timeline_seq)
        .bind(r.client_seq)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn update_session(&mut self, r: &SessionRow) -> Result<()> {
        sqlx::query(
            "UPDATE sessions SET status = ?, outcome = ?, reason = ?, state = ?, updated_at = ?, ended_at = ?,
               timeline_seq = ?, client_seq = ? WHERE id = ?",
        )
        .bind(r.state.status.as_str())
        .bind(r.state.outcome.map(|o| o.as_str()))
        .bind(&r.state.reason)
        .bind(state_json(&r.state))
        .bind(r.updated_at)
        .bind(r.state.ended_ms)
        .bind(r.timeline_seq)
        .bind(r.client_seq)
        .bind(&r.id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn set_client_secret(&mut self, id: &str, hash: &str, expires_at: i64) -> Result<()> {
        sqlx::query(
            "UPDATE sessions SET client_secret_hash = ?, client_secret_expires_at = ? WHERE id = ?",
        )
        .bind(hash)
        .bind(expires_at)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn find_idempotent(
        &mut self,
        api_key_id: &str,
        key: &str,
    ) -> Result<Option<(String, Option<String>)>> {
        let row = sqlx::query(
            "SELECT id, request_hash FROM sessions WHERE api_key_id = ? AND idempotency_key = ?",
        )
        .bind(api_key_id)
        .bind(key)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(match row {
            Some(r) => Some((r.try_get("id")?, r.try_get("request_hash")?)),
            None => None,
        })
    }

    async fn insert_timeline(&mut self, entries: &[(String, TimelineEntry)]) -> Result<()> {
        // One statement per chunk: each statement is a round trip to the
        // SQLite thread, so rows are sent together (6 variables per row).
        for chunk in entries.chunks(500) {
            let mut q = sqlx::QueryBuilder::<Sqlite>::new(
                "INSERT INTO timeline (session_id, seq, at, kind, step, data) ",
            );
            q.push_values(chunk, |mut b, (sid, e)| {
                b.push_bind(sid.as_str())
                    .push_bind(e.seq)
                    .push_bind(e.at)
                    .push_bind(e.kind.as_str())
                    .push_bind(e.step.as_deref())
                    .push_bind(e.data.to_string());
            });
            q.build().execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    async fn insert_client_events(&mut self, events: &[(String, ClientEvent)]) -> Result<()> {
        for chunk in events.chunks(500) {
            let mut q = sqlx::QueryBuilder::<Sqlite>::new(
                "INSERT INTO client_events (session_id, seq, at, event, data) ",
            );
            q.push_values(chunk, |mut b, (sid, e)| {
                b.push_bind(sid.as_str())
                    .push_bind(e.seq)
                    .push_bind(e.at)
                    .push_bind(e.event.as_str())
                    .push_bind(e.data.to_string());
            });
            q.build().execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    async fn insert_job(&mut self, job: &NewJob) -> Result<i64> {
        let r = sqlx::query("INSERT INTO jobs (session_id, kind, payload, due_at, lease_until) VALUES (?, ?, ?, ?, ?)")
            .bind(&job.session_id)
            .bind(job.kind.as_str())
            .bind(job.payload.to_string())
            .bind(job.due_at)
            .bind(job.lease_until)
            .execute(&mut *self.tx)
            .await?;
        Ok(r.last_insert_rowid())
    }

    async fn delete_job(&mut self, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM jobs WHERE id = ?")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn delete_session_jobs(&mut self, session_id: &str, kinds: &[JobKind]) -> Result<()> {
        for k in kinds {
            sqlx::query("DELETE FROM jobs WHERE session_id = ? AND kind = ?")
                .bind(session_id)
                .bind(k.as_str())
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    async fn insert_event(
        &mut self,
        ev: &NewEvent,
        session_id: Option<&str>,
    ) -> Result<Option<i64>> {
        let r = sqlx::query(
            "INSERT INTO inbound_events (source, event_key, namespace, reference, session_id, name, data, received_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, event_key) DO NOTHING",
        )
        .bind(&ev.source)
        .bind(&ev.event_key)
        .bind(&ev.namespace)
        .bind(&ev.reference)
        .bind(session_id)
        .bind(&ev.name)
        .bind(ev.data.to_string())
        .bind(ev.received_at)
        .execute(&mut *self.tx)
        .await?;
        Ok((r.rows_affected() == 1).then(|| r.last_insert_rowid()))
    }

    async fn correlation(&mut self, namespace: &str, reference: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT session_id FROM correlations WHERE namespace = ? AND reference = ?",
        )
        .bind(namespace)
        .bind(reference)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("session_id")?),
            None => None,
        })
    }

    async fn insert_correlation(
        &mut self,
        namespace: &str,
        reference: &str,
        session_id: &str,
    ) -> Result<()> {
        sqlx::query("INSERT INTO correlations (namespace, reference, session_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
            .bind(namespace)
            .bind(reference)
            .bind(session_id)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query("UPDATE inbound_events SET session_id = ? WHERE namespace = ? AND reference = ? AND session_id IS NULL")
            .bind(session_id)
            .bind(namespace)
            .bind(reference)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn pending_events(
        &mut self,
        session_id: &str,
        names: &[String],
    ) -> Result<Vec<EventRow>> {
        let rows = sqlx::query(
            "SELECT id, name, source, data FROM inbound_events WHERE session_id = ? AND consumed_at IS NULL ORDER BY id",
        )
        .bind(session_id)
        .fetch_all(&mut *self.tx)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let name: String = r.try_get("name")?;
            if names.contains(&name) {
                out.push(EventRow {
                    id: r.try_get("id")?,
                    name,
                    source: r.try_get("source")?,
                    data: json_col(&r, "data")?,
                });
            }
        }
        Ok(out)
    }

    async fn consume_event(&mut self, id: i64, at: i64) -> Result<()> {
        sqlx::query("UPDATE inbound_events SET consumed_at = ? WHERE id = ?")
            .bind(at)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn consume_events_named(&mut self, session_id: &str, name: &str, at: i64) -> Result<()> {
        sqlx::query("UPDATE inbound_events SET consumed_at = ? WHERE session_id = ? AND name = ? AND consumed_at IS NULL")
            .bind(at)
            .bind(session_id)
            .bind(name)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn insert_delivery(&mut self, d: &NewDelivery) -> Result<()> {
        sqlx::query(
            "INSERT INTO deliveries (id, session_id, endpoint, event_type, payload, status, attempts, created_at, next_attempt_at)
             VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
        )
        .bind(&d.id)
        .bind(&d.session_id)
        .bind(&d.endpoint)
        .bind(&d.event_type)
        .bind(d.payload.to_string())
        .bind(d.created_at)
        .bind(d.created_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn record_delivery_attempt(
        &mut self,
        id: &str,
        a: &DeliveryAttempt,
        status: &str,
        next_attempt_at: Option<i64>,
    ) -> Result<()> {
        sqlx::query("INSERT INTO delivery_attempts (delivery_id, attempt, at, status_code, error, duration_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")
            .bind(id)
            .bind(a.attempt)
            .bind(a.at)
            .bind(a.status_code)
            .bind(&a.error)
            .bind(a.duration_ms)
            .execute(&mut *self.tx)
            .await?;
        let delivered_at = (status == "delivered").then_some(a.at);
        sqlx::query("UPDATE deliveries SET status = ?, attempts = ?, next_attempt_at = ?, delivered_at = COALESCE(?, delivered_at) WHERE id = ?")
            .bind(status)
            .bind(a.attempt)
            .bind(next_attempt_at)
            .bind(delivered_at)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn reschedule_job(&mut self, id: i64, due_at: i64, attempts: i64) -> Result<()> {
        sqlx::query("UPDATE jobs SET due_at = ?, attempts = ?, lease_until = 0 WHERE id = ?")
            .bind(due_at)
            .bind(attempts)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn begin(&self) -> Result<Box<dyn Tx>> {
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(Box::new(SqliteTx { tx }))
    }

    async fn insert_api_key(&self, id: &str, name: &str, key_hash: &str, at: i64) -> Result<()> {
        sqlx::query("INSERT INTO api_keys (id, name, key_hash, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (key_hash) DO NOTHING")
            .bind(id)
            .bind(name)
            .bind(key_hash)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT id FROM api_keys WHERE key_hash = ?")
            .bind(key_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("id")?),
            None => None,
        })
    }

    async fn upsert_workflow_version(
        &self,
        id: &str,
        version: u32,
        source: &str,
        hash: &str,
        at: i64,
    ) -> Result<Option<String>> {
        let existing = sqlx::query(
            "SELECT source_hash FROM workflow_versions WHERE workflow_id = ? AND version = ?",
        )
        .bind(id)
        .bind(i64::from(version))
        .fetch_optional(&self.pool)
        .await?;
        if let Some(r) = existing {
            return Ok(Some(r.try_get("source_hash")?));
        }
        sqlx::query("INSERT INTO workflow_versions (workflow_id, version, source, source_hash, loaded_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")
            .bind(id)
            .bind(i64::from(version))
            .bind(source)
            .bind(hash)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(None)
    }

    async fn workflow_versions(&self) -> Result<Vec<(String, u32, String)>> {
        let rows = sqlx::query("SELECT workflow_id, version, source FROM workflow_versions ORDER BY workflow_id, version")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let v: i64 = r.try_get("version")?;
                Ok((
                    r.try_get("workflow_id")?,
                    u32::try_from(v).unwrap_or_default(),
                    r.try_get("source")?,
                ))
            })
            .collect()
    }

    async fn session(&self, id: &str) -> Result<Option<SessionRow>> {
        let row = sqlx::query("SELECT * FROM sessions WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn sessions(&self, f: &SessionFilter) -> Result<Vec<SessionRow>> {
        let mut q = sqlx::QueryBuilder::<Sqlite>::new("SELECT * FROM sessions WHERE 1 = 1");
        if let Some(s) = &f.status {
            q.push(" AND status = ").push_bind(s.clone());
        }
        if let Some(w) = &f.workflow {
            q.push(" AND workflow_id = ").push_bind(w.clone());
        }
        if let Some(r) = &f.reference {
            q.push(" AND reference = ").push_bind(r.clone());
        }
        if let Some(b) = &f.before {
            q.push(" AND id < ").push_bind(b.clone());
        }
        q.push(" ORDER BY id DESC LIMIT ").push_bind(f.limit);
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter().map(session_from_row).collect()
    }

    async fn timeline(&self, session_id: &str) -> Result<Vec<TimelineEntry>> {
        let rows = sqlx::query(
            "SELECT seq, at, kind, step, data FROM timeline WHERE session_id = ? ORDER BY seq",
        )
        .bind(session_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TimelineEntry {
                    seq: r.try_get("seq")?,
                    at: r.try_get("at")?,
                    kind: r.try_get("kind")?,
                    step: r.try_get("step")?,
                    data: json_col(r, "data")?,
                })
            })
            .collect()
    }

    async fn client_events_after(&self, session_id: &str, seq: i64) -> Result<Vec<ClientEvent>> {
        let rows = sqlx::query("SELECT seq, at, event, data FROM client_events WHERE session_id = ? AND seq > ? ORDER BY seq")
            .bind(session_id)
            .bind(seq)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ClientEvent {
                    seq: r.try_get("seq")?,
                    at: r.try_get("at")?,
                    event: r.try_get("event")?,
                    data: json_col(r, "data")?,
                })
            })
            .collect()
    }

    async fn deliveries(&self, session_id: &str) -> Result<Vec<Delivery>> {
        let rows =
            sqlx::query("SELECT * FROM deliveries WHERE session_id = ? ORDER BY created_at, id")
                .bind(session_id)
                .fetch_all(&self.pool)
                .await?;
        let mut out = Vec::new();
        for r in rows {
            let id: String = r.try_get("id")?;
            let attempts = sqlx::query(
                "SELECT * FROM delivery_attempts WHERE delivery_id = ? ORDER BY attempt",
            )
            .bind(&id)
            .fetch_all(&self.pool)
            .await?;
            let attempt_log = attempts
                .iter()
                .map(|a| {
                    Ok(DeliveryAttempt {
                        attempt: a.try_get("attempt")?,
                        at: a.try_get("at")?,
                        status_code: a.try_get("status_code")?,
                        error: a.try_get("error")?,
                        duration_ms: a.try_get("duration_ms")?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            out.push(Delivery {
                id,
                session_id: r.try_get("session_id")?,
                endpoint: r.try_get("endpoint")?,
                event_type: r.try_get("event_type")?,
                status: r.try_get("status")?,
                attempts: r.try_get("attempts")?,
                created_at: r.try_get("created_at")?,
                next_attempt_at: r.try_get("next_attempt_at")?,
                delivered_at: r.try_get("delivered_at")?,
                attempt_log,
            });
        }
        Ok(out)
    }

    async fn count_by_status(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM sessions GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
            .collect()
    }

    async fn claim_due_jobs(&self, now: i64, limit: i64, lease_until: i64) -> Result<Vec<Job>> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let rows = sqlx::query(
            "SELECT id, session_id, kind, payload, due_at, attempts FROM jobs
             WHERE due_at <= ? AND lease_until <= ? ORDER BY due_at LIMIT ?",
        )
        .bind(now)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let mut jobs = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: i64 = r.try_get("id")?;
            sqlx::query("UPDATE jobs SET lease_until = ? WHERE id = ?")
                .bind(lease_until)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let kind: String = r.try_get("kind")?;
            jobs.push(Job {
                id,
                session_id: r.try_get("session_id")?,
                kind: JobKind::parse(&kind)
                    .ok_or_else(|| Error::Corrupt(format!("job kind `{kind}`")))?,
                payload: json_col(r, "payload")?,
                due_at: r.try_get("due_at")?,
                attempts: r.try_get("attempts")?,
            });
        }
        tx.commit().await?;
        Ok(jobs)
    }

    async fn next_due(&self, now: i64) -> Result<Option<i64>> {
        // A leased job comes back at its lease's end at the earliest.
        let row = sqlx::query("SELECT MIN(MAX(due_at, lease_until)) AS t FROM jobs")
            .fetch_one(&self.pool)
            .await?;
        let t: Option<i64> = row.try_get("t")?;
        Ok(t.map(|t| t.max(now)))
    }

    async fn release_all_leases(&self) -> Result<()> {
        sqlx::query("UPDATE jobs SET lease_until = 0 WHERE lease_until > 0")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn reschedule_job(&self, id: i64, due_at: i64, attempts: i64) -> Result<()> {
        sqlx::query("UPDATE jobs SET due_at = ?, attempts = ?, lease_until = 0 WHERE id = ?")
            .bind(due_at)
            .bind(attempts)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn finish_job(&self, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM jobs WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delivery_payload(&self, id: &str) -> Result<Option<(String, String, Value, i64)>> {
        let row = sqlx::query(
            "SELECT endpoint, event_type, payload, attempts FROM deliveries WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => Some((
                r.try_get("endpoint")?,
                r.try_get("event_type")?,
                json_col(&r, "payload")?,
                r.try_get("attempts")?,
            )),
            None => None,
        })
    }
}
