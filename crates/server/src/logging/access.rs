//! The access log (`log.access = true`): one `gangway::access` line per
//! request with the method, the route *pattern* (`/v1/sessions/{id}`, never
//! the path as sent: a path may carry a callback token), the status, the
//! latency to the response's head, the API key's id and the session id.
//! Never a query string (the event stream takes `?client_secret=`), a
//! header or a body. A request with a W3C `traceparent` runs in a span
//! with its `trace_id`, so every line it logs carries it. With traces on
//! (`[otel]`) the request also runs in an exported span (crate::otel):
//! the trace id is then that span's, continued from the caller's.

use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tracing::Instrument;

/// Who made the request, noted by the extractors while it runs.
#[derive(Clone, Default)]
pub struct AccessNote(Arc<Mutex<Option<String>>>);

impl AccessNote {
    /// The id of the API key that authenticated the request (never the key).
    pub fn key_id(&self, id: &str) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(id.to_string());
    }

    fn key(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The middleware; `enabled` is `log.access`.
pub async fn access_log(
    State(enabled): State<bool>,
    params: Result<RawPathParams, axum::extract::rejection::RawPathParamsRejection>,
    mut req: Request,
    next: Next,
) -> Response {
    let traced = crate::otel::enabled();
    let mut trace_id = trace_id(req.headers());
    if !enabled && trace_id.is_none() && !traced {
        return next.run(req).await;
    }
    let start = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    // The exported span (traces on): the caller's trace continues in it,
    // its trace id goes on the log lines, and the handler may store its
    // context with what it creates.
    let exported = crate::otel::server_request(&method, route.as_deref(), req.headers());
    if let Some(parent) = crate::otel::traceparent(&exported) {
        trace_id = parent.get(3..35).map(str::to_string);
        req.extensions_mut()
            .insert(crate::otel::RequestTrace(parent));
    }
    // Session routes name the session as `{id}`; a session id is no secret.
    let session_id = route
        .as_deref()
        .filter(|r| r.contains("/sessions/{id}"))
        .and_then(|_| params.ok())
        .and_then(|p| {
            p.iter()
                .find(|(k, _)| *k == "id")
                .map(|(_, v)| v.to_string())
        });
    let note = AccessNote::default();
    req.extensions_mut().insert(note.clone());
    let span = tracing::info_span!(
        "request",
        trace_id = trace_id.as_deref(),
        session_id = session_id.as_deref()
    );
    let response = next
        .run(req)
        .instrument(span.clone())
        .instrument(exported.clone())
        .await;
    if traced {
        let status = response.status().as_u16();
        exported.record("http.response.status_code", status);
        if status >= 500 {
            exported.record("otel.status_code", "ERROR");
        }
    }
    if enabled {
        let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
        let _in = span.enter();
        tracing::info!(
            target: "gangway::access",
            method = %method,
            route = route.as_deref().unwrap_or("(no route)"),
            status = response.status().as_u16(),
            latency_ms = (latency_ms * 1000.0).round() / 1000.0,
            key_id = note.key().as_deref(),
            "request"
        );
    }
    response
}

/// The trace id of a W3C `traceparent` header
/// (`00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`), if valid.
fn trace_id(headers: &axum::http::HeaderMap) -> Option<String> {
    let value = headers.get("traceparent")?.to_str().ok()?;
    let mut parts = value.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let valid = hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && trace.bytes().any(|b| b != b'0')
        && hex(parent, 16)
        && hex(flags, 2);
    valid.then(|| trace.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_gives_the_trace_id_when_valid() {
        let mut h = axum::http::HeaderMap::new();
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        for (value, want) in [
            (format!("00-{id}-00f067aa0ba902b7-01"), Some(id)),
            (format!("00-{}-00f067aa0ba902b7-01", "0".repeat(32)), None),
            (
                format!("00-{}-00f067aa0ba902b7-01", id.to_uppercase()),
                None,
            ),
            ("garbage".to_string(), None),
        ] {
            h.insert("traceparent", value.parse().expect("header"));
            assert_eq!(trace_id(&h).as_deref(), want, "{value}");
        }
    }
}
