//! The dashboard's rows and reads on SQLite (store/stats.rs).

use super::super::deliveries::id_floor;
use super::super::stats::{self, *};
use super::super::{Result, StepVisit};
use super::SqliteStore;
use super::rows::collect;
use async_trait::async_trait;
use rusqlite::{Connection, params};

/// In the committer's transaction.
pub(super) fn write(c: &Connection, visits: &[StepVisit], calls: &[CallStat]) -> Result<()> {
    if !visits.is_empty() {
        // `WHERE true`: SQLite's way to tell `ON CONFLICT` from a join.
        let first = stats::FIRST_VISIT
            .replace("{repeat}", "$9")
            .replace("{session}", "$1")
            .replace("{visit}", "$2")
            .replace("{step}", "$5");
        let sql = format!(
            "INSERT INTO session_steps (session_id, visit, workflow_id, version, step, entered_at, left_at, exit_to, first_visit)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, {first} WHERE true{}",
            stats::UPSERT_VISIT_TAIL
        );
        let mut stmt = c.prepare_cached(&sql)?;
        for v in visits {
            stmt.execute(params![
                v.session_id,
                v.visit,
                v.workflow_id,
                v.version,
                v.step,
                v.entered_at,
                v.left_at,
                v.exit_to,
                v.repeat
            ])?;
        }
    }
    if !calls.is_empty() {
        // One writer: shard 0 only (no row is hot where commits are serial).
        let mut stmt = c.prepare_cached(
            "INSERT INTO provider_stats (minute, connector, calls, errors, total_ms, max_ms)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (minute, connector, shard) DO UPDATE SET calls = calls + excluded.calls,
               errors = errors + excluded.errors, total_ms = total_ms + excluded.total_ms,
               max_ms = MAX(max_ms, excluded.max_ms)",
        )?;
        for s in calls {
            stmt.execute(params![
                s.minute,
                s.connector,
                s.calls,
                s.errors,
                s.total_ms,
                s.max_ms
            ])?;
        }
    }
    Ok(())
}

#[async_trait]
impl Stats for SqliteStore {
    async fn funnel(&self, workflow: &str, since: i64, until: i64) -> Result<Vec<VisitGroup>> {
        let workflow = workflow.to_owned();
        self.run(move |c| {
            let sql = stats::funnel_visits_sql();
            let mut stmt = c.prepare_cached(&sql)?;
            collect(&mut stmt, params![workflow, since, until], |r| {
                Ok(VisitGroup {
                    step: r.get(0)?,
                    exit_to: r.get(1)?,
                    bucket: r.get(2)?,
                    visits: r.get(3)?,
                    sessions: r.get(4)?,
                })
            })
        })
        .await
    }

    async fn outcomes(
        &self,
        workflow: Option<&str>,
        since: i64,
        until: i64,
        bucket_ms: i64,
    ) -> Result<Vec<OutcomeCount>> {
        let workflow = workflow.map(str::to_owned);
        self.run(move |c| {
            let sql = stats::outcomes_sql(workflow.is_some());
            let mut stmt = c.prepare_cached(&sql)?;
            let row = |r: &rusqlite::Row<'_>| {
                Ok(OutcomeCount {
                    bucket: r.get(0)?,
                    outcome: r.get(1)?,
                    sessions: r.get(2)?,
                })
            };
            match workflow {
                Some(w) => collect(&mut stmt, params![since, bucket_ms, until, w], row),
                None => collect(&mut stmt, params![since, bucket_ms, until], row),
            }
        })
        .await
    }

    async fn provider_totals(&self, since: i64, until: i64) -> Result<Vec<ProviderTotals>> {
        self.run(move |c| {
            let mut stmt = c.prepare_cached(stats::PROVIDER_TOTALS)?;
            collect(&mut stmt, params![since, until], |r| {
                Ok(ProviderTotals {
                    connector: r.get(0)?,
                    calls: r.get(1)?,
                    errors: r.get(2)?,
                    total_ms: r.get(3)?,
                    max_ms: r.get(4)?,
                })
            })
        })
        .await
    }

    async fn delivery_totals(&self, since: i64, until: i64) -> Result<DeliveryTotals> {
        self.run(move |c| {
            let mut t = DeliveryTotals::default();
            let mut stmt = c.prepare_cached(stats::DELIVERY_BACKLOG)?;
            for (status, n) in collect(&mut stmt, [], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })? {
                match status.as_str() {
                    "pending" => t.pending = n,
                    _ => t.failed = n,
                }
            }
            let mut stmt = c.prepare_cached(stats::OLDEST_PENDING)?;
            t.oldest_pending_at = collect(&mut stmt, [], |r| Ok(r.get(0)?))?.pop();
            let mut stmt = c.prepare_cached(stats::DELIVERY_LAG)?;
            let lag = collect(&mut stmt, params![id_floor(since), id_floor(until)], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                ))
            })?;
            if let Some((n, total, max)) = lag.first() {
                t.delivered = *n;
                t.lag_total_ms = total.unwrap_or(0);
                t.lag_max_ms = max.unwrap_or(0);
            }
            Ok(t)
        })
        .await
    }
}
