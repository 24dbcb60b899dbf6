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

mod audit;
mod jobs;
mod keys;
mod migrate;
mod nodes;
mod observe;
mod operators;
mod pool;
mod reseal;
mod reviews;
mod rows;
#[cfg(test)]
mod tests;
mod tx;

use super::*;
use pool::Pool;
use rows::{collect, json_col, session_by_id};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use std::path::PathBuf;
use std::time::Duration;

/// Connections open at once (the committer's and a few readers; WAL lets
/// readers run beside the one writer).
const MAX_CONNECTIONS: usize = 4;
/// Prepared statements kept per connection (the backend has about 50).
const STATEMENT_CACHE: usize = 64;
/// How long a writer waits for the database lock, and a caller for a free
/// connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        Error::Corrupt(format!("sqlite: {e}"))
    }
}

pub struct SqliteStore {
    pool: Arc<Pool>,
    /// What personal data is sealed under (store/seal.rs).
    seal: seal::Seal,
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
        let pool = Arc::new(Pool::new(path));
        // Open one connection now, so that a bad path or a file that is not
        // a database fails at start rather than at the first request.
        let store = SqliteStore {
            pool,
            seal: seal::Seal::default(),
        };
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
pub(super) fn path_of_url(url: &str) -> Result<PathBuf> {
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

impl SqliteStore {
    /// The same store, sealing personal data under these keys.
    pub fn sealed(mut self, seal: seal::Seal) -> SqliteStore {
        self.seal = seal;
        self
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn inline_transactions(&self) -> bool {
        true
    }

    async fn migrate(&self) -> Result<Migrated> {
        self.run(migrate::run).await
    }

    async fn pending_migrations(&self) -> Result<Vec<i64>> {
        self.run(migrate::pending).await
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
        Ok(Box::new(tx::SqliteTx {
            conn,
            seal: self.seal.clone(),
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
        let (id, source, hash) = (id.to_owned(), source.to_owned(), hash.to_owned());
        self.run(move |c| {
            let existing: Option<String> = c
                .prepare_cached(sql::WORKFLOW_HASH)?
                .query_row(params![id, i64::from(version)], |r| r.get(0))
                .optional()?;
            if existing.is_some() {
                return Ok(existing);
            }
            c.prepare_cached(sql::INSERT_WORKFLOW_VERSION)?
                .execute(params![id, i64::from(version), source, hash, at])?;
            Ok(None)
        })
        .await
    }

    async fn workflow_versions(&self) -> Result<Vec<(String, u32, String)>> {
        self.run(|c| {
            let mut stmt = c.prepare_cached(sql::WORKFLOW_VERSIONS)?;
            collect(&mut stmt, [], |r| {
                let v: i64 = r.get(1)?;
                Ok((r.get(0)?, u32::try_from(v).unwrap_or_default(), r.get(2)?))
            })
        })
        .await
    }

    async fn workflow_version(&self, id: &str, version: u32) -> Result<Option<String>> {
        let id = id.to_owned();
        self.run(move |c| {
            Ok(c.prepare_cached(sql::WORKFLOW_SOURCE)?
                .query_row(params![id, i64::from(version)], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    async fn session(&self, id: &str) -> Result<Option<SessionRow>> {
        let id = id.to_owned();
        let seal = self.seal.clone();
        self.run(move |c| session_by_id(c, &id, &seal)).await
    }

    async fn sessions(&self, f: &SessionFilter) -> Result<Vec<SessionRow>> {
        let (sql, given) = sql::sessions(f);
        let mut args: Vec<SqlValue> = given
            .into_iter()
            .map(|a| match a {
                sql::Arg::Text(t) => SqlValue::Text(t),
                sql::Arg::Int(n) => SqlValue::Integer(n),
            })
            .collect();
        args.push(SqlValue::Integer(f.limit));
        let seal = self.seal.clone();
        self.run(move |c| {
            // At most 128 distinct texts (one per set of filters), each
            // cached once prepared.
            let mut stmt = c.prepare_cached(&sql)?;
            collect(&mut stmt, params_from_iter(args), |r| {
                rows::session(r, &seal)
            })
        })
        .await
    }

    async fn timeline(&self, session_id: &str) -> Result<Vec<TimelineEntry>> {
        let session_id = session_id.to_owned();
        let seal = self.seal.clone();
        self.run(move |c| {
            let mut stmt = c.prepare_cached(sql::TIMELINE)?;
            collect(&mut stmt, [session_id], |r| {
                Ok(TimelineEntry {
                    seq: r.get(0)?,
                    at: r.get(1)?,
                    kind: r.get(2)?,
                    step: r.get(3)?,
                    data: json_col(r, 4, "data", &seal)?,
                })
            })
        })
        .await
    }

    async fn client_events_after(&self, session_id: &str, seq: i64) -> Result<Vec<ClientEvent>> {
        let session_id = session_id.to_owned();
        let seal = self.seal.clone();
        self.run(move |c| {
            let mut stmt = c.prepare_cached(sql::CLIENT_EVENTS_AFTER)?;
            collect(&mut stmt, params![session_id, seq], |r| {
                Ok(ClientEvent {
                    seq: r.get(0)?,
                    at: r.get(1)?,
                    event: r.get(2)?,
                    data: json_col(r, 3, "data", &seal)?,
                })
            })
        })
        .await
    }

    async fn deliveries(&self, session_id: &str) -> Result<Vec<Delivery>> {
        let session_id = session_id.to_owned();
        self.run(move |c| {
            let mut stmt = c.prepare_cached(sql::DELIVERIES)?;
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
            let mut attempts = c.prepare_cached(sql::DELIVERY_ATTEMPTS)?;
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
            let mut stmt = c.prepare_cached(sql::COUNT_BY_STATUS)?;
            collect(&mut stmt, [], |r| Ok((r.get(0)?, r.get(1)?)))
        })
        .await
    }

    async fn session_counts(&self, workflow: Option<&str>) -> Result<Vec<SessionCount>> {
        let workflow = workflow.map(str::to_owned);
        self.run(move |c| {
            let row = |r: &rusqlite::Row<'_>| -> Result<SessionCount> {
                let version: i64 = r.get(1)?;
                Ok(SessionCount {
                    workflow: r.get(0)?,
                    version: u32::try_from(version).unwrap_or_default(),
                    status: r.get(2)?,
                    outcome: r.get(3)?,
                    count: r.get(4)?,
                })
            };
            match &workflow {
                Some(w) => {
                    let mut stmt = c.prepare_cached(sql::SESSION_COUNTS_OF)?;
                    collect(&mut stmt, [w], row)
                }
                None => {
                    let mut stmt = c.prepare_cached(sql::SESSION_COUNTS)?;
                    collect(&mut stmt, [], row)
                }
            }
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
        let seal = self.seal.clone();
        self.run(move |c| jobs::claim(c, &seal, now, limit, poll_limit, lease_until))
            .await
    }

    async fn next_due(&self, now: i64) -> Result<NextDue> {
        self.run(move |c| jobs::next_due(c, now)).await
    }

    async fn release_node_leases(&self) -> Result<u64> {
        self.run(|c| jobs::release_all(c)).await
    }

    async fn reschedule_job(&self, id: i64, due_at: i64, attempts: i64) -> Result<()> {
        self.run(move |c| jobs::reschedule(c, id, due_at, attempts))
            .await
    }

    async fn extend_lease(&self, id: i64, lease_until: i64) -> Result<bool> {
        self.run(move |c| jobs::extend_lease(c, id, lease_until))
            .await
    }

    async fn expedite_jobs(&self, session_id: &str, kind: JobKind, due_at: i64) -> Result<u64> {
        let session_id = session_id.to_owned();
        self.run(move |c| jobs::expedite(c, &session_id, kind, due_at))
            .await
    }

    async fn session_for_reference(
        &self,
        namespace: &str,
        reference: &str,
    ) -> Result<Option<String>> {
        let (namespace, reference) = (namespace.to_owned(), reference.to_owned());
        self.run(move |c| {
            Ok(c.prepare_cached(sql::CORRELATION)?
                .query_row([namespace, reference], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    async fn finish_job(&self, id: i64) -> Result<()> {
        self.run(move |c| jobs::delete(c, id)).await
    }

    async fn reseal_batch(
        &self,
        table: &'static super::reseal::SealedTable,
        after: Option<Vec<super::reseal::KeyPart>>,
        limit: u32,
    ) -> Result<super::reseal::Resealed> {
        let seal = self.seal.clone();
        self.run(move |c| reseal::batch(c, &seal, table, after, limit))
            .await
    }

    async fn erasures_due(&self, now: i64, limit: i64) -> Result<Vec<String>> {
        self.run(move |c| {
            let mut stmt = c.prepare_cached(sql::ERASURES_DUE)?;
            collect(&mut stmt, params![now, limit], |r| Ok(r.get(0)?))
        })
        .await
    }

    async fn erasure_backlog(&self, now: i64) -> Result<i64> {
        self.run(move |c| {
            Ok(c.prepare_cached(sql::ERASURE_BACKLOG)?
                .query_row([now], |r| r.get(0))?)
        })
        .await
    }

    async fn reclaim_erased(&self) -> Result<()> {
        // Zeroed pages reach the main file and the WAL, which still holds
        // the frames written before, is cut to zero bytes. A reader in the
        // middle of a transaction keeps it from finishing: the next
        // erasure (or the next retention tick) tries again.
        self.run(|c| {
            let (busy, _, _): (i64, i64, i64) =
                c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
            if busy != 0 {
                tracing::info!("WAL checkpoint after erasure blocked by a reader; retried later");
            }
            Ok(())
        })
        .await
    }

    async fn delivery_payload(&self, id: &str) -> Result<Option<(String, String, Value, i64)>> {
        let id = id.to_owned();
        let seal = self.seal.clone();
        self.run(move |c| {
            let mut stmt = c.prepare_cached(sql::DELIVERY_PAYLOAD)?;
            let mut rows = stmt.query([id])?;
            match rows.next()? {
                Some(r) => Ok(Some((
                    r.get(0)?,
                    r.get(1)?,
                    json_col(r, 2, "payload", &seal)?,
                    r.get(3)?,
                ))),
                None => Ok(None),
            }
        })
        .await
    }
}
