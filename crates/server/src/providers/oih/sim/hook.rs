//! OIH's webhooks service (providers.md 5.1): `HEAD|GET|POST
//! /hook/{flowId}[/{suffix}]`.
//!
//! As in OIH (`lib/webhooks/src/http-api.js`, `body-parser.js`), a POST body
//! is parsed first, by its content type, before any route check: JSON
//! (`application/json`, and `text/plain`, which OIH also parses as JSON;
//! strict: an object or an array, empty means `{}`) and URL-encoded forms
//! become the flow's data, anything unparseable is a 400 at once; text, XML,
//! multipart and binary bodies reach the flow as `{}` (A: OIH parses XML and
//! multipart fields; the simulator does not). Then the flow is looked up
//! (unknown or stopped: 404 after `not_found_delay_ms`), then POST needs a
//! `Content-Type` (415), then a flow with `requireWebhookAuth` needs a valid
//! HMAC (403). GET runs the flow with the query as data and checks nothing.
//! The suffix is ignored.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::StreamExt as _;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Sha256, Sha512};
use tokio::sync::oneshot;

use super::flow::{FlowStatus, SimFlow};
use super::run::{self, Start, Trigger};
use super::{OihSim, oih_error, random_hex};
use crate::sim::SimRef;

/// The header whose value becomes the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// `{flow}` (and `{suffix}`, ignored as OIH only hands it to the flow).
#[derive(Deserialize)]
pub(super) struct HookPath {
    flow: String,
}

pub(super) async fn head(State(sim): State<OihSim>, Path(p): Path<HookPath>) -> Response {
    match sim.started_flow(&p.flow).await {
        Ok(_) => StatusCode::OK.into_response(),
        Err(resp) => resp,
    }
}

pub(super) async fn get(
    State(sim): State<OihSim>,
    Path(p): Path<HookPath>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let flow = match sim.started_flow(&p.flow).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let data: Map<String, Value> = query
        .ok()
        .map(|Query(pairs)| {
            pairs
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect()
        })
        .unwrap_or_default();
    sim.accept(flow, request_id(&headers), Value::Object(data))
        .await
}

pub(super) async fn post(
    State(sim): State<OihSim>,
    Path(p): Path<HookPath>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let data = match parse_body(&headers, &body) {
        Ok(data) => data,
        Err(message) => return oih_error(StatusCode::BAD_REQUEST, message),
    };
    let flow = match sim.started_flow(&p.flow).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    if !headers.contains_key(header::CONTENT_TYPE) {
        return oih_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type header is missing",
        );
    }
    if flow.require_webhook_auth && !signature_valid(&flow, &headers, &body) {
        return oih_error(StatusCode::FORBIDDEN, "Unauthorized");
    }
    sim.accept(flow, request_id(&headers), data).await
}

/// The flow's data from a POST body, as OIH's body parsers make it (see the
/// module comment); `Err` is the 400's message.
fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, String> {
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(json!({}));
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" | "text/plain" => {
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(json!({}));
            }
            // body-parser's strict mode: only an object or an array.
            match serde_json::from_slice::<Value>(body) {
                Ok(v @ (Value::Object(_) | Value::Array(_))) => Ok(v),
                Ok(_) => Err("Unexpected JSON: the body must be an object or an array".into()),
                Err(e) => Err(format!("Unexpected JSON: {e}")),
            }
        }
        "application/x-www-form-urlencoded" => {
            let pairs: Vec<(String, String)> =
                serde_urlencoded::from_bytes(body).map_err(|e| format!("Invalid form: {e}"))?;
            // A repeated key becomes an array, as `qs` makes it (its
            // `a[b]` nesting is not reproduced (A)).
            let mut data = Map::new();
            for (key, value) in pairs {
                match data.get_mut(&key) {
                    Some(Value::Array(values)) => values.push(Value::String(value)),
                    Some(first) => {
                        let first = first.take();
                        data.insert(key, Value::Array(vec![first, Value::String(value)]));
                    }
                    None => {
                        data.insert(key, Value::String(value));
                    }
                }
            }
            Ok(Value::Object(data))
        }
        _ => Ok(json!({})),
    }
}

/// `x-request-id` as sent, else 32 random hex digits (OIH's format).
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| random_hex(16))
}

/// Base64 HMAC over the exact body bytes, in the flow's header, compared in
/// constant time. A flow without a key refuses every request.
fn signature_valid(flow: &SimFlow, headers: &HeaderMap, body: &[u8]) -> bool {
    if flow.hmac_key.is_empty() {
        return false;
    }
    let name = flow.hmac_header_key.to_ascii_lowercase();
    let Some(given) = headers.get(name.as_str()).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Ok(tag) = STANDARD.decode(given.trim()) else {
        return false;
    };
    let key = flow.hmac_key.as_bytes();
    match flow.hmac_algorithm.as_str() {
        "sha256" => verify::<Hmac<Sha256>>(key, body, &tag),
        "sha512" => verify::<Hmac<Sha512>>(key, body, &tag),
        _ => false,
    }
}

fn verify<M: Mac + KeyInit>(key: &[u8], body: &[u8], tag: &[u8]) -> bool {
    let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(tag).is_ok()
}

impl OihSim {
    /// The started flow by that id, or OIH's 404, sent only after the delay.
    async fn started_flow(&self, id: &str) -> Result<SimFlow, Response> {
        let flow = self
            .lock()
            .flows
            .get(id)
            .filter(|f| f.status == FlowStatus::Active)
            .cloned();
        match flow {
            Some(f) => Ok(f),
            None => {
                let ms = self.shared.config.not_found_delay_ms;
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Err(oih_error(
                    StatusCode::NOT_FOUND,
                    format!("Flow {id} either does not exist or is inactive."),
                ))
            }
        }
    }

    /// Queues a run and answers OIH's 200. The run starts once the response
    /// body has been handed to the connection, or, with `early`, the
    /// response waits until the first callback has been answered.
    async fn accept(&self, flow: SimFlow, request_id: String, data: Value) -> Response {
        let knobs = self.knobs().merged(&flow.knobs);
        let trigger = Trigger::from_data(&flow.id, &request_id, &data);
        tracing::debug!(flow = %flow.id, %request_id, "OIH simulator: flow triggered");
        let body = json!({"data": {"requestId": request_id, "message": "thank you"}});
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let len = bytes.len();
        let body = if knobs.early {
            let (tx, rx) = oneshot::channel();
            run::spawn(self.clone(), flow, trigger, knobs, Start::Early(tx));
            // Ok: the first callback was answered; Err: the run sends none.
            let _ = rx.await;
            Body::from(bytes)
        } else {
            let (tx, rx) = oneshot::channel();
            run::spawn(self.clone(), flow, trigger, knobs, Start::AfterResponse(rx));
            signal_when_sent(bytes, tx)
        };
        let mut resp = Response::new(body);
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        resp.extensions_mut().insert(SimRef(request_id));
        resp
    }
}

/// A body that signals `sent` once the connection has taken it (or dropped
/// it, e.g. when a fault replaces the response).
fn signal_when_sent(bytes: Vec<u8>, sent: oneshot::Sender<()>) -> Body {
    struct Signal(Option<oneshot::Sender<()>>);
    impl Drop for Signal {
        fn drop(&mut self) {
            if let Some(tx) = self.0.take() {
                let _ = tx.send(());
            }
        }
    }
    let signal = Signal(Some(sent));
    let stream =
        futures::stream::iter([Ok::<_, Infallible>(Bytes::from(bytes))]).map(move |chunk| {
            let _ = &signal;
            chunk
        });
    Body::from_stream(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed_headers(alg: &str, key: &str, body: &[u8], header: &str) -> HeaderMap {
        let tag = match alg {
            "sha512" => {
                let mut m = <Hmac<Sha512> as KeyInit>::new_from_slice(key.as_bytes())
                    .unwrap_or_else(|_| unreachable!());
                m.update(body);
                m.finalize().into_bytes().to_vec()
            }
            _ => {
                let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_bytes())
                    .unwrap_or_else(|_| unreachable!());
                m.update(body);
                m.finalize().into_bytes().to_vec()
            }
        };
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&STANDARD.encode(tag)) {
            h.insert(
                axum::http::HeaderName::from_bytes(header.as_bytes())
                    .unwrap_or(header::AUTHORIZATION),
                v,
            );
        }
        h
    }

    fn typed(content_type: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(content_type) {
            h.insert(header::CONTENT_TYPE, v);
        }
        h
    }

    #[test]
    fn bodies_are_parsed_by_content_type() {
        let json_ct = typed("application/json; charset=utf-8");
        assert_eq!(parse_body(&json_ct, b""), Ok(json!({})));
        assert_eq!(parse_body(&json_ct, b"[1]"), Ok(json!([1])));
        assert!(parse_body(&json_ct, b"{nope").is_err());
        assert!(parse_body(&json_ct, b"42").is_err());
        assert_eq!(
            parse_body(&typed("text/plain"), br#"{"msg":"Lorem ipsum"}"#),
            Ok(json!({"msg": "Lorem ipsum"}))
        );
        assert_eq!(
            parse_body(
                &typed("application/x-www-form-urlencoded"),
                b"a=1&b=x%20y&a=2"
            ),
            Ok(json!({"a": ["1", "2"], "b": "x y"}))
        );
        assert_eq!(parse_body(&typed("text/csv"), br#"{"a":1}"#), Ok(json!({})));
        assert_eq!(parse_body(&HeaderMap::new(), b"{nope"), Ok(json!({})));
    }

    #[test]
    fn hmac_checks() {
        let mut flow = SimFlow {
            hmac_key: "k3y".into(),
            require_webhook_auth: true,
            ..SimFlow::default()
        };
        let body = br#"{"a":1}"#;
        assert!(signature_valid(
            &flow,
            &signed_headers("sha256", "k3y", body, "x-hmac"),
            body
        ));
        assert!(!signature_valid(
            &flow,
            &signed_headers("sha256", "other", body, "x-hmac"),
            body
        ));
        assert!(!signature_valid(
            &flow,
            &signed_headers("sha256", "k3y", body, "x-hmac"),
            br#"{"a": 1}"#
        ));
        flow.hmac_algorithm = "sha512".into();
        flow.hmac_header_key = "X-Signature".into();
        assert!(signature_valid(
            &flow,
            &signed_headers("sha512", "k3y", body, "x-signature"),
            body
        ));
        flow.hmac_key.clear();
        assert!(!signature_valid(
            &flow,
            &signed_headers("sha512", "", body, "x-signature"),
            body
        ));
    }
}
