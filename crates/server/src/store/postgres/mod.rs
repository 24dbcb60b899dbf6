//! The PostgreSQL backend, for one node or several nodes on one database.
//! It runs on sqlx's async pool: the committer's transaction awaits each
//! statement on the runtime, batches of rows go in one `UNNEST` insert, and
//! due jobs are claimed with `FOR UPDATE SKIP LOCKED` under a lease that
//! names the node holding it. Other nodes hear about new free jobs and new
//! client events through `LISTEN/NOTIFY` (notify.rs); API keys are in keys.rs.

mod acquire;
mod audit;
mod connect;
mod events;
mod flush;
mod jobs;
mod keys;
mod migrate;
mod nodes;
mod notify;
mod observe;
mod operators;
mod reseal;
mod reviews;
mod rows;
mod tx;
mod writes;

use super::*;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};
use std::str::FromStr;

pub struct PgStore {
    pool: PgPool,
    /// Callers waiting for a connection (acquire.rs).
    waiting: std::sync::atomic::AtomicU64,
    node: Arc<str>,
    stable_node: bool,
    job_ids: Arc<jobs::JobIds>,
    /// What personal data is sealed under (store/seal.rs).
    seal: seal::Seal,
}

impl PgStore {
    /// The pool opens connections on demand; one connection is made here
    /// first, so that a wrong host, port, database or user fails the start
    /// with one clear error (connect.rs), the URL's password never shown.
    pub async fn open(url: &str, options: &OpenOptions) -> Result<PgStore> {
        let connect = PgConnectOptions::from_str(url)
            .map_err(|_| Error::Unsupported(crate::config::redact_url(url)))?
            .application_name("gangway");
        let pool = PgPoolOptions::new()
            .max_connections(options.pool_size.max(2))
            .min_connections(0)
            .acquire_timeout(options.acquire_timeout)
            .idle_timeout(std::time::Duration::from_secs(300))
            .test_before_acquire(true)
            .connect_lazy_with(connect.clone());
        connect::check(&connect, options.acquire_timeout).await?;
        Ok(PgStore {
            pool,
            waiting: std::sync::atomic::AtomicU64::new(0),
            node: Arc::from(options.node_id.as_str()),
            stable_node: options.stable_node_id,
            job_ids: Arc::default(),
            seal: options.seal.clone(),
        })
    }

    /// This node's id, as written on the leases it holds.
    pub fn node_id(&self) -> &str {
        &self.node
    }
}

async fn reschedule(
    conn: &mut sqlx::PgConnection,
    id: i64,
    due_at: i64,
    attempts: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE jobs SET due_at = $1, attempts = $2, lease_until = 0, lease_owner = NULL WHERE id = $3",
    )
    .bind(due_at)
    .bind(attempts)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

#[async_trait]
impl Store for PgStore {
    fn is_shared(&self) -> bool {
        true
    }

    async fn unadopted_references(&self) -> Result<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT DISTINCT e.namespace, e.reference FROM inbound_events e
             JOIN correlations c ON c.namespace = e.namespace AND c.reference = e.reference
             WHERE e.session_id IS NULL",
        )
        .fetch_all(&mut *self.conn().await?)
        .await?)
    }

    async fn unadopted_among(
        &self,
        refs: &[(String, String)],
    ) -> Result<Vec<(String, String, String)>> {
        if refs.is_empty() {
            return Ok(Vec::new());
        }
        let (namespaces, references): (Vec<&str>, Vec<&str>) =
            refs.iter().map(|(n, r)| (n.as_str(), r.as_str())).unzip();
        Ok(sqlx::query_as(
            // Index lookups per reference, whatever the plan cache holds:
            // as a plain join, a generic plan made while `correlations` was
            // small hashed the whole table on every call (OFFSET 0 and
            // LIMIT keep the subqueries from being flattened into a join).
            "SELECT DISTINCT r.namespace, r.reference, c.session_id
             FROM UNNEST($1::text[], $2::text[]) AS r(namespace, reference),
             LATERAL (SELECT 1 FROM inbound_events e
                      WHERE e.namespace = r.namespace AND e.reference = r.reference
                        AND e.session_id IS NULL LIMIT 1) AS e,
             LATERAL (SELECT session_id FROM correlations c
                      WHERE c.namespace = r.namespace AND c.reference = r.reference
                      OFFSET 0) AS c",
        )
        .bind(namespaces)
        .bind(references)
        .fetch_all(&mut *self.conn().await?)
        .await?)
    }

    async fn migrate(&self) -> Result<super::Migrated> {
        migrate::run(&self.pool).await
    }

    async fn pending_migrations(&self) -> Result<Vec<i64>> {
        migrate::pending(&self.pool).await
    }

    async fn begin(&self) -> Result<Box<dyn Tx>> {
        Ok(Box::new(tx::PgTx {
            tx: self.begin_tx().await?,
            node: self.node.clone(),
            free_job_due: None,
            client_events: Vec::new(),
            created: std::collections::HashMap::new(),
            updated: std::collections::HashMap::new(),
            deliveries: Vec::new(),
            attempts: Vec::new(),
            timeline: Vec::new(),
            client_rows: Vec::new(),
            audit: Vec::new(),
            seal: self.seal.clone(),
            locked: std::collections::HashMap::new(),
            jobs: jobs::PendingJobs::new(self.job_ids.clone()),
            events: events::EventCache::default(),
        }))
    }

    async fn upsert_workflow_version(
        &self,
        id: &str,
        version: u32,
        source: &str,
        hash: &str,
        at: i64,
    ) -> Result<Option<String>> {
        // Insert first: of two nodes loading the same version, one inserts
        // and the other reads what it stored.
        let inserted = sqlx::query(sql::INSERT_WORKFLOW_VERSION)
            .bind(id)
            .bind(i64::from(version))
            .bind(source)
            .bind(hash)
            .bind(at)
            .execute(&mut *self.conn().await?)
            .await?
            .rows_affected();
        if inserted == 1 {
            return Ok(None);
        }
        let row: Option<(String,)> = sqlx::query_as(sql::WORKFLOW_HASH)
            .bind(id)
            .bind(i64::from(version))
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        Ok(row.map(|(h,)| h))
    }

    async fn workflow_versions(&self) -> Result<Vec<(String, u32, String)>> {
        let rows: Vec<(String, i64, String)> = sqlx::query_as(sql::WORKFLOW_VERSIONS)
            .fetch_all(&mut *self.conn().await?)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, v, s)| (id, u32::try_from(v).unwrap_or_default(), s))
            .collect())
    }

    async fn announce_workflows(&self) -> Result<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(notify::WORKFLOWS)
            .bind(&*self.node)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    async fn workflow_version(&self, id: &str, version: u32) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(sql::WORKFLOW_SOURCE)
            .bind(id)
            .bind(i64::from(version))
            .fetch_optional(&mut *self.conn().await?)
            .await?)
    }

    async fn session(&self, id: &str) -> Result<Option<SessionRow>> {
        let row = sqlx::query(sql::SESSION_BY_ID)
            .bind(id)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.as_ref()
            .map(|r| rows::session(r, &self.seal))
            .transpose()
    }

    async fn sessions(&self, f: &SessionFilter) -> Result<Vec<SessionRow>> {
        let (sql, args) = sql::sessions(f);
        let mut q = sqlx::query(&sql);
        for a in args {
            q = match a {
                sql::Arg::Text(t) => q.bind(t),
                sql::Arg::Int(n) => q.bind(n),
            };
        }
        q.bind(f.limit)
            .fetch_all(&mut *self.conn().await?)
            .await?
            .iter()
            .map(|r| rows::session(r, &self.seal))
            .collect()
    }

    async fn timeline(&self, session_id: &str) -> Result<Vec<TimelineEntry>> {
        sqlx::query(sql::TIMELINE)
            .bind(session_id)
            .fetch_all(&mut *self.conn().await?)
            .await?
            .iter()
            .map(|r| rows::timeline(r, &self.seal))
            .collect()
    }

    async fn client_events_after(&self, session_id: &str, seq: i64) -> Result<Vec<ClientEvent>> {
        sqlx::query(sql::CLIENT_EVENTS_AFTER)
            .bind(session_id)
            .bind(seq)
            .fetch_all(&mut *self.conn().await?)
            .await?
            .iter()
            .map(|r| rows::client_event(r, &self.seal))
            .collect()
    }

    async fn deliveries(&self, session_id: &str) -> Result<Vec<Delivery>> {
        let rows = sqlx::query(sql::DELIVERIES)
            .bind(session_id)
            .fetch_all(&mut *self.conn().await?)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: String = r.try_get("id")?;
            let attempt_log = sqlx::query_as::<_, (i64, i64, Option<i64>, Option<String>, i64)>(
                sql::DELIVERY_ATTEMPTS,
            )
            .bind(&id)
            .fetch_all(&mut *self.conn().await?)
            .await?
            .into_iter()
            .map(
                |(attempt, at, status_code, error, duration_ms)| DeliveryAttempt {
                    attempt,
                    at,
                    status_code,
                    error,
                    duration_ms,
                },
            )
            .collect();
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
        Ok(sqlx::query_as(sql::COUNT_BY_STATUS)
            .fetch_all(&mut *self.conn().await?)
            .await?)
    }

    async fn session_counts(&self, workflow: Option<&str>) -> Result<Vec<SessionCount>> {
        let q = match workflow {
            Some(w) => sqlx::query_as(sql::SESSION_COUNTS_OF).bind(w),
            None => sqlx::query_as(sql::SESSION_COUNTS),
        };
        let rows: Vec<(String, i64, String, Option<String>, i64)> =
            q.fetch_all(&mut *self.conn().await?).await?;
        Ok(rows
            .into_iter()
            .map(|(workflow, version, status, outcome, count)| SessionCount {
                workflow,
                version: u32::try_from(version).unwrap_or_default(),
                status,
                outcome,
                count,
            })
            .collect())
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    async fn claim_due_jobs(
        &self,
        now: i64,
        limit: i64,
        poll_limit: i64,
        lease_until: i64,
    ) -> Result<Vec<Job>> {
        // Rows another node is claiming right now are skipped, not waited
        // for. Each class walks its own index on the ready time.
        // A ready row that still names an owner is a lease that ran out:
        // another node's (it died or stalled) is a takeover.
        let rows = sqlx::query(
            "WITH other AS (
               SELECT id, lease_owner FROM jobs WHERE kind <> 'poll' AND GREATEST(due_at, lease_until) <= $1
               ORDER BY GREATEST(due_at, lease_until) LIMIT $2 FOR UPDATE SKIP LOCKED
             ), polls AS (
               SELECT id, lease_owner FROM jobs WHERE kind = 'poll' AND GREATEST(due_at, lease_until) <= $1
               ORDER BY GREATEST(due_at, lease_until) LIMIT $3 FOR UPDATE SKIP LOCKED
             ), claimed AS (
               SELECT * FROM other UNION ALL SELECT * FROM polls
             )
             UPDATE jobs j SET lease_until = $4, lease_owner = $5
             FROM claimed c WHERE j.id = c.id
             RETURNING j.id, j.session_id, j.kind, j.payload, j.due_at, j.attempts,
                       c.lease_owner AS previous_owner",
        )
        .bind(now)
        .bind(limit.max(0))
        .bind(poll_limit.max(0))
        .bind(lease_until)
        .bind(&*self.node)
        .fetch_all(&mut *self.conn().await?)
        .await?;
        let mut jobs = Vec::with_capacity(rows.len());
        for row in &rows {
            let job = rows::job(row, &self.seal)?;
            let previous: Option<String> = row.try_get("previous_owner")?;
            if previous.is_some_and(|p| p != *self.node) {
                metrics::counter!("gangway_lease_takeovers_total", "class" => job.kind.as_str())
                    .increment(1);
            }
            jobs.push(job);
        }
        Ok(jobs)
    }

    async fn next_due(&self, now: i64) -> Result<NextDue> {
        // A leased job comes back at its lease's end at the earliest.
        let (polls, other): (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT (SELECT MIN(GREATEST(due_at, lease_until)) FROM jobs WHERE kind = 'poll'),
                    (SELECT MIN(GREATEST(due_at, lease_until)) FROM jobs WHERE kind <> 'poll')",
        )
        .fetch_one(&mut *self.conn().await?)
        .await?;
        Ok(NextDue {
            polls: polls.map(|t| t.max(now)),
            other: other.map(|t| t.max(now)),
        })
    }

    async fn release_node_leases(&self) -> Result<u64> {
        let n = sqlx::query(
            "UPDATE jobs SET lease_until = 0, lease_owner = NULL WHERE lease_owner = $1",
        )
        .bind(&*self.node)
        .execute(&mut *self.conn().await?)
        .await?
        .rows_affected();
        Ok(n)
    }

    async fn release_leases_at_start(&self) -> Result<u64> {
        // Leases with another owner may belong to live nodes: they expire.
        if self.stable_node {
            self.release_node_leases().await
        } else {
            Ok(0)
        }
    }

    async fn signals(&self) -> Result<Option<tokio::sync::mpsc::UnboundedReceiver<Signal>>> {
        Ok(Some(
            notify::listen(self.pool.clone(), self.node.to_string()).await?,
        ))
    }

    async fn reschedule_job(&self, id: i64, due_at: i64, attempts: i64) -> Result<()> {
        let mut conn = self.conn().await?;
        reschedule(&mut conn, id, due_at, attempts).await?;
        // Whichever node is awake soonest may take it.
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(notify::JOBS)
            .bind(notify::jobs_payload(&self.node, due_at))
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn extend_lease(&self, id: i64, lease_until: i64) -> Result<bool> {
        // Never shortened, and never taken back from a node that took over.
        let n = sqlx::query(
            "UPDATE jobs SET lease_until = GREATEST(lease_until, $2) WHERE id = $1 AND lease_owner = $3",
        )
        .bind(id)
        .bind(lease_until)
        .bind(&*self.node)
        .execute(&mut *self.conn().await?)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn expedite_jobs(&self, session_id: &str, kind: JobKind, due_at: i64) -> Result<u64> {
        // Only jobs no node holds: a leased one is running already.
        let n = sqlx::query(sql::EXPEDITE_JOBS)
            .bind(due_at)
            .bind(session_id)
            .bind(kind.as_str())
            .execute(&mut *self.conn().await?)
            .await?
            .rows_affected();
        if n > 0 {
            // Whichever node is awake soonest may take them.
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(notify::JOBS)
                .bind(notify::jobs_payload(&self.node, due_at))
                .execute(&mut *self.conn().await?)
                .await?;
        }
        Ok(n)
    }

    async fn session_for_reference(
        &self,
        namespace: &str,
        reference: &str,
    ) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(sql::CORRELATION)
            .bind(namespace)
            .bind(reference)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        Ok(row.map(|(s,)| s))
    }

    async fn finish_job(&self, id: i64) -> Result<()> {
        sqlx::query(sql::DELETE_JOB)
            .bind(id)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    async fn reseal_batch(
        &self,
        table: &'static super::reseal::SealedTable,
        after: Option<Vec<super::reseal::KeyPart>>,
        limit: u32,
    ) -> Result<super::reseal::Resealed> {
        reseal::batch(self, &self.seal, table, after, limit).await
    }

    async fn delivery_payload(&self, id: &str) -> Result<Option<(String, String, Value, i64)>> {
        let row = sqlx::query(sql::DELIVERY_PAYLOAD)
            .bind(id)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        match row {
            Some(r) => Ok(Some((
                r.try_get("endpoint")?,
                r.try_get("event_type")?,
                rows::json(&r, "payload", &self.seal)?,
                r.try_get("attempts")?,
            ))),
            None => Ok(None),
        }
    }

    async fn erasures_due(&self, now: i64, limit: i64) -> Result<Vec<String>> {
        let ids: Vec<(String,)> = sqlx::query_as(sql::ERASURES_DUE)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *self.conn().await?)
            .await?;
        Ok(ids.into_iter().map(|(id,)| id).collect())
    }

    async fn erasure_backlog(&self, now: i64) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as(sql::ERASURE_BACKLOG)
            .bind(now)
            .fetch_one(&mut *self.conn().await?)
            .await?;
        Ok(n)
    }
}
