//! Webhooks as Incode sends them: one outbox per interview, OAuth2 client
//! credentials or a static header, one retry.

use std::sync::Weak;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::interview::Outgoing;
use super::{IncodeSim, IncodeWebhookAuth, Inner, WebhookRecord};
use crate::sim::now_rfc3339;

/// Timeout of every outgoing request (webhooks, OAuth2 token).
pub(super) const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause before Incode's single webhook retry.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// An OAuth2 access token and when to stop using it.
pub(super) struct CachedToken {
    pub(super) token: String,
    pub(super) until: Instant,
}

impl IncodeSim {
    /// Records one webhook copy.
    fn record_webhook(&self, interview_id: &str, generation: u64, record: WebhookRecord) {
        let mut st = self.lock();
        if st.generation != generation {
            return;
        }
        if let Some(iv) = st.interviews.get_mut(interview_id) {
            iv.record.webhooks_sent += 1;
            iv.record.webhook_attempts += u64::from(record.attempts);
            if record.delivered {
                iv.record.webhooks_delivered += 1;
            }
            iv.record.webhooks.push(record);
        }
    }

    fn still_there(&self, interview_id: &str, generation: u64) -> bool {
        let st = self.lock();
        st.generation == generation && st.interviews.contains_key(interview_id)
    }

    /// One webhook copy with Incode's single retry: (attempts, last HTTP status, delivered).
    async fn deliver(
        &self,
        interview_id: &str,
        status: &str,
        body: &[u8],
        bad_auth: bool,
    ) -> (u32, Option<u16>, bool) {
        let url = &self.inner.config.webhook_url;
        let mut last = None;
        for attempt in 1..=2u32 {
            match self.post_webhook(body, bad_auth).await {
                Ok(code) if (200..300).contains(&code) => {
                    tracing::debug!(interview = %interview_id, %status, code, "incode sim: webhook delivered");
                    return (attempt, Some(code), true);
                }
                Ok(code) => {
                    last = Some(code);
                    tracing::warn!(interview = %interview_id, %status, %url, code, attempt, "incode sim: webhook rejected");
                }
                Err(e) => {
                    tracing::warn!(interview = %interview_id, %status, %url, error = %e, attempt, "incode sim: webhook delivery failed");
                }
            }
            if attempt == 1 {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
        tracing::warn!(interview = %interview_id, %status, %url, "incode sim: webhook given up after one retry");
        (2, last, false)
    }

    /// One HTTP request (OAuth2: plus one token refetch on 401); the answer's status.
    async fn post_webhook(&self, body: &[u8], bad_auth: bool) -> Result<u16, String> {
        match &self.inner.config.webhook_auth {
            IncodeWebhookAuth::Header { name, value } => {
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|e| format!("invalid webhook header name: {e}"))?;
                let value = if bad_auth {
                    format!("{value}-wrong")
                } else {
                    value.clone()
                };
                let mut value = HeaderValue::from_str(&value)
                    .map_err(|_| "invalid webhook header value".to_owned())?;
                value.set_sensitive(true);
                self.send_webhook(body, name, value).await
            }
            IncodeWebhookAuth::OAuth2 { .. } => {
                if bad_auth {
                    let wrong = format!("sim-wrong-{}", hex::encode(rand::random::<[u8; 16]>()));
                    return self.send_bearer(body, &wrong).await;
                }
                let token = self.oauth_token(false).await?;
                let code = self.send_bearer(body, &token).await?;
                if code != StatusCode::UNAUTHORIZED.as_u16() {
                    return Ok(code);
                }
                tracing::info!("incode sim: webhook bearer refused; fetching a new token");
                let token = self.oauth_token(true).await?;
                self.send_bearer(body, &token).await
            }
        }
    }

    async fn send_bearer(&self, body: &[u8], token: &str) -> Result<u16, String> {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| "the access token is not a valid header value".to_owned())?;
        value.set_sensitive(true);
        self.send_webhook(body, header::AUTHORIZATION, value).await
    }

    async fn send_webhook(
        &self,
        body: &[u8],
        name: HeaderName,
        value: HeaderValue,
    ) -> Result<u16, String> {
        let resp = self
            .inner
            .http
            .post(&self.inner.config.webhook_url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(name, value)
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "timed out".to_owned()
                } else {
                    format!("request failed: {e}")
                }
            })?;
        Ok(resp.status().as_u16())
    }

    /// The cached OAuth2 access token, fetched (client credentials) when
    /// absent, expired or `refresh`.
    async fn oauth_token(&self, refresh: bool) -> Result<String, String> {
        let IncodeWebhookAuth::OAuth2 {
            token_url,
            client_id,
            client_secret,
        } = &self.inner.config.webhook_auth
        else {
            return Err("not in OAuth2 mode".into());
        };
        let mut cache = self.inner.oauth.lock().await;
        if !refresh
            && let Some(cached) = cache.as_ref()
            && cached.until > Instant::now()
        {
            return Ok(cached.token.clone());
        }
        *cache = None;
        let resp = self
            .inner
            .http
            .post(token_url)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .basic_auth(client_id, Some(client_secret))
            .body("grant_type=client_credentials")
            .send()
            .await
            .map_err(|e| format!("token request failed: {e}"))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("token endpoint answered {status}"));
        }
        let body: Value = resp
            .json()
            .await
            .map_err(|e| format!("token endpoint answered unreadable JSON: {e}"))?;
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or("token endpoint answered without access_token")?
            .to_owned();
        let expires_in = body
            .get("expires_in")
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .unwrap_or(0);
        if expires_in > 0 {
            *cache = Some(CachedToken {
                token: token.clone(),
                until: Instant::now() + Duration::from_secs(expires_in),
            });
        }
        Ok(token)
    }
}

/// Sends the webhooks of one interview in order; ends when the interview is
/// forgotten (its sender dropped) or the simulator is gone.
pub(super) async fn outbox_worker(
    weak: Weak<Inner>,
    interview_id: String,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
) {
    while let Some(job) = rx.recv().await {
        if let Some(due) = job.due {
            tokio::time::sleep_until(due).await;
        }
        let Some(inner) = weak.upgrade() else {
            return;
        };
        let sim = IncodeSim { inner };
        for _ in 0..job.copies {
            if !sim.still_there(&interview_id, job.generation) {
                break;
            }
            let (attempts, http_status, delivered) = sim
                .deliver(&interview_id, &job.status, &job.body, job.bad_auth)
                .await;
            sim.record_webhook(
                &interview_id,
                job.generation,
                WebhookRecord {
                    status: job.status.clone(),
                    at: now_rfc3339(),
                    attempts,
                    http_status,
                    delivered,
                },
            );
        }
        drop(sim);
        if let Some(done) = job.done {
            let _ = done.send(());
        }
    }
}
