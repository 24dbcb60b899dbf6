//! `gangway bench stream`: browsers on Server-Sent Events streams; latency
//! from a provider webhook to the resulting event on each stream.

use super::{create_many, percentile, provider, setup, wait_for_waiting};
use anyhow::Context;
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct StreamArgs {
    /// Browsers (one session and one stream each).
    #[arg(long, default_value_t = 1000)]
    pub clients: u64,
    #[arg(long)]
    pub database_url: Option<String>,
}

pub async fn run(args: StreamArgs) -> anyhow::Result<()> {
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
    let sessions = create_many(&s, "stream", args.clients, 100).await?;
    wait_for_waiting(&s, args.clients).await?;
    let url = s.servers.urls[0].clone();
    let ready = Arc::new(AtomicU64::new(0));
    let received: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    // One client per browser: each stream is its own connection, as in real browsers.
    let mut tasks = tokio::task::JoinSet::new();
    for sess in &sessions {
        let client = reqwest::Client::new();
        let (url, id, secret, reference) = (
            url.clone(),
            sess.id.clone(),
            sess.client_secret.clone(),
            sess.reference.clone(),
        );
        let (ready, received) = (ready.clone(), received.clone());
        tasks.spawn(async move {
            let resp = client
                .get(format!("{url}/v1/client/sessions/{id}/events"))
                .bearer_auth(&secret)
                .send()
                .await?;
            let mut body = resp.bytes_stream();
            let mut buf = String::new();
            let mut caught_up = false;
            while let Some(chunk) = body.next().await {
                buf.push_str(&String::from_utf8_lossy(&chunk?));
                while let Some(end) = buf.find("\n\n") {
                    let frame: String = buf.drain(..end + 2).collect();
                    if !frame.contains("event:") {
                        continue;
                    }
                    let waiting = frame.contains("\"status\":\"waiting\"");
                    if !caught_up {
                        if waiting {
                            caught_up = true;
                            ready.fetch_add(1, Ordering::Relaxed);
                        }
                        continue;
                    }
                    // The first event after the wait: the webhook's effect.
                    received
                        .lock()
                        .map_err(|_| anyhow::anyhow!("lock"))?
                        .insert(reference, Instant::now());
                    return Ok::<_, anyhow::Error>(());
                }
            }
            anyhow::bail!("stream closed early")
        });
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while ready.load(Ordering::Relaxed) < args.clients {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {} streams connected",
            ready.load(Ordering::Relaxed),
            args.clients
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "bench stream: {} streams connected; sending webhooks",
        args.clients
    );
    s.shared.pending.store(false, Ordering::Relaxed);
    let gangway = url.clone();
    let mut sends = tokio::task::JoinSet::new();
    for chunk in sessions.chunks(usize::try_from(args.clients.div_ceil(20)).unwrap_or(50)) {
        let refs: Vec<String> = chunk.iter().map(|c| c.reference.clone()).collect();
        let (client, shared, gangway) = (s.client.clone(), s.shared.clone(), gangway.clone());
        sends.spawn(async move {
            for r in refs {
                provider::send_webhook(&client, &gangway, &format!("b_{r}"), &r, &shared).await;
            }
        });
    }
    while sends.join_next().await.is_some() {}
    let mut errors = 0;
    while let Some(r) = tasks.join_next().await {
        if !matches!(r, Ok(Ok(()))) {
            errors += 1;
        }
    }
    let sent = s
        .shared
        .webhook_sent
        .lock()
        .map_err(|_| anyhow::anyhow!("lock"))?
        .clone();
    let got = received
        .lock()
        .map_err(|_| anyhow::anyhow!("lock"))?
        .clone();
    let mut lat = Vec::new();
    for (r, at) in &got {
        let t0 = sent.get(r).context("no send time")?;
        lat.push(at.saturating_duration_since(*t0).as_secs_f64() * 1000.0);
    }
    println!(
        "streams={} p50_ms={:.2} p99_ms={:.2} errors={}",
        args.clients,
        percentile(&lat, 50.0),
        percentile(&lat, 99.0),
        errors + (args.clients as usize - got.len().min(args.clients as usize))
    );
    s.servers.stop();
    Ok(())
}
