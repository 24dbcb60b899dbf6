//! `/metrics` of a real node on PostgreSQL after a flow: per-node series
//! and cluster-wide gauges (named `gangway_cluster_*`), HTTP requests by
//! route and status with latencies, the job backlog, the pool, the
//! committer, deliveries failing per endpoint, provider calls and the build.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, Options, eventually};
use std::collections::HashMap;

/// `series{labels} value` lines, keyed by the series as written.
fn parse(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// The value of the one series whose name and labels contain all `parts`.
fn value(m: &HashMap<String, f64>, parts: &[&str], text: &str) -> f64 {
    let found: Vec<(&String, &f64)> = m
        .iter()
        .filter(|(k, _)| parts.iter().all(|p| k.contains(p)))
        .collect();
    assert_eq!(found.len(), 1, "{parts:?} matched {found:?} in\n{text}");
    *found[0].1
}

async fn scrape(h: &Harness) -> String {
    h.http
        .get(h.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_cover_what_on_call_needs() {
    let h = Harness::start_with(Options {
        postgres: true,
        ..Options::default()
    })
    .await;
    // The provider answers the first start with 503: a provider call error.
    let (st, body) = h
        .sim_post("/control/faults", serde_json::json!({"rules": [
            {"match": {"method": "POST", "path": "/v1/sessions"}, "times": 1, "fault": {"status": 503}}
        ]}))
        .await;
    assert_eq!(st, 200, "installing the fault: {body}");
    // The receiver is down for the first attempt: a failure per endpoint.
    h.receiver.set_down(true);
    let s = h.create_score_session("metrics").await;
    let id = s["id"].as_str().unwrap().to_string();
    let pid = h.provider_id(&id).await;
    h.complete(&pid, 80).await;
    assert_eq!(h.wait_ended(&id).await["outcome"], "approved");
    let text = eventually("a failed delivery attempt", 20, || async {
        let text = scrape(&h).await;
        text.contains("gangway_webhook_delivery_failures_total{")
            .then_some(text)
    })
    .await;
    assert!(!text.contains("result=\"delivered\""), "{text}");
    h.receiver.set_down(false);
    let text = eventually("the delivery", 20, || async {
        let text = scrape(&h).await;
        text.contains("gangway_webhook_deliveries_total{result=\"delivered\"}")
            .then_some(text)
    })
    .await;
    assert!(!h.receiver.for_session(&id, "session.ended").is_empty());
    let m = parse(&text);

    // The build.
    let build = value(&m, &["gangway_build_info{", "version=\""], &text);
    assert_eq!(build, 1.0);
    assert!(!text.contains("commit=\"\""), "{text}");

    // Cluster-wide gauges are named so; the old per-node name is gone.
    assert!(!text.contains("gangway_sessions{"), "{text}");
    assert!(value(&m, &["gangway_cluster_sessions{status=\"ended\"}"], &text) >= 1.0);
    for class in ["call", "timer", "poll", "deliver"] {
        let ready = value(
            &m,
            &[&format!("gangway_cluster_jobs_ready{{class=\"{class}\"}}")],
            &text,
        );
        let age = value(
            &m,
            &[&format!(
                "gangway_cluster_job_oldest_ready_seconds{{class=\"{class}\"}}"
            )],
            &text,
        );
        assert!(
            ready >= 0.0 && (0.0..3600.0).contains(&age),
            "{class}: {text}"
        );
    }

    // HTTP by route pattern and status, with a latency histogram.
    let created = value(
        &m,
        &[
            "gangway_http_requests_total{",
            "method=\"POST\"",
            "route=\"/v1/sessions\"",
            "status=\"201\"",
        ],
        &text,
    );
    assert_eq!(created, 1.0);
    let reads = value(
        &m,
        &[
            "gangway_http_requests_total{",
            "method=\"GET\"",
            "route=\"/v1/sessions/{id}\"",
            "status=\"200\"",
        ],
        &text,
    );
    assert!(reads >= 1.0);
    assert!(!text.contains(&id), "a session id in a label: {text}");
    let count = value(
        &m,
        &[
            "gangway_http_request_duration_seconds_count{",
            "method=\"POST\"",
            "route=\"/v1/sessions\"",
        ],
        &text,
    );
    assert_eq!(count, 1.0);
    assert!(text.contains("gangway_http_request_duration_seconds_bucket{"));

    // The committer: batches and their latency.
    assert!(value(&m, &["gangway_commit_batch_size_count"], &text) >= 1.0);
    assert!(
        value(
            &m,
            &["gangway_commit_seconds_count{", "result=\"committed\""],
            &text
        ) >= 1.0
    );

    // Pool, takeovers (none here), deliveries failing per endpoint.
    let in_use = value(
        &m,
        &["gangway_db_pool_connections{state=\"in_use\"}"],
        &text,
    );
    let max = value(&m, &["gangway_db_pool_max_connections"], &text);
    assert!(in_use >= 0.0 && in_use <= max && max >= 1.0, "{text}");
    // Callers waiting for a connection: served on PostgreSQL too (the
    // scheduler or this scrape may be taking one right now; the count while
    // callers do wait is checked in store_conformance.rs).
    let waiting = value(&m, &["gangway_db_pool_waiting"], &text);
    assert!((0.0..=max).contains(&waiting), "{text}");
    assert_eq!(
        value(
            &m,
            &["gangway_lease_takeovers_total{class=\"poll\"}"],
            &text
        ),
        0.0
    );
    let endpoint = h.receiver.url().split('?').next().unwrap().to_string();
    assert!(
        value(
            &m,
            &[&format!(
                "gangway_webhook_delivery_failures_total{{endpoint=\"{endpoint}\"}}"
            )],
            &text
        ) >= 1.0
    );
    assert!(
        value(
            &m,
            &["gangway_webhook_deliveries_total{result=\"delivered\"}"],
            &text
        ) >= 1.0
    );

    // Provider calls per connector, and their errors by status.
    assert_eq!(
        value(
            &m,
            &[
                "gangway_provider_call_errors_total{",
                "action=\"http.request\"",
                "status=\"503\""
            ],
            &text
        ),
        1.0
    );
    assert!(
        value(
            &m,
            &[
                "gangway_provider_call_seconds_count{",
                "action=\"http.request\"",
                "service=\"score\""
            ],
            &text
        ) >= 1.0
    );
}
