//! Traces over OTLP/HTTP (`[otel]`), through the real binary: an OTLP/HTTP
//! receiver started here decodes what the server exports
//! (`ExportTraceServiceRequest`, protobuf), an http-score session created
//! with a caller's `traceparent` runs to its end against the score
//! simulator, and its spans must continue the caller's trace with the
//! right parents; the simulator and the customer's webhook receiver must
//! have been sent that trace. With `[otel]` off, nothing is exported and no
//! `traceparent` leaves the server.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use common::{Harness, Options, eventually};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The caller's trace and span, as its own tracing would send them.
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// One span as received, with what the test reads of it.
#[derive(Debug, Clone)]
struct Got {
    service: String,
    name: String,
    kind: i32,
    trace: String,
    id: String,
    parent: String,
    attrs: Vec<(String, String)>,
    /// Links as (trace id, span id).
    links: Vec<(String, String)>,
}

impl Got {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// An OTLP/HTTP traces endpoint on 127.0.0.1 (`POST /v1/traces`).
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Got>>>,
    /// Export requests received (decoded or not).
    requests: Arc<AtomicUsize>,
    /// Never answer (a collector that hangs).
    hang: Arc<AtomicBool>,
}

impl Collector {
    async fn start() -> (Collector, String) {
        let c = Collector::default();
        let app = axum::Router::new()
            .route("/v1/traces", axum::routing::post(export))
            .with_state(c.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        (c, url)
    }

    fn spans(&self) -> Vec<Got> {
        self.spans.lock().unwrap().clone()
    }
}

async fn export(
    State(c): State<Collector>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> (StatusCode, Vec<u8>) {
    c.requests.fetch_add(1, Ordering::SeqCst);
    if c.hang.load(Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    assert_eq!(
        headers.get("content-type").unwrap(),
        "application/x-protobuf"
    );
    let req = ExportTraceServiceRequest::decode(body).unwrap();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let text = |v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>| match v
        .as_ref()
        .and_then(|v| v.value.as_ref())
    {
        Some(Any::StringValue(s)) => s.clone(),
        Some(Any::IntValue(i)) => i.to_string(),
        Some(Any::BoolValue(b)) => b.to_string(),
        Some(Any::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    };
    let mut got = Vec::new();
    for rs in req.resource_spans {
        let service = rs
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|a| a.key == "service.name")
            .map(|a| text(&a.value))
            .unwrap_or_default();
        for ss in rs.scope_spans {
            for s in ss.spans {
                got.push(Got {
                    service: service.clone(),
                    name: s.name.clone(),
                    kind: s.kind,
                    trace: hex(&s.trace_id),
                    id: hex(&s.span_id),
                    parent: hex(&s.parent_span_id),
                    attrs: s
                        .attributes
                        .iter()
                        .map(|a| (a.key.clone(), text(&a.value)))
                        .collect(),
                    links: s
                        .links
                        .iter()
                        .map(|l| (hex(&l.trace_id), hex(&l.span_id)))
                        .collect(),
                });
            }
        }
    }
    c.spans.lock().unwrap().extend(got);
    // An empty ExportTraceServiceResponse: everything accepted.
    (StatusCode::OK, Vec::new())
}

fn otel_toml(endpoint: &str, extra: &str) -> String {
    format!(
        "\n[otel]\nenabled = true\nendpoint = \"{endpoint}\"\nservice_name = \"gangway-test\"\n{extra}\n"
    )
}

/// Creates an http-score session with the caller's `traceparent` and runs
/// it to its end (score 80, approved); returns its id once the customer's
/// webhook receiver has its `session.ended`.
async fn run_session(h: &Harness) -> String {
    let r = h
        .http
        .post(h.url("/v1/sessions"))
        .bearer_auth(&h.api_key)
        .header("traceparent", format!("00-{TRACE}-{CALLER_SPAN}-01"))
        .json(&json!({"workflow": "http-score", "reference": "traced"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let s: Value = r.json().await.unwrap();
    let id = s["id"].as_str().unwrap().to_string();
    let provider = h.provider_id(&id).await;
    h.complete(&provider, 80).await;
    assert_eq!(h.wait_ended(&id).await["outcome"], "approved");
    eventually("session.ended delivery", 20, || async {
        let v = h.receiver.for_session(&id, "session.ended");
        (!v.is_empty()).then_some(())
    })
    .await;
    id
}

#[tokio::test(flavor = "multi_thread")]
async fn a_callers_trace_continues_through_the_session_and_is_flushed_at_shutdown() {
    let (collector, endpoint) = Collector::start().await;
    // Spans wait a minute before export: only the flush at SIGTERM sends
    // them within this test.
    let mut h = Harness::start_with(Options {
        extra_config: otel_toml(&endpoint, "batch_delay = \"60s\""),
        extra_toml: "[server]\ndrain_period = \"0s\"\n",
        ..Options::default()
    })
    .await;
    let id = run_session(&h).await;
    let sim_requests = h.sim_requests().await;
    let deliveries = h.receiver.for_session(&id, "session.ended");
    assert!(
        collector.spans().is_empty(),
        "nothing is exported before the batch delay or shutdown"
    );
    assert!(h.sigterm_server(30).success());
    let spans = collector.spans();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert!(
        spans.iter().all(|s| s.service == "gangway-test"),
        "{names:?}"
    );

    // The API request: the caller's trace, the caller's span as parent.
    let request = spans
        .iter()
        .find(|s| s.name == "POST /v1/sessions")
        .unwrap_or_else(|| panic!("no request span in {names:?}"));
    assert_eq!(request.trace, TRACE);
    assert_eq!(request.parent, CALLER_SPAN);
    assert_eq!(request.kind, SpanKind::Server as i32);
    assert_eq!(request.attr("http.route"), Some("/v1/sessions"));
    assert_eq!(request.attr("http.response.status_code"), Some("201"));
    assert_eq!(request.attr("http.request.method"), Some("POST"));

    // The provider calls: children of the creating request, in its trace.
    let calls: Vec<&Got> = spans
        .iter()
        .filter(|s| s.name.starts_with("provider.call "))
        .collect();
    assert!(!calls.is_empty(), "no provider call span in {names:?}");
    for call in &calls {
        assert_eq!(call.trace, TRACE, "{call:?}");
        assert_eq!(call.parent, request.id, "{call:?}");
        assert_eq!(call.kind, SpanKind::Client as i32);
        assert_eq!(call.attr("server.address"), Some("127.0.0.1"), "{call:?}");
        assert_eq!(call.attr("gangway.attempt"), Some("1"), "{call:?}");
        assert_eq!(call.attr("gangway.session_id"), Some(id.as_str()));
        let status = call.attr("http.response.status_code").unwrap_or_default();
        assert!(status.starts_with('2'), "{call:?}");
    }

    // The customer webhook deliveries: children of the creating request.
    let delivery_spans: Vec<&Got> = spans
        .iter()
        .filter(|s| s.name == "webhook.delivery")
        .collect();
    assert!(!delivery_spans.is_empty(), "no delivery span in {names:?}");
    for d in &delivery_spans {
        assert_eq!(d.trace, TRACE, "{d:?}");
        assert_eq!(d.parent, request.id, "{d:?}");
        assert_eq!(d.kind, SpanKind::Client as i32);
        assert_eq!(d.attr("server.address"), Some("127.0.0.1"));
        assert_eq!(d.attr("http.response.status_code"), Some("204"));
        assert_eq!(d.attr("gangway.session_id"), Some(id.as_str()));
    }

    // The committer's batches are roots of their own, linked to the trace
    // of each session they changed: the create, the call's result, the
    // provider's webhook, the delivery's result.
    let batches: Vec<&Got> = spans.iter().filter(|s| s.name == "commit.batch").collect();
    assert!(
        batches
            .iter()
            .all(|b| b.parent.is_empty() && b.attr("gangway.commands").is_some()),
        "{batches:?}"
    );
    let linked = batches
        .iter()
        .filter(|b| b.links.contains(&(TRACE.to_string(), request.id.clone())))
        .count();
    assert!(
        linked >= 3,
        "{linked} batches link to the session: {batches:?}"
    );

    // What the provider and the customer received names those spans.
    let sent: Vec<&str> = sim_requests
        .iter()
        .filter_map(|r| r["traceparent"].as_str())
        .collect();
    assert!(
        !sent.is_empty(),
        "the simulator got no traceparent: {sim_requests:?}"
    );
    for tp in &sent {
        let parts: Vec<&str> = tp.split('-').collect();
        assert_eq!(parts.len(), 4, "{tp}");
        assert_eq!(parts[1], TRACE, "{tp}");
        assert!(
            calls.iter().any(|c| c.id == parts[2]),
            "{tp} names no call span"
        );
    }
    let delivered = deliveries[0].traceparent.as_deref().unwrap();
    let parts: Vec<&str> = delivered.split('-').collect();
    assert_eq!(parts[1], TRACE, "{delivered}");
    assert!(
        delivery_spans.iter().any(|d| d.id == parts[2]),
        "{delivered} names no delivery span"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn off_nothing_is_exported_and_no_traceparent_leaves() {
    let (collector, endpoint) = Collector::start().await;
    // Pointed at the collector, but not enabled.
    let toml =
        otel_toml(&endpoint, "batch_delay = \"10ms\"").replace("enabled = true", "enabled = false");
    let mut h = Harness::start_with(Options {
        extra_config: toml,
        ..Options::default()
    })
    .await;
    let id = run_session(&h).await;
    assert!(h.sigterm_server(30).success());
    assert_eq!(collector.requests.load(Ordering::SeqCst), 0);
    let sim_requests = h.sim_requests().await;
    assert!(!sim_requests.is_empty());
    assert!(
        sim_requests.iter().all(|r| r.get("traceparent").is_none()),
        "{sim_requests:?}"
    );
    let deliveries = h.receiver.for_session(&id, "session.ended");
    assert!(deliveries.iter().all(|d| d.traceparent.is_none()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collector_that_hangs_does_not_hold_the_shutdown() {
    let (collector, endpoint) = Collector::start().await;
    collector.hang.store(true, Ordering::SeqCst);
    let mut h = Harness::start_with(Options {
        extra_config: otel_toml(&endpoint, "timeout = \"1s\"\nbatch_delay = \"60s\""),
        extra_toml: "[server]\ndrain_period = \"0s\"\n",
        ..Options::default()
    })
    .await;
    run_session(&h).await;
    let started = Instant::now();
    assert!(h.sigterm_server(30).success());
    assert!(
        collector.requests.load(Ordering::SeqCst) >= 1,
        "the flush at shutdown tried to export"
    );
    // The flush gives up after `otel.timeout` (1s), not the collector's
    // pace; the rest is the server's own stop.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}
