//! The committer's transaction on SQLite: `BEGIN IMMEDIATE` holds the
//! database's write lock for the whole batch, so sessions need no row locks
//! and every statement runs inline, one prepared statement per row.

use super::super::deliveries;
use super::super::erase;
use super::super::seal::Seal;
use super::super::*;
use super::jobs;
use super::pool::Pooled;
use super::rows::{collect, json_col, session_by_id};
use rusqlite::{Connection, OptionalExtension, params};

/// The committer's transaction. It owns its connection for its lifetime and
/// runs every statement inline on the calling thread; dropped without
/// `commit`, it rolls back.
pub(super) struct SqliteTx {
    pub(super) conn: Pooled,
    pub(super) seal: Seal,
}

impl SqliteTx {
    fn c(&self) -> Result<&Connection> {
        self.conn.conn()
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if let Ok(conn) = self.conn.conn()
            && !conn.is_autocommit()
        {
            let _ = conn.execute_batch("ROLLBACK");
        }
        // `Pooled` then hands the connection back to the pool.
    }
}

#[async_trait]
impl Tx for SqliteTx {
    async fn lock_session(&mut self, id: &str) -> Result<Option<SessionRow>> {
        // BEGIN IMMEDIATE already holds the database write lock.
        session_by_id(self.c()?, id, &self.seal)
    }

    async fn insert_session(&mut self, r: &SessionRow) -> Result<()> {
        self.c()?
            .prepare_cached(
                "INSERT INTO sessions (id, workflow_id, version, status, outcome, reason, reference, input, state,
                   created_at, updated_at, ended_at, client_secret_hash, client_secret_expires_at, api_key_id,
                   idempotency_key, request_hash, timeline_seq, client_seq, retain_ms)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![
                r.id,
                r.workflow_id,
                i64::from(r.version),
                r.state.status.as_str(),
                r.state.outcome.map(|o| o.as_str()),
                r.state.reason.clone().map(|t| self.seal.text(t)),
                r.reference,
                self.seal.json(&r.input),
                self.seal.text(sql::state_json(&r.state)),
                r.created_at,
                r.updated_at,
                r.state.ended_ms,
                r.client_secret_hash,
                r.client_secret_expires_at,
                r.api_key_id,
                r.idempotency_key,
                r.request_hash,
                r.timeline_seq,
                r.client_seq,
                r.retain_ms,
            ])?;
        Ok(())
    }

    async fn update_session(&mut self, r: &SessionRow) -> Result<()> {
        self.c()?
            .prepare_cached(
                "UPDATE sessions SET status = ?, outcome = ?, reason = ?, state = ?, updated_at = ?, ended_at = ?,
                   timeline_seq = ?, client_seq = ? WHERE id = ?",
            )?
            .execute(params![
                r.state.status.as_str(),
                r.state.outcome.map(|o| o.as_str()),
                r.state.reason.clone().map(|t| self.seal.text(t)),
                self.seal.text(sql::state_json(&r.state)),
                r.updated_at,
                r.state.ended_ms,
                r.timeline_seq,
                r.client_seq,
                r.id,
            ])?;
        Ok(())
    }

    async fn set_client_secret(&mut self, id: &str, hash: &str, expires_at: i64) -> Result<()> {
        self.c()?
            .prepare_cached(sql::SET_CLIENT_SECRET)?
            .execute(params![hash, expires_at, id])?;
        Ok(())
    }

    async fn find_idempotent(
        &mut self,
        api_key_id: &str,
        key: &str,
    ) -> Result<Option<(String, Option<String>)>> {
        Ok(self
            .c()?
            .prepare_cached(sql::FIND_IDEMPOTENT)?
            .query_row([api_key_id, key], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    async fn insert_timeline(&mut self, entries: &[(String, TimelineEntry)]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        // A statement is a function call now: one prepared insert per row.
        let mut stmt = self.c()?.prepare_cached(
            "INSERT INTO timeline (session_id, seq, at, kind, step, data) VALUES (?, ?, ?, ?, ?, ?)",
        )?;
        for (sid, e) in entries {
            stmt.execute(params![
                sid,
                e.seq,
                e.at,
                e.kind,
                e.step,
                self.seal.json(&e.data)
            ])?;
        }
        Ok(())
    }

    async fn insert_audit(&mut self, entries: &[NewAudit]) -> Result<()> {
        super::audit::append(self.c()?, entries)
    }

    async fn insert_client_events(&mut self, events: &[(String, ClientEvent)]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut stmt = self.c()?.prepare_cached(
            "INSERT INTO client_events (session_id, seq, at, event, data) VALUES (?, ?, ?, ?, ?)",
        )?;
        for (sid, e) in events {
            stmt.execute(params![sid, e.seq, e.at, e.event, self.seal.json(&e.data)])?;
        }
        Ok(())
    }

    async fn insert_job(&mut self, job: &NewJob) -> Result<i64> {
        let c = self.c()?;
        c.prepare_cached(
            "INSERT INTO jobs (session_id, kind, payload, due_at, lease_until) VALUES (?, ?, ?, ?, ?)",
        )?
        .execute(params![
            job.session_id,
            job.kind.as_str(),
            self.seal.json(&job.payload),
            job.due_at,
            job.lease_until,
        ])?;
        Ok(c.last_insert_rowid())
    }

    async fn delete_job(&mut self, id: i64) -> Result<()> {
        jobs::delete(self.c()?, id)
    }

    async fn delete_session_jobs(&mut self, session_id: &str, kinds: &[JobKind]) -> Result<()> {
        if kinds.is_empty() {
            return Ok(());
        }
        let mut stmt = self
            .c()?
            .prepare_cached("DELETE FROM jobs WHERE session_id = ? AND kind = ?")?;
        for k in kinds {
            stmt.execute([session_id, k.as_str()])?;
        }
        Ok(())
    }

    async fn insert_event(
        &mut self,
        ev: &NewEvent,
        session_id: Option<&str>,
    ) -> Result<Option<i64>> {
        let c = self.c()?;
        let n = c
            .prepare_cached(
                "INSERT INTO inbound_events (source, event_key, namespace, reference, session_id, name, data, received_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, event_key) DO NOTHING",
            )?
            .execute(params![
                ev.source,
                ev.event_key,
                ev.namespace,
                ev.reference,
                session_id,
                ev.name,
                self.seal.json(&ev.data),
                ev.received_at,
            ])?;
        Ok((n == 1).then(|| c.last_insert_rowid()))
    }

    async fn correlation(&mut self, namespace: &str, reference: &str) -> Result<Option<String>> {
        Ok(self
            .c()?
            .prepare_cached(sql::CORRELATION)?
            .query_row([namespace, reference], |r| r.get(0))
            .optional()?)
    }

    async fn insert_correlation(
        &mut self,
        namespace: &str,
        reference: &str,
        session_id: &str,
    ) -> Result<()> {
        let c = self.c()?;
        c.prepare_cached(
            "INSERT INTO correlations (namespace, reference, session_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        )?
        .execute([namespace, reference, session_id])?;
        c.prepare_cached(
            "UPDATE inbound_events SET session_id = ? WHERE namespace = ? AND reference = ? AND session_id IS NULL",
        )?
        .execute([session_id, namespace, reference])?;
        Ok(())
    }

    async fn pending_events(
        &mut self,
        session_id: &str,
        names: &[String],
    ) -> Result<Vec<EventRow>> {
        let mut stmt = self.c()?.prepare_cached(
            "SELECT id, name, source, data FROM inbound_events WHERE session_id = ? AND consumed_at IS NULL ORDER BY id",
        )?;
        let mut rows = stmt.query([session_id])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let name: String = r.get(1)?;
            if names.contains(&name) {
                out.push(EventRow {
                    id: r.get(0)?,
                    name,
                    source: r.get(2)?,
                    data: json_col(r, 3, "data", &self.seal)?,
                });
            }
        }
        Ok(out)
    }

    async fn consume_event(&mut self, id: i64, at: i64) -> Result<()> {
        self.c()?
            .prepare_cached("UPDATE inbound_events SET consumed_at = ? WHERE id = ?")?
            .execute([at, id])?;
        Ok(())
    }

    async fn consume_events_named(&mut self, session_id: &str, name: &str, at: i64) -> Result<()> {
        self.c()?
            .prepare_cached(sql::CONSUME_EVENTS_NAMED)?
            .execute(params![at, session_id, name])?;
        Ok(())
    }

    async fn insert_delivery(&mut self, d: &NewDelivery) -> Result<()> {
        self.c()?
            .prepare_cached(
                "INSERT INTO deliveries (id, session_id, endpoint, event_type, payload, status, attempts, created_at, next_attempt_at)
                 VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
            )?
            .execute(params![
                d.id,
                d.session_id,
                d.endpoint,
                d.event_type,
                self.seal.json(&d.payload),
                d.created_at,
                d.created_at,
            ])?;
        Ok(())
    }

    async fn write_stats(&mut self, visits: &[StepVisit], calls: &[CallStat]) -> Result<()> {
        super::stats::write(self.c()?, visits, calls)
    }

    async fn requeue_delivery(&mut self, id: &str, now: i64) -> Result<Option<String>> {
        Ok(self
            .c()?
            .prepare_cached(deliveries::REQUEUE_DELIVERY)?
            .query_row(params![now, id], |r| r.get(0))
            .optional()?)
    }

    async fn record_delivery_attempt(
        &mut self,
        id: &str,
        a: &DeliveryAttempt,
        status: &str,
        next_attempt_at: Option<i64>,
    ) -> Result<()> {
        let c = self.c()?;
        c.prepare_cached(
            "INSERT INTO delivery_attempts (delivery_id, attempt, at, status_code, error, duration_ms)
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )?
        .execute(params![
            id,
            a.attempt,
            a.at,
            a.status_code,
            a.error,
            a.duration_ms
        ])?;
        let delivered_at = (status == "delivered").then_some(a.at);
        c.prepare_cached(
            "UPDATE deliveries SET status = ?, attempts = ?, next_attempt_at = ?,
               delivered_at = COALESCE(?, delivered_at) WHERE id = ?",
        )?
        .execute(params![
            status,
            a.attempt,
            next_attempt_at,
            delivered_at,
            id
        ])?;
        Ok(())
    }

    async fn reschedule_job(&mut self, id: i64, due_at: i64, attempts: i64) -> Result<()> {
        jobs::reschedule(self.c()?, id, due_at, attempts)
    }

    async fn erase_session(&mut self, id: &str, at: i64, view: &Value) -> Result<()> {
        let c = self.c()?;
        c.prepare_cached(sql::ERASE_SESSION)?
            .execute(params![at, id])?;
        for stmt in [
            sql::ERASE_TIMELINE,
            sql::ERASE_CLIENT_EVENTS,
            sql::ERASE_INBOUND_EVENTS,
        ] {
            c.prepare_cached(stmt)?.execute([id])?;
        }
        // Jobs and deliveries are sealed JSON: opened, changed and sealed
        // again here (store/erase.rs decides).
        let jobs = collect(
            &mut *c.prepare_cached("SELECT id, kind, payload FROM jobs WHERE session_id = ?1")?,
            [id],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    json_col(r, 2, "payload", &self.seal)?,
                ))
            },
        )?;
        for (job, kind, payload) in jobs {
            match erase::job_after_erasure(&kind, &payload) {
                erase::JobAfterErasure::Keep => {}
                erase::JobAfterErasure::Drop => {
                    c.prepare_cached("DELETE FROM jobs WHERE id = ?1")?
                        .execute([job])?;
                }
                erase::JobAfterErasure::Rewrite(new) => {
                    c.prepare_cached("UPDATE jobs SET payload = ?1 WHERE id = ?2")?
                        .execute(params![self.seal.json(&new), job])?;
                }
            }
        }
        let deliveries = collect(
            &mut *c.prepare_cached("SELECT id, payload FROM deliveries WHERE session_id = ?1")?,
            [id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    json_col(r, 1, "payload", &self.seal)?,
                ))
            },
        )?;
        for (delivery, payload) in deliveries {
            let new = erase::delivery_after_erasure(payload, view);
            c.prepare_cached("UPDATE deliveries SET payload = ?1 WHERE id = ?2")?
                .execute(params![self.seal.json(&new), delivery])?;
        }
        Ok(())
    }

    async fn open_review(&mut self, review: &ReviewRow) -> Result<()> {
        super::reviews::upsert(self.c()?, review, &self.seal)
    }

    async fn close_review(&mut self, session_id: &str) -> Result<()> {
        super::reviews::delete(self.c()?, session_id)
    }

    async fn lock_review(&mut self, session_id: &str) -> Result<Option<ReviewRow>> {
        // BEGIN IMMEDIATE already holds the database write lock.
        super::reviews::review_by_id(self.c()?, session_id, &self.seal)
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        // On failure the drop below rolls back what is left of it.
        self.c()?.prepare_cached("COMMIT")?.execute([])?;
        Ok(())
    }
}
