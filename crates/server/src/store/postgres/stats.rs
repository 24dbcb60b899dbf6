//! The dashboard's rows and reads on PostgreSQL (store/stats.rs). A
//! batch's rows are written in one statement each (`UNNEST`), so the
//! committer pays two round trips per batch for them, not one per row.

use super::super::deliveries::id_floor;
use super::super::stats::{self, *};
use super::super::{Result, StepVisit};
use super::PgStore;
use async_trait::async_trait;
use sqlx::{PgConnection, Row};

/// In the committer's transaction.
pub(super) async fn write(
    c: &mut PgConnection,
    visits: &[StepVisit],
    calls: &[CallStat],
) -> Result<()> {
    if !visits.is_empty() {
        let first = stats::FIRST_VISIT
            .replace("{repeat}", "u.rep")
            .replace("{session}", "u.sid")
            .replace("{visit}", "u.v")
            .replace("{step}", "u.st");
        let sql = format!(
            "INSERT INTO session_steps (session_id, visit, workflow_id, version, step, entered_at, left_at, exit_to, first_visit)
             SELECT u.sid, u.v, u.w, u.ver, u.st, u.ent, u.lft, u.ex, {first}
             FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::text[],
               $6::bigint[], $7::bigint[], $8::text[], $9::bool[]) AS u(sid, v, w, ver, st, ent, lft, ex, rep){}",
            stats::UPSERT_VISIT_TAIL
        );
        sqlx::query(&sql)
            .bind(
                visits
                    .iter()
                    .map(|v| v.session_id.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(visits.iter().map(|v| v.visit).collect::<Vec<_>>())
            .bind(
                visits
                    .iter()
                    .map(|v| v.workflow_id.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(visits.iter().map(|v| v.version).collect::<Vec<_>>())
            .bind(visits.iter().map(|v| v.step.clone()).collect::<Vec<_>>())
            .bind(visits.iter().map(|v| v.entered_at).collect::<Vec<_>>())
            .bind(visits.iter().map(|v| v.left_at).collect::<Vec<_>>())
            .bind(visits.iter().map(|v| v.exit_to.clone()).collect::<Vec<_>>())
            .bind(visits.iter().map(|v| v.repeat).collect::<Vec<_>>())
            .execute(&mut *c)
            .await?;
    }
    if !calls.is_empty() {
        sqlx::query(
            // The shard is the connection's: two committers never wait on
            // one row (migration 0010).
            "INSERT INTO provider_stats (minute, connector, shard, calls, errors, total_ms, max_ms)
             SELECT u.m, u.c, pg_backend_pid() % 64, u.n, u.e, u.t, u.x
             FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])
               AS u(m, c, n, e, t, x)
             ON CONFLICT (minute, connector, shard) DO UPDATE SET
               calls = provider_stats.calls + excluded.calls,
               errors = provider_stats.errors + excluded.errors,
               total_ms = provider_stats.total_ms + excluded.total_ms,
               max_ms = GREATEST(provider_stats.max_ms, excluded.max_ms)",
        )
        .bind(calls.iter().map(|s| s.minute).collect::<Vec<_>>())
        .bind(calls.iter().map(|s| s.connector.clone()).collect::<Vec<_>>())
        .bind(calls.iter().map(|s| s.calls).collect::<Vec<_>>())
        .bind(calls.iter().map(|s| s.errors).collect::<Vec<_>>())
        .bind(calls.iter().map(|s| s.total_ms).collect::<Vec<_>>())
        .bind(calls.iter().map(|s| s.max_ms).collect::<Vec<_>>())
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

#[async_trait]
impl Stats for PgStore {
    async fn funnel(&self, workflow: &str, since: i64, until: i64) -> Result<Vec<VisitGroup>> {
        sqlx::query(&stats::funnel_visits_sql())
            .bind(workflow)
            .bind(since)
            .bind(until)
            .fetch_all(&mut *self.conn().await?)
            .await?
            .iter()
            .map(|r| {
                Ok(VisitGroup {
                    step: r.try_get(0)?,
                    exit_to: r.try_get(1)?,
                    bucket: r.try_get(2)?,
                    visits: r.try_get(3)?,
                    sessions: r.try_get(4)?,
                })
            })
            .collect()
    }

    async fn outcomes(
        &self,
        workflow: Option<&str>,
        since: i64,
        until: i64,
        bucket_ms: i64,
    ) -> Result<Vec<OutcomeCount>> {
        let sql = stats::outcomes_sql(workflow.is_some());
        let mut q = sqlx::query_as::<_, (i64, String, i64)>(&sql)
            .bind(since)
            .bind(bucket_ms)
            .bind(until);
        if let Some(w) = workflow {
            q = q.bind(w);
        }
        Ok(q.fetch_all(&mut *self.conn().await?)
            .await?
            .into_iter()
            .map(|(bucket, outcome, sessions)| OutcomeCount {
                bucket,
                outcome,
                sessions,
            })
            .collect())
    }

    async fn provider_totals(&self, since: i64, until: i64) -> Result<Vec<ProviderTotals>> {
        Ok(
            sqlx::query_as::<_, (String, i64, i64, i64, i64)>(stats::PROVIDER_TOTALS)
                .bind(since)
                .bind(until)
                .fetch_all(&mut *self.conn().await?)
                .await?
                .into_iter()
                .map(
                    |(connector, calls, errors, total_ms, max_ms)| ProviderTotals {
                        connector,
                        calls,
                        errors,
                        total_ms,
                        max_ms,
                    },
                )
                .collect(),
        )
    }

    async fn delivery_totals(&self, since: i64, until: i64) -> Result<DeliveryTotals> {
        let mut c = self.conn().await?;
        let mut t = DeliveryTotals::default();
        for (status, n) in sqlx::query_as::<_, (String, i64)>(stats::DELIVERY_BACKLOG)
            .fetch_all(&mut *c)
            .await?
        {
            match status.as_str() {
                "pending" => t.pending = n,
                _ => t.failed = n,
            }
        }
        t.oldest_pending_at = sqlx::query_scalar(stats::OLDEST_PENDING)
            .fetch_optional(&mut *c)
            .await?;
        let (n, total, max) =
            sqlx::query_as::<_, (i64, Option<i64>, Option<i64>)>(stats::DELIVERY_LAG)
                .bind(id_floor(since))
                .bind(id_floor(until))
                .fetch_one(&mut *c)
                .await?;
        t.delivered = n;
        t.lag_total_ms = total.unwrap_or(0);
        t.lag_max_ms = max.unwrap_or(0);
        Ok(t)
    }
}
