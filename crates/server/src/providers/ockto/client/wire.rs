//! Ockto's wire protocol (providers.md 3.2, all assumed): paths, headers,
//! error bodies, and the TLS client with the optional client certificate.
//! When real documentation arrives, this module and the status table change.

use crate::connectors::{CallError, redact};
use crate::providers::ockto::config::OcktoConfig;
use base64::Engine;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub const PROVIDER_CODE_HEADER: &str = "X-Ockto-Provider-Code";

/// An HTTP client holding the credentials; it never prints them.
pub struct Client {
    base: String,
    http: reqwest::Client,
    basic: String,
    provider_code: String,
    has_identity: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ockto::Client")
            .field("base", &self.base)
            .field("has_identity", &self.has_identity)
            .finish_non_exhaustive()
    }
}

pub(super) fn fail(transient: bool, message: impl Into<String>, record: Value) -> CallError {
    CallError {
        transient,
        retry_after: None,
        message: message.into(),
        record,
    }
}

impl Client {
    /// Builds the client; errors are configuration problems (already
    /// checked at start, so this fails only on a broken TLS backend).
    pub fn new(cfg: &OcktoConfig, timeout: Duration) -> Result<Client, String> {
        let identity = cfg.identity().map_err(|e| e.to_string())?;
        let has_identity = identity.is_some();
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .user_agent(crate::egress::USER_AGENT)
            .timeout(timeout);
        if let Some(id) = identity {
            builder = builder.identity(id);
        }
        if let Some(root) = cfg.root().map_err(|e| e.to_string())? {
            builder = builder.add_root_certificate(root);
        }
        let http = crate::egress::provider_client(builder)
            .map_err(|e| format!("the Ockto HTTP client could not be built: {e}"))?;
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", cfg.username, cfg.password));
        Ok(Client {
            base: cfg.base_url.trim_end_matches('/').to_string(),
            http,
            basic: format!("Basic {basic}"),
            provider_code: cfg.provider_code.clone(),
            has_identity,
        })
    }

    pub async fn get(&self, path: &str) -> Result<(Value, u16), CallError> {
        let what = format!("GET {}", path.split('?').next().unwrap_or(path));
        self.send(self.http.get(format!("{}{path}", self.base)), &what)
            .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<(Value, u16), CallError> {
        let what = format!("POST {path}");
        self.send(
            self.http.post(format!("{}{path}", self.base)).json(body),
            &what,
        )
        .await
    }

    /// Sends with the credentials and classifies the answer (providers.md 1.4):
    /// timeouts, connection errors, 5xx, 429 and unreadable 2xx are transient;
    /// TLS rejections and other 4xx are not.
    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<(Value, u16), CallError> {
        let started = Instant::now();
        let resp = crate::otel::send(
            req.header(reqwest::header::AUTHORIZATION, &self.basic)
                .header(PROVIDER_CODE_HEADER, &self.provider_code)
                .header(reqwest::header::ACCEPT, "application/json"),
        )
        .await
        .map_err(|e| self.transport_error(&e, what))?;
        let status = resp.status().as_u16();
        let retry_after = crate::connectors::parse_retry_after(resp.headers());
        let bytes = resp.bytes().await.unwrap_or_default();
        metrics::histogram!("gangway_provider_call_seconds", "action" => "ockto", "call" => what.to_string())
            .record(started.elapsed().as_secs_f64());
        read_answer(what, status, retry_after, &bytes)
    }

    /// A request that got no HTTP answer. A TLS rejection is named as such
    /// and not retried: it is a configuration problem, not a passing fault.
    fn transport_error(&self, e: &reqwest::Error, what: &str) -> CallError {
        if let Some(refused) = crate::connectors::refused(e, what) {
            return refused;
        }
        if let Some(problem) = tls_problem(e) {
            let message = match problem {
                TlsProblem::ClientCertificateRejected(alert) => {
                    let hint = if self.has_identity {
                        "the configured certificate ([ockto] client_cert) is not accepted"
                    } else {
                        "no client certificate is configured ([ockto] client_cert and client_key)"
                    };
                    format!(
                        "{what}: client certificate rejected by the Ockto endpoint (TLS alert {alert}): {hint}"
                    )
                }
                TlsProblem::ServerNotTrusted(why) => format!(
                    "{what}: the Ockto endpoint's server certificate is not trusted ({why}); set [ockto] ca_cert for a private CA"
                ),
                TlsProblem::Other(why) => {
                    format!("{what}: the TLS connection to the Ockto endpoint failed ({why})")
                }
            };
            tracing::warn!(call = what, "{message}");
            return fail(false, message, json!({"call": what, "error": "tls"}));
        }
        let kind = if e.is_timeout() {
            "timed out"
        } else {
            "failed to connect"
        };
        fail(
            true,
            format!("{what} {kind}"),
            json!({"call": what, "error": kind}),
        )
    }
}

#[derive(Debug)]
enum TlsProblem {
    ClientCertificateRejected(String),
    ServerNotTrusted(String),
    Other(String),
}

/// Finds a rustls error in the chain of a failed request.
fn tls_problem(e: &reqwest::Error) -> Option<TlsProblem> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(tls) = rustls_error(err) {
            return Some(classify(tls));
        }
        next = err.source();
    }
    None
}

/// `err` itself, or the error inside (nested) `io::Error`s: their `source()`
/// skips the wrapped error, so the chain walk alone would miss it.
fn rustls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = err.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let inner = err.downcast_ref::<std::io::Error>()?.get_ref()?;
    rustls_error(inner)
}

fn classify(e: &rustls::Error) -> TlsProblem {
    use rustls::AlertDescription as A;
    match e {
        rustls::Error::InvalidCertificate(why) => TlsProblem::ServerNotTrusted(format!("{why:?}")),
        rustls::Error::AlertReceived(
            alert @ (A::CertificateRequired
            | A::BadCertificate
            | A::UnsupportedCertificate
            | A::CertificateRevoked
            | A::CertificateExpired
            | A::CertificateUnknown
            | A::UnknownCA
            | A::AccessDenied
            | A::HandshakeFailure),
        ) => TlsProblem::ClientCertificateRejected(format!("{alert:?}")),
        other => TlsProblem::Other(other.to_string()),
    }
}

/// Ockto's answer to `what`: the JSON body of a 2xx, or the error it names
/// (pure: fuzzed in `fuzz/`).
pub fn read_answer(
    what: &str,
    status: u16,
    retry_after: Option<std::time::Duration>,
    bytes: &[u8],
) -> Result<(Value, u16), CallError> {
    let body: Option<Value> = serde_json::from_slice(bytes).ok();
    if (200..300).contains(&status) {
        return body.map(|b| (b, status)).ok_or_else(|| {
            fail(
                true,
                format!("{what} answered {status} with a body that is not JSON"),
                json!({"call": what, "status": status}),
            )
        });
    }
    metrics::counter!("gangway_provider_call_errors_total", "action" => "ockto", "status" => status.to_string()).increment(1);
    let error = body.as_ref().and_then(|b| b.get("error"));
    let code = error
        .and_then(|e| e.get("code"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let detail: String = error
        .and_then(|e| e.get("message").or(Some(e)))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    let hint = match status {
        401 => " (the Ockto username or password was rejected)",
        403 => " (the Ockto provider code was rejected)",
        _ => "",
    };
    let message = format!("{what} answered HTTP {status} {code} {detail}")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    Err(CallError {
        transient: status >= 500 || status == 429,
        retry_after,
        message: format!("{message}{hint}"),
        record: json!({"call": what, "status": status, "response": body.as_ref().map(redact)}),
    })
}
