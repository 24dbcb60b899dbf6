//! The dashboard's figures (issue 22), read from clear columns only: a
//! session's state and timeline are sealed, so the committer also writes
//! what the dashboard counts, in the same transaction (migration 0010):
//! a row per step visit (`session_steps`) and per-minute counters of
//! provider calls (`provider_stats`). Every read below is one grouped
//! statement over an index range of the period, so its cost follows the
//! period's rows, not the table's; medians come from a duration histogram
//! grouped in SQL (`DURATION_BOUNDS_MS`), never from the rows themselves.

use super::Result;
use async_trait::async_trait;

/// A step visit as the committer writes it: entered, left, or both (a
/// step passed through in one transition). Written with an upsert on
/// `(session_id, visit)` that keeps what an earlier write set.
#[derive(Debug, Clone, PartialEq)]
pub struct StepVisit {
    pub session_id: String,
    pub visit: i64,
    pub workflow_id: String,
    pub version: i64,
    pub step: String,
    pub entered_at: Option<i64>,
    pub left_at: Option<i64>,
    /// The next step, or `outcome:<outcome>` when the session ended there.
    pub exit_to: Option<String>,
    /// Known to come back to a step the session visited earlier in the
    /// same batch (earlier batches' visits the statement looks up itself).
    pub repeat: bool,
}

/// Provider calls of one connector in one minute, added to the counters.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallStat {
    pub minute: i64,
    pub connector: String,
    pub calls: i64,
    pub errors: i64,
    pub total_ms: i64,
    pub max_ms: i64,
}

/// Visits of one step with one exit whose duration fell in one bucket
/// (`-1`: not left yet, or entered before the table existed).
#[derive(Debug, Clone, PartialEq)]
pub struct VisitGroup {
    pub step: String,
    pub exit_to: Option<String>,
    pub bucket: i64,
    pub visits: i64,
    /// Of those, sessions' first visits of the step.
    pub sessions: i64,
}

/// Sessions ended in one time bucket with one outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeCount {
    /// Buckets since the period's start.
    pub bucket: i64,
    pub outcome: String,
    pub sessions: i64,
}

/// A connector's calls over the period.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderTotals {
    pub connector: String,
    pub calls: i64,
    pub errors: i64,
    pub total_ms: i64,
    pub max_ms: i64,
}

/// Customer webhooks: the backlog now, and the lag of those delivered.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeliveryTotals {
    pub pending: i64,
    pub failed: i64,
    /// Creation time of the oldest pending delivery.
    pub oldest_pending_at: Option<i64>,
    /// Deliveries created in the period and delivered.
    pub delivered: i64,
    /// Sum and maximum of `delivered_at - created_at` over those.
    pub lag_total_ms: i64,
    pub lag_max_ms: i64,
}

/// Upper bounds (exclusive) of the duration histogram's buckets; a visit
/// longer than the last falls in the bucket after it.
pub const DURATION_BOUNDS_MS: &[i64] = &[
    10,
    25,
    50,
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    30_000,
    60_000,
    120_000,
    300_000,
    600_000,
    1_800_000,
    3_600_000,
    10_800_000,
    43_200_000,
    86_400_000,
    259_200_000,
];

/// The dashboard's reads.
#[async_trait]
pub trait Stats: Send + Sync {
    /// A workflow's visits entered in `[since, until)`, per step, exit and
    /// duration bucket, with how many were sessions' first of the step.
    async fn funnel(&self, workflow: &str, since: i64, until: i64) -> Result<Vec<VisitGroup>>;
    /// Sessions ended in `[since, until)` per `bucket_ms` and outcome.
    async fn outcomes(
        &self,
        workflow: Option<&str>,
        since: i64,
        until: i64,
        bucket_ms: i64,
    ) -> Result<Vec<OutcomeCount>>;
    /// Provider calls per connector in `[since, until)`.
    async fn provider_totals(&self, since: i64, until: i64) -> Result<Vec<ProviderTotals>>;
    /// The delivery backlog now and the lag of deliveries created in `[since, until)`.
    async fn delivery_totals(&self, since: i64, until: i64) -> Result<DeliveryTotals>;
}

/// The SQL expression of a visit's duration bucket (`-1` when unknown).
fn bucket_case() -> String {
    let mut sql = String::from("CAST(CASE WHEN left_at IS NULL OR entered_at IS NULL THEN -1");
    for (i, bound) in DURATION_BOUNDS_MS.iter().enumerate() {
        sql.push_str(&format!(" WHEN left_at - entered_at < {bound} THEN {i}"));
    }
    sql.push_str(&format!(
        " ELSE {} END AS BIGINT)",
        DURATION_BOUNDS_MS.len()
    ));
    sql
}

/// Visits per step, exit and bucket; arguments: workflow, since, until.
pub(crate) fn funnel_visits_sql() -> String {
    format!(
        "SELECT step, exit_to, {} AS bucket, COUNT(*), CAST(SUM(first_visit) AS BIGINT)
         FROM session_steps
         WHERE workflow_id = $1 AND entered_at >= $2 AND entered_at < $3
         GROUP BY step, exit_to, bucket",
        bucket_case()
    )
}

/// Whether a visit about to be inserted is its session's first of the step:
/// the session's earlier visits, read by primary key.
pub(crate) const FIRST_VISIT: &str = "CASE WHEN {repeat} OR EXISTS (SELECT 1 FROM session_steps s
       WHERE s.session_id = {session} AND s.visit < {visit} AND s.step = {step}) THEN 0 ELSE 1 END";

/// A visit, upserted: what an earlier write set stays unless this one sets
/// it (`first_visit` is decided once, when the row is inserted).
pub(crate) const UPSERT_VISIT_TAIL: &str = " ON CONFLICT (session_id, visit) DO UPDATE SET
       entered_at = COALESCE(session_steps.entered_at, excluded.entered_at),
       left_at = COALESCE(excluded.left_at, session_steps.left_at),
       exit_to = COALESCE(excluded.exit_to, session_steps.exit_to)";

/// Arguments: since, bucket size, until, then the workflow when filtered
/// (numbered in order of first use, as store/sql.rs explains).
pub(crate) fn outcomes_sql(by_workflow: bool) -> String {
    format!(
        "SELECT (ended_at - $1) / $2 AS bucket, outcome, COUNT(*) FROM sessions
         WHERE ended_at >= $1 AND ended_at < $3{} AND outcome IS NOT NULL
         GROUP BY bucket, outcome ORDER BY bucket, outcome",
        if by_workflow {
            " AND workflow_id = $4"
        } else {
            ""
        }
    )
}

pub(crate) const PROVIDER_TOTALS: &str = "SELECT connector, CAST(SUM(calls) AS BIGINT),
       CAST(SUM(errors) AS BIGINT), CAST(SUM(total_ms) AS BIGINT), MAX(max_ms)
     FROM provider_stats WHERE minute >= $1 AND minute < $2
     GROUP BY connector ORDER BY connector";

/// Both from the `(status, id)` index.
pub(crate) const DELIVERY_BACKLOG: &str = "SELECT status, COUNT(*) FROM deliveries
     WHERE status IN ('pending', 'failed') GROUP BY status";
pub(crate) const OLDEST_PENDING: &str =
    "SELECT created_at FROM deliveries WHERE status = 'pending' ORDER BY id LIMIT 1";
/// Arguments: the id floors of since and until (a primary-key range).
pub(crate) const DELIVERY_LAG: &str =
    "SELECT COUNT(*), CAST(SUM(delivered_at - created_at) AS BIGINT),
       MAX(delivered_at - created_at)
     FROM deliveries WHERE id >= $1 AND id < $2 AND status = 'delivered'";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_expression_names_every_bucket() {
        let case = bucket_case();
        assert!(
            case.contains("WHEN left_at - entered_at < 10 THEN 0"),
            "{case}"
        );
        assert!(case.contains("< 259200000 THEN 20"), "{case}");
        assert!(case.ends_with("ELSE 21 END AS BIGINT)"), "{case}");
        assert!(outcomes_sql(true).contains("AND workflow_id = $4"));
        assert!(!outcomes_sql(false).contains("workflow_id"));
    }
}
