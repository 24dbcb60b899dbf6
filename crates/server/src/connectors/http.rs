//! The generic `http` connector: a templated JSON request to a configured
//! service. Secrets (headers) come from config, never from the workflow.

use super::{CallError, CallOutput, redact};
use crate::config::HttpConnectorConfig;
use indexmap::IndexMap;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub struct HttpConnector {
    config: HttpConnectorConfig,
    client: reqwest::Client,
}

pub fn namespace(service: &str) -> String {
    format!("http:{service}")
}

impl HttpConnector {
    pub fn new(config: HttpConnectorConfig, timeout: Duration) -> HttpConnector {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(256)
            .build()
            .unwrap_or_default();
        HttpConnector { config, client }
    }

    pub async fn request(
        &self,
        args: &Value,
        idempotency_key: &str,
    ) -> Result<CallOutput, CallError> {
        let permanent = |message: String| CallError {
            transient: false,
            retry_after: None,
            message,
            record: Value::Null,
        };
        let service_name = args
            .get("service")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let service = self.config.services.get(service_name).ok_or_else(|| {
            permanent(format!(
                "http service `{service_name}` is not configured under [http.services]"
            ))
        })?;
        let method = args
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("GET")
            .to_ascii_uppercase();
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| permanent(format!("invalid HTTP method `{method}`")))?;
        let path = args.get("path").and_then(Value::as_str).unwrap_or_default();
        let url = format!(
            "{}/{}",
            service.base_url.trim_end_matches('/'),
            path.trim_start_matches('/')
        );
        let mut url = reqwest::Url::parse(&url)
            .map_err(|e| permanent(format!("invalid URL for path `{path}`: {e}")))?;
        if let Some(Value::Object(q)) = args.get("query") {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in q {
                pairs.append_pair(
                    k,
                    &v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string()),
                );
            }
        }
        let mut headers = HeaderMap::new();
        if let Some(Value::Object(h)) = args.get("headers") {
            for (k, v) in h {
                insert_header(&mut headers, k, v.as_str().unwrap_or_default())
                    .map_err(permanent)?;
            }
        }
        insert_configured(&mut headers, &service.headers).map_err(permanent)?;
        insert_header(&mut headers, "idempotency-key", idempotency_key).map_err(permanent)?;

        let mut req = self
            .client
            .request(method.clone(), url.clone())
            .headers(headers);
        if let Some(body) = args.get("body")
            && !body.is_null()
        {
            req = req.json(body);
        }
        let started = Instant::now();
        let base_record = json!({
            "service": service_name,
            "method": method.as_str(),
            "path": url.path(),
            "request": redact(args.get("body").unwrap_or(&Value::Null)),
        });
        let with_record = |mut record: Value, extra: Value| {
            if let (Value::Object(r), Value::Object(e)) = (&mut record, extra) {
                r.extend(e);
            }
            record
        };
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                let kind = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "connection failed"
                } else {
                    "request failed"
                };
                let message = format!("{} {} {kind}", method, url.path());
                let record = with_record(
                    base_record,
                    json!({"error": message, "duration_ms": started.elapsed().as_millis()}),
                );
                return Err(CallError {
                    transient: true,
                    retry_after: None,
                    message,
                    record,
                });
            }
        };
        let status = resp.status();
        let retry_after = parse_retry_after(resp.headers());
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(_) => {
                let message = format!(
                    "{} {} returned {} but the body could not be read",
                    method,
                    url.path(),
                    status.as_u16()
                );
                let record = with_record(
                    base_record,
                    json!({"status": status.as_u16(), "error": message}),
                );
                return Err(CallError {
                    transient: true,
                    retry_after,
                    message,
                    record,
                });
            }
        };
        let duration_ms = started.elapsed().as_millis();
        let body: Option<Value> = if bytes.is_empty() {
            Some(Value::Null)
        } else {
            serde_json::from_slice(&bytes).ok()
        };
        let record = with_record(
            base_record,
            json!({"status": status.as_u16(), "duration_ms": duration_ms, "response": body.as_ref().map(redact)}),
        );
        metrics::histogram!("gangway_provider_call_seconds", "action" => "http.request", "service" => service_name.to_string())
            .record(started.elapsed().as_secs_f64());
        if status.is_success() {
            return match body {
                Some(body) => Ok(CallOutput {
                    result: json!({"status": status.as_u16(), "body": body}),
                    record,
                }),
                None => Err(CallError {
                    transient: true,
                    retry_after: None,
                    message: format!(
                        "{} {} returned {} with a body that is not JSON",
                        method,
                        url.path(),
                        status.as_u16()
                    ),
                    record,
                }),
            };
        }
        metrics::counter!("gangway_provider_call_errors_total", "action" => "http.request", "status" => status.as_u16().to_string())
            .increment(1);
        let transient =
            status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408;
        let excerpt = body
            .as_ref()
            .map(|b| redact(b).to_string())
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect::<String>();
        Err(CallError {
            transient,
            retry_after,
            message: format!(
                "{} {} answered HTTP {} {}",
                method,
                url.path(),
                status.as_u16(),
                excerpt
            )
            .trim_end()
            .to_string(),
            record,
        })
    }
}

fn insert_header(headers: &mut HeaderMap, k: &str, v: &str) -> Result<(), String> {
    let name =
        HeaderName::from_bytes(k.as_bytes()).map_err(|_| format!("invalid header name `{k}`"))?;
    let value = HeaderValue::from_str(v).map_err(|_| format!("invalid value for header `{k}`"))?;
    headers.insert(name, value);
    Ok(())
}

fn insert_configured(
    headers: &mut HeaderMap,
    configured: &IndexMap<String, String>,
) -> Result<(), String> {
    for (k, v) in configured {
        let mut value = HeaderValue::from_str(v)
            .map_err(|_| format!("invalid value for configured header `{k}`"))?;
        value.set_sensitive(true);
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("invalid configured header name `{k}`"))?;
        headers.insert(name, value);
    }
    Ok(())
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when =
        time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822).ok()?;
    let delta = when - time::OffsetDateTime::now_utc();
    Some(Duration::from_millis(
        u64::try_from(delta.whole_milliseconds()).unwrap_or(0),
    ))
}
