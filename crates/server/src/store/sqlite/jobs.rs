//! Job claims and leases on SQLite. One process serves the file, so every
//! lease is this node's; a claim takes the write lock, so two claims never
//! take the same job.

use super::super::seal::Seal;
use super::super::{Error, Job, JobKind, NextDue, Result, sql};
use super::rows::{collect, json_col};
use rusqlite::Connection;

/// Claims due jobs until `lease_until`.
pub(super) fn claim(
    c: &mut Connection,
    seal: &Seal,
    now: i64,
    limit: i64,
    poll_limit: i64,
    lease_until: i64,
) -> Result<Vec<Job>> {
    // A lease need not survive a crash (one process serves the file and
    // frees every lease at start), so the claim is not fsynced: the next
    // durable commit syncs the WAL up to and past it.
    c.pragma_update(None, "synchronous", "NORMAL")?;
    let claimed = claim_leased(c, seal, now, limit, poll_limit, lease_until);
    c.pragma_update(None, "synchronous", "FULL")?;
    claimed
}

/// Selects and leases due jobs under one write lock. Each class walks its
/// own index on the ready time (migration 2).
fn claim_leased(
    c: &mut Connection,
    seal: &Seal,
    now: i64,
    limit: i64,
    poll_limit: i64,
    lease_until: i64,
) -> Result<Vec<Job>> {
    let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut jobs = Vec::new();
    for (text, n) in [
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
        let mut select = tx.prepare_cached(text)?;
        jobs.extend(collect(&mut select, [now, n], |r| {
            let kind: String = r.get(2)?;
            Ok(Job {
                id: r.get(0)?,
                session_id: r.get(1)?,
                kind: JobKind::parse(&kind)
                    .ok_or_else(|| Error::Corrupt(format!("job kind `{kind}`")))?,
                payload: json_col(r, 3, "payload", seal)?,
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

/// When the next poll and the next other job are ready.
pub(super) fn next_due(c: &Connection, now: i64) -> Result<NextDue> {
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
}

/// Frees every lease: one process serves the file, so all are this node's.
pub(super) fn release_all(c: &Connection) -> Result<u64> {
    let n = c
        .prepare_cached("UPDATE jobs SET lease_until = 0 WHERE lease_until > 0")?
        .execute([])?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(super) fn reschedule(c: &Connection, id: i64, due_at: i64, attempts: i64) -> Result<()> {
    c.prepare_cached("UPDATE jobs SET due_at = ?, attempts = ?, lease_until = 0 WHERE id = ?")?
        .execute([due_at, attempts, id])?;
    Ok(())
}

/// Keeps a held lease until at least `lease_until`; never shortens it.
pub(super) fn extend_lease(c: &Connection, id: i64, lease_until: i64) -> Result<bool> {
    let n = c
        .prepare_cached(
            "UPDATE jobs SET lease_until = MAX(lease_until, ?) WHERE id = ? AND lease_until > 0",
        )?
        .execute([lease_until, id])?;
    Ok(n == 1)
}

pub(super) fn expedite(
    c: &Connection,
    session_id: &str,
    kind: JobKind,
    due_at: i64,
) -> Result<u64> {
    let n = c
        .prepare_cached(sql::EXPEDITE_JOBS)?
        .execute(rusqlite::params![due_at, session_id, kind.as_str()])?;
    Ok(u64::try_from(n).unwrap_or_default())
}

pub(super) fn delete(c: &Connection, id: i64) -> Result<()> {
    c.prepare_cached(sql::DELETE_JOB)?.execute([id])?;
    Ok(())
}
