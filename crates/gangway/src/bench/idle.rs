//! `gangway bench idle`: many sessions waiting at once. Reports the rate at
//! which they were created, the server's memory, its CPU while they wait,
//! the provider status calls (polls) per waiting session per minute, how
//! late deadlines fire among them (while it runs, and across a `kill -9`
//! and restart), and how long the restart takes to serve again.

use super::{Setup, create_many, procstat, setup, wait_for_waiting};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct IdleArgs {
    /// Sessions waiting at once.
    #[arg(long, default_value_t = 100_000)]
    pub sessions: u64,
    /// Creations in flight while filling up.
    #[arg(long, default_value_t = 200)]
    pub concurrency: u64,
    /// How long to observe the idle server.
    #[arg(long, default_value_t = 60)]
    pub observe_s: u64,
    /// Wait this long before observing, so that polling has backed off to
    /// its cap (5 s doubling to 60 s takes 75 s).
    #[arg(long, default_value_t = 90)]
    pub settle_s: u64,
    #[arg(long)]
    pub database_url: Option<String>,
    /// Cap of the polling fallback's interval (the shipped workflow: 60s).
    #[arg(long, default_value = "60s")]
    pub max_poll_every: String,
    /// Sessions with a short deadline among the waiting ones, in each of two
    /// groups: one whose deadlines fall while the server runs, one whose
    /// deadlines fall while it is killed and restarting.
    #[arg(long, default_value_t = 1000)]
    pub deadline_sessions: u64,
}

/// The deadline workflow, as `version`: http-score under another id, its
/// wait's deadline `timeout` instead of 10 minutes.
fn deadline_workflow(base: &str, version: u32, timeout_s: u64) -> anyhow::Result<String> {
    let mut text = base.replace("id: http-score", "id: idle-deadline");
    let Some(line) = text.lines().find(|l| l.starts_with("version: ")) else {
        bail!("the http-score workflow has no `version:` line");
    };
    text = text.replacen(&line.to_string(), &format!("version: {version}"), 1);
    if !text.contains("timeout: 10m") || !text.contains("id: idle-deadline") {
        bail!("the http-score workflow changed: its wait's `timeout: 10m` is gone");
    }
    Ok(text.replacen("timeout: 10m", &format!("timeout: {timeout_s}s"), 1))
}

/// Creates `n` sessions of `workflow` and answers, for each, its id and its
/// wait's deadline (Unix ms), read once it waits.
async fn create_with_deadlines(
    s: &Setup,
    workflow: &str,
    prefix: &str,
    n: u64,
) -> anyhow::Result<Vec<(String, i64)>> {
    let url = &s.servers.urls[0];
    let mut ids = Vec::new();
    for i in 0..n {
        let r = s
            .client
            .post(format!("{url}/v1/sessions"))
            .bearer_auth(&s.api_key)
            .json(&json!({"workflow": workflow, "reference": format!("{prefix}-{i}")}))
            .send()
            .await?;
        if r.status() != 201 {
            bail!("create answered {}", r.status());
        }
        let body: Value = r.json().await?;
        ids.push(body["id"].as_str().unwrap_or_default().to_string());
    }
    let mut out = Vec::new();
    for id in ids {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = session(s, &id).await?;
            if let Some(at) = v["waiting_on"]["deadline"].as_str() {
                out.push((id, rfc3339_ms(at)?));
                break;
            }
            if Instant::now() > deadline {
                bail!("session {id} is not waiting after 60 s: {v}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(out)
}

async fn session(s: &Setup, id: &str) -> anyhow::Result<Value> {
    Ok(s.client
        .get(format!("{}/v1/sessions/{id}", s.servers.urls[0]))
        .bearer_auth(&s.api_key)
        .send()
        .await?
        .json()
        .await?)
}

fn rfc3339_ms(t: &str) -> anyhow::Result<i64> {
    let at = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("not an RFC 3339 time: {t}"))?;
    Ok((at.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// How late each session ended after its deadline (ms), once all ended.
async fn lateness(
    s: &Setup,
    sessions: &[(String, i64)],
    wait_up_to: Duration,
) -> anyhow::Result<Vec<i64>> {
    let until = Instant::now() + wait_up_to;
    let mut late = Vec::new();
    for (id, deadline) in sessions {
        loop {
            let v = session(s, id).await?;
            if let Some(ended) = v["ended_at"].as_str() {
                late.push(rfc3339_ms(ended)? - deadline);
                break;
            }
            if Instant::now() > until {
                bail!(
                    "session {id} has not ended {} s after its deadline",
                    wait_up_to.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    late.sort_unstable();
    Ok(late)
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub async fn run(args: IdleArgs) -> anyhow::Result<()> {
    // The waiting sessions' own deadline is a day: a million of them take
    // longer than http-score's 10 minutes to create.
    let workflow = super::server::workflow_with_poll_cap(&args.max_poll_every);
    if !workflow.contains("timeout: 10m") {
        bail!("the http-score workflow changed: its wait's `timeout: 10m` is gone");
    }
    let waiting_workflow = workflow.replacen("timeout: 10m", "timeout: 24h", 1);
    let mut s = setup(
        "127.0.0.1:0",
        0,
        args.database_url.as_deref(),
        1,
        None,
        None,
        Some(&waiting_workflow),
    )
    .await?;
    s.shared.auto_webhook.store(false, Ordering::Relaxed);
    s.shared.pending.store(true, Ordering::Relaxed);
    eprintln!("bench idle: creating {} waiting sessions", args.sessions);
    let started = Instant::now();
    create_many(&s, "idle", args.sessions, args.concurrency).await?;
    let fill_rate = args.sessions as f64 / started.elapsed().as_secs_f64();
    wait_for_waiting(&s, args.sessions).await?;
    eprintln!(
        "bench idle: {} sessions waiting after {:.0} s ({fill_rate:.0} created/s); settling {} s, then observing {} s",
        args.sessions,
        started.elapsed().as_secs_f64(),
        args.settle_s,
        args.observe_s
    );
    tokio::time::sleep(Duration::from_secs(args.settle_s)).await;
    // Two groups of short deadlines among the waiting sessions: the first
    // falls in the middle of the observation, the second while the server
    // is down after the kill -9 that ends it (it stays down until they
    // have all passed).
    let live_s = args.observe_s / 2 + 5;
    let restart_s = args.observe_s + 10;
    let live_wf = deadline_workflow(&workflow, 1, live_s)?;
    s.servers.add_workflow("idle-deadline.yaml", &live_wf)?;
    wait_for_workflow(&s, "idle-deadline", 1).await?;
    let live = create_with_deadlines(&s, "idle-deadline", "live", args.deadline_sessions).await?;
    s.servers.add_workflow(
        "idle-deadline.yaml",
        &deadline_workflow(&workflow, 2, restart_s)?,
    )?;
    wait_for_workflow(&s, "idle-deadline", 2).await?;
    let across =
        create_with_deadlines(&s, "idle-deadline", "restart", args.deadline_sessions).await?;

    let pid = s.servers.pids[0];
    let postgres = args
        .database_url
        .as_deref()
        .is_some_and(|u| u.starts_with("postgres"));
    let pg0 = procstat::postgres_cpu_ms();
    let (cpu0, _, _) = procstat::sample(pid).unwrap_or_default();
    let reads0 = s.shared.status_reads.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(args.observe_s)).await;
    let (cpu1, peak, rss) = procstat::sample(pid).unwrap_or_default();
    let pg_percent = (procstat::postgres_cpu_ms() - pg0) / (args.observe_s as f64 * 1000.0) * 100.0;
    let reads1 = s.shared.status_reads.load(Ordering::Relaxed);
    let minutes = args.observe_s as f64 / 60.0;
    // The deadline sessions' own work (their ending) is a few thousand
    // transitions in the window: counted in, as any deadline would be.
    let cpu_percent = (cpu1 - cpu0) / (args.observe_s as f64 * 1000.0) * 100.0;
    let polls = (reads1 - reads0) as f64 / args.sessions as f64 / minutes;
    s.servers.kill(0)?;
    let last_deadline = across.iter().map(|(_, d)| *d).max().unwrap_or_default();
    let down_until = last_deadline + 1000 - gangway_server::ids::now_ms();
    tokio::time::sleep(Duration::from_millis(down_until.max(0) as u64)).await;
    let restarted_ms = gangway_server::ids::now_ms();
    let restart = s.servers.restart(0).await?;
    wait_for_waiting(&s, args.sessions).await?;
    let live_late = lateness(&s, &live, Duration::from_secs(30)).await?;
    // Their deadlines passed while no server ran: late from the moment a
    // new process is started (its start-up counts).
    let after_restart: Vec<(String, i64)> = across
        .into_iter()
        .map(|(id, d)| (id, d.max(restarted_ms)))
        .collect();
    let across_late = lateness(&s, &after_restart, Duration::from_secs(120)).await?;
    println!(
        "waiting_sessions={} fill_sessions_per_s={fill_rate:.0} rss_mb={rss:.1} peak_rss_mb={peak:.1} idle_cpu_percent={cpu_percent:.2} status_calls_per_session_per_min={polls:.3} restart_s={:.2} deadline_late_p50_ms={} deadline_late_p99_ms={} deadline_late_max_ms={} after_restart_deadline_late_p99_ms={} after_restart_deadline_late_max_ms={}",
        args.sessions,
        restart.as_secs_f64(),
        percentile(&live_late, 0.5),
        percentile(&live_late, 0.99),
        live_late.last().copied().unwrap_or_default(),
        percentile(&across_late, 0.99),
        across_late.last().copied().unwrap_or_default(),
    );
    if postgres {
        // The database's own share of the idle time (polls, the
        // scheduler's due-job reads), on a PostgreSQL of this machine.
        println!("postgres_idle_cpu_percent={pg_percent:.2}");
    }
    s.servers.stop();
    Ok(())
}

/// Waits until the server lists `version` of workflow `id`.
async fn wait_for_workflow(s: &Setup, id: &str, version: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v: Value = s
            .client
            .get(format!("{}/v1/workflows", s.servers.urls[0]))
            .bearer_auth(&s.api_key)
            .send()
            .await?
            .json()
            .await?;
        let loaded = v["data"].as_array().is_some_and(|all| {
            all.iter().any(|w| {
                w["id"] == id
                    && w["versions"]
                        .as_array()
                        .is_some_and(|vs| vs.iter().any(|x| x.as_u64() == Some(version)))
            })
        });
        if loaded {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("workflow {id} v{version} not loaded 30 s after SIGHUP: {v}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
