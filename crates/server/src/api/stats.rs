//! The dashboard's figures (`/v1/stats/*`, `sessions:read`), computed by
//! the server from what the committer counts at commit (store/stats.rs):
//! a workflow's funnel over a period (sessions that reached each step,
//! where they went next or ended, median time per step), outcomes over
//! time, provider health and the customer-webhook backlog and lag.

use super::AppState;
use super::auth::{ApiKey, scope};
use super::error::Problem;
use crate::ids;
use crate::runtime::view;
use crate::store::{DURATION_BOUNDS_MS, VisitGroup};
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/stats/funnel", get(funnel))
        .route("/v1/stats/outcomes", get(outcomes))
        .route("/v1/stats/providers", get(providers))
}

const DAY_MS: i64 = 86_400_000;
/// The longest period a request may ask for.
const MAX_PERIOD_MS: i64 = 366 * DAY_MS;
/// Most buckets of an outcomes series.
const MAX_BUCKETS: i64 = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeriodQuery {
    workflow: Option<String>,
    /// RFC 3339, inclusive; default: a week before `until`.
    since: Option<String>,
    /// RFC 3339, exclusive; default: now.
    until: Option<String>,
    /// Outcomes: `hour` or `day` (default: by the period's length).
    bucket: Option<String>,
}

/// `[since, until)` in milliseconds, checked.
fn period(q: &PeriodQuery) -> Result<(i64, i64), Problem> {
    let time = |name: &str, v: &str| -> Result<i64, Problem> {
        let t = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
            .map_err(|e| Problem::validation(format!("`{name}` must be an RFC 3339 time: {e}")))?;
        i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
            .ok()
            .filter(|ms| *ms >= 0)
            .ok_or_else(|| Problem::validation(format!("`{name}` is out of range")))
    };
    let until = match &q.until {
        Some(u) => time("until", u)?,
        None => ids::now_ms(),
    };
    let since = match &q.since {
        Some(s) => time("since", s)?,
        None => until - 7 * DAY_MS,
    };
    if since >= until {
        return Err(Problem::validation("`since` must be before `until`"));
    }
    if until - since > MAX_PERIOD_MS {
        return Err(Problem::validation("the period may be at most 366 days"));
    }
    Ok((since, until))
}

fn parse(
    query: Result<Query<PeriodQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<PeriodQuery, Problem> {
    query
        .map(|Query(q)| q)
        .map_err(|e| Problem::bad_request(e.body_text()))
}

/// The median of a duration histogram (visits per `DURATION_BOUNDS_MS`
/// bucket), interpolated inside its bucket; `None` without durations.
pub fn median_ms(hist: &BTreeMap<i64, i64>) -> Option<i64> {
    let n: i64 = hist.iter().filter(|(b, _)| **b >= 0).map(|(_, c)| c).sum();
    if n == 0 {
        return None;
    }
    let rank = (n - 1) as f64 / 2.0;
    let mut before = 0i64;
    for (&b, &count) in hist.iter().filter(|(b, _)| **b >= 0) {
        if (before + count) as f64 > rank {
            let i = usize::try_from(b).unwrap_or(0);
            let lower = if i == 0 { 0 } else { DURATION_BOUNDS_MS[i - 1] };
            let Some(&upper) = DURATION_BOUNDS_MS.get(i) else {
                return Some(lower);
            };
            let within = (rank - before as f64 + 0.5) / count as f64;
            return Some(lower + ((upper - lower) as f64 * within) as i64);
        }
        before += count;
    }
    None
}

/// One step's visits in the period.
#[derive(Default)]
struct Tally {
    /// Visits per exit (next step, or `outcome:<outcome>`).
    exits: BTreeMap<String, i64>,
    /// Visits per duration bucket (`-1`: not left or unknown).
    durations: BTreeMap<i64, i64>,
    /// Visits not left yet.
    in_step: i64,
    visits: i64,
    /// Sessions' first visits: the sessions that reached the step.
    sessions: i64,
}

async fn funnel(
    State(st): State<AppState>,
    _key: ApiKey<scope::SessionsRead>,
    query: Result<Query<PeriodQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let q = parse(query)?;
    let (since, until) = period(&q)?;
    let Some(workflow) = q.workflow.filter(|w| !w.is_empty()) else {
        return Err(Problem::validation(
            "`workflow` is required: the funnel is per workflow",
        ));
    };
    let Some(wf) = st.engine.latest_workflow(&workflow) else {
        return Err(Problem::not_found(format!(
            "no workflow `{workflow}`; GET /v1/workflows lists them"
        )));
    };
    let groups = st.engine.stats().funnel(&workflow, since, until).await?;
    let mut per: BTreeMap<String, Tally> = BTreeMap::new();
    for VisitGroup {
        step,
        exit_to,
        bucket,
        visits,
        sessions,
    } in groups
    {
        let e = per.entry(step).or_default();
        e.visits += visits;
        e.sessions += sessions;
        match exit_to {
            Some(to) => *e.exits.entry(to).or_default() += visits,
            None => e.in_step += visits,
        }
        *e.durations.entry(bucket).or_default() += visits;
    }
    // The workflow's own order, then any step of an older version.
    let mut order: Vec<String> = wf.steps.keys().cloned().collect();
    order.extend(per.keys().filter(|s| !wf.steps.contains_key(*s)).cloned());
    let steps: Vec<Value> = order
        .iter()
        .map(|name| {
            let t = per.remove(name).unwrap_or_default();
            let mut exits: Vec<(String, i64)> = t.exits.into_iter().collect();
            exits.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            json!({
                "step": name,
                "kind": wf.steps.get(name).map(|s| s.kind()),
                "sessions": t.sessions,
                "visits": t.visits,
                "in_step": t.in_step,
                "exits": exits.iter().map(|(to, n)| match to.strip_prefix("outcome:") {
                    Some(outcome) => json!({"outcome": outcome, "visits": n}),
                    None => json!({"step": to, "visits": n}),
                }).collect::<Vec<_>>(),
                "median_ms": median_ms(&t.durations),
            })
        })
        .collect();
    Ok(Json(json!({
        "workflow": workflow,
        "since": view::time_json(Some(since)),
        "until": view::time_json(Some(until)),
        "steps": steps,
    })))
}

async fn outcomes(
    State(st): State<AppState>,
    _key: ApiKey<scope::SessionsRead>,
    query: Result<Query<PeriodQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let q = parse(query)?;
    let (since, until) = period(&q)?;
    let bucket_ms = match q.bucket.as_deref() {
        Some("hour") => 3_600_000,
        Some("day") => DAY_MS,
        None if until - since <= 2 * DAY_MS => 3_600_000,
        None => DAY_MS,
        Some(b) => {
            return Err(Problem::validation(format!(
                "unknown `bucket` `{b}`; use `hour` or `day`"
            )));
        }
    };
    let buckets = (until - since + bucket_ms - 1) / bucket_ms;
    if buckets > MAX_BUCKETS {
        return Err(Problem::validation(format!(
            "at most {MAX_BUCKETS} buckets: use `bucket=day` or a shorter period"
        )));
    }
    let workflow = q.workflow.filter(|w| !w.is_empty());
    let rows = st
        .engine
        .stats()
        .outcomes(workflow.as_deref(), since, until, bucket_ms)
        .await?;
    let mut series: Vec<Map<String, Value>> = (0..buckets).map(|_| Map::new()).collect();
    for r in rows {
        if let Some(counts) = usize::try_from(r.bucket)
            .ok()
            .and_then(|i| series.get_mut(i))
        {
            counts.insert(r.outcome, r.sessions.into());
        }
    }
    let series: Vec<Value> = series
        .into_iter()
        .enumerate()
        .map(|(i, counts)| {
            let start = since + i64::try_from(i).unwrap_or(0) * bucket_ms;
            json!({"start": view::time_json(Some(start)), "counts": counts})
        })
        .collect();
    Ok(Json(json!({
        "workflow": workflow,
        "since": view::time_json(Some(since)),
        "until": view::time_json(Some(until)),
        "bucket_ms": bucket_ms,
        "series": series,
    })))
}

async fn providers(
    State(st): State<AppState>,
    _key: ApiKey<scope::SessionsRead>,
    query: Result<Query<PeriodQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let q = parse(query)?;
    if q.workflow.is_some() || q.bucket.is_some() {
        return Err(Problem::validation(
            "provider health takes only `since` and `until`",
        ));
    }
    let (since, until) = period(&q)?;
    // Counters are per minute: whole minutes of the period.
    let (from, to) = (since - since.rem_euclid(60_000), until);
    let stats = st.engine.stats();
    let connectors: Vec<Value> = stats
        .provider_totals(from, to)
        .await?
        .into_iter()
        .map(|p| {
            json!({
                "connector": p.connector,
                "calls": p.calls,
                "errors": p.errors,
                "error_rate": if p.calls > 0 { p.errors as f64 / p.calls as f64 } else { 0.0 },
                "avg_ms": if p.calls > 0 { p.total_ms / p.calls } else { 0 },
                "max_ms": p.max_ms,
            })
        })
        .collect();
    let d = stats.delivery_totals(since, until).await?;
    Ok(Json(json!({
        "since": view::time_json(Some(since)),
        "until": view::time_json(Some(until)),
        "connectors": connectors,
        "webhooks": {
            "pending": d.pending,
            "failed": d.failed,
            "oldest_pending_at": view::time_json(d.oldest_pending_at),
            "delivered": d.delivered,
            "avg_lag_ms": if d.delivered > 0 { Some(d.lag_total_ms / d.delivered) } else { None },
            "max_lag_ms": (d.delivered > 0).then_some(d.lag_max_ms),
        },
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_interpolated_inside_its_bucket() {
        // Bucket 6 is [500, 1000): three visits there, one unknown.
        let hist = BTreeMap::from([(-1, 1), (6, 3)]);
        assert_eq!(median_ms(&hist), Some(750));
        // Ten fast visits and one slow: the median is fast.
        let hist = BTreeMap::from([(0, 10), (21, 1)]);
        assert!(median_ms(&hist).is_some_and(|m| m < 10));
        // Beyond the last bound: its lower bound.
        assert_eq!(median_ms(&BTreeMap::from([(21, 1)])), Some(259_200_000));
        assert_eq!(median_ms(&BTreeMap::from([(-1, 4)])), None);
    }
}
