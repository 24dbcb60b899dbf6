//! The spans Gangway exports, one function each; with traces off each is
//! `Span::none()`. Attribute names follow OpenTelemetry's semantic
//! conventions where one exists (`http.route`, `server.address`,
//! `http.response.status_code`), `gangway.*` otherwise.

use super::{TARGET, enabled, propagate::remote};
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// One API request: `<METHOD> <route pattern>`, a child of the caller's
/// `traceparent` when it sent a valid one. The caller records the status
/// (`http.response.status_code`).
pub fn server_request(
    method: &axum::http::Method,
    route: Option<&str>,
    headers: &axum::http::HeaderMap,
) -> Span {
    if !enabled() {
        return Span::none();
    }
    let route = route.unwrap_or("(no route)");
    let span = tracing::info_span!(
        target: TARGET,
        parent: None,
        "request",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = route,
        http.response.status_code = Empty,
        otel.status_code = Empty,
    );
    let caller = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(remote);
    if let Some(cx) = caller {
        let _ = span.set_parent(cx);
    }
    span
}

/// One group commit of the committer: a root span, since a batch serves
/// many sessions and traces; it links to the traces of the sessions it
/// changes (`link_session`).
pub fn batch(commands: usize) -> Span {
    if !enabled() {
        return Span::none();
    }
    tracing::info_span!(
        target: TARGET,
        parent: None,
        "commit.batch",
        gangway.commands = commands,
        otel.status_code = Empty,
    )
}

/// One attempt of a provider call or poll (`job`: "call" or "poll"), a
/// child of the span that created the session (`trace`, from the job).
/// `send` records the provider's host and the status.
pub fn provider_call(
    job: &'static str,
    action: &str,
    session_id: &str,
    attempt: u32,
    trace: Option<&str>,
) -> Span {
    if !enabled() {
        return Span::none();
    }
    let span = tracing::info_span!(
        target: TARGET,
        parent: None,
        "provider.call",
        otel.name = %format!("provider.{job} {action}"),
        otel.kind = "client",
        gangway.job = job,
        gangway.action = action,
        gangway.session_id = session_id,
        gangway.attempt = attempt,
        server.address = Empty,
        http.response.status_code = Empty,
        otel.status_code = Empty,
    );
    adopt(&span, trace);
    span
}

/// One attempt of a customer webhook delivery, a child of the span that
/// created the session.
pub fn delivery(delivery_id: &str, session_id: &str, attempt: i64, trace: Option<&str>) -> Span {
    if !enabled() {
        return Span::none();
    }
    let span = tracing::info_span!(
        target: TARGET,
        parent: None,
        "webhook.delivery",
        otel.kind = "client",
        gangway.delivery_id = delivery_id,
        gangway.session_id = session_id,
        gangway.attempt = attempt,
        server.address = Empty,
        http.response.status_code = Empty,
        otel.status_code = Empty,
    );
    adopt(&span, trace);
    span
}

/// Links the current span (a commit batch's) to the trace of a session it
/// changes, so that a session's trace leads to the batches that wrote it.
pub fn link_session(trace: Option<&str>) {
    if !enabled() {
        return;
    }
    if let Some(cx) = trace.and_then(remote) {
        use opentelemetry::trace::TraceContextExt;
        Span::current().add_link(cx.span().span_context().clone());
    }
}

fn adopt(span: &Span, trace: Option<&str>) {
    if let Some(cx) = trace.and_then(remote) {
        let _ = span.set_parent(cx);
    }
}
