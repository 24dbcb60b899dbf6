//! Up to `MAX_CONNECTIONS` SQLite connections, opened on demand with the
//! backend's settings and kept for reuse (with their prepared statements).

use super::super::{Error, Result};
use super::{BUSY_TIMEOUT, MAX_CONNECTIONS, STATEMENT_CACHE};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

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
    // Freed content (an erased session's old rows, any row an update
    // moved) is overwritten with zeros, not left in free space (issue 20).
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Up to `MAX_CONNECTIONS` connections, opened on demand and kept for reuse.
pub(super) struct Pool {
    path: PathBuf,
    state: Mutex<PoolState>,
    /// Signalled when a connection goes back to the pool or is closed.
    freed: Condvar,
}

pub(super) struct PoolState {
    pub(super) idle: Vec<Connection>,
    /// Connections that exist, idle or in use.
    pub(super) open: usize,
    /// Callers waiting for a connection (metrics).
    pub(super) waiting: usize,
}

impl Pool {
    pub(super) fn new(path: PathBuf) -> Pool {
        Pool {
            path,
            state: Mutex::new(PoolState {
                idle: Vec::with_capacity(MAX_CONNECTIONS),
                open: 0,
                waiting: 0,
            }),
            freed: Condvar::new(),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, PoolState> {
        // The state stays consistent at every unlock: a panic elsewhere
        // while it was held does not make it unusable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A connection, waiting (blocking the thread) while all are in use.
    pub(super) fn get(pool: &Arc<Pool>) -> Result<Pooled> {
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
            state.waiting += 1;
            state = pool
                .freed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            state.waiting -= 1;
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
pub(super) struct Pooled {
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

    pub(super) fn conn(&self) -> Result<&Connection> {
        self.conn
            .as_ref()
            .ok_or_else(|| Error::Corrupt("sqlite: connection already returned".into()))
    }

    pub(super) fn conn_mut(&mut self) -> Result<&mut Connection> {
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
