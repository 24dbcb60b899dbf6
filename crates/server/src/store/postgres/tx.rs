//! The committer's transaction on PostgreSQL. Sessions are locked with
//! `SELECT ... FOR UPDATE`, so that changes to one session from several
//! nodes serialize. An event stored for a reference at the moment another
//! node commits that reference is caught by `adopt_events`, which both
//! sides run again after their commit (no lock is held across the batch,
//! so batches of several nodes cannot deadlock on references). Cluster
//! notifications are queued and sent with the commit.

use super::super::*;
use super::{notify, rows};
use sqlx::{Postgres, Transaction};

pub(super) struct PgTx {
    pub(super) tx: Transaction<'static, Postgres>,
    pub(super) node: Arc<str>,
    /// Earliest due time of a job committed free (no lease): other nodes'
    /// schedulers may want to wake for it.
    pub(super) free_job_due: Option<i64>,
    /// Client events written, announced to the other nodes at commit.
    pub(super) client_events: Vec<(String, i64)>,
    /// Sessions changed in this transaction, written together at commit
    /// (one statement instead of one per change; a session often changes
    /// several times in one batch). Reads of a session see these first.
    pub(super) updated: std::collections::HashMap<String, SessionRow>,
}

impl PgTx {
    fn note_free_job(&mut self, due_at: i64) {
        self.free_job_due = Some(self.free_job_due.map_or(due_at, |t| t.min(due_at)));
    }

    /// Writes every session changed in this transaction in one statement.
    async fn write_sessions(&mut self) -> Result<()> {
        if self.updated.is_empty() {
            return Ok(());
        }
        let rows: Vec<SessionRow> = std::mem::take(&mut self.updated).into_values().collect();
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
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl Tx for PgTx {
    async fn lock_session(&mut self, id: &str) -> Result<Option<SessionRow>> {
        // Changed earlier in this transaction, so already locked by it.
        if let Some(row) = self.updated.get(id) {
            return Ok(Some(row.clone()));
        }
        let sql = format!(
            "SELECT {} FROM sessions WHERE id = $1 FOR UPDATE",
            rows::SESSION_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref().map(rows::session).transpose()
    }

    async fn lock_sessions(&mut self, ids: &[&str]) -> Result<()> {
        if !ids.is_empty() {
            sqlx::query("SELECT 1 FROM sessions WHERE id = ANY($1) ORDER BY id FOR UPDATE")
                .bind(ids)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    async fn insert_session(&mut self, r: &SessionRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (id, workflow_id, version, status, outcome, reason, reference, input, state,
               created_at, updated_at, ended_at, client_secret_hash, client_secret_expires_at, api_key_id,
               idempotency_key, request_hash, timeline_seq, client_seq)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
        )
        .bind(&r.id)
        .bind(&r.workflow_id)
        .bind(i64::from(r.version))
        .bind(r.state.status.as_str())
        .bind(r.state.outcome.map(|o| o.as_str()))
        .bind(&r.state.reason)
        .bind(&r.reference)
        .bind(r.input.to_string())
        .bind(super::state_json(&r.state))
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
        self.updated.insert(r.id.clone(), r.clone());
        Ok(())
    }

    async fn set_client_secret(&mut self, id: &str, hash: &str, expires_at: i64) -> Result<()> {
        sqlx::query(
            "UPDATE sessions SET client_secret_hash = $1, client_secret_expires_at = $2 WHERE id = $3",
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
        Ok(sqlx::query_as(
            "SELECT id, request_hash FROM sessions WHERE api_key_id = $1 AND idempotency_key = $2",
        )
        .bind(api_key_id)
        .bind(key)
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    async fn insert_timeline(&mut self, entries: &[(String, TimelineEntry)]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        // One round trip for the whole batch.
        sqlx::query(
            "INSERT INTO timeline (session_id, seq, at, kind, step, data)
             SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[])",
        )
        .bind(entries.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>())
        .bind(entries.iter().map(|(_, e)| e.seq).collect::<Vec<_>>())
        .bind(entries.iter().map(|(_, e)| e.at).collect::<Vec<_>>())
        .bind(entries.iter().map(|(_, e)| e.kind.as_str()).collect::<Vec<_>>())
        .bind(
            entries
                .iter()
                .map(|(_, e)| e.step.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            entries
                .iter()
                .map(|(_, e)| e.data.to_string())
                .collect::<Vec<_>>(),
        )
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn insert_client_events(&mut self, events: &[(String, ClientEvent)]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO client_events (session_id, seq, at, event, data)
             SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[])",
        )
        .bind(events.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|(_, e)| e.seq).collect::<Vec<_>>())
        .bind(events.iter().map(|(_, e)| e.at).collect::<Vec<_>>())
        .bind(
            events
                .iter()
                .map(|(_, e)| e.event.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            events
                .iter()
                .map(|(_, e)| e.data.to_string())
                .collect::<Vec<_>>(),
        )
        .execute(&mut *self.tx)
        .await?;
        self.client_events
            .extend(events.iter().map(|(s, e)| (s.clone(), e.seq)));
        Ok(())
    }

    async fn insert_job(&mut self, job: &NewJob) -> Result<i64> {
        let leased = job.lease_until > 0;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO jobs (session_id, kind, payload, due_at, lease_until, lease_owner)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(&job.session_id)
        .bind(job.kind.as_str())
        .bind(job.payload.to_string())
        .bind(job.due_at)
        .bind(job.lease_until)
        .bind(leased.then(|| self.node.to_string()))
        .fetch_one(&mut *self.tx)
        .await?;
        if !leased {
            self.note_free_job(job.due_at);
        }
        Ok(id)
    }

    async fn delete_job(&mut self, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM jobs WHERE id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn delete_session_jobs(&mut self, session_id: &str, kinds: &[JobKind]) -> Result<()> {
        if kinds.is_empty() {
            return Ok(());
        }
        sqlx::query("DELETE FROM jobs WHERE session_id = $1 AND kind = ANY($2)")
            .bind(session_id)
            .bind(kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn insert_event(
        &mut self,
        ev: &NewEvent,
        session_id: Option<&str>,
    ) -> Result<Option<i64>> {
        let id: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO inbound_events (source, event_key, namespace, reference, session_id, name, data, received_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (source, event_key) DO NOTHING RETURNING id",
        )
        .bind(&ev.source)
        .bind(&ev.event_key)
        .bind(&ev.namespace)
        .bind(&ev.reference)
        .bind(session_id)
        .bind(&ev.name)
        .bind(ev.data.to_string())
        .bind(ev.received_at)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(id.map(|(id,)| id))
    }

    async fn correlation(&mut self, namespace: &str, reference: &str) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT session_id FROM correlations WHERE namespace = $1 AND reference = $2",
        )
        .bind(namespace)
        .bind(reference)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(row.map(|(s,)| s))
    }

    async fn insert_correlation(
        &mut self,
        namespace: &str,
        reference: &str,
        session_id: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO correlations (namespace, reference, session_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(namespace)
        .bind(reference)
        .bind(session_id)
        .execute(&mut *self.tx)
        .await?;
        sqlx::query(
            "UPDATE inbound_events SET session_id = $1 WHERE namespace = $2 AND reference = $3 AND session_id IS NULL",
        )
        .bind(session_id)
        .bind(namespace)
        .bind(reference)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn adopt_events(
        &mut self,
        namespace: &str,
        reference: &str,
        session_id: &str,
    ) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE inbound_events SET session_id = $1 WHERE namespace = $2 AND reference = $3 AND session_id IS NULL",
        )
        .bind(session_id)
        .bind(namespace)
        .bind(reference)
        .execute(&mut *self.tx)
        .await?
        .rows_affected())
    }

    async fn pending_events(
        &mut self,
        session_id: &str,
        names: &[String],
    ) -> Result<Vec<EventRow>> {
        let rows = sqlx::query(
            "SELECT id, name, source, data FROM inbound_events
             WHERE session_id = $1 AND consumed_at IS NULL AND name = ANY($2) ORDER BY id",
        )
        .bind(session_id)
        .bind(names)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| {
                use sqlx::Row;
                Ok(EventRow {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    source: r.try_get("source")?,
                    data: rows::json(r, "data")?,
                })
            })
            .collect()
    }

    async fn consume_event(&mut self, id: i64, at: i64) -> Result<()> {
        sqlx::query("UPDATE inbound_events SET consumed_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn consume_events_named(&mut self, session_id: &str, name: &str, at: i64) -> Result<()> {
        sqlx::query(
            "UPDATE inbound_events SET consumed_at = $1 WHERE session_id = $2 AND name = $3 AND consumed_at IS NULL",
        )
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
             VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6)",
        )
        .bind(&d.id)
        .bind(&d.session_id)
        .bind(&d.endpoint)
        .bind(&d.event_type)
        .bind(d.payload.to_string())
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
        sqlx::query(
            "INSERT INTO delivery_attempts (delivery_id, attempt, at, status_code, error, duration_ms)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(a.attempt)
        .bind(a.at)
        .bind(a.status_code)
        .bind(&a.error)
        .bind(a.duration_ms)
        .execute(&mut *self.tx)
        .await?;
        let delivered_at = (status == "delivered").then_some(a.at);
        sqlx::query(
            "UPDATE deliveries SET status = $1, attempts = $2, next_attempt_at = $3,
               delivered_at = COALESCE($4, delivered_at) WHERE id = $5",
        )
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
        super::reschedule(&mut self.tx, id, due_at, attempts).await?;
        self.note_free_job(due_at);
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        self.write_sessions().await?;
        // Queued now, delivered by PostgreSQL only if the commit succeeds.
        if let Some(at) = self.free_job_due {
            let payload = notify::jobs_payload(&self.node, at);
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(notify::JOBS)
                .bind(payload)
                .execute(&mut *self.tx)
                .await?;
        }
        for payload in notify::client_payloads(&self.node, &self.client_events) {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(notify::CLIENT)
                .bind(payload)
                .execute(&mut *self.tx)
                .await?;
        }
        self.tx.commit().await?;
        Ok(())
    }
}
