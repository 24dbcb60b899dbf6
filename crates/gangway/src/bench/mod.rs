//! `gangway bench`: a load generator for the `http-score` workload. It starts
//! a Gangway server process (or points at one with `--url`), plays the
//! provider and the customer's backend itself, and prints one summary line:
//! `sessions_per_s=... p50_ms=... p99_ms=... create_p99_ms=... peak_rss_mb=...
//! cpu_ms_per_session=... errors=0`.

mod procstat;
mod provider;
mod server;

use anyhow::{Context, bail};
use provider::Shared;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Sessions to run after the warm-up.
    #[arg(long, default_value_t = 2000)]
    pub sessions: u64,
    /// Sessions in flight at once.
    #[arg(long, default_value_t = 50)]
    pub concurrency: u64,
    /// Database of the started server (default: a fresh SQLite file).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Server processes to start (several need PostgreSQL).
    #[arg(long, default_value_t = 1)]
    pub nodes: u32,
    /// Added to every provider answer.
    #[arg(long, default_value_t = 0)]
    pub provider_latency_ms: u64,
    /// Use a running server instead of starting one; its `score` service
    /// and webhook must point at `--provider-listen`, its customer webhook
    /// endpoint at `<provider-listen>/hooks` (secret: see the bench docs).
    #[arg(long)]
    pub url: Option<String>,
    /// Where the fake provider listens.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub provider_listen: String,
    /// API key for `--url`.
    #[arg(long, env = "GANGWAY_BENCH_API_KEY")]
    pub api_key: Option<String>,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.sessions == 0 || args.concurrency == 0 {
        bail!("--sessions and --concurrency must be at least 1");
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()?;
    let shared = Arc::new(Shared {
        latency: Duration::from_millis(args.provider_latency_ms),
        ..Default::default()
    });
    let listener = tokio::net::TcpListener::bind(&args.provider_listen)
        .await
        .context("--provider-listen")?;
    let provider_url = format!("http://{}", listener.local_addr()?);
    let app = provider::router(shared.clone(), client.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let (servers, api_key) = match &args.url {
        Some(url) => {
            let key = args
                .api_key
                .clone()
                .context("--url needs --api-key (or GANGWAY_BENCH_API_KEY)")?;
            (server::Servers::external(url), key)
        }
        None => {
            server::Servers::start(&provider_url, args.database_url.as_deref(), args.nodes).await?
        }
    };
    *shared.gangway.lock().map_err(|_| anyhow::anyhow!("lock"))? = servers.urls[0].clone();

    let warmup = (args.sessions / 10).clamp(20, 1000);
    eprintln!(
        "bench: {} nodes at {}, warming up with {warmup} sessions",
        servers.urls.len(),
        servers.urls.join(", ")
    );
    let run_id = gangway_server::ids::new_id("b");
    drive(
        &client,
        &servers.urls,
        &api_key,
        &shared,
        &format!("{run_id}w"),
        warmup,
        args.concurrency,
        false,
    )
    .await;

    let cpu_before: f64 = servers
        .pids
        .iter()
        .filter_map(|p| procstat::sample(*p))
        .map(|s| s.0)
        .sum();
    let started = Instant::now();
    let stats = drive(
        &client,
        &servers.urls,
        &api_key,
        &shared,
        &run_id,
        args.sessions,
        args.concurrency,
        true,
    )
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let samples: Vec<_> = servers
        .pids
        .iter()
        .filter_map(|p| procstat::sample(*p))
        .collect();
    let cpu_after: f64 = samples.iter().map(|s| s.0).sum();
    let peak_rss: f64 = samples.iter().map(|s| s.1).fold(0.0, f64::max);
    let ok = stats.ok as f64;
    let cpu_per = if servers.pids.is_empty() || ok == 0.0 {
        f64::NAN
    } else {
        (cpu_after - cpu_before) / ok
    };
    if shared.bad_signatures.load(Ordering::Relaxed) > 0 {
        eprintln!(
            "bench: {} customer webhooks failed signature verification",
            shared.bad_signatures.load(Ordering::Relaxed)
        );
    }
    println!(
        "sessions_per_s={:.0} p50_ms={:.2} p99_ms={:.2} create_p99_ms={:.2} peak_rss_mb={:.1} cpu_ms_per_session={:.3} errors={}",
        ok / elapsed,
        percentile(&stats.latencies, 50.0),
        percentile(&stats.latencies, 99.0),
        percentile(&stats.creates, 99.0),
        peak_rss,
        cpu_per,
        stats.errors + shared.bad_signatures.load(Ordering::Relaxed),
    );
    servers.stop();
    Ok(())
}

struct Stats {
    latencies: Vec<f64>,
    creates: Vec<f64>,
    ok: u64,
    errors: u64,
}

pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let idx = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[idx.min(v.len() - 1)]
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    client: &reqwest::Client,
    urls: &[String],
    api_key: &str,
    shared: &Arc<Shared>,
    run_id: &str,
    n: u64,
    concurrency: u64,
    progress: bool,
) -> Stats {
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..concurrency.min(n) {
        let (client, urls, key, shared, next, done, run_id) = (
            client.clone(),
            urls.to_vec(),
            api_key.to_string(),
            shared.clone(),
            next.clone(),
            done.clone(),
            run_id.to_string(),
        );
        tasks.spawn(async move {
            let mut st = Stats {
                latencies: Vec::new(),
                creates: Vec::new(),
                ok: 0,
                errors: 0,
            };
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return st;
                }
                let url = &urls[usize::try_from((i + w) % urls.len() as u64).unwrap_or(0)];
                match one(&client, url, &key, &shared, &format!("{run_id}-{i}")).await {
                    Ok((create_ms, latency_ms)) => {
                        st.ok += 1;
                        st.creates.push(create_ms);
                        st.latencies.push(latency_ms);
                    }
                    Err(e) => {
                        if st.errors < 3 {
                            eprintln!("\nbench: session {i}: {e:#}");
                        }
                        st.errors += 1;
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let ticker = progress.then(|| {
        let done = done.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let d = done.load(Ordering::Relaxed);
                let width = 30u64;
                let filled = (d * width / n.max(1)).min(width);
                let bar = format!(
                    "{}{}",
                    "=".repeat(filled as usize),
                    " ".repeat((width - filled) as usize)
                );
                eprint!(
                    "\r[{bar}] {d}/{n} sessions, {:.0}/s   ",
                    d as f64 / start.elapsed().as_secs_f64()
                );
            }
        })
    });
    let mut all = Stats {
        latencies: Vec::new(),
        creates: Vec::new(),
        ok: 0,
        errors: 0,
    };
    while let Some(r) = tasks.join_next().await {
        if let Ok(st) = r {
            all.latencies.extend(st.latencies);
            all.creates.extend(st.creates);
            all.ok += st.ok;
            all.errors += st.errors;
        } else {
            all.errors += 1;
        }
    }
    if let Some(t) = ticker {
        t.abort();
        eprintln!();
    }
    all
}

/// One session: create, wait for its `session.ended` webhook, check the outcome.
async fn one(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    shared: &Shared,
    reference: &str,
) -> anyhow::Result<(f64, f64)> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    shared
        .waiters
        .lock()
        .map_err(|_| anyhow::anyhow!("lock"))?
        .insert(reference.to_string(), tx);
    let t0 = Instant::now();
    let resp = client
        .post(format!("{url}/v1/sessions"))
        .bearer_auth(key)
        .json(&json!({"workflow": "http-score", "reference": reference}))
        .send()
        .await?;
    let create_ms = t0.elapsed().as_secs_f64() * 1000.0;
    if resp.status() != 201 {
        bail!(
            "create answered {}: {}",
            resp.status(),
            resp.text().await.unwrap_or_default()
        );
    }
    let ending = tokio::time::timeout(Duration::from_secs(120), rx)
        .await
        .context("no session.ended within 120 s")?
        .context("receiver dropped")?;
    let expected = if provider::score_for(reference) >= 50 {
        "approved"
    } else {
        "declined"
    };
    if ending.outcome != expected {
        bail!("outcome {} instead of {expected}", ending.outcome);
    }
    let sent = shared
        .webhook_sent
        .lock()
        .map_err(|_| anyhow::anyhow!("lock"))?
        .remove(reference)
        .context("the provider never sent its webhook")?;
    Ok((
        create_ms,
        ending.at.saturating_duration_since(sent).as_secs_f64() * 1000.0,
    ))
}
