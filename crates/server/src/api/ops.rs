//! Operations: liveness, readiness and Prometheus metrics. With
//! `admin_listen` set, `/metrics` is served only on that listener.

use super::AppState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use std::sync::OnceLock;

/// `/healthz` and `/readyz`, and `/metrics` when `with_metrics` (else it
/// is on the admin listener).
pub fn routes(with_metrics: bool) -> Router<AppState> {
    let routes = Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(ready));
    if with_metrics {
        routes.route("/metrics", get(metrics))
    } else {
        routes
    }
}

/// The process-wide recorder, installed once.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ])
                .map(|b| b.build_recorder())
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_ok() {
                crate::telemetry::register_series();
            }
            handle
        })
        .clone()
}

async fn ready(State(st): State<AppState>) -> impl IntoResponse {
    if st.engine.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "stopping"})),
        );
    }
    match st.engine.ping_store().await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "database unavailable"})),
        ),
    }
}

async fn metrics(State(st): State<AppState>) -> impl IntoResponse {
    use std::fmt::Write;
    let mut text = st.metrics.render();
    let help = |text: &mut String, name: &str, kind: &str, what: &str| {
        let _ = writeln!(text, "# HELP {name} {what}\n# TYPE {name} {kind}");
    };
    help(
        &mut text,
        "gangway_build_info",
        "gauge",
        "This binary's version and git commit (always 1).",
    );
    let _ = writeln!(
        text,
        "gangway_build_info{{version=\"{}\",commit=\"{}\"}} 1",
        crate::telemetry::VERSION,
        crate::telemetry::COMMIT
    );
    // Cluster-wide: read from the shared database, the same on every node;
    // aggregate with max(), never sum().
    help(
        &mut text,
        "gangway_cluster_sessions",
        "gauge",
        "Sessions by status in the whole cluster (the same on every node: use max, not sum).",
    );
    if let Ok(counts) = st.engine.count_by_status().await {
        for status in ["running", "waiting", "ended"] {
            let n = counts
                .iter()
                .find(|(s, _)| s == status)
                .map(|(_, n)| *n)
                .unwrap_or(0);
            let _ = writeln!(text, "gangway_cluster_sessions{{status=\"{status}\"}} {n}");
        }
    }
    let now = crate::ids::now_ms();
    if let Ok(backlog) = st.engine.job_backlog(now).await {
        help(
            &mut text,
            "gangway_cluster_jobs_ready",
            "gauge",
            "Jobs due and not leased, by class, in the whole cluster (use max, not sum).",
        );
        let mut ages = String::new();
        for class in ["call", "timer", "poll", "deliver"] {
            let b = backlog.iter().find(|b| b.class == class);
            let ready = b.map_or(0, |b| b.ready);
            let age = b.map_or(0.0, |b| (now - b.oldest_ready_at).max(0) as f64 / 1000.0);
            let _ = writeln!(
                text,
                "gangway_cluster_jobs_ready{{class=\"{class}\"}} {ready}"
            );
            let _ = writeln!(
                ages,
                "gangway_cluster_job_oldest_ready_seconds{{class=\"{class}\"}} {age}"
            );
        }
        help(
            &mut text,
            "gangway_cluster_job_oldest_ready_seconds",
            "gauge",
            "How long the longest-waiting ready job of each class has waited (0: none), cluster-wide.",
        );
        text.push_str(&ages);
    }
    let pool = st.engine.pool_stats();
    help(
        &mut text,
        "gangway_db_pool_connections",
        "gauge",
        "This node's database connections by state.",
    );
    let _ = writeln!(
        text,
        "gangway_db_pool_connections{{state=\"in_use\"}} {}\ngangway_db_pool_connections{{state=\"idle\"}} {}",
        pool.in_use, pool.idle
    );
    help(
        &mut text,
        "gangway_db_pool_max_connections",
        "gauge",
        "The most connections this node opens.",
    );
    let _ = writeln!(text, "gangway_db_pool_max_connections {}", pool.max);
    help(
        &mut text,
        "gangway_db_pool_waiting",
        "gauge",
        "Callers on this node waiting for a database connection.",
    );
    let _ = writeln!(text, "gangway_db_pool_waiting {}", pool.waiting);
    help(
        &mut text,
        "gangway_streams",
        "gauge",
        "Sessions with a live browser stream on this node.",
    );
    let _ = writeln!(text, "gangway_streams {}", st.engine.open_streams());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
