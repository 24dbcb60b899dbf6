//! Traces over OTLP/HTTP (`[otel]`, off by default): the exporter and its
//! life (this file), the spans Gangway makes (spans.rs), W3C `traceparent`
//! read and written (propagate.rs), and the exporter's HTTP client
//! (http.rs).
//!
//! Spans are `tracing` spans of the target [`TARGET`], turned into
//! OpenTelemetry spans by `tracing-opentelemetry`; the log layer does not
//! see them and the OpenTelemetry layer sees nothing else. When off, no
//! layer or exporter exists and every span function returns
//! `Span::none()` after one relaxed atomic load, so the request path costs
//! what it did before.
//!
//! A session's later work (provider calls, polls, deliveries) runs long
//! after the request that created it, often on another node: the
//! creating request's span context is stored in the session's state
//! (`state.trace`, a `traceparent`) and copied into each job's payload,
//! and the job's span takes it as its parent (ARCHITECTURE.md).

mod http;
mod propagate;
mod spans;

pub use propagate::{RequestTrace, send, traceparent};
pub use spans::{batch, delivery, link_session, provider_call, server_request};

use crate::config::OtelConfig;
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider,
};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tracing::{Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;

/// The `tracing` target of every span exported.
pub const TARGET: &str = "gangway::otel";

/// Spans waiting for export at most; more are dropped (and counted by the
/// SDK) rather than held: a collector that is away costs bounded memory.
const MAX_QUEUE: usize = 4096;

static ON: AtomicBool = AtomicBool::new(false);
static PROVIDER: OnceLock<(SdkTracerProvider, Duration)> = OnceLock::new();

/// Whether traces are exported (`otel.enabled` in this process).
#[inline]
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// The exporter and the layer that feeds it, for the process's subscriber
/// (logging::init). Needs the tokio runtime: exports are sent on it.
pub(crate) fn layer<S>(config: &OtelConfig) -> Result<impl Layer<S> + use<S>, String>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| "otel: traces are exported from the server's runtime".to_string())?;
    let client = http::Client::new(runtime, config.timeout)?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(config.endpoint.clone())
        .with_timeout(config.timeout)
        .build()
        .map_err(|e| format!("otel.endpoint: cannot build the exporter: {e}"))?;
    let batches = BatchConfigBuilder::default()
        .with_max_queue_size(MAX_QUEUE)
        .with_scheduled_delay(config.batch_delay)
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(
            BatchSpanProcessor::builder(exporter)
                .with_batch_config(batches)
                .build(),
        )
        // A caller's sampling decision wins; new traces by the ratio.
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            config.sample_ratio,
        ))))
        .with_resource(
            Resource::builder()
                .with_service_name(config.service_name.clone())
                .with_attribute(KeyValue::new("service.version", crate::telemetry::VERSION))
                .build(),
        )
        .build();
    let tracer = provider.tracer("gangway");
    if PROVIDER.set((provider, config.timeout)).is_err() {
        return Err("otel: the exporter is set up once per process".into());
    }
    ON.store(true, Ordering::Relaxed);
    Ok(tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_threads(false)
        .with_location(false)
        .with_filter(Targets::new().with_target(TARGET, Level::INFO)))
}

/// Exports what is still queued and stops the exporter, within
/// `otel.timeout`; called once the server has stopped (SIGTERM).
pub async fn shutdown() {
    let Some((provider, timeout)) = PROVIDER.get().cloned() else {
        return;
    };
    ON.store(false, Ordering::Relaxed);
    // The SDK blocks until its export thread is done, and that thread
    // sends on this runtime (http.rs): block a thread of its own, not a
    // worker.
    let flushed =
        tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(timeout)).await;
    match flushed {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "otel: spans may be lost at shutdown"),
        Err(e) => tracing::warn!(error = %e, "otel: the flush at shutdown failed"),
    }
}
