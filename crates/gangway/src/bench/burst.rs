//! `gangway bench burst`: many sessions waiting, then all their provider
//! webhooks at once. Every webhook must be accepted: a 2xx, or a 429 or 503
//! (the answers docs/api.md tells providers to retry), which is retried as
//! the provider would after its `Retry-After`; nothing else, and no session
//! may be left without its ending. Reports how long the burst took to be
//! accepted and the time from each webhook to the session's
//! `session.ended` customer webhook (webhook-to-decision).

use super::{create_many, percentile, provider, setup, wait_for_waiting};
use anyhow::{Context, bail};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct BurstArgs {
    /// Sessions waiting when the burst comes (one webhook each).
    #[arg(long, default_value_t = 50_000)]
    pub sessions: u64,
    /// Creations in flight while filling up.
    #[arg(long, default_value_t = 200)]
    pub concurrency: u64,
    /// Webhooks in flight at once during the burst (the provider's senders).
    #[arg(long, default_value_t = 1000)]
    pub senders: u64,
    /// Database of the started server (default: a fresh SQLite file).
    #[arg(long)]
    pub database_url: Option<String>,
}

/// What the senders saw.
#[derive(Default)]
struct Counts {
    accepted_first: AtomicU64,
    /// 429 or 503 answers, each retried.
    retried: AtomicU64,
    /// Connection errors (retried too, as a provider would).
    unreachable: AtomicU64,
    /// Any other answer: the webhook is refused for good.
    refused: AtomicU64,
}

pub async fn run(args: BurstArgs) -> anyhow::Result<()> {
    if args.sessions == 0 || args.senders == 0 || args.concurrency == 0 {
        bail!("--sessions, --senders and --concurrency must be at least 1");
    }
    let s = setup(
        "127.0.0.1:0",
        0,
        args.database_url.as_deref(),
        1,
        None,
        None,
        None,
    )
    .await?;
    s.shared.auto_webhook.store(false, Ordering::Relaxed);
    s.shared.pending.store(true, Ordering::Relaxed);
    eprintln!("bench burst: creating {} waiting sessions", args.sessions);
    let filling = Instant::now();
    let sessions = create_many(&s, "burst", args.sessions, args.concurrency).await?;
    wait_for_waiting(&s, args.sessions).await?;
    eprintln!(
        "bench burst: {} sessions waiting after {:.0} s; sending every webhook",
        args.sessions,
        filling.elapsed().as_secs_f64()
    );
    // Whoever ends: the receiver (provider.rs, `/hooks`) hands over the moment.
    let mut endings = Vec::with_capacity(sessions.len());
    {
        let mut waiters = s
            .shared
            .waiters
            .lock()
            .map_err(|_| anyhow::anyhow!("lock"))?;
        for c in &sessions {
            let (tx, rx) = tokio::sync::oneshot::channel();
            waiters.insert(c.reference.clone(), tx);
            endings.push((c.reference.clone(), rx));
        }
    }
    // The provider's reads say `completed` from now on.
    s.shared.pending.store(false, Ordering::Relaxed);
    let url = s.servers.urls[0].clone();
    let refs: Arc<Vec<String>> = Arc::new(sessions.iter().map(|c| c.reference.clone()).collect());
    let next = Arc::new(AtomicU64::new(0));
    let counts = Arc::new(Counts::default());
    let sent_at: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let burst = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.senders.min(args.sessions) {
        let (client, url, refs, next, counts, sent_at) = (
            s.client.clone(),
            url.clone(),
            refs.clone(),
            next.clone(),
            counts.clone(),
            sent_at.clone(),
        );
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(reference) = usize::try_from(i).ok().and_then(|i| refs.get(i)) else {
                    return;
                };
                let first = Instant::now();
                deliver(&client, &url, reference, &counts).await;
                if let Ok(mut m) = sent_at.lock() {
                    m.push((reference.clone(), first));
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.context("a sender failed")?;
    }
    let burst_s = burst.elapsed().as_secs_f64();
    eprintln!("bench burst: every webhook answered after {burst_s:.2} s; waiting for the endings");
    let sent: std::collections::HashMap<String, Instant> = sent_at
        .lock()
        .map_err(|_| anyhow::anyhow!("lock"))?
        .iter()
        .cloned()
        .collect();
    let mut latencies = Vec::with_capacity(endings.len());
    let mut lost = 0u64;
    let mut wrong = 0u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    for (reference, rx) in endings {
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(ending)) => {
                let expected = if provider::score_for(&reference) >= 50 {
                    "approved"
                } else {
                    "declined"
                };
                if ending.outcome != expected {
                    wrong += 1;
                }
                if let Some(t0) = sent.get(&reference) {
                    latencies.push(ending.at.saturating_duration_since(*t0).as_secs_f64() * 1000.0);
                }
            }
            _ => lost += 1,
        }
    }
    let refused = counts.refused.load(Ordering::Relaxed);
    println!(
        "sessions={} burst_s={burst_s:.2} webhooks_per_s={:.0} accepted_first_try={} retried_429_503={} unreachable={} refused={refused} lost={lost} wrong_outcome={wrong} p50_ms={:.1} p99_ms={:.1} max_ms={:.1} errors={}",
        args.sessions,
        args.sessions as f64 / burst_s,
        counts.accepted_first.load(Ordering::Relaxed),
        counts.retried.load(Ordering::Relaxed),
        counts.unreachable.load(Ordering::Relaxed),
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        percentile(&latencies, 100.0),
        refused + lost + wrong + s.shared.bad_signatures.load(Ordering::Relaxed),
    );
    s.servers.stop();
    Ok(())
}

/// Sends one session's webhook until it is accepted: 429 and 503 are
/// retried after their `Retry-After` (1 s without one), connection errors
/// after 1 s, for up to 10 minutes; any other non-2xx is refused for good.
async fn deliver(client: &reqwest::Client, url: &str, reference: &str, counts: &Counts) {
    let id = format!("b_{reference}");
    let give_up = Instant::now() + Duration::from_secs(600);
    let mut first = true;
    while Instant::now() < give_up {
        let (body, ts, sig) = provider::signed_webhook(&id);
        let r = client
            .post(format!("{url}/v1/webhooks/http/score"))
            .header("content-type", "application/json")
            .header("X-Score-Timestamp", &ts)
            .header("X-Score-Signature", &sig)
            .body(body)
            .send()
            .await;
        let wait = match r {
            Ok(r) if r.status().is_success() => {
                if first {
                    counts.accepted_first.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
            Ok(r) if r.status() == 429 || r.status() == 503 => {
                counts.retried.fetch_add(1, Ordering::Relaxed);
                r.headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                    .map_or(Duration::from_secs(1), Duration::from_secs)
            }
            Ok(r) => {
                eprintln!(
                    "bench burst: webhook of {reference} refused: {}",
                    r.status()
                );
                counts.refused.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(_) => {
                counts.unreachable.fetch_add(1, Ordering::Relaxed);
                Duration::from_secs(1)
            }
        };
        first = false;
        tokio::time::sleep(wait).await;
    }
    counts.refused.fetch_add(1, Ordering::Relaxed);
}
