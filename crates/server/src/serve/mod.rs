//! The HTTP listeners: our own accept loop over hyper (HTTP/1.1), because
//! `axum::serve` has no header or body timeout, no connection cap, and
//! waits for every client at shutdown.
//!
//! Per listener: at most `server.max_connections` connections (one more is
//! answered `503` and closed), `TCP_NODELAY` on each. Per connection
//! (conn.rs): a new connection has `header_timeout` to send a request's
//! headers, a request's body `body_timeout` to arrive (then `408`, closed),
//! and a kept-alive connection `idle_timeout` until its next request. A
//! response in progress (an event stream) is never cut by these, and an
//! upgraded connection (a WebSocket) leaves them behind. On stop: no more
//! accepts, every connection is asked to finish its request and close, and
//! those still open when `engine.shutdown_grace` has passed are closed.

mod conn;
pub mod tls;

use axum::Router;
use axum::http::HeaderValue;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// What every connection of a listener is held to.
#[derive(Debug, Clone)]
pub struct Settings {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    /// `Strict-Transport-Security` on every response (TLS listeners).
    pub hsts: Option<HeaderValue>,
    /// Set during the drain period: responses carry `Connection: close`,
    /// so that kept-alive clients (a balancer) reconnect, and find the
    /// node gone from rotation, instead of reusing a connection that the
    /// stop is about to close.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
}

impl Settings {
    pub fn new(server: &crate::config::ServerConfig) -> Settings {
        Settings {
            max_connections: server.max_connections,
            header_timeout: server.header_timeout,
            body_timeout: server.body_timeout,
            idle_timeout: server.idle_timeout,
            hsts: None,
            draining: Arc::default(),
        }
    }
}

/// One listener's socket, its TLS (if any) and what it serves.
pub struct Listener {
    /// `api` or `admin`: in logs and metrics.
    pub name: &'static str,
    pub tcp: TcpListener,
    pub tls: Option<tls::Tls>,
    pub router: Router,
    pub settings: Settings,
}

/// Starts accepting on `listener` until `stop` turns true; then lets its
/// connections finish for up to `grace` and closes the rest. The task ends
/// when every connection it served is closed (upgraded ones aside).
pub fn spawn(
    listener: Listener,
    stop: watch::Receiver<bool>,
    grace: Duration,
) -> tokio::task::JoinHandle<()> {
    warn_if_over_file_limit(listener.name, listener.settings.max_connections);
    tokio::spawn(run(listener, stop, grace))
}

async fn run(listener: Listener, mut stop: watch::Receiver<bool>, grace: Duration) {
    let Listener {
        name,
        tcp,
        tls,
        router,
        settings,
    } = listener;
    let settings = Arc::new(settings);
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let mut conns = JoinSet::new();
    let refused_log = RateLimitedLog::default();
    loop {
        tokio::select! {
            biased;
            _ = async { let _ = stop.wait_for(|s| *s).await; } => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = tcp.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        accept_failed(name, &e, &refused_log).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    refuse(name, stream, &refused_log, settings.max_connections);
                    continue;
                };
                // Small responses and event-stream frames go out at once.
                let _ = stream.set_nodelay(true);
                let connection = conn::Connection {
                    peer,
                    router: router.clone(),
                    settings: settings.clone(),
                    stop: stop.clone(),
                    slot,
                    listener: name,
                };
                match &tls {
                    None => conns.spawn(connection.serve(stream)),
                    Some(tls) => conns.spawn(connection.serve_tls(stream, tls.acceptor())),
                };
            }
        }
    }
    // No more accepts: new connections are refused by the system.
    drop(tcp);
    let open = conns.len();
    if open > 0 {
        tracing::info!(
            listener = name,
            connections = open,
            "shutdown: letting open connections finish"
        );
    }
    let all_closed = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, all_closed).await.is_err() {
        tracing::warn!(
            listener = name,
            connections = conns.len(),
            "shutdown: connections still open after engine.shutdown_grace; closing them"
        );
        conns.shutdown().await;
    }
}

/// Over the cap: a short `503` if the socket takes it at once, then closed.
fn refuse(name: &'static str, stream: TcpStream, log: &RateLimitedLog, max: usize) {
    const BODY: &str = r#"{"type":"https://gangway.dev/problems/unavailable","title":"Service unavailable","status":503,"detail":"too many connections to this node; retry shortly"}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = stream.try_write(response.as_bytes());
    drop(stream);
    metrics::counter!("gangway_http_connections_refused_total", "listener" => name).increment(1);
    if log.allow() {
        tracing::warn!(
            listener = name,
            max_connections = max,
            "connection refused: server.max_connections connections are open"
        );
    }
}

/// Accept errors (e.g. out of file descriptors) are retried after a pause,
/// so that a full table does not spin the loop.
async fn accept_failed(name: &'static str, e: &std::io::Error, log: &RateLimitedLog) {
    if log.allow() {
        tracing::warn!(listener = name, error = %e, "cannot accept a connection");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// At most one line per 10 seconds.
#[derive(Default)]
struct RateLimitedLog {
    last_ms: AtomicU64,
}

impl RateLimitedLog {
    fn allow(&self) -> bool {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        let now = START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 10_000;
        let last = self.last_ms.load(Ordering::Relaxed);
        now >= last + 10_000
            && self
                .last_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// Warns when the cap cannot be reached because the process may not open
/// that many files (Linux: the soft `Max open files` limit).
fn warn_if_over_file_limit(name: &'static str, max_connections: usize) {
    let Ok(limits) = std::fs::read_to_string("/proc/self/limits") else {
        return;
    };
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse::<usize>().ok());
    // Room for the database pool, outbound calls and the process's own files.
    if let Some(soft) = soft
        && max_connections.saturating_add(256) > soft
    {
        tracing::warn!(
            listener = name,
            max_connections,
            open_file_limit = soft,
            "server.max_connections is above what the open-file limit allows; raise the limit (LimitNOFILE, ulimit -n) or lower server.max_connections"
        );
    }
}
