//! `gangway bench`: a load generator for the `http-score` workload. It starts
//! a Gangway server process (or points at one with `--url`), plays the
//! provider and the customer's backend itself, and prints one summary line:
//! `sessions_per_s=... p50_ms=... p99_ms=... create_p99_ms=... peak_rss_mb=...
//! cpu_ms_per_session=... errors=0 cpu_x_floor=...`; `cpu_x_floor` is the
//! server's CPU per session as a multiple of the floor's (floor.rs),
//! measured in the same run.

mod burst;
mod chaos;
mod floor;
mod floor_node;
mod idle;
mod procstat;
mod provider;
mod server;
mod stream;

use anyhow::{Context, bail};
use provider::Shared;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchCmd {
    #[command(subcommand)]
    kind: Option<BenchKind>,
    #[command(flatten)]
    run: BenchArgs,
}

#[derive(clap::Subcommand)]
enum BenchKind {
    /// Many sessions waiting at once: memory, idle CPU, polling cost, restart time.
    Idle(idle::IdleArgs),
    /// Browsers on SSE streams: latency from a webhook to each stream.
    Stream(stream::StreamArgs),
    /// Many sessions waiting, then all their provider webhooks at once:
    /// every one accepted, none lost, webhook-to-decision latency.
    Burst(burst::BurstArgs),
    /// Three nodes on PostgreSQL under load, one killed with kill -9 and
    /// started again in turn, PostgreSQL restarted once: nothing lost or doubled.
    Chaos(chaos::ChaosArgs),
    /// The same HTTP exchanges per session against handlers that do no
    /// engine or database work: the floor Gangway's CPU is measured against.
    Floor(floor::FloorArgs),
    /// The server process of `bench floor` (started by the bench itself).
    #[command(hide = true)]
    FloorNode(floor_node::FloorNodeArgs),
}

pub async fn main(cmd: BenchCmd) -> anyhow::Result<()> {
    match cmd.kind {
        None => run(cmd.run).await,
        Some(BenchKind::Idle(a)) => idle::run(a).await,
        Some(BenchKind::Stream(a)) => stream::run(a).await,
        Some(BenchKind::Burst(a)) => burst::run(a).await,
        Some(BenchKind::Chaos(a)) => chaos::run(a).await,
        Some(BenchKind::Floor(a)) => floor::run(a).await,
        Some(BenchKind::FloorNode(a)) => floor_node::run(a).await,
    }
}

/// The fake provider, the servers under test and an API key.
pub(crate) struct Setup {
    pub client: reqwest::Client,
    pub shared: Arc<Shared>,
    pub servers: server::Servers,
    pub api_key: String,
}

pub(crate) async fn setup(
    provider_listen: &str,
    latency_ms: u64,
    database_url: Option<&str>,
    nodes: u32,
    url: Option<&str>,
    api_key: Option<&str>,
    workflow: Option<&str>,
) -> anyhow::Result<Setup> {
    setup_nodes(
        provider_listen,
        latency_ms,
        database_url,
        nodes,
        url,
        api_key,
        workflow,
        false,
        "",
    )
    .await
}

/// [`setup`], with floor nodes (`gangway bench floor-node`) when `floor`,
/// and `extra_toml` appended to the nodes' configuration.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn setup_nodes(
    provider_listen: &str,
    latency_ms: u64,
    database_url: Option<&str>,
    nodes: u32,
    url: Option<&str>,
    api_key: Option<&str>,
    workflow: Option<&str>,
    floor: bool,
    extra_toml: &str,
) -> anyhow::Result<Setup> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()?;
    let shared = Arc::new(Shared::new(Duration::from_millis(latency_ms)));
    let listener = tokio::net::TcpListener::bind(provider_listen)
        .await
        .context("--provider-listen")?;
    let provider_url = format!("http://{}", listener.local_addr()?);
    let app = provider::router(shared.clone(), client.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let (servers, api_key) = match url {
        Some(url) => {
            let key = api_key.context("--url needs --api-key (or GANGWAY_BENCH_API_KEY)")?;
            (server::Servers::external(url), key.to_string())
        }
        None => {
            server::Servers::start(
                &provider_url,
                database_url,
                nodes,
                workflow.unwrap_or(server::WORKFLOW),
                floor,
                extra_toml,
            )
            .await?
        }
    };
    *shared.gangway.lock().map_err(|_| anyhow::anyhow!("lock"))? = servers.urls.clone();
    Ok(Setup {
        client,
        shared,
        servers,
        api_key,
    })
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.sessions == 0 || args.concurrency == 0 {
        bail!("--sessions and --concurrency must be at least 1");
    }
    let sqlite = args
        .database_url
        .as_deref()
        .is_none_or(|u| u.starts_with("sqlite:"));
    if args.nodes > 1 && sqlite && args.url.is_none() {
        // Said before the floor runs, not after.
        bail!(
            "--nodes {} needs a PostgreSQL --database-url: SQLite serves one process",
            args.nodes
        );
    }
    // The floor first, on its own processes, which are stopped before
    // Gangway starts: the two runs never share the cores.
    let floor_sessions = args.floor_sessions.unwrap_or(args.sessions.min(20_000));
    let floor = if args.url.is_some() || floor_sessions == 0 {
        None
    } else {
        Some(floor::measure(floor_sessions, args.concurrency, args.provider_latency_ms).await?)
    };
    if let Some(f) = &floor {
        eprintln!("bench: floor: {}", f.summary());
    }
    let s = setup(
        &args.provider_listen,
        args.provider_latency_ms,
        args.database_url.as_deref(),
        args.nodes,
        args.url.as_deref(),
        args.api_key.as_deref(),
        None,
    )
    .await?;
    let m = measure(&s, args.sessions, args.concurrency, "gangway").await;
    let cpu_x_floor = match &floor {
        Some(f) => m.cpu_per / f.cpu_per,
        None => f64::NAN,
    };
    println!(
        "{} cpu_x_floor={cpu_x_floor:.2}{}",
        m.summary(),
        m.cluster_fields(!sqlite && args.url.is_none())
    );
    let Setup {
        client,
        mut servers,
        api_key,
        ..
    } = s;
    if args.check_durability && args.url.is_none() {
        // Durability is not traded for speed: after kill -9 and a restart,
        // every session that ended is still ended.
        let took = servers.kill_and_restart(0).await?;
        let url = &servers.urls[0];
        let mut still_ended = 0u64;
        let mut cursor: Option<String> = None;
        loop {
            let mut req = client
                .get(format!("{url}/v1/sessions?status=ended&limit=200"))
                .bearer_auth(&api_key);
            if let Some(c) = &cursor {
                req = req.query(&[("cursor", c)]);
            }
            let page: serde_json::Value = req.send().await?.json().await?;
            still_ended += page["data"].as_array().map(|a| a.len() as u64).unwrap_or(0);
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        let expected = m.ok + m.warmup;
        eprintln!(
            "bench: after kill -9 and restart ({:.2} s), {still_ended} of {expected} completed sessions are ended",
            took.as_secs_f64()
        );
        if still_ended < expected {
            bail!(
                "durability check failed: {still_ended} of {expected} completed sessions survived kill -9"
            );
        }
    }
    servers.stop();
    Ok(())
}

/// The figures of one measured run (after its warm-up).
pub(crate) struct Measured {
    sessions_per_s: f64,
    p50: f64,
    p99: f64,
    create_p99: f64,
    peak_rss: f64,
    /// Server CPU per completed session, ms (NaN without server processes).
    cpu_per: f64,
    errors: u64,
    ok: u64,
    warmup: u64,
    /// Each node's CPU per completed session, ms.
    node_cpu_per: Vec<f64>,
    /// The local PostgreSQL processes' CPU per completed session, ms.
    postgres_cpu_per: f64,
}

impl Measured {
    /// With PostgreSQL: each node's CPU per session and PostgreSQL's, and
    /// their total (issue 24 §2 compares clusters by it). Empty on SQLite.
    fn cluster_fields(&self, postgres: bool) -> String {
        if !postgres {
            return String::new();
        }
        let nodes: Vec<String> = self
            .node_cpu_per
            .iter()
            .map(|c| format!("{c:.3}"))
            .collect();
        format!(
            " node_cpu_ms_per_session={} postgres_cpu_ms_per_session={:.3} total_cpu_ms_per_session={:.3}",
            nodes.join(","),
            self.postgres_cpu_per,
            self.cpu_per + self.postgres_cpu_per
        )
    }

    /// The summary line's fields, in the order others rely on.
    fn summary(&self) -> String {
        format!(
            "sessions_per_s={:.0} p50_ms={:.2} p99_ms={:.2} create_p99_ms={:.2} peak_rss_mb={:.1} cpu_ms_per_session={:.3} errors={}",
            self.sessions_per_s,
            self.p50,
            self.p99,
            self.create_p99,
            self.peak_rss,
            self.cpu_per,
            self.errors,
        )
    }
}

/// Warms up, then drives `sessions` through the servers of `s` and reads
/// their CPU and memory from /proc. `label` names the run on stderr.
pub(crate) async fn measure(s: &Setup, sessions: u64, concurrency: u64, label: &str) -> Measured {
    let Setup {
        client,
        shared,
        servers,
        api_key,
    } = s;
    let warmup = (sessions / 10).clamp(20, 1000);
    eprintln!(
        "bench: {label}: {} nodes at {}, warming up with {warmup} sessions",
        servers.urls.len(),
        servers.urls.join(", ")
    );
    let run_id = gangway_server::ids::new_id("b");
    drive(
        client,
        &servers.urls,
        api_key,
        shared,
        &format!("{run_id}w"),
        warmup,
        concurrency,
        false,
    )
    .await;

    let node_before: Vec<f64> = servers
        .pids
        .iter()
        .map(|p| procstat::sample(*p).map_or(0.0, |s| s.0))
        .collect();
    let cpu_before: f64 = node_before.iter().sum();
    let pg_before = procstat::postgres_cpu_ms();
    let started = Instant::now();
    let stats = drive(
        client,
        &servers.urls,
        api_key,
        shared,
        &run_id,
        sessions,
        concurrency,
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
    let pg_after = procstat::postgres_cpu_ms();
    // Each node's CPU per session of the whole run (how evenly the work
    // spreads), and PostgreSQL's, which a cluster's total must count too.
    let per_session = |ms: f64| {
        if stats.ok == 0 {
            f64::NAN
        } else {
            ms / stats.ok as f64
        }
    };
    let node_cpu_per: Vec<f64> = samples
        .iter()
        .zip(&node_before)
        .map(|(s, before)| per_session(s.0 - before))
        .collect();
    let postgres_cpu_per = per_session(pg_after - pg_before);
    let peak_rss: f64 = samples.iter().map(|s| s.1).fold(0.0, f64::max);
    let ok = stats.ok as f64;
    let cpu_per = if servers.pids.is_empty() || ok == 0.0 {
        f64::NAN
    } else {
        (cpu_after - cpu_before) / ok
    };
    let bad_signatures = shared.bad_signatures.load(Ordering::Relaxed);
    if bad_signatures > 0 {
        eprintln!(
            "bench: {label}: {bad_signatures} customer webhooks failed signature verification"
        );
    }
    // The floor must exchange what Gangway exchanges: the sizes say so.
    let mean = |bytes: &AtomicU64, n: &AtomicU64| {
        bytes.load(Ordering::Relaxed) as f64 / n.load(Ordering::Relaxed).max(1) as f64
    };
    eprintln!(
        "bench: {label}: payloads on average: create answer {:.0} bytes, session.ended webhook {:.0} bytes",
        mean(&shared.create_bytes, &shared.creates),
        mean(&shared.ended_bytes, &shared.endings),
    );
    Measured {
        sessions_per_s: ok / elapsed,
        p50: percentile(&stats.latencies, 50.0),
        p99: percentile(&stats.latencies, 99.0),
        create_p99: percentile(&stats.creates, 99.0),
        peak_rss,
        cpu_per,
        errors: stats.errors + bad_signatures,
        ok: stats.ok,
        warmup,
        node_cpu_per,
        postgres_cpu_per,
    }
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
    if let Some(n) = resp.content_length() {
        shared.create_bytes.fetch_add(n, Ordering::Relaxed);
        shared.creates.fetch_add(1, Ordering::Relaxed);
    }
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
    /// endpoint at `<provider-listen>/hooks` (see docs/benchmarks.md).
    #[arg(long)]
    pub url: Option<String>,
    /// Where the fake provider listens.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub provider_listen: String,
    /// API key for `--url`.
    #[arg(long, env = "GANGWAY_BENCH_API_KEY")]
    pub api_key: Option<String>,
    /// After the run, kill -9 the server, restart it and check that every
    /// completed session is still completed.
    #[arg(long)]
    pub check_durability: bool,
    /// Sessions of the floor run (`gangway bench floor`) made before the
    /// Gangway run, against which `cpu_x_floor` is computed (default: as
    /// many as `--sessions`, at most 20,000; 0 skips it: `cpu_x_floor=nan`,
    /// as with `--url`).
    #[arg(long)]
    pub floor_sessions: Option<u64>,
}

/// A created session: reference, session id and client secret.
pub(crate) struct CreatedSession {
    pub reference: String,
    pub id: String,
    pub client_secret: String,
}

/// Creates `n` http-score sessions with `concurrency` in flight.
pub(crate) async fn create_many(
    s: &Setup,
    prefix: &str,
    n: u64,
    concurrency: u64,
) -> anyhow::Result<Vec<CreatedSession>> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.min(n) {
        let (client, url, key, next, prefix) = (
            s.client.clone(),
            s.servers.urls[0].clone(),
            s.api_key.clone(),
            next.clone(),
            prefix.to_string(),
        );
        tasks.spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, anyhow::Error>(out);
                }
                let reference = format!("{prefix}-{i}");
                let r = client
                    .post(format!("{url}/v1/sessions"))
                    .bearer_auth(&key)
                    .json(&json!({"workflow": "http-score", "reference": reference}))
                    .send()
                    .await?;
                if r.status() != 201 {
                    bail!("create answered {}", r.status());
                }
                let body: serde_json::Value = r.json().await?;
                out.push(CreatedSession {
                    reference,
                    id: body["id"].as_str().unwrap_or_default().to_string(),
                    client_secret: body["client_secret"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                });
            }
        });
    }
    let mut all = Vec::new();
    while let Some(r) = tasks.join_next().await {
        all.extend(r??);
    }
    Ok(all)
}

/// Waits until the server reports at least `n` waiting sessions (from /metrics).
pub(crate) async fn wait_for_waiting(s: &Setup, n: u64) -> anyhow::Result<()> {
    // A million sessions take longer than 15 minutes to create on a slow host.
    let deadline = Instant::now() + Duration::from_secs(900.max(n / 400));
    loop {
        let text = s
            .client
            .get(format!("{}/metrics", s.servers.urls[0]))
            .send()
            .await?
            .text()
            .await?;
        let waiting = text
            .lines()
            .find_map(|l| l.strip_prefix("gangway_cluster_sessions{status=\"waiting\"} "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if waiting >= n {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "only {waiting} of {n} sessions are waiting after {} s",
                900.max(n / 400)
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
