//! Metrics that are not a side effect of one module's work: HTTP requests
//! by route and status with their latency, the build, and the series that
//! must exist before their first event (so an alert on them has data).
//! `/metrics` itself is api/ops.rs. Every series here is per node (this
//! process); cluster-wide gauges are named `gangway_cluster_*`.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

/// The version and git commit this binary was built from.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const COMMIT: &str = env!("GANGWAY_COMMIT");

/// `gangway_http_requests_total{method, route, status}` and
/// `gangway_http_request_duration_seconds{method, route}`: the route is the
/// pattern (`/v1/sessions/{id}`), never the path as sent (tokens, ids).
pub async fn http_metrics(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method: &'static str = match req.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    };
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("gangway_http_request_duration_seconds", "method" => method, "route" => route.clone())
        .record(start.elapsed().as_secs_f64());
    metrics::counter!("gangway_http_requests_total", "method" => method, "route" => route, "status" => status)
        .increment(1);
    response
}

/// One group commit: `gangway_commit_batch_size` and `gangway_commit_seconds`.
pub fn commit(commands: usize, started: Instant, committed: bool) {
    metrics::histogram!("gangway_commit_batch_size").record(commands as f64);
    let result = if committed { "committed" } else { "failed" };
    metrics::histogram!("gangway_commit_seconds", "result" => result)
        .record(started.elapsed().as_secs_f64());
}

/// Series that alerts watch, at zero until their first event.
pub fn register_series() {
    for class in ["call", "timer", "poll", "deliver"] {
        metrics::counter!("gangway_lease_takeovers_total", "class" => class).increment(0);
    }
    metrics::counter!("gangway_transitions_total").increment(0);
    for trigger in ["request", "retention"] {
        metrics::counter!("gangway_sessions_erased_total", "trigger" => trigger).increment(0);
    }
    metrics::gauge!("gangway_erasure_backlog").set(0.0);
}
