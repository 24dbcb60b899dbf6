//! Chaos under load: three `gangway serve` nodes on one PostgreSQL database
//! take a steady stream of `http-score` sessions while, every few seconds,
//! one node in turn is killed with kill -9 and started again, and
//! PostgreSQL itself is restarted once in the middle. Clients retry a create
//! that met a dead node or a 503 on the next node with the same
//! `Idempotency-Key`; the score simulator completes every provider session
//! and re-sends its webhook (through a round-robin load balancer) until a
//! node takes it.
//!
//! Afterwards: every session ended exactly once with the outcome its score
//! calls for, the provider made one session per session (the simulator's
//! sessions and request log), every customer webhook the nodes recorded
//! reached the receiver, and the receiver got one `session.ended` per
//! session (repeats only under the same `webhook-id`). The figures
//! (sessions, kills, recovery times) are printed; `gangway bench chaos` runs
//! the same at full size.
//!
//! It restarts the shared PostgreSQL server, so `cargo test` leaves it out
//! (Cargo.toml) and `scripts/test` runs it alone, last. The kill moments and
//! the scores come from a seed it prints (`chaos test seed: N`);
//! `GANGWAY_TEST_SEED=N` runs them again.
#![allow(clippy::unwrap_used)]

mod common;

use common::pg::pg_ctl;
use common::{Harness, Options, eventually};
use futures::StreamExt;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the load runs.
const LOAD: Duration = Duration::from_secs(40);
/// A node is killed (and started again) this often, in turn.
const KILL_EVERY: Duration = Duration::from_secs(6);
/// Sessions created per second, spread over `CREATORS` clients.
const RATE: u64 = 12;
const CREATORS: u64 = 4;
/// Requests in flight at once when checking the results.
const PARALLEL: usize = 16;

/// What the load needs from the harness, shared with its tasks.
#[derive(Clone)]
struct Load {
    http: reqwest::Client,
    api_key: String,
    nodes: Vec<String>,
    sim: String,
}

impl Load {
    /// Creates session `i`, on node `i % 3` first, then on the next one
    /// whenever a node cannot answer (dead, restarting, or its database
    /// away: 503), with the same `Idempotency-Key` throughout.
    async fn create(&self, i: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(90);
        for attempt in 0.. {
            assert!(Instant::now() < deadline, "session {i} never created");
            let base = &self.nodes[(i + attempt) % self.nodes.len()];
            let r = self
                .http
                .post(format!("{base}/v1/sessions"))
                .bearer_auth(&self.api_key)
                .header("Idempotency-Key", format!("chaos-{i}"))
                .timeout(Duration::from_secs(10))
                .json(&json!({"workflow": "http-score", "reference": format!("c{i}")}))
                .send()
                .await;
            let r = match r {
                Ok(r) => r,
                // Killed in the middle, or not listening yet: the next node.
                Err(_) => continue,
            };
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            match status {
                200 | 201 => return body["id"].as_str().unwrap().to_string(),
                503 => {
                    assert_eq!(body["status"], 503, "{body}");
                    // Its database is restarting: a moment before the next node.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                _ => panic!("create {i} answered {status}: {body}"),
            }
        }
        unreachable!()
    }

    /// The score simulator's sessions.
    async fn provider_sessions(&self) -> Vec<Value> {
        self.http
            .get(format!("{}/control/sessions", self.sim))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// The score session `c<i>` is given: the seed decides approve or decline.
fn score(seed: u64, i: usize) -> u64 {
    if (seed ^ i as u64).count_ones() % 2 == 0 {
        80
    } else {
        20
    }
}

async fn ready(http: &reqwest::Client, base: &str) -> bool {
    http.get(format!("{base}/readyz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// Waits until every node answers `/readyz` with 200; how long it took.
async fn all_ready(http: &reqwest::Client, nodes: &[String], since: Instant) -> Duration {
    eventually("every node ready", 60, || async {
        for n in nodes {
            if !ready(http, n).await {
                return None;
            }
        }
        Some(())
    })
    .await;
    since.elapsed()
}

/// kill -9 of node `n` (0: the harness's server), then started again.
fn kill_and_start(h: &mut Harness, n: usize) {
    if n == 0 {
        h.kill9_server();
        h.start_server();
    } else {
        h.kill9_node(n - 1);
        h.start_node(n - 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_under_load() {
    let seed = match std::env::var("GANGWAY_TEST_SEED") {
        Ok(s) => s
            .trim()
            .parse::<u64>()
            .unwrap_or_else(|e| panic!("GANGWAY_TEST_SEED={s:?} is not a u64: {e}")),
        Err(_) => rand::random(),
    };
    println!("chaos test seed: {seed} (rerun with GANGWAY_TEST_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut h = Harness::start_with(Options {
        postgres: true,
        load_balancer: true,
        // Short leases: work a dead node held moves on quickly.
        engine_toml: "lease = \"2s\"\n",
        ..Options::default()
    })
    .await;
    h.add_node();
    h.add_node();
    let load = Load {
        http: h.http.clone(),
        api_key: h.api_key.clone(),
        nodes: vec![h.base.clone(), h.node_url(0, ""), h.node_url(1, "")],
        sim: h.sim(""),
    };

    // The load: `CREATORS` clients at `RATE` sessions/s in all.
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicUsize::new(0));
    let created: Arc<Mutex<Vec<(usize, String)>>> = Arc::default();
    let mut creators = tokio::task::JoinSet::new();
    for _ in 0..CREATORS {
        let (load, stop, next, created) =
            (load.clone(), stop.clone(), next.clone(), created.clone());
        creators.spawn(async move {
            let mut pace = tokio::time::interval(Duration::from_millis(1000 * CREATORS / RATE));
            while !stop.load(Ordering::Relaxed) {
                pace.tick().await;
                let i = next.fetch_add(1, Ordering::Relaxed);
                let id = load.create(i).await;
                created.lock().unwrap().push((i, id));
            }
        });
    }
    // The provider: completes each of its sessions with the score the seed
    // gives, re-sending the webhook until a node accepts it.
    // `expected`: the sessions created, once the load has stopped.
    let expected = Arc::new(AtomicUsize::new(usize::MAX));
    let completer = {
        let (load, expected) = (load.clone(), expected.clone());
        tokio::spawn(async move {
            let mut done: HashSet<String> = HashSet::new();
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tick.tick().await;
                for s in load.provider_sessions().await {
                    let pid = s["id"].as_str().unwrap().to_string();
                    let Some(i) = s["reference"]
                        .as_str()
                        .and_then(|r| r.strip_prefix('c'))
                        .and_then(|i| i.parse::<usize>().ok())
                    else {
                        continue;
                    };
                    if done.insert(pid.clone()) {
                        let r = load
                            .http
                            .post(format!("{}/control/{pid}/complete", load.sim))
                            .json(&json!({"score": score(seed, i), "retries": 40, "retry_every_ms": 200}))
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(r.status().as_u16(), 200);
                    }
                }
                if done.len() >= expected.load(Ordering::Relaxed) {
                    return done.len();
                }
            }
        })
    };

    // The chaos: a node in turn every `KILL_EVERY` (give or take a second),
    // PostgreSQL once half-way.
    let started = Instant::now();
    let mut kills = 0usize;
    let mut recoveries: Vec<Duration> = Vec::new();
    let mut db_recovery = None;
    let mut at = Duration::ZERO;
    loop {
        at += KILL_EVERY - Duration::from_millis(500)
            + Duration::from_millis(rng.random_range(0..1000));
        if at >= LOAD {
            break;
        }
        tokio::time::sleep_until((started + at).into()).await;
        if db_recovery.is_none() && at >= LOAD / 2 {
            let t = Instant::now();
            tokio::task::spawn_blocking(|| pg_ctl("restart"))
                .await
                .unwrap();
            let took = all_ready(&load.http, &load.nodes, t).await;
            println!("chaos: PostgreSQL restarted, every node ready after {took:.2?}");
            db_recovery = Some(took);
            continue;
        }
        let n = kills % 3;
        let t = Instant::now();
        kill_and_start(&mut h, n);
        let took = all_ready(&load.http, &load.nodes, t).await;
        println!("chaos: node {n} killed, ready again after {took:.2?}");
        recoveries.push(took);
        kills += 1;
    }
    tokio::time::sleep_until((started + LOAD).into()).await;
    stop.store(true, Ordering::Relaxed);
    while let Some(r) = creators.join_next().await {
        r.unwrap();
    }
    let mut created = created.lock().unwrap().clone();
    created.sort();
    expected.store(created.len(), Ordering::Relaxed);
    assert!(
        kills >= 3,
        "every node killed at least once ({kills} kills)"
    );
    assert!(db_recovery.is_some(), "PostgreSQL was restarted");

    // Every session ended once, with the outcome its score calls for.
    let hr = &h;
    futures::stream::iter(created.clone())
        .map(|(i, id)| async move {
            let s = eventually(&format!("session {id} (c{i}) ended"), 120, || async {
                let (_, s) = hr.get(&format!("/v1/sessions/{id}")).await;
                (s["status"] == "ended").then_some(s)
            })
            .await;
            let outcome = if score(seed, i) >= 50 {
                "approved"
            } else {
                "declined"
            };
            assert_eq!(s["outcome"], outcome, "{s}");
            let t = hr.timeline(&id).await;
            let ends = t["entries"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["kind"] == "session.ended")
                .count();
            assert_eq!(ends, 1, "{t}");
        })
        .buffer_unordered(PARALLEL)
        .collect::<Vec<()>>()
        .await;
    let completed = completer.await.unwrap();

    // The provider made one session per session, however often a start was
    // sent again after a kill (same idempotency key).
    let mut per_ref: HashMap<String, usize> = HashMap::new();
    for s in load.provider_sessions().await {
        *per_ref
            .entry(s["reference"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    for (i, _) in &created {
        assert_eq!(
            per_ref.get(&format!("c{i}")),
            Some(&1),
            "provider sessions of c{i}"
        );
    }
    assert_eq!(per_ref.len(), created.len(), "{per_ref:?}");
    assert_eq!(completed, created.len());
    let starts = h
        .sim_requests()
        .await
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/v1/sessions")
        .count();

    // Every customer webhook the nodes recorded reached the receiver; one
    // `session.ended` per session, repeats under the same webhook-id and body.
    let mut delivery_ids: HashSet<String> = HashSet::new();
    let lists: Vec<Vec<Value>> = futures::stream::iter(created.clone())
        .map(|(_, id)| async move {
            eventually(&format!("deliveries of {id} delivered"), 120, || async {
                let (_, d) = hr.get(&format!("/v1/sessions/{id}/deliveries")).await;
                let list = d["data"].as_array().cloned().unwrap_or_default();
                let ended = list.iter().any(|x| x["event_type"] == "session.ended");
                (ended && list.iter().all(|x| x["status"] == "delivered")).then_some(list)
            })
            .await
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    for list in lists {
        delivery_ids.extend(list.iter().map(|x| x["id"].as_str().unwrap().to_string()));
    }
    let mut bodies: HashMap<String, Value> = HashMap::new();
    let mut accepted: HashSet<String> = HashSet::new();
    let mut ended_ids: HashMap<String, HashSet<String>> = HashMap::new();
    let mut repeats = 0usize;
    for r in h.receiver.all() {
        assert!(r.verified, "unsigned delivery {:?}", r.body);
        assert!(
            delivery_ids.contains(&r.webhook_id),
            "unknown webhook-id {}",
            r.webhook_id
        );
        if let Some(first) = bodies.get(&r.webhook_id) {
            assert_eq!(*first, r.body, "webhook-id {} reused", r.webhook_id);
            repeats += 1;
        } else {
            bodies.insert(r.webhook_id.clone(), r.body.clone());
        }
        if r.body["type"] == "session.ended" {
            ended_ids
                .entry(r.body["data"]["id"].as_str().unwrap().to_string())
                .or_default()
                .insert(r.webhook_id.clone());
        }
        if r.accepted {
            accepted.insert(r.webhook_id);
        }
    }
    assert_eq!(
        accepted, delivery_ids,
        "every delivery reached the receiver"
    );
    for (_, id) in &created {
        assert_eq!(
            ended_ids.get(id).map(HashSet::len),
            Some(1),
            "session.ended webhook-ids of {id}"
        );
    }

    // Jobs a node claimed after another's lease ran out (since that node's
    // last start: a restarted node frees its own leases at once, so these
    // come from the PostgreSQL restart's stalled renewals, if any).
    let mut takeovers = 0.0;
    for base in &load.nodes {
        let text = h
            .http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        takeovers += text
            .lines()
            .filter(|l| l.starts_with("gangway_lease_takeovers_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
    }

    let max = recoveries.iter().max().copied().unwrap_or_default();
    println!(
        "chaos: sessions={} kills={kills} db_restarts=1 max_recovery_s={:.2} db_recovery_s={:.2} \
         provider_starts_sent={starts} provider_sessions={} webhook_repeats={repeats} lease_takeovers={takeovers}",
        created.len(),
        max.as_secs_f64(),
        db_recovery.unwrap_or_default().as_secs_f64(),
        per_ref.len(),
    );
}
