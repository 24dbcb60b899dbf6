//! Operations: liveness, readiness and Prometheus metrics.

use super::AppState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use std::sync::OnceLock;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
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
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

async fn ready(State(st): State<AppState>) -> impl IntoResponse {
    if st.engine.is_stopping() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "stopping"})),
        );
    }
    match st.engine.store.ping().await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "database unavailable"})),
        ),
    }
}

async fn metrics(State(st): State<AppState>) -> impl IntoResponse {
    let mut text = st.metrics.render();
    text.push_str("# HELP gangway_sessions Sessions by status.\n# TYPE gangway_sessions gauge\n");
    if let Ok(counts) = st.engine.store.count_by_status().await {
        for status in ["running", "waiting", "ended"] {
            let n = counts
                .iter()
                .find(|(s, _)| s == status)
                .map(|(_, n)| *n)
                .unwrap_or(0);
            text.push_str(&format!("gangway_sessions{{status=\"{status}\"}} {n}\n"));
        }
    }
    text.push_str(&format!("# HELP gangway_streams Sessions with a live browser stream.\n# TYPE gangway_streams gauge\ngangway_streams {}\n", st.engine.hub.streams()));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
