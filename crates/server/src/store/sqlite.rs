//! The SQLite backend: one file, WAL journal, `synchronous = FULL` so that a
//! committed transition survives a crash of the process or the machine.
//! Writers take the lock up front (`BEGIN IMMEDIATE`) so that concurrent
//! writers queue on the busy timeout instead of failing on lock upgrade.
//!
//! It drives SQLite directly through rusqlite: a statement is a function
//! call on the calling thread, not a message to a database thread. The
//! committer's transaction (`begin` and every `Tx` method) runs inline on the
//! committer's own thread; every other `Store` method runs on tokio's
//! blocking pool. Connections come from a small pool and keep their
//! prepared statements cached.

use super::*;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params, params_from_iter};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Connections open at once (the committer's and a few readers; WAL lets
/// readers run beside the one writer).
const MAX_CONNECTIONS: usize = 4;
/// Prepared statements kept per connection (the backend has about 50).
const STATEMENT_CACHE: usize = 64;
/// How long a writer waits for the database lock, and a caller for a free
/// connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Migrations, in order, embedded in the binary. A version is applied once,
/// in its own transaction, and recorded in `schema_migrations`.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/sqlite/0002_job_classes.sql"),
    ),
];

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        Error::Corrupt(format!("sqlite: {e}"))
    }
}

pub struct SqliteStore {
    pool: Arc<Pool>,
}

impl SqliteStore {
    /// Opens (creating it if missing) the database file named by a
    /// `sqlite://path.db` or `sqlite:path.db` URL; a query string such as
    /// `?mode=rwc` is ignored.
    pub async fn open(url: &str) -> Result<SqliteStore> {
        let path = path_of_url(url)?;
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
            && !dir.is_dir()
        {
            return Err(Error::Corrupt(format!(
                "sqlite: cannot create the database `{}`: directory `{}` does not exist",
                path.display(),
                dir.display()
            )));
        }
        let pool = Arc::new(Pool {
            path,
            state: Mutex::new(PoolState {
                idle: Vec::with_capacity(MAX_CONNECTIONS),
                open: 0,
            }),
            freed: Condvar::new(),
        });
        // Open one connection now, so that a bad path or a file that is not
        // a database fails at start rather than at the first request.
        let store = SqliteStore { pool };
        store.run(|_| Ok(())).await?;
        Ok(store)
    }

    /// Runs `f` with a pooled connection on tokio's blocking pool.
    async fn run<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = Pool::get(&pool)?;
            f(conn.conn_mut()?)
        })
        .await
        .map_err(|e| Error::Corrupt(format!("sqlite: task failed: {e}")))?
    }
}

/// The file path of a `sqlite:` URL.
fn path_of_url(url: &str) -> Result<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| Error::Unsupported(crate::config::redact_url(url)))?;
    let path = rest.split_once('?').map_or(rest, |(p, _)| p);
    if path.is_empty() || path == ":memory:" {
        // Each pooled connection would get a database of its own.
        return Err(Error::Unsupported(crate::config::redact_url(url)));
    }
    Ok(PathBuf::from(percent_decode(path)))
}

/// Decodes `%XX` escapes (as URLs carry spaces and the like); anything else
/// is kept as written.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: Option<&u8>| b.and_then(|b| char::from(*b).to_digit(16));
        match (bytes[i], hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Opens one connection with the backend's settings.
fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Error::Corrupt(format!("sqlite: cannot open `{}`: {e}", path.display())))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Corrupt(format!(
            "sqlite: `{}` cannot use the WAL journal (journal_mode is {mode})",
            path.display()
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "cache_size", -8000)?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Up to `MAX_CONNECTIONS` connections, opened on demand and kept for reuse.
struct Pool {
    path: PathBuf,
    state: Mutex<PoolState>,
    /// Signalled when a connection goes back to the pool or is closed.
    freed: Condvar,
}

struct PoolState {
    idle: Vec<Connection>,
    /// Connections that exist, idle or in use.
    open: usize,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // The state stays consistent at every unlock: a panic elsewhere
        // while it was held does not make it unusable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A connection, waiting (blocking the thread) while all are in use.
    fn get(pool: &Arc<Pool>) -> Result<Pooled> {
        let deadline = Instant::now() + BUSY_TIMEOUT;
        let mut state = pool.lock();
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(Pooled::new(conn, pool));
            }
            if state.open < MAX_CONNECTIONS {
                state.open += 1;
                drop(state);
                return match connect(&pool.path) {
                    Ok(conn) => Ok(Pooled::new(conn, pool)),
                    Err(e) => {
                        pool.lock().open -= 1;
                        pool.freed.notify_one();
                        Err(e)
                    }
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Corrupt(format!(
                    "sqlite: no connection became free within {}s",
                    BUSY_TIMEOUT.as_secs()
                )));
            }
            state = pool
                .freed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Takes a connection back; one left inside a transaction is rolled
    /// back, or closed if even that fails.
    fn put(&self, conn: Connection) {
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        let mut state = self.lock();
        if conn.is_autocommit() {
            state.idle.push(conn);
        } else {
            state.open -= 1;
            drop(state);
            drop(conn);
        }
        self.freed.notify_one();
    }
}

/// A connection on loan from the pool; it goes back when dropped.
struct Pooled {
    conn: Option<Connection>,
    pool: Arc<Pool>,
}

impl Pooled {
    fn new(conn: Connection, pool: &Arc<Pool>) -> Pooled {
        Pooled {
            conn: Some(conn),
            pool: pool.clone(),
        }
    }

    fn conn(&self) -> Result<&Connection> {
        self.conn
            .as_ref()
            .ok_or_else(|| Error::Corrupt("sqlite: connection already returned".into()))
    }

    fn conn_mut(&mut self) -> Result<&mut Connection> {
        self.conn
            .as_mut()
            .ok_or_else(|| Error::Corrupt("sqlite: connection already returned".into()))
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.put(conn);
        }
    }
}

/// Selects and leases due jobs under one write lock. Each class walks its
/// own index on the ready time (migration 2).
fn claim(
    c: &mut Connection,
    now: i64,
    limit: i64,
    poll_limit: i64,
    lease_until: i64,
) -> Result<Vec<Job>> {
    let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut jobs = Vec::new();
    for (sql, n) in [
        (
            "SELECT id, session_id, kind, payload, due_at, attempts FROM jobs
                 WHERE kind <> 'poll' AND MAX(due_at, lease_until) <= ?
                 ORDER BY MAX(due_at, lease_until) LIMIT ?",
            limit,
        ),
        (
            "SELECT id, session_id, kind, payload, due_at, attempts FROM jobs
                 WHERE kind = 'poll' AND MAX(due_at, lease_until) <= ?
                 ORDER BY MAX(due_at, lease_until) LIMIT ?",
            poll_limit,
        ),
    ] {
        if n <= 0 {
            continue;
        }
        let mut select = tx.prepare_cached(sql)?;
        jobs.extend(collect(&mut select, [now, n], |r| {
            let kind: String = r.get(2)?;
            Ok(Job {
                id: r.get(0)?,
                session_id: r.get(1)?,
                kind: JobKind::parse(&kind)
                    .ok_or_else(|| Error::Corrupt(format!("job kind `{kind}`")))?,
                payload: json_col(r, 3, "payload")?,
                due_at: r.get(4)?,
                attempts: r.get(5)?,
            })
        })?);
    }
    {
        let mut lease = tx.prepare_cached("UPDATE jobs SET lease_until = ? WHERE id = ?")?;
        for job in &jobs {
            lease.execute([lease_until, job.id])?;
        }
    }
    tx.commit()?;
    Ok(jobs)
}

/// Applies the migrations not applied yet, each in its own transaction.
fn migrate(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER)",
    )?;
    // A database made by an earlier build that migrated with sqlx.
    let sqlx_applied: Vec<i64> = {
        let has_sqlx_table = conn
            .prepare_cached(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            )?
            .exists([])?;
        if has_sqlx_table {
            let mut stmt = conn.prepare_cached("SELECT version FROM _sqlx_migrations")?;
            stmt.query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        } else {
            Vec::new()
        }
    };
    let known = MIGRATIONS.iter().map(|(v, _)| *v).max().unwrap_or(0);
    for &(version, sql) in MIGRATIONS {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let applied = tx
            .prepare_cached("SELECT 1 FROM schema_migrations WHERE version = ?")?
            .exists([version])?;
        if !applied {
            // Only the initial schema was ever applied by sqlx.
            if !(version == 1 && sqlx_applied.contains(&1)) {
                tx.execute_batch(sql)
                    .map_err(|e| Error::Corrupt(format!("sqlite: migration {version}: {e}")))?;
            }
            tx.prepare_cached("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)")?
                .execute([version, crate::ids::now_ms()])?;
        }
        tx.commit()?;
    }
    let newest: Option<i64> = conn
        .prepare_cached("SELECT MAX(version) FROM schema_migrations")?
        .query_row([], |r| r.get(0))?;
    if let Some(v) = newest
        && v > known
    {
        return Err(Error::Corrupt(format!(
            "sqlite: the database has migration {v}, newer than this build knows ({known})"
        )));
    }
    Ok(())
}

/// `SELECT` of the columns of `sessions`, in the order `session_from_row`
/// reads them (a macro, to build statement texts at compile time).
macro_rules! select_sessions {
    () => {
        "SELECT id, workflow_id, version, reference, input, state, created_at, updated_at,
           client_secret_hash, client_secret_expires_at, api_key_id, idempotency_key,
           request_hash, timeline_seq, client_seq FROM sessions"
    };
}

fn json_text(text: &str, what: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| Error::Corrupt(format!("{what}: {e}")))
}

fn json_col(row: &Row<'_>, idx: usize, what: &str) -> Result<Value> {
    let text: String = row.get(idx)?;
    json_text(&text, what)
}

fn session_from_row(row: &Row<'_>) -> Result<SessionRow> {
    let state_text: String = row.get(5)?;
    let state: SessionState = serde_json::from_str(&state_text)
        .map_err(|e| Error::Corrupt(format!("session state: {e}")))?;
    let version: i64 = row.get(2)?;
    Ok(SessionRow {
        id: row.get(0)?,
        workflow_id: row.get(1)?,
        version: u32::try_from(version).map_err(|_| Error::Corrupt("version".into()))?,
        reference: row.get(3)?,
        input: json_col(row, 4, "input")?,
        state,
        created_at: row.get(6)?,
        updated_at: row.get(7)?,
        client_secret_hash: row.get(8)?,
        client_secret_expires_at: row.get(9)?,
        api_key_id: row.get(10)?,
        idempotency_key: row.get(11)?,
        request_hash: row.get(12)?,
        timeline_seq: row.get(13)?,
        client_seq: row.get(14)?,
    })
}

fn state_json(state: &SessionState) -> String {
    serde_json::to_string(state).unwrap_or_else(|_| "{}".into())
}

/// All rows of a prepared query, each converted by `f`.
fn collect<T>(
    stmt: &mut rusqlite::Statement<'_>,
    params: impl rusqlite::Params,
    f: impl Fn(&Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(f(row)?);
    }
    Ok(out)
}

fn session_by_id(conn: &Connection, id: &str) -> Result<Option<SessionRow>> {
    let mut stmt = conn.prepare_cached(concat!(select_sessions!(), " WHERE id = ?"))?;
    let mut rows = stmt.query([id])?;
    rows.next()?.map(session_from_row).transpose()
}

fn reschedule(conn: &Connection, id: i64, due_at: i64, attempts: i64) -> Result<()> {
    conn.prepare_cached("UPDATE jobs SET due_at = ?, attempts = ?, lease_until = 0 WHERE id = ?")?
        .execute([due_at, attempts, id])?;
    Ok(())
}

/// The committer's transaction. It owns its connection for its lifetime and
/// runs every statement inline on the calling thread; dropped without
/// `commit`, it rolls back.
pub struct SqliteTx {
    conn: Pooled,
}

impl SqliteTx {
    fn c(&self) -> Result<&Connection> {
        self.conn.conn()
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.conn.as_ref()
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
        session_by_id(self.c()?, id)
    }

    async fn insert_session(&mut self, r: &SessionRow) -> Result<()> {
        self.c()?
            .prepare_cached(
                "INSERT INTO sessions (id, workflow_id, version, status, outcome, reason, reference, input, state,
                   created_at, updated_at, ended_at, client_secret_hash, client_secret_expires_at, api_key_id,
                   idempotency_key, request_hash, timeline_seq, client_seq)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![
                r.id,
                r.workflow_id,
                i64::from(r.version),
                r.state.status.as_str(),
                r.state.outcome.map(|o| o.as_str()),
                r.state.reason,
                r.reference,
                r.input.to_string(),
                state_json(&r.state),
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
                r.state.reason,
                state_json(&r.state),
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
            .prepare_cached(
                "UPDATE sessions SET client_secret_hash = ?, client_secret_expires_at = ? WHERE id = ?",
            )?
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
            .prepare_cached(
                "SELECT id, request_hash FROM sessions WHERE api_key_id = ? AND idempotency_key = ?",
            )?
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
                e.data.to_string()
            ])?;
        }
        Ok(())
    }

    async fn insert_client_events(&mut self, events: &[(String, ClientEvent)]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut stmt = self.c()?.prepare_cached(
            "INSERT INTO client_events (session_id, seq, at, event, data) VALUES (?, ?, ?, ?, ?)",
        )?;
        for (sid, e) in events {
            stmt.execute(params![sid, e.seq, e.at, e.event, e.data.to_string()])?;
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
            job.payload.to_string(),
            job.due_at,
            job.lease_until,
        ])?;
        Ok(c.last_insert_rowid())
    }

    async fn delete_job(&mut self, id: i64) -> Result<()> {
        self.c()?
            .prepare_cached("DELETE FROM jobs WHERE id = ?")?
            .execute([id])?;
        Ok(())
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
                ev.data.to_string(),
                ev.received_at,
            ])?;
        Ok((n == 1).then(|| c.last_insert_rowid()))
    }

    async fn correlation(&mut self, namespace: &str, reference: &str) -> Result<Option<String>> {
        Ok(self
            .c()?
            .prepare_cached(
                "SELECT session_id FROM correlations WHERE namespace = ? AND reference = ?",
            )?
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
                    data: json_col(r, 3, "data")?,
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
            .prepare_cached(
                "UPDATE inbound_events SET consumed_at = ? WHERE session_id = ? AND name = ? AND consumed_at IS NULL",
            )?
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
                d.payload.to_string(),
                d.created_at,
                d.created_at,
            ])?;
        Ok(())
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
        reschedule(self.c()?, id, due_at, attempts)
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        // On failure the drop below rolls back what is left of it.
        self.c()?.prepare_cached("COMMIT")?.execute([])?;
        Ok(())
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn inline_transactions(&self) -> bool {
        true
    }

    async fn migrate(&self) -> Result<()> {
        self.run(migrate).await
    }

    async fn begin(&self) -> Result<Box<dyn Tx>> {
        // Runs inline on purpose, with no `spawn_blocking`: the committer
        // calls it from a thread of its own (see `inline_transactions`,
        // driven by `Handle::block_on`), where waiting for a free connection
        // or for the write lock (busy timeout) blocks nothing else. The
        // transaction's statements then run on that thread too.
        let conn = Pool::get(&self.pool)?;
        conn.conn()?
            .prepare_cached("BEGIN IMMEDIATE")?
            .execute([])?;
        Ok(Box::new(SqliteTx { conn }))
    }

    async fn insert_api_key(&self, id: &str, name: &str, key_hash: &str, at: i64) -> Result<()> {
        let (id, name, key_hash) = (id.to_owned(), name.to_owned(), key_hash.to_owned());
        self.run(move |c| {
            c.prepare_cached(
                "INSERT INTO api_keys (id, name, key_hash, created_at) VALUES (?, ?, ?, ?)
                 ON CONFLICT (key_hash) DO NOTHING",
            )?
            .execute(params![id, name, key_hash, at])?;
            Ok(())
        })
        .await
    }

    async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<String>> {
        let key_hash = key_hash.to_owned();
        self.run(move |c| {
            Ok(
                c.prepare_cached("SELECT id FROM api_keys WHERE key_hash = ?")?
                    .query_row([key_hash], |r| r.get(0))
                    .optional()?,
            )
        })
        .await
    }

    async fn upsert_workflow_version(
        &self,
        id: &str,
        version: u32,
        source: &str,
        hash: &str,
        at: i64,
    ) -> Result<Option<String>> {
        let (id, source, hash) = (id.to_owned(), source.to_owned(), hash.to_owned());
        self.run(move |c| {
            let existing: Option<String> = c
                .prepare_cached(
                    "SELECT source_hash FROM workflow_versions WHERE workflow_id = ? AND version = ?",
                )?
                .query_row(params![id, i64::from(version)], |r| r.get(0))
                .optional()?;
            if existing.is_some() {
                return Ok(existing);
            }
            c.prepare_cached(
                "INSERT INTO workflow_versions (workflow_id, version, source, source_hash, loaded_at)
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            )?
            .execute(params![id, i64::from(version), source, hash, at])?;
            Ok(None)
        })
        .await
    }

    async fn workflow_versions(&self) -> Result<Vec<(String, u32, String)>> {
        self.run(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT workflow_id, version, source FROM workflow_versions ORDER BY workflow_id, version",
            )?;
            collect(&mut stmt, [], |r| {
                let v: i64 = r.get(1)?;
                Ok((r.get(0)?, u32::try_from(v).unwrap_or_default(), r.get(2)?))
            })
        })
        .await
    }

    async fn session(&self, id: &str) -> Result<Option<SessionRow>> {
        let id = id.to_owned();
        self.run(move |c| session_by_id(c, &id)).await
    }

    async fn sessions(&self, f: &SessionFilter) -> Result<Vec<SessionRow>> {
        let mut sql = String::from(concat!(select_sessions!(), " WHERE 1 = 1"));
        let mut args = Vec::with_capacity(5);
        let filters = [
            (" AND status = ?", &f.status),
            (" AND workflow_id = ?", &f.workflow),
            (" AND reference = ?", &f.reference),
            (" AND id < ?", &f.before),
        ];
        for (clause, value) in filters {
            if let Some(v) = value {
                sql.push_str(clause);
                args.push(SqlValue::Text(v.clone()));
            }
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        args.push(SqlValue::Integer(f.limit));
        self.run(move |c| {
            // At most 16 distinct texts, each cached once prepared.
            let mut stmt = c.prepare_cached(&sql)?;
            collect(&mut stmt, params_from_iter(args), session_from_row)
        })
        .await
    }

    async fn timeline(&self, session_id: &str) -> Result<Vec<TimelineEntry>> {
        let session_id = session_id.to_owned();
        self.run(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, at, kind, step, data FROM timeline WHERE session_id = ? ORDER BY seq",
            )?;
            collect(&mut stmt, [session_id], |r| {
                Ok(TimelineEntry {
                    seq: r.get(0)?,
                    at: r.get(1)?,
                    kind: r.get(2)?,
                    step: r.get(3)?,
                    data: json_col(r, 4, "data")?,
                })
            })
        })
        .await
    }

    async fn client_events_after(&self, session_id: &str, seq: i64) -> Result<Vec<ClientEvent>> {
        let session_id = session_id.to_owned();
        self.run(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, at, event, data FROM client_events WHERE session_id = ? AND seq > ? ORDER BY seq",
            )?;
            collect(&mut stmt, params![session_id, seq], |r| {
                Ok(ClientEvent {
                    seq: r.get(0)?,
                    at: r.get(1)?,
                    event: r.get(2)?,
                    data: json_col(r, 3, "data")?,
                })
            })
        })
        .await
    }

    async fn deliveries(&self, session_id: &str) -> Result<Vec<Delivery>> {
        let session_id = session_id.to_owned();
        self.run(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, session_id, endpoint, event_type, status, attempts, created_at,
                   next_attempt_at, delivered_at
                 FROM deliveries WHERE session_id = ? ORDER BY created_at, id",
            )?;
            let mut out = collect(&mut stmt, [session_id], |r| {
                Ok(Delivery {
                    id: r.get(0)?,
                    session_id: r.get(1)?,
                    endpoint: r.get(2)?,
                    event_type: r.get(3)?,
                    status: r.get(4)?,
                    attempts: r.get(5)?,
                    created_at: r.get(6)?,
                    next_attempt_at: r.get(7)?,
                    delivered_at: r.get(8)?,
                    attempt_log: Vec::new(),
                })
            })?;
            let mut attempts = c.prepare_cached(
                "SELECT attempt, at, status_code, error, duration_ms FROM delivery_attempts
                 WHERE delivery_id = ? ORDER BY attempt",
            )?;
            for d in &mut out {
                d.attempt_log = collect(&mut attempts, [&d.id], |a| {
                    Ok(DeliveryAttempt {
                        attempt: a.get(0)?,
                        at: a.get(1)?,
                        status_code: a.get(2)?,
                        error: a.get(3)?,
                        duration_ms: a.get(4)?,
                    })
                })?;
            }
            Ok(out)
        })
        .await
    }

    async fn count_by_status(&self) -> Result<Vec<(String, i64)>> {
        self.run(|c| {
            let mut stmt =
                c.prepare_cached("SELECT status, COUNT(*) AS n FROM sessions GROUP BY status")?;
            collect(&mut stmt, [], |r| Ok((r.get(0)?, r.get(1)?)))
        })
        .await
    }

    async fn claim_due_jobs(
        &self,
        now: i64,
        limit: i64,
        poll_limit: i64,
        lease_until: i64,
    ) -> Result<Vec<Job>> {
        self.run(move |c| {
            // A lease need not survive a crash (one process serves the file
            // and frees every lease at start), so the claim is not fsynced:
            // the next durable commit syncs the WAL up to and past it.
            c.pragma_update(None, "synchronous", "NORMAL")?;
            let claimed = claim(c, now, limit, poll_limit, lease_until);
            c.pragma_update(None, "synchronous", "FULL")?;
            claimed
        })
        .await
    }

    async fn next_due(&self, now: i64) -> Result<NextDue> {
        self.run(move |c| {
            // A leased job comes back at its lease's end at the earliest.
            let (polls, other): (Option<i64>, Option<i64>) = c
                .prepare_cached(
                    "SELECT (SELECT MIN(MAX(due_at, lease_until)) FROM jobs WHERE kind = 'poll'),
                            (SELECT MIN(MAX(due_at, lease_until)) FROM jobs WHERE kind <> 'poll')",
                )?
                .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(NextDue {
                polls: polls.map(|t| t.max(now)),
                other: other.map(|t| t.max(now)),
            })
        })
        .await
    }

    async fn release_node_leases(&self) -> Result<u64> {
        // One process serves the file: every lease is this node's.
        self.run(|c| {
            let n = c
                .prepare_cached("UPDATE jobs SET lease_until = 0 WHERE lease_until > 0")?
                .execute([])?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    async fn reschedule_job(&self, id: i64, due_at: i64, attempts: i64) -> Result<()> {
        self.run(move |c| reschedule(c, id, due_at, attempts)).await
    }

    async fn extend_lease(&self, id: i64, lease_until: i64) -> Result<bool> {
        self.run(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE jobs SET lease_until = MAX(lease_until, ?) WHERE id = ? AND lease_until > 0",
                )?
                .execute([lease_until, id])?;
            Ok(n == 1)
        })
        .await
    }

    async fn expedite_jobs(&self, session_id: &str, kind: JobKind, due_at: i64) -> Result<u64> {
        let session_id = session_id.to_owned();
        self.run(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE jobs SET due_at = ?1 WHERE session_id = ?2 AND kind = ?3 AND due_at > ?1 AND lease_until < ?1",
                )?
                .execute(rusqlite::params![due_at, session_id, kind.as_str()])?;
            Ok(u64::try_from(n).unwrap_or_default())
        })
        .await
    }

    async fn session_for_reference(
        &self,
        namespace: &str,
        reference: &str,
    ) -> Result<Option<String>> {
        let (namespace, reference) = (namespace.to_owned(), reference.to_owned());
        self.run(move |c| {
            Ok(c.prepare_cached(
                "SELECT session_id FROM correlations WHERE namespace = ? AND reference = ?",
            )?
            .query_row([namespace, reference], |r| r.get(0))
            .optional()?)
        })
        .await
    }

    async fn finish_job(&self, id: i64) -> Result<()> {
        self.run(move |c| {
            c.prepare_cached("DELETE FROM jobs WHERE id = ?")?
                .execute([id])?;
            Ok(())
        })
        .await
    }

    async fn delivery_payload(&self, id: &str) -> Result<Option<(String, String, Value, i64)>> {
        let id = id.to_owned();
        self.run(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT endpoint, event_type, payload, attempts FROM deliveries WHERE id = ?",
            )?;
            let mut rows = stmt.query([id])?;
            match rows.next()? {
                Some(r) => Ok(Some((
                    r.get(0)?,
                    r.get(1)?,
                    json_col(r, 2, "payload")?,
                    r.get(3)?,
                ))),
                None => Ok(None),
            }
        })
        .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let p = |u: &str| path_of_url(u).map(|p| p.display().to_string()).ok();
        assert_eq!(p("sqlite://gangway.db").as_deref(), Some("gangway.db"));
        assert_eq!(p("sqlite:gangway.db").as_deref(), Some("gangway.db"));
        assert_eq!(
            p("sqlite:///tmp/a b.db?mode=rwc").as_deref(),
            Some("/tmp/a b.db")
        );
        assert_eq!(p("sqlite:///tmp/a%20b.db").as_deref(), Some("/tmp/a b.db"));
        assert_eq!(p("sqlite::memory:"), None);
        assert_eq!(p("postgres://x/y"), None);
    }

    /// Every file in migrations/sqlite is embedded, under its number.
    #[test]
    fn every_migration_is_embedded() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
        let mut files: Vec<(i64, String)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                let version = name.split('_').next().unwrap().parse().unwrap();
                (version, std::fs::read_to_string(&p).unwrap())
            })
            .collect();
        files.sort();
        let embedded: Vec<(i64, String)> = MIGRATIONS
            .iter()
            .map(|(v, sql)| (*v, sql.to_string()))
            .collect();
        assert_eq!(embedded, files, "add new migrations to MIGRATIONS");
    }

    async fn store(dir: &tempfile::TempDir) -> SqliteStore {
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let s = SqliteStore::open(&url).await.unwrap();
        s.migrate().await.unwrap();
        s
    }

    fn session(id: &str) -> SessionRow {
        SessionRow {
            id: id.into(),
            workflow_id: "wf".into(),
            version: 1,
            reference: Some("ref".into()),
            input: serde_json::json!({"a": 1}),
            state: SessionState::default(),
            created_at: 1,
            updated_at: 1,
            client_secret_hash: "h".into(),
            client_secret_expires_at: 2,
            api_key_id: "k".into(),
            idempotency_key: Some("idem".into()),
            request_hash: None,
            timeline_seq: 0,
            client_seq: 0,
        }
    }

    fn event(key: &str) -> NewEvent {
        NewEvent {
            source: "src".into(),
            event_key: key.into(),
            namespace: "ns".into(),
            reference: "r1".into(),
            name: "done".into(),
            data: serde_json::json!({"ok": true}),
            received_at: 5,
        }
    }

    #[test]
    fn missing_directory_is_a_clear_error() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let e = rt
            .block_on(SqliteStore::open("sqlite:///nonexistent-dir-xyz/t.db"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("does not exist"), "{e}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir).await;
        s.migrate().await.unwrap(); // idempotent

        // Early event, then the correlation adopts it.
        let mut tx = s.begin().await.unwrap();
        let first = tx.insert_event(&event("e1"), None).await.unwrap();
        assert!(first.is_some());
        assert_eq!(tx.insert_event(&event("e1"), None).await.unwrap(), None);
        tx.insert_session(&session("s1")).await.unwrap();
        tx.insert_correlation("ns", "r1", "s1").await.unwrap();
        tx.insert_correlation("ns", "r1", "other").await.unwrap();
        assert_eq!(
            tx.correlation("ns", "r1").await.unwrap().as_deref(),
            Some("s1")
        );
        let pending = tx.pending_events("s1", &["done".into()]).await.unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(Some(pending[0].id), first);
        assert_eq!(
            tx.find_idempotent("k", "idem").await.unwrap(),
            Some(("s1".into(), None))
        );
        let timeline = vec![
            (
                "s1".to_string(),
                TimelineEntry {
                    seq: 1,
                    at: 1,
                    kind: "a".into(),
                    step: None,
                    data: serde_json::json!(1),
                },
            ),
            (
                "s1".to_string(),
                TimelineEntry {
                    seq: 2,
                    at: 2,
                    kind: "b".into(),
                    step: Some("x".into()),
                    data: serde_json::json!({"y": 2}),
                },
            ),
        ];
        tx.insert_timeline(&timeline).await.unwrap();
        let job = tx
            .insert_job(&NewJob {
                session_id: "s1".into(),
                kind: JobKind::Timer,
                payload: serde_json::json!({}),
                due_at: 100,
                lease_until: 0,
            })
            .await
            .unwrap();
        tx.commit().await.unwrap();

        // Dropped without commit: rolled back, connection reusable.
        let mut tx = s.begin().await.unwrap();
        let mut s2 = session("s2");
        s2.idempotency_key = None;
        tx.insert_session(&s2).await.unwrap();
        drop(tx);
        assert!(s.session("s2").await.unwrap().is_none());
        let row = s.session("s1").await.unwrap().unwrap();
        assert_eq!(row.input, serde_json::json!({"a": 1}));
        assert_eq!(s.timeline("s1").await.unwrap().len(), 2);

        let filter = SessionFilter {
            workflow: Some("wf".into()),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(s.sessions(&filter).await.unwrap().len(), 1);
        let filter = SessionFilter {
            before: Some("s1".into()),
            limit: 10,
            ..Default::default()
        };
        assert!(s.sessions(&filter).await.unwrap().is_empty());

        assert_eq!(s.next_due(50).await.unwrap().earliest(), Some(100));
        assert!(s.claim_due_jobs(50, 10, 10, 500).await.unwrap().is_empty());
        let jobs = s.claim_due_jobs(150, 10, 10, 500).await.unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].id, job);
        assert!(s.claim_due_jobs(150, 10, 10, 500).await.unwrap().is_empty());
        assert_eq!(s.next_due(150).await.unwrap().earliest(), Some(500));
        assert_eq!(s.next_due(900).await.unwrap().earliest(), Some(900));
        s.release_node_leases().await.unwrap();
        assert_eq!(s.next_due(150).await.unwrap().earliest(), Some(150));
        s.finish_job(job).await.unwrap();
        assert_eq!(s.next_due(150).await.unwrap().earliest(), None);

        // Many concurrent readers share the four connections.
        let s = Arc::new(s);
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move { s.count_by_status().await }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().len(), 1);
        }
    }

    #[tokio::test]
    async fn adopts_a_database_migrated_by_sqlx() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(MIGRATIONS[0].1).unwrap();
            c.execute_batch(
                "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT, success BOOLEAN);
                 INSERT INTO _sqlx_migrations VALUES (1, 'init', 1);",
            )
            .unwrap();
        }
        let s = SqliteStore::open(&format!("sqlite:{}", path.display()))
            .await
            .unwrap();
        s.migrate().await.unwrap();
        s.migrate().await.unwrap();
        assert!(s.workflow_versions().await.unwrap().is_empty());
    }
}
