//! The OTLP exporter's HTTP client: the reqwest (rustls) that the rest of
//! Gangway links, rather than the second reqwest major version and TLS
//! stack opentelemetry-otlp's own client would bring. The SDK exports from
//! a thread of its own, outside the runtime, so each request is spawned on
//! the server's runtime and its answer awaited from there.

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use std::time::Duration;

/// Larger answers are cut: a collector answers with a few bytes.
const MAX_ANSWER: usize = 64 * 1024;

#[derive(Debug)]
pub(super) struct Client {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl Client {
    pub(super) fn new(
        runtime: tokio::runtime::Handle,
        timeout: Duration,
    ) -> Result<Client, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("otel: cannot build the HTTP client: {e}"))?;
        Ok(Client { client, runtime })
    }
}

#[async_trait::async_trait]
impl HttpClient for Client {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let sent = self.runtime.spawn(async move {
            let (parts, body) = request.into_parts();
            let mut resp = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let mut answer = Response::builder().status(resp.status());
            if let Some(headers) = answer.headers_mut() {
                *headers = std::mem::take(resp.headers_mut());
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await? {
                let room = MAX_ANSWER.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if room <= chunk.len() {
                    break;
                }
            }
            Ok::<_, HttpError>(answer.body(Bytes::from(body))?)
        });
        sent.await?
    }
}
