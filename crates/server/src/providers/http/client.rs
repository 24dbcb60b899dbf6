//! The generic `http` connector: a templated JSON request to a configured
//! service. Secrets (headers) come from config, never from the workflow.

use crate::connectors::{CallError, CallOutput, redact};
use crate::providers::http::config::HttpConnectorConfig;
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
    pub fn new(config: HttpConnectorConfig, timeout: Duration) -> Result<HttpConnector, String> {
        let client = crate::egress::provider_client(
            reqwest::Client::builder()
                .timeout(timeout)
                .pool_max_idle_per_host(256),
        )?;
        Ok(HttpConnector { config, client })
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
        let mut url = service_url(&service.base_url, path).map_err(permanent)?;
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
        let resp = match crate::otel::send(req).await {
            Ok(r) => r,
            Err(e) => {
                let what = format!("{} {}", method, url.path());
                if let Some(refused) = crate::connectors::refused(&e, &what) {
                    let mut extra = refused.record.clone();
                    extra["duration_ms"] = json!(started.elapsed().as_millis());
                    let record = with_record(base_record, extra);
                    return Err(CallError { record, ..refused });
                }
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

/// `path` under the service's `base_url`: joined with one `/`, and refused
/// when it would carry a query or fragment (those come only from `query`)
/// or end up outside the base URL's path (a `..` segment in the workflow's
/// text; values are encoded as single segments when the template renders).
fn service_url(base_url: &str, path: &str) -> Result<reqwest::Url, String> {
    if let Some(c) = path.chars().find(|c| *c == '?' || *c == '#') {
        return Err(format!(
            "the path `{path}` contains `{c}`; query parameters go in `query`"
        ));
    }
    let base = reqwest::Url::parse(base_url)
        .map_err(|e| format!("invalid base_url of the service: {e}"))?;
    let joined = format!(
        "{}/{}",
        base_url.trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    let url =
        reqwest::Url::parse(&joined).map_err(|e| format!("invalid URL for path `{path}`: {e}"))?;
    let prefix = base.path().trim_end_matches('/');
    let inside = url.path() == prefix || url.path().starts_with(&format!("{prefix}/"));
    if url.origin() != base.origin() || !inside {
        return Err(format!(
            "the path `{path}` leads outside the service's base_url"
        ));
    }
    Ok(url)
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

// Shared by every client; kept reachable here too (fuzz/ uses this path).
pub use crate::connectors::parse_retry_after;

#[cfg(test)]
mod tests {
    use super::service_url;

    #[test]
    fn paths_stay_under_the_base_url() {
        let base = "http://127.0.0.1:9/sim/score/";
        assert_eq!(
            service_url(base, "/v1/sessions/a%2F..%2Fb/score")
                .map(|u| u.to_string())
                .as_deref(),
            Ok("http://127.0.0.1:9/sim/score/v1/sessions/a%2F..%2Fb/score")
        );
        assert!(service_url(base, "").is_ok());
        assert_eq!(
            service_url(base, "//evil.example/x")
                .map(|u| u.to_string())
                .as_deref(),
            Ok("http://127.0.0.1:9/sim/score/evil.example/x")
        );
        for bad in ["/v1/../../admin", "/%2e%2e/admin", "/v1/x?inj=1", "/v1/x#f"] {
            assert!(service_url(base, bad).is_err(), "{bad}");
        }
    }
}
