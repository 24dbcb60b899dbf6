//! Job writes of one transaction, kept until its commit and then written in
//! three statements whatever the batch size: a group commit otherwise spends
//! a round trip and a statement on every job it adds or drops (about eight
//! per session on the bench workload). Nothing in a transaction reads jobs
//! back, so keeping the writes changes no answer; ids come from a reserve
//! taken from the table's sequence, so a caller still gets its job's id at
//! once.

use super::super::seal::Seal;
use super::super::{NewJob, Result};
use super::flush::Flush;
use sqlx::{PgConnection, Postgres, Transaction};
use std::sync::{Arc, Mutex};

/// Ids taken from `jobs_id_seq` at a time. A sequence never hands out a
/// value twice, so ids left unused by a crash or a rollback are only gaps.
const RESERVE: i64 = 256;

/// Job ids reserved by this node, shared by its committers.
#[derive(Default)]
pub(super) struct JobIds(Mutex<Vec<i64>>);

impl JobIds {
    fn take(&self) -> Option<i64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    async fn refill(&self, conn: &mut PgConnection) -> Result<()> {
        let mut ids: Vec<i64> =
            sqlx::query_scalar("SELECT nextval('jobs_id_seq') FROM generate_series(1, $1)")
                .bind(RESERVE)
                .fetch_all(conn)
                .await?;
        // Popped from the end: lowest first.
        ids.sort_unstable_by(|a, b| b.cmp(a));
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend(ids);
        Ok(())
    }
}

/// What a transaction did to the jobs table, in effect order: rows deleted
/// by id, sessions' jobs of a kind cleared, then rows inserted (an insert
/// made before a clear of its session and kind is dropped from the list at
/// once, so writing the deletes first keeps the order of the calls).
pub(super) struct PendingJobs {
    ids: Arc<JobIds>,
    inserts: Vec<(i64, NewJob)>,
    deletes: Vec<i64>,
    clears: Vec<(String, &'static str)>,
}

impl PendingJobs {
    pub(super) fn new(ids: Arc<JobIds>) -> PendingJobs {
        PendingJobs {
            ids,
            inserts: Vec::new(),
            deletes: Vec::new(),
            clears: Vec::new(),
        }
    }

    pub(super) async fn insert(&mut self, conn: &mut PgConnection, job: &NewJob) -> Result<i64> {
        let id = match self.ids.take() {
            Some(id) => id,
            None => {
                self.ids.refill(conn).await?;
                self.ids
                    .take()
                    .ok_or_else(|| super::Error::Corrupt("jobs_id_seq gave no ids".into()))?
            }
        };
        self.inserts.push((id, job.clone()));
        Ok(id)
    }

    pub(super) fn delete(&mut self, id: i64) {
        let before = self.inserts.len();
        self.inserts.retain(|(i, _)| *i != id);
        if self.inserts.len() == before {
            self.deletes.push(id);
        }
    }

    pub(super) fn clear(&mut self, session_id: &str, kinds: &[&'static str]) {
        self.inserts
            .retain(|(_, j)| j.session_id != session_id || !kinds.contains(&j.kind.as_str()));
        for kind in kinds {
            self.clears.push((session_id.to_string(), kind));
        }
    }

    /// True when this transaction inserted that job and has not written it.
    pub(super) fn holds(&self, id: i64) -> bool {
        self.inserts.iter().any(|(i, _)| *i == id)
    }

    /// Writes what is kept now, before a statement that must see it.
    pub(super) async fn write(
        &mut self,
        tx: &mut Transaction<'static, Postgres>,
        node: &str,
        seal: &Seal,
    ) -> Result<()> {
        let mut f = Flush::new();
        self.push(&mut f, node, seal);
        f.run(tx, Vec::new(), Vec::new()).await
    }

    /// Adds what is kept to the commit's statement: deletes, then inserts
    /// (the parts of one statement do not see each other's rows, so the
    /// deletes cannot reach a row inserted here, as in call order).
    pub(super) fn push(&mut self, f: &mut Flush<'_>, node: &str, seal: &Seal) {
        let deletes = std::mem::take(&mut self.deletes);
        let clears = std::mem::take(&mut self.clears);
        let inserts = std::mem::take(&mut self.inserts);
        if !deletes.is_empty() {
            f.part(|p| {
                p.sql("DELETE FROM jobs WHERE id = ANY(")
                    .array(deletes, "int8[]")
                    .sql(")");
            });
        }
        if !clears.is_empty() {
            let (sessions, kinds): (Vec<String>, Vec<&'static str>) = clears.into_iter().unzip();
            f.part(|p| {
                p.sql("DELETE FROM jobs AS j USING UNNEST(")
                    .columns(|c| {
                        c.col(sessions, "text[]").col(kinds, "text[]");
                    })
                    .sql(") AS c(session_id, kind) WHERE j.session_id = c.session_id AND j.kind = c.kind");
            });
        }
        if inserts.is_empty() {
            return;
        }
        let n = inserts.len();
        let mut ids = Vec::with_capacity(n);
        let mut sessions = Vec::with_capacity(n);
        let mut kinds = Vec::with_capacity(n);
        let mut payloads = Vec::with_capacity(n);
        let mut due = Vec::with_capacity(n);
        let mut lease = Vec::with_capacity(n);
        let mut owners = Vec::with_capacity(n);
        for (id, job) in inserts {
            ids.push(id);
            kinds.push(job.kind.as_str());
            payloads.push(seal.json(&job.payload));
            due.push(job.due_at);
            lease.push(job.lease_until);
            owners.push((job.lease_until > 0).then(|| node.to_string()));
            sessions.push(job.session_id);
        }
        f.part(|p| {
            p.sql(
                "INSERT INTO jobs (id, session_id, kind, payload, due_at, lease_until, lease_owner)
                 SELECT * FROM UNNEST(",
            )
            .columns(|c| {
                c.col(ids, "int8[]")
                    .col(sessions, "text[]")
                    .col(kinds, "text[]")
                    .col(payloads, "text[]")
                    .col(due, "int8[]")
                    .col(lease, "int8[]")
                    .col(owners, "text[]");
            })
            .sql(")");
        });
    }
}
