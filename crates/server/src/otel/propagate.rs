//! W3C Trace Context (`traceparent`) in and out: read from an API request
//! and from what a session stored, written on provider requests and
//! customer webhooks. `tracestate` is neither kept nor sent.

use opentelemetry::Context;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use std::collections::HashMap;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The `traceparent` of an API request's span, for the handler (a
/// session's creation stores it); present only when traces are on.
#[derive(Debug, Clone)]
pub struct RequestTrace(pub String);

/// A span's context as a `traceparent`, when traces are on and it has one.
pub fn traceparent(span: &Span) -> Option<String> {
    if !super::enabled() || span.is_none() {
        return None;
    }
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}

/// The remote parent a valid `traceparent` names.
pub(super) fn remote(traceparent: &str) -> Option<Context> {
    let carrier = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
    // From an empty context: an invalid header must not continue whatever
    // span this thread has active.
    let cx = TraceContextPropagator::new().extract_with_context(&Context::new(), &carrier);
    cx.span().span_context().is_valid().then_some(cx)
}

/// Sends a request in the current span (a provider call's, a delivery's):
/// with traces on, the request carries the span's `traceparent` and the
/// span gets the host and the answer's status. With traces off this is
/// `req.send()`.
pub async fn send(req: reqwest::RequestBuilder) -> reqwest::Result<reqwest::Response> {
    if !super::enabled() {
        return req.send().await;
    }
    let (client, request) = req.build_split();
    let mut request = request?;
    let span = Span::current();
    if let Some(host) = request.url().host_str() {
        span.record("server.address", host);
    }
    if let Some(value) =
        traceparent(&span).and_then(|t| reqwest::header::HeaderValue::from_str(&t).ok())
    {
        request.headers_mut().insert("traceparent", value);
    }
    let answer = client.execute(request).await;
    match &answer {
        Ok(r) => {
            span.record("http.response.status_code", r.status().as_u16());
            if !r.status().is_success() {
                span.record("otel.status_code", "ERROR");
            }
        }
        Err(_) => {
            span.record("otel.status_code", "ERROR");
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_valid_traceparent_names_a_parent() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let cx = remote(good).expect("valid");
        let sc = cx.span().span_context().clone();
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
        assert!(sc.is_remote() && sc.is_sampled());
        for bad in [
            "garbage",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        ] {
            assert!(remote(bad).is_none(), "{bad}");
        }
    }
}
