//! `gangway bench chaos`: three nodes on one PostgreSQL database under a
//! steady load of `http-score` sessions; every `--kill-every-s` one node in
//! turn is killed with kill -9 and started again, and PostgreSQL is
//! restarted once half-way. Clients retry a create on the next node with
//! the same `Idempotency-Key`; the fake provider re-sends its webhook to the
//! next node until one accepts it. Reports the sessions, kills and recovery
//! times, and checks what tests/chaos.rs checks at a smaller size: every
//! session ends once (one `session.ended` webhook-id per session, repeats
//! under the same id), one provider session per session (one idempotency
//! key per reference), no customer webhook lost.

use super::{provider, setup_nodes};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct ChaosArgs {
    /// An empty PostgreSQL database for the three nodes.
    #[arg(long)]
    pub database_url: String,
    /// How long the load runs, seconds.
    #[arg(long, default_value_t = 120)]
    pub duration_s: u64,
    /// A node is killed and started again this often, seconds.
    #[arg(long, default_value_t = 10)]
    pub kill_every_s: u64,
    /// Sessions created per second.
    #[arg(long, default_value_t = 50)]
    pub rate: u64,
    /// The nodes' `engine.lease`: how soon a killed node's jobs move on.
    #[arg(long, default_value = "2s")]
    pub lease: String,
    /// Restarts PostgreSQL half-way (run with `sh -c`); default:
    /// `pg_ctlcluster --skip-systemctl-redirect <version> main restart` for
    /// the one cluster in /etc/postgresql.
    #[arg(long)]
    pub db_restart_command: Option<String>,
}

const NODES: u32 = 3;

pub async fn run(args: ChaosArgs) -> anyhow::Result<()> {
    if !args.database_url.starts_with("postgres") {
        bail!("--database-url must be PostgreSQL: several nodes share it");
    }
    if args.rate == 0 || args.kill_every_s == 0 || args.duration_s == 0 {
        bail!("--rate, --kill-every-s and --duration-s must be at least 1");
    }
    humantime::parse_duration(&args.lease).context("--lease")?;
    let restart_db = match &args.db_restart_command {
        Some(c) => c.clone(),
        None => {
            let version = std::fs::read_dir("/etc/postgresql")
                .context("no /etc/postgresql: give --db-restart-command")?
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .next()
                .context("no cluster in /etc/postgresql: give --db-restart-command")?;
            format!("pg_ctlcluster --skip-systemctl-redirect {version} main restart")
        }
    };
    let mut s = setup_nodes(
        "127.0.0.1:0",
        0,
        Some(&args.database_url),
        NODES,
        None,
        None,
        None,
        false,
        &format!("[engine]\nlease = \"{}\"\n", args.lease),
    )
    .await?;
    eprintln!(
        "bench chaos: {NODES} nodes, {} sessions/s for {} s, a node killed every {} s",
        args.rate, args.duration_s, args.kill_every_s
    );

    // The load: creators at `rate` sessions/s in all.
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let created: Arc<Mutex<Vec<String>>> = Arc::default();
    let failed = Arc::new(AtomicU64::new(0));
    let creators = (args.rate / 2).clamp(1, 100);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..creators {
        let (client, shared, key) = (s.client.clone(), s.shared.clone(), s.api_key.clone());
        let (stop, next, created, failed) =
            (stop.clone(), next.clone(), created.clone(), failed.clone());
        let every = Duration::from_micros(1_000_000 * creators / args.rate);
        tasks.spawn(async move {
            let mut pace = tokio::time::interval(every);
            while !stop.load(Ordering::Relaxed) {
                pace.tick().await;
                let i = next.fetch_add(1, Ordering::Relaxed);
                let reference = format!("chaos-{i}");
                match create(&client, &shared, &key, &reference, i).await {
                    Ok(()) => created
                        .lock()
                        .map_err(|_| anyhow::anyhow!("lock"))?
                        .push(reference),
                    Err(e) => {
                        eprintln!("bench chaos: {reference}: {e:#}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Ok::<_, anyhow::Error>(())
        });
    }

    // The chaos: a node in turn, PostgreSQL once half-way.
    let started = Instant::now();
    let duration = Duration::from_secs(args.duration_s);
    let every = Duration::from_secs(args.kill_every_s);
    let mut kills = 0usize;
    let mut recoveries = Vec::new();
    let mut db_recovery = None;
    let mut at = every;
    while at < duration {
        tokio::time::sleep_until((started + at).into()).await;
        at += every;
        if db_recovery.is_none() && started.elapsed() >= duration / 2 {
            let t = Instant::now();
            let cmd = restart_db.clone();
            let out = tokio::task::spawn_blocking(move || {
                std::process::Command::new("sh").args(["-c", &cmd]).output()
            })
            .await??;
            if !out.status.success() {
                bail!(
                    "{restart_db}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            for url in s.servers.urls.clone() {
                wait_ready(&s.client, &url).await?;
            }
            let took = t.elapsed();
            eprintln!(
                "bench chaos: PostgreSQL restarted; every node ready after {:.2} s",
                took.as_secs_f64()
            );
            db_recovery = Some(took);
            continue;
        }
        let n = kills % NODES as usize;
        let took = s.servers.kill_and_restart(n).await?;
        *s.shared
            .gangway
            .lock()
            .map_err(|_| anyhow::anyhow!("lock"))? = s.servers.urls.clone();
        eprintln!(
            "bench chaos: node {n} killed; a new one ready after {:.2} s",
            took.as_secs_f64()
        );
        recoveries.push(took);
        kills += 1;
    }
    tokio::time::sleep_until((started + duration).into()).await;
    stop.store(true, Ordering::Relaxed);
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let created = created.lock().map_err(|_| anyhow::anyhow!("lock"))?.clone();
    eprintln!(
        "bench chaos: load stopped; waiting for the endings of {} sessions",
        created.len()
    );

    // Every session's ending reaches the receiver (sent again until then).
    let deadline = Instant::now() + Duration::from_secs(300);
    let missing = loop {
        let missing = {
            let ended = s.shared.ended.lock().map_err(|_| anyhow::anyhow!("lock"))?;
            created.iter().filter(|r| !ended.contains_key(*r)).count()
        };
        if missing == 0 || Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (doubled_endings, wrong) = {
        let ended = s.shared.ended.lock().map_err(|_| anyhow::anyhow!("lock"))?;
        let doubled = ended.values().filter(|(ids, _)| ids.len() > 1).count();
        let wrong = created
            .iter()
            .filter_map(|r| ended.get(r).map(|(_, outcome)| (r, outcome)))
            .filter(|(r, outcome)| {
                let expected = if provider::score_for(r) >= 50 {
                    "approved"
                } else {
                    "declined"
                };
                *outcome != expected
            })
            .count();
        (doubled, wrong)
    };
    let deliveries = s.shared.endings.load(Ordering::Relaxed);
    let (doubled_starts, references) = {
        let keys = s
            .shared
            .start_keys
            .lock()
            .map_err(|_| anyhow::anyhow!("lock"))?;
        (keys.values().filter(|k| k.len() > 1).count(), keys.len())
    };
    let starts = s.shared.starts.load(Ordering::Relaxed);
    let max = recoveries.iter().max().copied().unwrap_or_default();
    let failed = failed.load(Ordering::Relaxed);
    let errors = missing as u64
        + doubled_endings as u64
        + wrong as u64
        + doubled_starts as u64
        + failed
        + s.shared.bad_signatures.load(Ordering::Relaxed);
    println!(
        "sessions={} kills={kills} db_restarts={} max_recovery_s={:.2} db_recovery_s={:.2} \
         provider_starts={starts} provider_sessions={references} doubled_provider_sessions={doubled_starts} \
         ended_missing={missing} ended_doubled={doubled_endings} ended_repeats={} wrong_outcome={wrong} \
         create_failed={failed} errors={errors}",
        created.len(),
        u8::from(db_recovery.is_some()),
        max.as_secs_f64(),
        db_recovery.unwrap_or_default().as_secs_f64(),
        deliveries.saturating_sub(created.len() as u64 - missing as u64),
    );
    s.servers.stop();
    if errors > 0 {
        bail!("{errors} errors");
    }
    Ok(())
}

/// Creates session `reference` on node `i % 3` first, then on the next node
/// (from the current list: restarted nodes listen elsewhere) whenever a node
/// cannot answer, with the same `Idempotency-Key`, for up to two minutes.
async fn create(
    client: &reqwest::Client,
    shared: &provider::Shared,
    key: &str,
    reference: &str,
    i: u64,
) -> anyhow::Result<()> {
    let give_up = Instant::now() + Duration::from_secs(120);
    let mut last = String::new();
    for attempt in 0u64.. {
        if Instant::now() > give_up {
            bail!("not created within 120 s: {last}");
        }
        let url = {
            let nodes = shared.gangway.lock().map_err(|_| anyhow::anyhow!("lock"))?;
            let n = usize::try_from((i + attempt) % nodes.len().max(1) as u64).unwrap_or(0);
            nodes.get(n).cloned().context("no nodes")?
        };
        let r = client
            .post(format!("{url}/v1/sessions"))
            .bearer_auth(key)
            .header("Idempotency-Key", reference)
            .timeout(Duration::from_secs(10))
            .json(&json!({"workflow": "http-score", "reference": reference}))
            .send()
            .await;
        match r {
            Ok(r) if r.status() == 200 || r.status() == 201 => return Ok(()),
            Ok(r) if r.status() == 503 => {
                last = "503".into();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Ok(r) => {
                let status = r.status();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                bail!("create answered {status}: {body}");
            }
            Err(e) => {
                last = e.to_string();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    unreachable!("the loop returns")
}

/// Waits (up to a minute) until `url` answers `/readyz` with 200.
async fn wait_ready(client: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if client
            .get(format!("{url}/readyz"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{url} not ready within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
