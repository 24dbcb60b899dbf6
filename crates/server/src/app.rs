//! Composition: open and migrate the store, load workflows, start the engine,
//! serve the router until a shutdown signal, then stop cleanly.

use crate::config::Config;
use crate::runtime::{Engine, workflows::Registry};
use crate::store;
use axum::Router;
use std::future::Future;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database {url}: {source}")]
    Store { url: String, source: store::Error },
    #[error("workflows: {0}")]
    Workflows(#[from] crate::runtime::workflows::Error),
    #[error("engine: {0}")]
    Engine(#[from] crate::runtime::Error),
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// Opens the store, applies migrations, loads workflows and starts the engine.
pub async fn start(config: Config) -> Result<Arc<Engine>, StartError> {
    let url = crate::config::redact_url(&config.database_url);
    let (node_id, stable_node_id) = config.node_id();
    let options = store::OpenOptions {
        node_id: node_id.clone(),
        stable_node_id,
        pool_size: config.postgres.pool_size,
        acquire_timeout: config.postgres.acquire_timeout,
    };
    let store = store::open_with(&config.database_url, &options)
        .await
        .map_err(|source| StartError::Store {
            url: url.clone(),
            source,
        })?;
    store.migrate().await.map_err(|source| StartError::Store {
        url: url.clone(),
        source,
    })?;
    let workflows = Registry::load(&config.workflows_dir, store.as_ref()).await?;
    for (id, version, _, versions) in workflows.list() {
        tracing::info!(workflow = %id, version, stored_versions = versions.len(), "workflow loaded");
    }
    tracing::info!(database = %url, node = %node_id, "engine starting");
    Ok(Engine::start(config, store, workflows).await?)
}

/// The full router: the API and the SDK plus anything extra (simulators,
/// demo pages), every response with the browser security headers.
pub fn router(engine: Arc<Engine>, extra: Option<Router>) -> Router {
    let api = crate::api::router(engine);
    let all = match extra {
        Some(extra) => extra.merge(api),
        None => api,
    };
    all.layer(axum::middleware::from_fn(crate::web::security_headers))
}

/// Serves until `shutdown` resolves; streams are told to reconnect elsewhere.
pub async fn serve(
    listener: tokio::net::TcpListener,
    engine: Arc<Engine>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let stopping = engine.clone();
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing requests, closing streams");
            stopping.stop();
        })
        .await?;
    // No new requests now; hand in or hand back the jobs still held.
    engine.drain(engine.config.engine.shutdown_grace).await;
    tracing::info!("stopped");
    Ok(())
}

/// Serves a router without an engine (standalone simulators).
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = router.layer(axum::middleware::from_fn(crate::web::security_headers));
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
