//! The committer's transaction on PostgreSQL. Sessions are locked with
//! `SELECT ... FOR UPDATE`, so that changes to one session from several
//! nodes serialize. An event stored for a reference at the moment another
//! node commits that reference is caught by `adopt_events`, which both
//! sides run again after their commit (no lock is held across the batch,
//! so batches of several nodes cannot deadlock on references). Cluster
//! notifications are queued and sent with the commit.

use super::super::*;
use super::{events, events::EventCache, flush::Flush, jobs::PendingJobs, notify, rows, writes};
use sqlx::{Postgres, Row, Transaction};
use std::collections::HashMap;

pub(super) struct PgTx {
    pub(super) tx: Transaction<'static, Postgres>,
    pub(super) node: Arc<str>,
    /// Earliest due time of a job committed free (no lease): other nodes'
    /// schedulers may want to wake for it.
    pub(super) free_job_due: Option<i64>,
    /// Client events written, announced to the other nodes at commit.
    pub(super) client_events: Vec<(String, i64)>,
    /// Sessions created, and sessions changed, in this transaction: written
    /// together at commit (one statement each instead of one per change; a
    /// session often changes several times in one batch). Reads of a
    /// session see these first.
    pub(super) created: HashMap<String, SessionRow>,
    pub(super) updated: HashMap<String, SessionRow>,
    /// Sessions as `lock_sessions` read them when it locked them: a batch
    /// locks all its sessions up front, so each is read once, not again
    /// by every command that touches it.
    pub(super) locked: HashMap<String, SessionRow>,
    /// Job inserts and deletes, written at commit.
    pub(super) jobs: PendingJobs,
    /// Customer webhook deliveries created, written at commit.
    pub(super) deliveries: Vec<NewDelivery>,
    /// Delivery attempts recorded, written at commit (their deliveries
    /// exist by then: see `write_deliveries`).
    pub(super) attempts: Vec<writes::AttemptWrite>,
    /// Timeline entries and client events, written at commit.
    pub(super) timeline: Vec<(String, TimelineEntry)>,
    pub(super) client_rows: Vec<(String, ClientEvent)>,
    /// Audit entries, written at commit.
    pub(super) audit: Vec<NewAudit>,
    /// What personal data is sealed under (store/seal.rs).
    pub(super) seal: super::super::seal::Seal,
    /// Unconsumed events of the sessions locked up front; consumptions,
    /// written at commit.
    pub(super) events: EventCache,
}

impl PgTx {
    fn note_free_job(&mut self, due_at: i64) {
        self.free_job_due = Some(self.free_job_due.map_or(due_at, |t| t.min(due_at)));
    }

    /// Writes what the transaction kept, and queues its notifications, in
    /// one statement before the commit.
    async fn write_kept(&mut self) -> Result<()> {
        let created: Vec<SessionRow> = std::mem::take(&mut self.created).into_values().collect();
        let updated: Vec<SessionRow> = std::mem::take(&mut self.updated).into_values().collect();
        let deliveries = std::mem::take(&mut self.deliveries);
        let attempts = std::mem::take(&mut self.attempts);
        let timeline = std::mem::take(&mut self.timeline);
        let client_rows = std::mem::take(&mut self.client_rows);
        let client_events = std::mem::take(&mut self.client_events);
        let mut f = Flush::new();
        writes::insert_sessions(&mut f, &created, &self.seal);
        writes::update_sessions(&mut f, &updated, &self.seal);
        writes::insert_deliveries(&mut f, &deliveries, &self.seal);
        writes::record_attempts(&mut f, &attempts);
        writes::insert_timeline(&mut f, &timeline, &self.seal);
        let audit = std::mem::take(&mut self.audit);
        writes::insert_audit(&mut f, &audit);
        writes::insert_client_events(&mut f, &client_rows, &self.seal);
        self.events.push(&mut f);
        self.jobs.push(&mut f, &self.node, &self.seal);
        let mut channels = Vec::new();
        let mut payloads = Vec::new();
        if let Some(at) = self.free_job_due.take() {
            channels.push(notify::JOBS);
            payloads.push(notify::jobs_payload(&self.node, at));
        }
        for payload in notify::client_payloads(&self.node, &client_events) {
            channels.push(notify::CLIENT);
            payloads.push(payload);
        }
        // Other nodes' operator streams (the console) follow every session
        // written, not only those whose browser view changed.
        let written = created.iter().chain(&updated).map(|r| r.id.as_str());
        for payload in notify::session_payloads(&self.node, written) {
            channels.push(notify::SESSIONS);
            payloads.push(payload);
        }
        f.run(&mut self.tx, channels, payloads).await
    }

    /// Writes the deliveries kept so far (an attempt at one of them is
    /// recorded in this transaction: its row must exist first).
    async fn write_deliveries(&mut self) -> Result<()> {
        let deliveries = std::mem::take(&mut self.deliveries);
        let mut f = Flush::new();
        writes::insert_deliveries(&mut f, &deliveries, &self.seal);
        f.run(&mut self.tx, Vec::new(), Vec::new()).await
    }
}

#[async_trait]
impl Tx for PgTx {
    async fn lock_session(&mut self, id: &str) -> Result<Option<SessionRow>> {
        // Changed or locked earlier in this transaction.
        if let Some(row) = self
            .updated
            .get(id)
            .or_else(|| self.created.get(id))
            .or_else(|| self.locked.get(id))
        {
            return Ok(Some(row.clone()));
        }
        let row = sqlx::query(sql::SESSION_BY_ID_FOR_UPDATE)
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref()
            .map(|r| rows::session(r, &self.seal))
            .transpose()
    }

    async fn lock_sessions(&mut self, ids: &[&str]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let found = sqlx::query(sql::SESSIONS_BY_IDS_FOR_UPDATE)
            .bind(ids)
            .fetch_all(&mut *self.tx)
            .await?;
        let mut existing = Vec::with_capacity(found.len());
        for r in &found {
            let row = rows::session(r, &self.seal)?;
            existing.push(row.id.clone());
            self.locked.insert(row.id.clone(), row);
        }
        self.events.load(&mut self.tx, &existing, &self.seal).await
    }

    async fn insert_session(&mut self, r: &SessionRow) -> Result<()> {
        self.events.keep_new(&r.id);
        self.created.insert(r.id.clone(), r.clone());
        Ok(())
    }

    async fn update_session(&mut self, r: &SessionRow) -> Result<()> {
        match self.created.get_mut(&r.id) {
            Some(row) => *row = r.clone(),
            None => {
                self.updated.insert(r.id.clone(), r.clone());
            }
        }
        Ok(())
    }

    async fn set_client_secret(&mut self, id: &str, hash: &str, expires_at: i64) -> Result<()> {
        sqlx::query(sql::SET_CLIENT_SECRET)
            .bind(hash)
            .bind(expires_at)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        for row in [
            self.updated.get_mut(id),
            self.created.get_mut(id),
            self.locked.get_mut(id),
        ]
        .into_iter()
        .flatten()
        {
            row.client_secret_hash = hash.to_string();
            row.client_secret_expires_at = expires_at;
        }
        Ok(())
    }

    async fn find_idempotent(
        &mut self,
        api_key_id: &str,
        key: &str,
    ) -> Result<Option<(String, Option<String>)>> {
        // Created earlier in this batch (a repeat of the same request).
        if let Some(r) = self
            .created
            .values()
            .find(|r| r.api_key_id == api_key_id && r.idempotency_key.as_deref() == Some(key))
        {
            return Ok(Some((r.id.clone(), r.request_hash.clone())));
        }
        Ok(sqlx::query_as(sql::FIND_IDEMPOTENT)
            .bind(api_key_id)
            .bind(key)
            .fetch_optional(&mut *self.tx)
            .await?)
    }

    async fn insert_timeline(&mut self, entries: &[(String, TimelineEntry)]) -> Result<()> {
        self.timeline.extend_from_slice(entries);
        Ok(())
    }

    async fn insert_audit(&mut self, entries: &[NewAudit]) -> Result<()> {
        self.audit.extend_from_slice(entries);
        Ok(())
    }

    async fn insert_client_events(&mut self, events: &[(String, ClientEvent)]) -> Result<()> {
        self.client_rows.extend_from_slice(events);
        self.client_events
            .extend(events.iter().map(|(s, e)| (s.clone(), e.seq)));
        Ok(())
    }

    async fn insert_job(&mut self, job: &NewJob) -> Result<i64> {
        let id = self.jobs.insert(&mut self.tx, job).await?;
        if job.lease_until <= 0 {
            self.note_free_job(job.due_at);
        }
        Ok(id)
    }

    async fn delete_job(&mut self, id: i64) -> Result<()> {
        self.jobs.delete(id);
        Ok(())
    }

    async fn delete_session_jobs(&mut self, session_id: &str, kinds: &[JobKind]) -> Result<()> {
        let kinds: Vec<&'static str> = kinds.iter().map(|k| k.as_str()).collect();
        self.jobs.clear(session_id, &kinds);
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
        .bind(self.seal.json(&ev.data))
        .bind(ev.received_at)
        .fetch_optional(&mut *self.tx)
        .await?;
        if let (Some((id,)), Some(session)) = (id, session_id) {
            let row = EventRow {
                id,
                name: ev.name.clone(),
                source: ev.source.clone(),
                data: ev.data.clone(),
            };
            self.events.add(session, row);
        }
        Ok(id.map(|(id,)| id))
    }

    async fn correlation(&mut self, namespace: &str, reference: &str) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(sql::CORRELATION)
            .bind(namespace)
            .bind(reference)
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(row.map(|(s,)| s))
    }

    async fn correlations(
        &mut self,
        refs: &[(&str, &str)],
    ) -> Result<HashMap<(String, String), String>> {
        if refs.is_empty() {
            return Ok(HashMap::new());
        }
        let (namespaces, references): (Vec<&str>, Vec<&str>) = refs.iter().copied().unzip();
        // A lookup by primary key per reference, whatever plan is cached
        // (OFFSET 0 keeps the subquery from being turned into a hash join).
        let found: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT r.namespace, r.reference, c.session_id
             FROM UNNEST($1::text[], $2::text[]) AS r(namespace, reference),
             LATERAL (SELECT session_id FROM correlations c
                      WHERE c.namespace = r.namespace AND c.reference = r.reference
                      OFFSET 0) AS c",
        )
        .bind(namespaces)
        .bind(references)
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(found.into_iter().map(|(n, r, sid)| ((n, r), sid)).collect())
    }

    async fn insert_correlation(
        &mut self,
        namespace: &str,
        reference: &str,
        session_id: &str,
    ) -> Result<()> {
        // One round trip: the reference, and the events that came before it.
        let adopted = sqlx::query(
            "WITH c AS (INSERT INTO correlations (namespace, reference, session_id)
                        VALUES ($2, $3, $1) ON CONFLICT DO NOTHING)
             UPDATE inbound_events SET session_id = $1
             WHERE namespace = $2 AND reference = $3 AND session_id IS NULL
             RETURNING id, name, source, data",
        )
        .bind(session_id)
        .bind(namespace)
        .bind(reference)
        .fetch_all(&mut *self.tx)
        .await?;
        for r in &adopted {
            self.events.add(session_id, events::event(r, &self.seal)?);
        }
        Ok(())
    }

    async fn adopt_events(
        &mut self,
        namespace: &str,
        reference: &str,
        session_id: &str,
    ) -> Result<u64> {
        // Only for the session the reference is correlated to: the caller
        // may name the session it correlated, and another may own it.
        let adopted = sqlx::query(
            "UPDATE inbound_events SET session_id = $1
             WHERE namespace = $2 AND reference = $3 AND session_id IS NULL
               AND EXISTS (SELECT 1 FROM correlations c
                           WHERE c.namespace = $2 AND c.reference = $3 AND c.session_id = $1)
             RETURNING id, name, source, data",
        )
        .bind(session_id)
        .bind(namespace)
        .bind(reference)
        .fetch_all(&mut *self.tx)
        .await?;
        for r in &adopted {
            self.events.add(session_id, events::event(r, &self.seal)?);
        }
        Ok(adopted.len() as u64)
    }

    async fn adopt_events_many(
        &mut self,
        refs: &[(&str, &str, &str)],
    ) -> Result<HashMap<(String, String), u64>> {
        if refs.is_empty() {
            return Ok(HashMap::new());
        }
        let mut namespaces = Vec::with_capacity(refs.len());
        let mut references = Vec::with_capacity(refs.len());
        let mut sessions = Vec::with_capacity(refs.len());
        for &(n, r, s) in refs {
            namespaces.push(n);
            references.push(r);
            sessions.push(s);
        }
        // As `adopt_events`, for every reference at once; the lateral
        // lookups (OFFSET 0 keeps them from being flattened) stay index
        // lookups whatever plan is cached.
        let adopted = sqlx::query(
            "WITH m AS (
               SELECT x.id, a.session_id
               FROM UNNEST($1::text[], $2::text[], $3::text[]) AS a(namespace, reference, session_id),
               LATERAL (SELECT i.id FROM inbound_events i
                        WHERE i.namespace = a.namespace AND i.reference = a.reference
                          AND i.session_id IS NULL OFFSET 0) AS x
               WHERE EXISTS (SELECT 1 FROM correlations c
                             WHERE c.namespace = a.namespace AND c.reference = a.reference
                               AND c.session_id = a.session_id OFFSET 0))
             UPDATE inbound_events AS e SET session_id = m.session_id FROM m WHERE e.id = m.id
             RETURNING e.id, e.session_id, e.namespace, e.reference, e.name, e.source, e.data",
        )
        .bind(namespaces)
        .bind(references)
        .bind(sessions)
        .fetch_all(&mut *self.tx)
        .await?;
        let mut counts: HashMap<(String, String), u64> = HashMap::new();
        for r in &adopted {
            let session: String = r.try_get("session_id")?;
            let key = (r.try_get("namespace")?, r.try_get("reference")?);
            *counts.entry(key).or_default() += 1;
            self.events.add(&session, events::event(r, &self.seal)?);
        }
        Ok(counts)
    }

    async fn pending_events(
        &mut self,
        session_id: &str,
        names: &[String],
    ) -> Result<Vec<EventRow>> {
        if let Some(kept) = self.events.pending(session_id, names) {
            return Ok(kept);
        }
        let rows = sqlx::query(
            "SELECT id, name, source, data FROM inbound_events
             WHERE session_id = $1 AND consumed_at IS NULL AND name = ANY($2) ORDER BY id",
        )
        .bind(session_id)
        .bind(names)
        .fetch_all(&mut *self.tx)
        .await?;
        let mut found = Vec::with_capacity(rows.len());
        for r in &rows {
            let ev = events::event(r, &self.seal)?;
            // Consumed earlier in this transaction, not yet written.
            if !self.events.is_consumed(ev.id) {
                found.push(ev);
            }
        }
        Ok(found)
    }

    async fn consume_event(&mut self, id: i64, at: i64) -> Result<()> {
        self.events.consume(id, at);
        Ok(())
    }

    async fn consume_events_named(&mut self, session_id: &str, name: &str, at: i64) -> Result<()> {
        if self.events.consume_named(session_id, name, at) {
            return Ok(());
        }
        sqlx::query(sql::CONSUME_EVENTS_NAMED)
            .bind(at)
            .bind(session_id)
            .bind(name)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn insert_delivery(&mut self, d: &NewDelivery) -> Result<()> {
        self.deliveries.push(d.clone());
        Ok(())
    }

    async fn record_delivery_attempt(
        &mut self,
        id: &str,
        a: &DeliveryAttempt,
        status: &str,
        next_attempt_at: Option<i64>,
    ) -> Result<()> {
        if self.deliveries.iter().any(|d| d.id == id) {
            self.write_deliveries().await?;
        }
        self.attempts.push(writes::AttemptWrite {
            delivery_id: id.to_string(),
            attempt: a.clone(),
            status: status.to_string(),
            next_attempt_at,
        });
        Ok(())
    }

    async fn reschedule_job(&mut self, id: i64, due_at: i64, attempts: i64) -> Result<()> {
        if self.jobs.holds(id) {
            self.jobs
                .write(&mut self.tx, &self.node, &self.seal)
                .await?;
        }
        super::reschedule(&mut self.tx, id, due_at, attempts).await?;
        self.note_free_job(due_at);
        Ok(())
    }

    async fn erase_session(&mut self, id: &str, at: i64, view: &Value) -> Result<()> {
        // What this transaction kept so far is written first, so that the
        // statements below rewrite it too; sessions written stay readable
        // to the batch's later commands as locked rows.
        let written: Vec<SessionRow> = self
            .created
            .values()
            .chain(self.updated.values())
            .cloned()
            .collect();
        self.write_kept().await?;
        for row in written {
            self.locked.insert(row.id.clone(), row);
        }
        sqlx::query(sql::ERASE_SESSION)
            .bind(at)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        for stmt in [
            sql::ERASE_TIMELINE,
            sql::ERASE_CLIENT_EVENTS,
            sql::ERASE_INBOUND_EVENTS,
        ] {
            sqlx::query(stmt).bind(id).execute(&mut *self.tx).await?;
        }
        // Jobs and deliveries are sealed JSON: opened, changed and sealed
        // again here (store/erase.rs decides).
        let jobs = sqlx::query("SELECT id, kind, payload FROM jobs WHERE session_id = $1")
            .bind(id)
            .fetch_all(&mut *self.tx)
            .await?;
        for r in &jobs {
            let job: i64 = r.try_get("id")?;
            let kind: String = r.try_get("kind")?;
            let payload = rows::json(r, "payload", &self.seal)?;
            match super::super::erase::job_after_erasure(&kind, &payload) {
                super::super::erase::JobAfterErasure::Keep => {}
                super::super::erase::JobAfterErasure::Drop => {
                    sqlx::query("DELETE FROM jobs WHERE id = $1")
                        .bind(job)
                        .execute(&mut *self.tx)
                        .await?;
                }
                super::super::erase::JobAfterErasure::Rewrite(new) => {
                    sqlx::query("UPDATE jobs SET payload = $1 WHERE id = $2")
                        .bind(self.seal.json(&new))
                        .bind(job)
                        .execute(&mut *self.tx)
                        .await?;
                }
            }
        }
        let deliveries = sqlx::query("SELECT id, payload FROM deliveries WHERE session_id = $1")
            .bind(id)
            .fetch_all(&mut *self.tx)
            .await?;
        for r in &deliveries {
            let delivery: String = r.try_get("id")?;
            let new = super::super::erase::delivery_after_erasure(
                rows::json(r, "payload", &self.seal)?,
                view,
            );
            sqlx::query("UPDATE deliveries SET payload = $1 WHERE id = $2")
                .bind(self.seal.json(&new))
                .bind(delivery)
                .execute(&mut *self.tx)
                .await?;
        }
        if let Some(row) = self.locked.get_mut(id) {
            row.input = Value::Object(serde_json::Map::new());
            row.erased_at = Some(at);
        }
        Ok(())
    }

    // Reviews are few beside the other rows: written at once rather than
    // kept for the commit's statement, so that `lock_review` reads them.
    async fn open_review(&mut self, review: &ReviewRow) -> Result<()> {
        super::reviews::upsert(review, &self.seal)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn close_review(&mut self, session_id: &str) -> Result<()> {
        sqlx::query(crate::store::reviews::DELETE_REVIEW)
            .bind(session_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn lock_review(&mut self, session_id: &str) -> Result<Option<ReviewRow>> {
        sqlx::query(crate::store::reviews::REVIEW_BY_ID_FOR_UPDATE)
            .bind(session_id)
            .fetch_optional(&mut *self.tx)
            .await?
            .as_ref()
            .map(|r| super::reviews::review_from_row(r, &self.seal))
            .transpose()
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        self.write_kept().await?;
        self.tx.commit().await?;
        Ok(())
    }
}
