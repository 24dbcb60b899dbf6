//! `gangway bench idle`: many sessions waiting at once. Reports the server's
//! memory, its CPU while they wait, the provider status calls (polls) per
//! waiting session per minute, and how long a restart takes to serve again.

use super::{create_many, procstat, setup, wait_for_waiting};
use std::sync::atomic::Ordering;
use std::time::Duration;

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
}

pub async fn run(args: IdleArgs) -> anyhow::Result<()> {
    let workflow = super::server::workflow_with_poll_cap(&args.max_poll_every);
    let mut s = setup(
        "127.0.0.1:0",
        0,
        args.database_url.as_deref(),
        1,
        None,
        None,
        Some(&workflow),
    )
    .await?;
    s.shared.auto_webhook.store(false, Ordering::Relaxed);
    s.shared.pending.store(true, Ordering::Relaxed);
    eprintln!("bench idle: creating {} waiting sessions", args.sessions);
    let started = std::time::Instant::now();
    create_many(&s, "idle", args.sessions, args.concurrency).await?;
    wait_for_waiting(&s, args.sessions).await?;
    eprintln!(
        "bench idle: {} sessions waiting after {:.0} s; settling {} s, then observing {} s",
        args.sessions,
        started.elapsed().as_secs_f64(),
        args.settle_s,
        args.observe_s
    );
    tokio::time::sleep(Duration::from_secs(args.settle_s)).await;
    let pid = s.servers.pids[0];
    let (cpu0, _, _) = procstat::sample(pid).unwrap_or_default();
    let reads0 = s.shared.status_reads.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(args.observe_s)).await;
    let (cpu1, peak, rss) = procstat::sample(pid).unwrap_or_default();
    let reads1 = s.shared.status_reads.load(Ordering::Relaxed);
    let minutes = args.observe_s as f64 / 60.0;
    let cpu_percent = (cpu1 - cpu0) / (args.observe_s as f64 * 1000.0) * 100.0;
    let polls = (reads1 - reads0) as f64 / args.sessions as f64 / minutes;
    let restart = s.servers.kill_and_restart(0).await?;
    wait_for_waiting(&s, args.sessions).await?;
    println!(
        "waiting_sessions={} rss_mb={rss:.1} peak_rss_mb={peak:.1} idle_cpu_percent={cpu_percent:.2} status_calls_per_session_per_min={polls:.3} restart_s={:.2}",
        args.sessions,
        restart.as_secs_f64()
    );
    s.servers.stop();
    Ok(())
}
