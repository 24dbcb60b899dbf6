//! The Incode Omni connector: start a session (API key), get the hosted
//! onboarding URL, read status and score (session token). The session token
//! is sealed before it leaves this module, and renewed once on a 401.

use crate::connectors::{CallError, CallOutput};
use crate::crypto::Sealer;
use crate::providers::incode::config::IncodeConfig;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct IncodeConnector {
    config: Option<IncodeConfig>,
    client: reqwest::Client,
    sealer: Sealer,
    /// Tokens renewed since they were sealed into state: interviewId -> token.
    renewed: Mutex<HashMap<String, String>>,
}

/// The workflow event for an onboarding status (providers.md 2.2). Unknown
/// values are progress, never failures.
pub fn event_for_status(status: &str) -> Option<&'static str> {
    match status {
        "UNKNOWN" => None,
        "ONBOARDING_FINISHED" => Some("incode.finished"),
        "MANUAL_REVIEW_APPROVED" | "MANUAL_REVIEW_REJECTED" => Some("incode.manual_review"),
        "EXPIRED" => Some("incode.expired"),
        _ => Some("incode.progress"),
    }
}

fn fail(transient: bool, message: String, record: Value) -> CallError {
    CallError {
        transient,
        retry_after: None,
        message,
        record,
    }
}

impl IncodeConnector {
    pub fn new(
        config: Option<IncodeConfig>,
        timeout: Duration,
        sealer: Sealer,
    ) -> Result<IncodeConnector, String> {
        let client = crate::egress::provider_client(reqwest::Client::builder().timeout(timeout))?;
        Ok(IncodeConnector {
            config,
            client,
            sealer,
            renewed: Mutex::default(),
        })
    }

    fn config(&self) -> Result<&IncodeConfig, CallError> {
        self.config.as_ref().ok_or_else(|| {
            fail(
                false,
                "the incode connector is not configured ([incode] in the config)".into(),
                Value::Null,
            )
        })
    }

    fn url(&self, path: &str) -> Result<String, CallError> {
        Ok(format!(
            "{}{path}",
            self.config()?.base_url.trim_end_matches('/')
        ))
    }

    /// `POST /omni/start` then `GET /0/omni/onboarding-url`.
    pub async fn start(&self, args: &Value) -> Result<CallOutput, CallError> {
        let cfg = self.config()?;
        let started = Instant::now();
        let mut body = json!({
            "configurationId": args.get("configuration_id").and_then(Value::as_str).unwrap_or(&cfg.configuration_id),
            "countryCode": args.get("country_code").and_then(Value::as_str).unwrap_or("ALL"),
            "language": args.get("language").and_then(Value::as_str).unwrap_or(&cfg.language),
        });
        for (arg, field) in [
            ("external_customer_id", "externalCustomerId"),
            ("redirection_url", "redirectionUrl"),
            ("custom_fields", "customFields"),
        ] {
            if let Some(v) = args.get(arg).filter(|v| !v.is_null()) {
                body[field] = v.clone();
            }
        }
        let (resp, status) = self
            .send(
                self.client
                    .post(self.url("/omni/start")?)
                    .header("x-api-key", &cfg.api_key)
                    .json(&body),
                "POST /omni/start",
            )
            .await?;
        let (Some(token), Some(interview)) = (
            resp.get("token").and_then(Value::as_str),
            resp.get("interviewId").and_then(Value::as_str),
        ) else {
            // A 2xx without the fields: outcome unknown, retry (may orphan one session).
            return Err(fail(
                true,
                "POST /omni/start answered without token or interviewId".into(),
                json!({"status": status}),
            ));
        };
        let (url_resp, _) = self
            .send(
                self.client
                    .get(self.url("/0/omni/onboarding-url")?)
                    .header("X-Incode-Hardware-Id", token),
                "GET /0/omni/onboarding-url",
            )
            .await?;
        let Some(url) = url_resp.get("url").and_then(Value::as_str) else {
            return Err(fail(
                true,
                "GET /0/omni/onboarding-url answered without url".into(),
                Value::Null,
            ));
        };
        let record = json!({
            "calls": ["POST /omni/start", "GET /0/omni/onboarding-url"],
            "interview_id": interview,
            "existing_session": resp.get("existingSession"),
            "duration_ms": started.elapsed().as_millis(),
        });
        Ok(CallOutput {
            result: json!({"interview_id": interview, "url": url, "token": self.sealer.seal(token)}),
            record,
        })
    }

    /// `GET /0/omni/get/onboarding/status`: `{onboarding_status, event}`.
    pub async fn status(&self, args: &Value) -> Result<CallOutput, CallError> {
        let started = Instant::now();
        let resp = self
            .session_get(args, "/0/omni/get/onboarding/status")
            .await?;
        let status = resp
            .get("onboardingStatus")
            .and_then(Value::as_str)
            .unwrap_or("UNKNOWN")
            .to_string();
        Ok(CallOutput {
            record: json!({"call": "GET /0/omni/get/onboarding/status", "onboarding_status": status, "duration_ms": started.elapsed().as_millis()}),
            result: json!({"onboarding_status": status, "event": event_for_status(&status)}),
        })
    }

    /// `GET /0/omni/get/score`: `{overall_status, overall_value, score}`.
    pub async fn score(&self, args: &Value) -> Result<CallOutput, CallError> {
        let started = Instant::now();
        let resp = self.session_get(args, "/0/omni/get/score").await?;
        let overall = resp.get("overall").cloned().unwrap_or(Value::Null);
        let status = overall
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("UNKNOWN")
            .to_string();
        Ok(CallOutput {
            record: json!({"call": "GET /0/omni/get/score", "overall_status": status, "duration_ms": started.elapsed().as_millis()}),
            result: json!({"overall_status": status, "overall_value": overall.get("value"), "score": resp}),
        })
    }

    /// A `/0/` read with the session's token; on 401 the token is renewed
    /// once (start with the interviewId) and the read retried.
    async fn session_get(&self, args: &Value, path: &str) -> Result<Value, CallError> {
        let interview = args
            .get("interview_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if interview.is_empty() {
            return Err(fail(
                false,
                format!("{path}: argument `interview_id` is empty"),
                Value::Null,
            ));
        }
        let cached = self
            .renewed
            .lock()
            .ok()
            .and_then(|m| m.get(&interview).cloned());
        let token = match cached {
            Some(t) => Some(t),
            None => args
                .get("token")
                .and_then(Value::as_str)
                .and_then(|s| self.sealer.open(s).ok()),
        };
        if let Some(token) = token {
            match self
                .send(
                    self.client
                        .get(self.url(path)?)
                        .header("X-Incode-Hardware-Id", &token),
                    &format!("GET {path}"),
                )
                .await
            {
                Err(e) if e.message.contains("HTTP 401") => {
                    tracing::info!(interview = %interview, "incode session token rejected; renewing");
                }
                other => return other.map(|(v, _)| v),
            }
        }
        let fresh = self.renew(&interview).await?;
        self.send(
            self.client
                .get(self.url(path)?)
                .header("X-Incode-Hardware-Id", &fresh),
            &format!("GET {path}"),
        )
        .await
        .map(|(v, _)| v)
    }

    async fn renew(&self, interview: &str) -> Result<String, CallError> {
        let cfg = self.config()?;
        let body = json!({"configurationId": cfg.configuration_id, "countryCode": "ALL", "language": cfg.language, "interviewId": interview});
        let (resp, _) = self
            .send(
                self.client
                    .post(self.url("/omni/start")?)
                    .header("x-api-key", &cfg.api_key)
                    .json(&body),
                "POST /omni/start (renew token)",
            )
            .await?;
        let token = resp
            .get("token")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                fail(
                    true,
                    "token renewal answered without a token".into(),
                    Value::Null,
                )
            })?
            .to_string();
        if let Ok(mut m) = self.renewed.lock() {
            m.insert(interview.to_string(), token.clone());
        }
        Ok(token)
    }

    /// Sends with `api-version: 1.0` and classifies the answer (providers.md 1.4).
    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<(Value, u16), CallError> {
        let req = req
            .header("api-version", "1.0")
            .header("content-type", "application/json");
        crate::connectors::send_json(req, "incode", what, &["/message", "/error"]).await
    }
}
