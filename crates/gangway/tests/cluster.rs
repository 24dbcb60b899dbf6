//! Three `gangway serve` nodes on one PostgreSQL database: 500 sessions
//! (http-score and incode-identity mixed) created on all three nodes, one
//! node killed with kill -9 at a random moment while the sessions complete,
//! then started again. Every session ends exactly once with the right
//! outcome, each provider saw one start per session, every customer webhook
//! is delivered (repeats only under the same webhook-id), and a browser
//! stream on one node sees the ending of a session another node processed.
//! Provider webhooks reach the nodes through a round-robin load balancer,
//! so the killed node is in the middle of work when it dies.
//!
//! The kill moment and the completion order come from a seed the test
//! prints (`cluster test seed: N`, shown with a failure's output);
//! `GANGWAY_TEST_SEED=N` runs that order again.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, Options, eventually};
use futures::StreamExt;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

const SESSIONS: usize = 500;
/// Requests in flight at once from the test.
const PARALLEL: usize = 24;
/// Sessions of `score-fast` left to expire (2 s wait, polled every 300 ms).
const EXPIRING: usize = 30;

/// Session `i`: its workflow and the outcome its provider result must give.
fn plan(i: usize) -> (&'static str, &'static str, &'static str) {
    match i % 4 {
        0 => ("http-score", "80", "approved"),
        1 => ("incode-identity", "pass", "approved"),
        2 => ("http-score", "20", "declined"),
        _ => ("incode-identity", "fail", "declined"),
    }
}

async fn get(h: &Harness, base: &str, path: &str) -> (u16, Value) {
    let r = h
        .http
        .get(format!("{base}{path}"))
        .bearer_auth(&h.api_key)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Sends session `i`'s provider result (score webhook or Incode finish).
async fn complete(h: &Harness, i: usize, provider: &str) {
    let (wf, result, _) = plan(i);
    let (status, body) = if wf == "http-score" {
        h.sim_post(
            &format!("/control/{provider}/complete"),
            json!({"score": result.parse::<u64>().unwrap()}),
        )
        .await
    } else {
        h.incode_post(
            &format!("/control/{provider}/finish"),
            json!({"result": result}),
        )
        .await
    };
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_of_three_survives_kill_9() {
    // The kill moment and the completion order come from one seed, printed
    // (and checked) first so that a failure can be reproduced:
    // GANGWAY_TEST_SEED=<seed>.
    let seed = match std::env::var("GANGWAY_TEST_SEED") {
        Ok(s) => s
            .trim()
            .parse::<u64>()
            .unwrap_or_else(|e| panic!("GANGWAY_TEST_SEED={s:?} is not a u64: {e}")),
        Err(_) => rand::random(),
    };
    println!("cluster test seed: {seed} (rerun with GANGWAY_TEST_SEED={seed})");
    let mut h = Harness::start_with(Options {
        postgres: true,
        load_balancer: true,
        ..Options::default()
    })
    .await;
    h.add_node();
    h.add_node();
    let bases = [h.base.clone(), h.node_url(0, ""), h.node_url(1, "")];

    // Create on every node in turn.
    let h = Arc::new(h);
    let created: Vec<(usize, String, String)> = futures::stream::iter(0..SESSIONS)
        .map(|i| {
            let h = h.clone();
            let base = bases[i % 3].clone();
            async move {
                let (wf, _, _) = plan(i);
                let r = h
                    .http
                    .post(format!("{base}/v1/sessions"))
                    .bearer_auth(&h.api_key)
                    .header("Idempotency-Key", format!("create-{i}"))
                    .json(&json!({"workflow": wf, "reference": format!("c{i}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 201);
                let body: Value = r.json().await.unwrap();
                (
                    i,
                    body["id"].as_str().unwrap().to_string(),
                    body["client_secret"].as_str().unwrap().to_string(),
                )
            }
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    let mut created = created;
    created.sort();

    // Every session waits for its provider, whichever node reads it.
    let providers: Vec<String> = futures::stream::iter(created.clone())
        .map(|(i, id, _)| {
            let h = h.clone();
            let base = bases[(i + 1) % 3].clone();
            async move {
                eventually(&format!("session {id} waiting"), 120, || async {
                    let (_, s) = get(&h, &base, &format!("/v1/sessions/{id}")).await;
                    (s["status"] == "waiting")
                        .then(|| {
                            s["providers"][0]["provider_session_id"]
                                .as_str()
                                .map(String::from)
                        })
                        .flatten()
                })
                .await
            }
        })
        .buffered(PARALLEL)
        .collect()
        .await;

    // A browser on node 2 follows a session whose provider webhook the load
    // balancer sends to node 0, where it ends.
    let (watch_i, watch_id, watch_secret) = created[1].clone();
    let stream = h
        .http
        .get(format!("{}/v1/client/sessions/{watch_id}/events", bases[2]))
        .bearer_auth(&watch_secret)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    let (seen_tx, seen_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut body = stream.bytes_stream();
        let mut text = String::new();
        while let Some(Ok(chunk)) = body.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.contains("event: ended") {
                let _ = seen_tx.send(text);
                return;
            }
        }
    });

    // Sessions nobody completes: their polls and their timer run on
    // whichever node claims them, and each expires exactly once.
    let mut expiring = Vec::new();
    for i in 0..EXPIRING {
        let (status, s) = {
            let r = h
                .http
                .post(format!("{}/v1/sessions", bases[i % 3]))
                .bearer_auth(&h.api_key)
                .json(&json!({"workflow": "score-fast", "reference": format!("x{i}")}))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        };
        assert_eq!(status, 201, "{s}");
        expiring.push(s["id"].as_str().unwrap().to_string());
    }

    // Complete every session; kill -9 node 1 at a random moment meanwhile.
    // (The kill comes after the provider starts: Incode's start has no
    // idempotency key, so a start cut off by a crash is made again.)
    let chunks = SESSIONS.div_ceil(PARALLEL);
    // Never before the first chunk: every node must have served webhooks
    // (checked below) before one of them dies.
    // The kill moment and the completion order come from the seed.
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let kill_at = 1 + rng.random_range(0..chunks - 1);
    println!("cluster test: node 1 killed before chunk {kill_at} of {chunks}");
    let mut h = Arc::into_inner(h).unwrap();
    let mut killed = false;
    h.lb.as_ref().unwrap().pin(Some(0));
    complete(&h, watch_i, &providers[watch_i]).await;
    let seen = tokio::time::timeout(std::time::Duration::from_secs(60), seen_rx)
        .await
        .expect("the stream on node 2 saw the ending")
        .unwrap();
    assert!(seen.contains(plan(watch_i).2), "{seen}");
    let (_, t) = get(&h, &h.base, &format!("/v1/sessions/{watch_id}/timeline")).await;
    assert!(t.to_string().contains("session.ended"), "{t}");
    // From here provider webhooks are spread over the three nodes.
    h.lb.as_ref().unwrap().pin(None);
    let mut order: Vec<usize> = (0..SESSIONS).filter(|&i| i != watch_i).collect();
    order.shuffle(&mut rng);
    for (n, chunk) in order.chunks(PARALLEL).enumerate() {
        if n == kill_at {
            h.kill9_node(0);
            killed = true;
        }
        futures::future::join_all(chunk.iter().map(|&i| complete(&h, i, &providers[i]))).await;
    }
    if !killed {
        h.kill9_node(0);
    }
    h.start_node(0);

    // Every session ended once, with the outcome its result calls for.
    let bases = [h.base.clone(), h.node_url(0, ""), h.node_url(1, "")];
    for b in &bases {
        assert!(
            h.lb.as_ref().unwrap().served(b) > 0,
            "no webhook reached {b}"
        );
    }
    let hr = &h;
    futures::stream::iter(created.clone())
        .map(|(i, id, _)| {
            let base = bases[i % 3].clone();
            async move {
                let s = eventually(&format!("session {id} ended"), 180, || async {
                    let (_, s) = get(hr, &base, &format!("/v1/sessions/{id}")).await;
                    (s["status"] == "ended").then_some(s)
                })
                .await;
                assert_eq!(s["outcome"], plan(i).2, "{s}");
                let (_, t) = get(hr, &base, &format!("/v1/sessions/{id}/timeline")).await;
                let ends = t["entries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|e| e["kind"] == "session.ended")
                    .count();
                assert_eq!(ends, 1, "{t}");
            }
        })
        .buffer_unordered(PARALLEL)
        .collect::<Vec<()>>()
        .await;

    for id in &expiring {
        let s = eventually(&format!("{id} expired"), 60, || async {
            let (_, s) = get(&h, &h.base, &format!("/v1/sessions/{id}")).await;
            (s["status"] == "ended").then_some(s)
        })
        .await;
        assert_eq!(s["outcome"], "expired", "{s}");
        let (_, t) = get(&h, &h.base, &format!("/v1/sessions/{id}/timeline")).await;
        let count = |kind: &str| {
            t["entries"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["kind"] == kind)
                .count()
        };
        assert_eq!(count("session.ended"), 1, "{t}");
        // Every 300 ms to 600 ms within 2 s: a poll run twice would show.
        assert!(count("provider.poll") <= 10, "{t}");
    }

    // The providers saw one start per session.
    let score: Vec<Value> = h
        .http
        .get(h.sim("/control/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut per_ref: HashMap<String, usize> = HashMap::new();
    for s in &score {
        *per_ref
            .entry(s["reference"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    let incode: Vec<Value> = h
        .http
        .get(h.incode("/control/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut per_session: HashMap<String, u64> = HashMap::new();
    for iv in &incode {
        *per_session
            .entry(
                iv["external_customer_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
            .or_default() += iv["starts"].as_u64().unwrap_or(1);
    }
    for (i, id, _) in &created {
        if plan(*i).0 == "http-score" {
            assert_eq!(
                per_ref.get(&format!("c{i}")),
                Some(&1),
                "score starts of c{i}"
            );
        } else {
            assert_eq!(per_session.get(id), Some(&1), "Incode starts of {id}");
        }
    }
    for i in 0..EXPIRING {
        assert_eq!(
            per_ref.get(&format!("x{i}")),
            Some(&1),
            "score starts of x{i}"
        );
    }
    assert_eq!(score.len() + incode.len(), SESSIONS + EXPIRING);

    // Every delivery the nodes recorded is delivered, and the receiver got
    // each one; a repeat carries the same webhook-id and the same body.
    let mut delivery_ids: HashSet<String> = HashSet::new();
    let all_ids = created.iter().map(|(_, id, _)| id).chain(&expiring);
    for id in all_ids {
        let list = eventually(&format!("deliveries of {id} delivered"), 120, || async {
            let (_, d) = get(&h, &h.base, &format!("/v1/sessions/{id}/deliveries")).await;
            let list = d["data"].as_array().cloned().unwrap_or_default();
            let ended = list.iter().any(|x| x["event_type"] == "session.ended");
            (ended && list.iter().all(|x| x["status"] == "delivered")).then_some(list)
        })
        .await;
        delivery_ids.extend(list.iter().map(|x| x["id"].as_str().unwrap().to_string()));
    }
    let mut bodies: HashMap<String, Value> = HashMap::new();
    let mut accepted: HashSet<String> = HashSet::new();
    for r in h.receiver.all() {
        assert!(r.verified, "unsigned delivery {:?}", r.body);
        assert!(
            delivery_ids.contains(&r.webhook_id),
            "unknown webhook-id {}",
            r.webhook_id
        );
        let first = bodies.entry(r.webhook_id.clone()).or_insert(r.body.clone());
        assert_eq!(
            *first, r.body,
            "webhook-id {} reused for another body",
            r.webhook_id
        );
        if r.accepted {
            accepted.insert(r.webhook_id);
        }
    }
    assert_eq!(
        accepted, delivery_ids,
        "every delivery reached the receiver"
    );
}
