//! Composition: open and migrate the store, load workflows, start the engine,
//! serve the router until a shutdown signal, then stop cleanly.

use crate::config::Config;
use crate::runtime::{Engine, workflows::Registry};
use crate::store;
use axum::Router;
use std::future::Future;
use std::sync::Arc;

// Each message carries its cause's text and no variant exposes it as a
// `source()` too, so a report that prints the chain says it once.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database {url}: {error}")]
    Store { url: String, error: store::Error },
    #[error("{0}")]
    Node(crate::runtime::node::JoinError),
    #[error("workflows: {0}")]
    Workflows(crate::runtime::workflows::Error),
    #[error("engine: {0}")]
    Engine(crate::runtime::Error),
    #[error("server: {0}")]
    Io(std::io::Error),
    #[error("{0}")]
    Config(crate::config::ConfigError),
    #[error("encryption keys: {0}")]
    Keys(crate::crypto::Error),
}

impl From<crate::runtime::workflows::Error> for StartError {
    fn from(e: crate::runtime::workflows::Error) -> Self {
        StartError::Workflows(e)
    }
}

impl From<crate::runtime::Error> for StartError {
    fn from(e: crate::runtime::Error) -> Self {
        StartError::Engine(e)
    }
}

impl From<std::io::Error> for StartError {
    fn from(e: std::io::Error) -> Self {
        StartError::Io(e)
    }
}

/// Opens the store, applies migrations, loads workflows and starts the engine.
pub async fn start(config: Config) -> Result<Arc<Engine>, StartError> {
    let url = crate::config::redact_url(&config.database_url);
    let (node_id, stable_node_id) = config.node_id();
    crate::logging::set_node_id(&node_id);
    let keys = config.data_keys().map_err(StartError::Keys)?;
    if let Some(keys) = &keys {
        tracing::info!(active = keys.active_id(), keys = ?keys.ids(), "personal data sealed at rest");
    }
    let options = store::OpenOptions {
        node_id: node_id.clone(),
        stable_node_id,
        pool_size: config.postgres.pool_size,
        acquire_timeout: config.postgres.acquire_timeout,
        seal: store::Seal::new(keys.map(Arc::new)),
    };
    let store = store::open_with(&config.database_url, &options)
        .await
        .map_err(|error| StartError::Store {
            url: url.clone(),
            error,
        })?;
    let migrated = store.migrate().await.map_err(|error| StartError::Store {
        url: url.clone(),
        error,
    })?;
    if migrated.applied.is_empty() {
        tracing::info!(version = migrated.version, "database schema is up to date");
    } else {
        tracing::info!(applied = %migrated.applied.join(", "), version = migrated.version, "database migrated");
    }
    if !migrated.newer_compatible.is_empty() {
        tracing::warn!(
            version = migrated.version,
            newer = ?migrated.newer_compatible,
            "the database has migrations of a newer release, declared backward-compatible: running beside the newer release"
        );
    }
    // Before anything frees this node's leases: refuse the id of a live node.
    let membership = crate::runtime::node::join(store.clone(), &node_id, config.engine.heartbeat)
        .await
        .map_err(|e| match e {
            crate::runtime::node::JoinError::Store(error) => StartError::Store {
                url: url.clone(),
                error,
            },
            e => StartError::Node(e),
        })?;
    let workflows = Registry::load(&config.workflows_dir, store.as_ref()).await?;
    for (id, version, _, versions) in workflows.list() {
        tracing::info!(workflow = %id, version, stored_versions = versions.len(), "workflow loaded");
    }
    tracing::info!(database = %url, node = %node_id, "engine starting");
    let engine = Engine::start(config, store, workflows).await?;
    engine.set_membership(membership);
    Ok(engine)
}

/// Records a process start in the audit log (`server.started`), with what
/// in its configuration a security review must know: `warnings` the caller
/// adds (the demo on a public address) and the ones read from the config.
/// The same warnings are logged, at every start.
pub async fn audit_start(
    engine: &Engine,
    command: &str,
    mut warnings: Vec<String>,
) -> Result<(), store::Error> {
    let config = engine.config();
    if config.encryption == crate::config::Encryption::Off {
        warnings.push(
            "encryption = \"off\": personal data (session input and state, timelines, events, webhook payloads) is stored unsealed"
                .to_string(),
        );
    }
    if config.encryption_keys().is_none() {
        warnings.push(
            "no encryption_key: provider tokens are sealed under a key that dies with the process (they are renewed from the provider after a restart)"
                .to_string(),
        );
    }
    for w in &warnings {
        tracing::warn!(command, "{w}");
    }
    let entry = crate::audit::started(
        crate::logging::node_id().unwrap_or("unknown"),
        command,
        &warnings,
        crate::ids::now_ms(),
    );
    engine.append_audit(&[entry]).await
}

/// The full router: the API and the SDK plus anything extra (simulators,
/// demo pages), every response with the browser security headers.
pub fn router(engine: Arc<Engine>, extra: Option<Router>) -> Router {
    let access = engine.config().log.access;
    let api = crate::api::router(engine);
    let all = match extra {
        Some(extra) => extra.merge(api),
        None => api,
    };
    layers(all, access)
}

/// What every response of the API listener goes through: the browser
/// security headers, the HTTP metrics and the access log (when `access`).
/// Also used by `gangway bench floor`, whose handlers stand in for the
/// engine's behind the same HTTP stack.
pub fn layers(router: Router, access: bool) -> Router {
    router
        .layer(axum::middleware::from_fn(crate::web::security_headers))
        .layer(axum::middleware::from_fn(crate::telemetry::http_metrics))
        .layer(axum::middleware::from_fn_with_state(
            access,
            crate::logging::access_log,
        ))
}

/// The sockets `serve` answers on: `listen` (with its TLS, if `[tls]` is
/// set) and `admin_listen`.
pub struct Listeners {
    pub api: tokio::net::TcpListener,
    pub admin: Option<tokio::net::TcpListener>,
    pub tls: Option<crate::serve::tls::Tls>,
}

impl Listeners {
    /// Binds `listen` and `admin_listen` and loads the TLS certificate;
    /// errors name the key.
    pub async fn bind(config: &Config) -> Result<Listeners, StartError> {
        let bind = |key: &'static str, addr: std::net::SocketAddr| async move {
            tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                StartError::Config(crate::config::ConfigError::Key {
                    key: key.into(),
                    message: format!("cannot listen on {addr}: {e}"),
                    origin: None,
                })
            })
        };
        let tls = config
            .tls
            .as_ref()
            .map(crate::serve::tls::Tls::load)
            .transpose()
            .map_err(StartError::Config)?;
        let api = bind("listen", config.listen).await?;
        let admin = match config.admin_listen {
            Some(addr) => Some(bind("admin_listen", addr).await?),
            None => None,
        };
        Ok(Listeners { api, admin, tls })
    }

    /// A plain listener and nothing else (the sandbox's).
    pub fn plain(api: tokio::net::TcpListener) -> Listeners {
        Listeners {
            api,
            admin: None,
            tls: None,
        }
    }

    /// `http://addr` or `https://addr` of `listen`.
    pub fn api_url(&self) -> std::io::Result<String> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        Ok(format!("{scheme}://{}", self.api.local_addr()?))
    }

    pub fn admin_url(&self) -> Option<String> {
        let admin = self.admin.as_ref()?;
        admin.local_addr().ok().map(|a| format!("http://{a}"))
    }
}

/// Serves until `shutdown` resolves, then stops in order: `/readyz`
/// answers 503 while everything is still served for `server.drain_period`
/// (a second signal ends that early); then no new connections, open
/// requests finish, event streams are told to reconnect elsewhere, and
/// running jobs hand in their results, all within `engine.shutdown_grace`
/// whatever clients do; then the leases still held are freed.
pub async fn serve(
    listeners: Listeners,
    engine: Arc<Engine>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    use crate::serve::{Listener, Settings};
    let config = engine.config();
    let grace = config.engine.shutdown_grace;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let draining = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut api_settings = Settings::new(&config.server);
    api_settings.draining = draining.clone();
    if let Some(tls) = &listeners.tls {
        tls.spawn_reloader(stopped.clone());
        api_settings.hsts = config
            .tls
            .as_ref()
            .and_then(|t| t.hsts())
            .and_then(|v| axum::http::HeaderValue::from_str(&v).ok());
    }
    // Each request learns its peer's address (rate limits, failed-auth
    // logs): `ConnectInfo<SocketAddr>`, read by api/auth.rs.
    let mut listening = vec![crate::serve::spawn(
        Listener {
            name: "api",
            tcp: listeners.api,
            tls: listeners.tls,
            router,
            settings: api_settings,
        },
        stopped.clone(),
        grace,
    )];
    if let Some(admin) = listeners.admin {
        listening.push(crate::serve::spawn(
            Listener {
                name: "admin",
                tcp: admin,
                tls: None,
                router: admin_router(engine.clone()),
                settings: Settings {
                    draining: draining.clone(),
                    ..Settings::new(&config.server)
                },
            },
            stopped.clone(),
            grace,
        ));
    }
    shutdown.await;
    engine.begin_drain();
    draining.store(true, std::sync::atomic::Ordering::Relaxed);
    let drain = config.server.drain_period;
    if !drain.is_zero() {
        tracing::info!(
            drain_period = %humantime::format_duration(drain),
            "shutting down: /readyz answers 503; still serving while load balancers drain this node"
        );
        tokio::select! {
            _ = tokio::time::sleep(drain) => {}
            _ = shutdown_signal() => tracing::info!("shutting down: second signal, drain period ended"),
        }
    }
    tracing::info!("shutting down: no new connections; finishing requests, closing streams");
    let stopping_at = std::time::Instant::now();
    engine.stop();
    let _ = stop.send(true);
    for listener in listening {
        let _ = listener.await;
    }
    // No requests now; hand in or hand back the jobs still held.
    engine
        .drain(grace.saturating_sub(stopping_at.elapsed()))
        .await;
    tracing::info!("stopped");
    Ok(())
}

/// The operations endpoints for `admin_listen`, with the same security
/// headers and access log as the API.
fn admin_router(engine: Arc<Engine>) -> Router {
    let access = engine.config().log.access;
    crate::api::admin_router(engine)
        .layer(axum::middleware::from_fn(crate::web::security_headers))
        .layer(axum::middleware::from_fn_with_state(
            access,
            crate::logging::access_log,
        ))
}

/// Serves a router without an engine (standalone simulators).
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let router = router.layer(axum::middleware::from_fn(crate::web::security_headers));
    // Small writes (events, chunks after a head) go out at once.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resolves on SIGTERM or Ctrl-C. The handlers are installed when this is
/// called, not when the future is first polled: call it before announcing
/// the listener, so that a signal sent right after is not the default
/// (immediate) termination.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate()).ok();
        let interrupt = signal(SignalKind::interrupt()).ok();
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(term) => {}
                _ = wait(interrupt) => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
