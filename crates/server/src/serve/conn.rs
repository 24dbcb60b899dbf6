//! One connection: hyper's HTTP/1.1 with upgrades, the peer's address for
//! the handlers (`ConnectInfo<SocketAddr>`), and the timeouts.
//!
//! A connection is in one of three phases. *Idle*: no request in progress
//! and nothing received since the last response; it may stay so for
//! `idle_timeout` (`header_timeout` before its first request). *Head*:
//! bytes of a request arrived but hyper has not finished its headers; it
//! has `header_timeout` from the first byte. *Active*: a request is being
//! answered (its body read, or its response, an event stream perhaps,
//! written); no phase timeout, but the request's body must arrive within
//! `body_timeout`. The reader (`Watched`) moves Idle to Head, the service
//! moves to Active and, when the last response body is dropped, to Idle.
//! hyper's own header timeout is not used: it also runs while a kept-alive
//! connection is idle, which would make the idle timeout the header one.

use super::Settings;
use crate::api::error::Problem;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit, watch};

/// Header fields hyper reads into a request; more get its own empty 431.
/// Twice the API's limit (`api/shapes.rs`), which answers in problem JSON.
const HYPER_MAX_HEADERS: usize = 200;

const IDLE: u8 = 0;
const HEAD: u8 = 1;
const ACTIVE: u8 = 2;

pub(super) struct Connection {
    pub peer: SocketAddr,
    pub router: Router,
    pub settings: Arc<Settings>,
    pub stop: watch::Receiver<bool>,
    /// The listener's connection slot, held as long as the socket is open
    /// (an upgraded one too).
    pub slot: OwnedSemaphorePermit,
    pub listener: &'static str,
}

impl Connection {
    pub async fn serve(self, stream: TcpStream) {
        self.serve_io(stream).await;
    }

    /// The TLS handshake, like a request's headers, gets `header_timeout`.
    pub async fn serve_tls(self, stream: TcpStream, acceptor: tokio_rustls::TlsAcceptor) {
        let handshake = tokio::time::timeout(self.settings.header_timeout, acceptor.accept(stream));
        match handshake.await {
            Ok(Ok(tls)) => self.serve_io(tls).await,
            Ok(Err(e)) => {
                tracing::debug!(peer = %self.peer, error = %e, "TLS handshake failed");
            }
            Err(_) => {
                metrics::counter!("gangway_http_timeouts_total", "listener" => self.listener, "kind" => "header").increment(1);
            }
        }
    }

    async fn serve_io<IO>(self, io: IO)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            peer,
            router,
            settings,
            mut stop,
            slot,
            listener,
        } = self;
        let state = Arc::new(State::new());
        let io = Watched {
            io,
            state: state.clone(),
            _slot: slot,
            _open: OpenGauge::new(listener),
        };
        let service = Service {
            router,
            peer,
            state: state.clone(),
            settings: settings.clone(),
        };
        let conn = hyper::server::conn::http1::Builder::new()
            // Above the API's own limit (api/shapes.rs), so that a request
            // with too many header fields gets its problem JSON from there.
            .max_headers(HYPER_MAX_HEADERS)
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(conn);
        let mut stopping = false;
        loop {
            let deadline = state.deadline(&settings);
            tokio::select! {
                done = conn.as_mut() => {
                    if let Err(e) = done {
                        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = state.changed.notified() => {}
                _ = sleep_until(deadline) => {
                    if let Some(kind) = state.expired(&settings) {
                        if kind != "idle" {
                            metrics::counter!("gangway_http_timeouts_total", "listener" => listener, "kind" => kind).increment(1);
                        }
                        tracing::debug!(peer = %peer, kind, "connection timed out; closed");
                        // Dropping the connection closes the socket.
                        return;
                    }
                }
                _ = async { let _ = stop.wait_for(|s| *s).await; }, if !stopping => {
                    stopping = true;
                    // An idle connection closes now; a busy one after its
                    // response (the caller bounds the wait).
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// The phase of a connection and since when (milliseconds from `start`).
struct State {
    start: Instant,
    phase: AtomicU8,
    since_ms: AtomicU64,
    /// Requests whose response is not yet fully written.
    active: AtomicUsize,
    /// Whether a request was ever received (before: `header_timeout`).
    served: AtomicBool,
    /// Wakes the connection task when its deadline may have moved.
    changed: Notify,
}

impl State {
    fn new() -> State {
        State {
            start: Instant::now(),
            phase: AtomicU8::new(IDLE),
            since_ms: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            changed: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Bytes arrived: an idle connection starts a request's head.
    fn received(&self) {
        if self
            .phase
            .compare_exchange(IDLE, HEAD, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.since_ms.store(self.now_ms(), Ordering::Release);
            self.changed.notify_one();
        }
    }

    fn request_started(&self) {
        self.active.fetch_add(1, Ordering::AcqRel);
        self.served.store(true, Ordering::Release);
        self.phase.store(ACTIVE, Ordering::Release);
    }

    fn request_finished(&self) {
        if self.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.since_ms.store(self.now_ms(), Ordering::Release);
            self.phase.store(IDLE, Ordering::Release);
            self.changed.notify_one();
        }
    }

    /// The phase's limit, and what it is called when it passes.
    fn limit(&self, s: &Settings) -> Option<(Duration, &'static str)> {
        match self.phase.load(Ordering::Acquire) {
            HEAD => Some((s.header_timeout, "header")),
            IDLE if self.served.load(Ordering::Acquire) => Some((s.idle_timeout, "idle")),
            IDLE => Some((s.header_timeout, "header")),
            _ => None,
        }
    }

    fn deadline(&self, s: &Settings) -> Option<Instant> {
        let (limit, _) = self.limit(s)?;
        let since = Duration::from_millis(self.since_ms.load(Ordering::Acquire));
        Some(self.start + since + limit)
    }

    /// The kind of timeout if the current phase has outlived its limit.
    fn expired(&self, s: &Settings) -> Option<&'static str> {
        let (_, kind) = self.limit(s)?;
        let deadline = self.deadline(s)?;
        (Instant::now() >= deadline).then_some(kind)
    }
}

/// The socket, reporting when bytes arrive; holds the connection's slot.
struct Watched<IO> {
    io: IO,
    state: Arc<State>,
    _slot: OwnedSemaphorePermit,
    _open: OpenGauge,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.received();
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// `gangway_http_connections{listener}`: open connections (upgraded ones too).
struct OpenGauge(&'static str);

impl OpenGauge {
    fn new(listener: &'static str) -> OpenGauge {
        metrics::gauge!("gangway_http_connections", "listener" => listener).increment(1.0);
        OpenGauge(listener)
    }
}

impl Drop for OpenGauge {
    fn drop(&mut self) {
        metrics::gauge!("gangway_http_connections", "listener" => self.0).decrement(1.0);
    }
}

/// Hands each request to the router with the peer's address, its body
/// under `body_timeout`, and its response tracked until fully written.
#[derive(Clone)]
struct Service {
    router: Router,
    peer: SocketAddr,
    state: Arc<State>,
    settings: Arc<Settings>,
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for Service {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        use tower::ServiceExt;
        self.state.request_started();
        let active = Active(self.state.clone());
        let timed_out = Arc::new(AtomicBool::new(false));
        let mut req = req.map(|body| {
            if body.is_end_stream() {
                Body::new(body)
            } else {
                Body::new(TimedBody {
                    inner: body,
                    deadline: Box::pin(tokio::time::sleep(self.settings.body_timeout)),
                    timed_out: timed_out.clone(),
                })
            }
        });
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let router = self.router.clone();
        let settings = self.settings.clone();
        Box::pin(async move {
            let response = match router.oneshot(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            let mut response = if timed_out.load(Ordering::Acquire) {
                body_timed_out()
            } else {
                response
            };
            if let Some(hsts) = &settings.hsts {
                response
                    .headers_mut()
                    .entry(header::STRICT_TRANSPORT_SECURITY)
                    .or_insert_with(|| hsts.clone());
            }
            if settings.draining.load(Ordering::Relaxed)
                && response.status() != StatusCode::SWITCHING_PROTOCOLS
            {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(response.map(|body| {
                Body::new(Tracked {
                    inner: body,
                    _active: active,
                })
            }))
        })
    }
}

fn body_timed_out() -> Response<Body> {
    let mut response = Problem::new(
        StatusCode::REQUEST_TIMEOUT,
        "request-timeout",
        "Request timeout",
        "the request body did not arrive within server.body_timeout",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A request in progress, until its response body is dropped.
struct Active(Arc<State>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// A request body that fails once `body_timeout` has passed before its end.
struct TimedBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timed_out: Arc<AtomicBool>,
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within server.body_timeout")]
struct BodyTimeout;

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.timed_out.load(Ordering::Relaxed) {
            return Poll::Ready(Some(Err(BodyTimeout.into())));
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => {
                if self.deadline.as_mut().poll(cx).is_ready() {
                    self.timed_out.store(true, Ordering::Release);
                    return Poll::Ready(Some(Err(BodyTimeout.into())));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps its request counted as in progress.
struct Tracked {
    inner: Body,
    _active: Active,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
