//! A small load balancer in front of several nodes: round robin over the
//! nodes, passing a request to the next node when one cannot be reached
//! (as `proxy_next_upstream error` does). It can be pinned to one node.
#![allow(dead_code, clippy::unwrap_used)]

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const NONE: usize = usize::MAX;

#[derive(Clone)]
pub struct Lb {
    inner: Arc<Inner>,
    pub url: String,
}

struct Inner {
    nodes: std::sync::Mutex<Vec<String>>,
    next: AtomicUsize,
    pinned: AtomicUsize,
    http: reqwest::Client,
    /// Requests answered, per node URL.
    served: std::sync::Mutex<std::collections::HashMap<String, usize>>,
    /// Every request body passed on, in order.
    bodies: std::sync::Mutex<Vec<Bytes>>,
}

impl Lb {
    pub async fn start() -> Lb {
        let inner = Arc::new(Inner {
            nodes: std::sync::Mutex::new(Vec::new()),
            next: AtomicUsize::new(0),
            pinned: AtomicUsize::new(NONE),
            http: reqwest::Client::new(),
            served: Default::default(),
            bodies: Default::default(),
        });
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Lb { inner, url }
    }

    pub fn set_nodes(&self, nodes: Vec<String>) {
        *self.inner.nodes.lock().unwrap() = nodes;
    }

    /// How many requests `node` answered.
    pub fn served(&self, node: &str) -> usize {
        self.inner
            .served
            .lock()
            .unwrap()
            .get(node)
            .copied()
            .unwrap_or(0)
    }

    /// The bodies of the requests passed on so far.
    pub fn bodies(&self) -> Vec<Bytes> {
        self.inner.bodies.lock().unwrap().clone()
    }

    /// Sends every request to node `n` (or round robin again with `None`).
    pub fn pin(&self, n: Option<usize>) {
        self.inner.pinned.store(n.unwrap_or(NONE), Ordering::SeqCst);
    }
}

async fn forward(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, 4 << 20).await {
        Ok(b) => b,
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    inner.bodies.lock().unwrap().push(body.clone());
    let nodes = inner.nodes.lock().unwrap().clone();
    if nodes.is_empty() {
        return StatusCode::BAD_GATEWAY.into_response();
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let pinned = inner.pinned.load(Ordering::SeqCst);
    let first = if pinned == NONE {
        inner.next.fetch_add(1, Ordering::SeqCst)
    } else {
        pinned
    };
    for k in 0..nodes.len() {
        let node = &nodes[(first + k) % nodes.len()];
        let mut rb = inner
            .http
            .request(parts.method.clone(), format!("{node}{path}"))
            .body(body.clone());
        for (name, value) in &parts.headers {
            if name != "host" && name != "content-length" {
                rb = rb.header(name, value);
            }
        }
        match rb.send().await {
            Ok(resp) => {
                *inner
                    .served
                    .lock()
                    .unwrap()
                    .entry(node.clone())
                    .or_default() += 1;
                let mut out = Response::builder().status(resp.status());
                for (name, value) in resp.headers() {
                    if name != "transfer-encoding" && name != "content-length" {
                        out = out.header(name, value);
                    }
                }
                let bytes = resp.bytes().await.unwrap_or_default();
                return out.body(Body::from(bytes)).unwrap();
            }
            // Not reachable (or cut off): the next node gets it.
            Err(_) => continue,
        }
    }
    StatusCode::BAD_GATEWAY.into_response()
}
