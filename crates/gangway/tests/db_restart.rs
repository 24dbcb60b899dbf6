//! PostgreSQL restarted under load, then stopped for a while and started
//! again: the nodes reconnect on their own, every session accepted before,
//! during or after runs to its end, and requests that meet the outage get a
//! 503 problem with Retry-After quickly instead of hanging. It restarts the shared server, so it is
//! ignored by default and `scripts/test` runs it alone.
#![allow(clippy::unwrap_used)]

mod common;

use common::pg::pg_ctl;
use common::{Harness, Options, eventually};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// One create; `Ok(id)` when accepted, else the status after checking that
/// it is a well-formed 503.
async fn create(h: &Harness, base: &str, n: usize) -> Result<String, u16> {
    // The client's timeout is the deadline: an answer, not a hang.
    let r = h
        .http
        .post(format!("{base}/v1/sessions"))
        .bearer_auth(&h.api_key)
        .header("Idempotency-Key", format!("restart-{n}"))
        .timeout(Duration::from_secs(20))
        .json(&json!({"workflow": "http-score", "reference": format!("r{n}")}))
        .send()
        .await
        .expect("an answer, not a hang or a dropped connection");
    let status = r.status().as_u16();
    if status == 201 {
        let body: Value = r.json().await.unwrap();
        return Ok(body["id"].as_str().unwrap().to_string());
    }
    assert_eq!(status, 503, "only 201 or 503 while the database restarts");
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], 503, "{body}");
    Err(status)
}

/// Starts PostgreSQL again when dropped, even if the test fails meanwhile.
struct Stopped;

impl Stopped {
    fn stop() -> Stopped {
        pg_ctl("stop");
        Stopped
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        pg_ctl("start");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_restart_under_load() {
    let mut h = Harness::start_with(Options {
        postgres: true,
        ..Options::default()
    })
    .await;
    h.add_node();
    let bases = [h.base.clone(), h.node_url(0, "")];

    let mut accepted = Vec::new();
    let mut refused = 0;
    let mut n = 0;
    // Load before the restart.
    while accepted.len() < 20 {
        let id = create(&h, &bases[n % 2], n).await.unwrap();
        accepted.push((n, id));
        n += 1;
    }
    // The restart runs on a thread while requests keep coming.
    let restart = std::thread::spawn(|| pg_ctl("restart"));
    while !restart.is_finished() {
        match create(&h, &bases[n % 2], n).await {
            Ok(id) => accepted.push((n, id)),
            Err(_) => refused += 1,
        }
        n += 1;
    }
    restart.join().unwrap();

    // Down for longer than a request may wait: clear 503s, quickly.
    let stopped = Stopped::stop();
    for _ in 0..4 {
        assert_eq!(create(&h, &bases[n % 2], n).await, Err(503));
        n += 1;
        refused += 1;
    }
    let ready = h.http.get(h.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    drop(stopped);

    // After it: both nodes take requests again by themselves.
    let mut after = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while after < 20 {
        assert!(Instant::now() < deadline, "the nodes did not recover");
        match create(&h, &bases[n % 2], n).await {
            Ok(id) => {
                accepted.push((n, id));
                after += 1;
            }
            Err(_) => refused += 1,
        }
        n += 1;
    }
    eprintln!(
        "{} sessions accepted, {refused} refused with 503 during the restart",
        accepted.len()
    );

    // Everything accepted runs to its end.
    for (n, id) in &accepted {
        let pid = eventually(&format!("provider session of {id}"), 60, || async {
            let (_, s) = h.get(&format!("/v1/sessions/{id}")).await;
            s["providers"][0]["provider_session_id"]
                .as_str()
                .map(String::from)
        })
        .await;
        h.complete(&pid, if n % 2 == 0 { 70 } else { 10 }).await;
    }
    for (n, id) in &accepted {
        let s = eventually(&format!("{id} ended"), 60, || async {
            let (_, s) = h.get(&format!("/v1/sessions/{id}")).await;
            (s["status"] == "ended").then_some(s)
        })
        .await;
        assert_eq!(
            s["outcome"],
            if n % 2 == 0 { "approved" } else { "declined" },
            "{s}"
        );
    }
    eventually("every ending delivered", 60, || async {
        accepted
            .iter()
            .all(|(_, id)| !h.receiver.for_session(id, "session.ended").is_empty())
            .then_some(())
    })
    .await;
}
