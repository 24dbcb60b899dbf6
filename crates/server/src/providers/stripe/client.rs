//! The Stripe Identity connector: VerificationSessions created, retrieved
//! (with `verified_outputs` expanded), canceled and redacted with the secret
//! key, form-encoded as Stripe's API takes them. The secret key never leaves
//! this module; the browser gets the session's hosted `url` (or its
//! `client_secret`) only through what the workflow presents.

use super::config::StripeConfig;
use crate::connectors::{CallError, CallOutput};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const SESSIONS: &str = "/v1/identity/verification_sessions";

pub struct StripeConnector {
    config: Option<StripeConfig>,
    client: reqwest::Client,
}

/// The workflow event a VerificationSession's state stands for (the same
/// names its webhooks get): `None` while it waits for the user's first
/// submission (`requires_input` without an error).
pub fn event_for(status: &str, has_error: bool, redacted: bool) -> Option<&'static str> {
    if redacted {
        return Some("stripe.redacted");
    }
    match status {
        "verified" => Some("stripe.verified"),
        "processing" => Some("stripe.processing"),
        "canceled" => Some("stripe.canceled"),
        "requires_input" if has_error => Some("stripe.requires_input"),
        _ => None,
    }
}

/// How a `last_error.code` (Stripe's documented list) is meant to be met:
/// `fixable` when the same person can pass by trying again (another
/// document, a better capture, another device, after consenting),
/// `final` when retrying cannot change it (a face or ID number that does not
/// match, manipulation, age or country), `unknown` for a code this build
/// does not know (a person should look).
pub fn error_class(code: &str) -> &'static str {
    match code {
        "abandoned"
        | "consent_declined"
        | "device_not_supported"
        | "document_expired"
        | "document_type_not_supported"
        | "document_unverified_other"
        | "selfie_document_missing_photo"
        | "selfie_unverified_other"
        | "id_number_insufficient_document_data"
        | "id_number_unverified_other"
        | "email_unverified_other"
        | "email_verification_declined"
        | "phone_unverified_other"
        | "phone_verification_declined" => "fixable",
        "selfie_face_mismatch"
        | "selfie_manipulated"
        | "id_number_mismatch"
        | "under_supported_age"
        | "country_not_supported" => "final",
        _ => "unknown",
    }
}

fn fail(transient: bool, message: String) -> CallError {
    CallError {
        transient,
        retry_after: None,
        message,
        record: Value::Null,
    }
}

/// A VerificationSession id as a URL path segment: Stripe's ids are
/// `vs_` plus letters and digits; anything else is refused before a request.
fn session_id(args: &Value) -> Result<&str, CallError> {
    let id = args.get("id").and_then(Value::as_str).unwrap_or_default();
    let ok = id.starts_with("vs_")
        && id.len() <= 255
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(id)
    } else {
        Err(fail(
            false,
            "argument `id` is not a VerificationSession id (vs_…)".into(),
        ))
    }
}

/// A string argument, a boolean argument given as a string or a boolean.
fn flag(args: &Value, name: &str) -> Option<bool> {
    match args.get(name)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

impl StripeConnector {
    pub fn new(config: Option<StripeConfig>, timeout: Duration) -> Result<StripeConnector, String> {
        let client = crate::egress::provider_client(reqwest::Client::builder().timeout(timeout))?;
        Ok(StripeConnector { config, client })
    }

    fn config(&self) -> Result<&StripeConfig, CallError> {
        self.config.as_ref().ok_or_else(|| {
            fail(
                false,
                "the stripe connector is not configured ([stripe] in the config)".into(),
            )
        })
    }

    fn url(&self, path: &str) -> Result<String, CallError> {
        Ok(format!(
            "{}{path}",
            self.config()?.base_url.trim_end_matches('/')
        ))
    }

    /// `POST /v1/identity/verification_sessions` (form-encoded): a document
    /// check, with a matching selfie unless told otherwise, Gangway's session
    /// in `metadata[gangway_session]` and `client_reference_id`. Stripe
    /// deduplicates on `Idempotency-Key`, so a retried start returns the same
    /// VerificationSession.
    pub async fn create(
        &self,
        args: &Value,
        idempotency_key: &str,
    ) -> Result<CallOutput, CallError> {
        let cfg = self.config()?;
        let started = Instant::now();
        let selfie = flag(args, "require_matching_selfie").unwrap_or(cfg.require_matching_selfie);
        let mut form: Vec<(String, String)> = vec![
            ("type".into(), "document".into()),
            (
                "options[document][require_matching_selfie]".into(),
                selfie.to_string(),
            ),
        ];
        if let Some(reference) = args.get("reference").and_then(Value::as_str) {
            form.push(("metadata[gangway_session]".into(), reference.into()));
            form.push(("client_reference_id".into(), reference.into()));
        }
        if let Some(Value::Object(meta)) = args.get("metadata") {
            for (k, v) in meta {
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => continue,
                    other => other.to_string(),
                };
                form.push((format!("metadata[{k}]"), v));
            }
        }
        if let Some(Value::Array(types)) = args.get("allowed_types") {
            for t in types.iter().filter_map(Value::as_str) {
                form.push(("options[document][allowed_types][]".into(), t.into()));
            }
        }
        let return_url = args
            .get("return_url")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
            .or(cfg.return_url.as_deref());
        if let Some(u) = return_url {
            form.push(("return_url".into(), u.into()));
        }
        let body = serde_urlencoded::to_string(&form)
            .map_err(|e| fail(false, format!("cannot encode the request: {e}")))?;
        let what = format!("POST {SESSIONS}");
        let resp = self
            .send(
                self.client
                    .post(self.url(SESSIONS)?)
                    .header("Idempotency-Key", idempotency_key)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body),
                &what,
            )
            .await?;
        let (Some(id), Some(status)) = (
            resp.get("id").and_then(Value::as_str),
            resp.get("status").and_then(Value::as_str),
        ) else {
            return Err(fail(true, format!("{what} answered without id or status")));
        };
        Ok(CallOutput {
            record: json!({"call": what, "id": id, "status": status, "require_matching_selfie": selfie, "duration_ms": started.elapsed().as_millis()}),
            result: json!({
                "id": id,
                "status": status,
                "url": resp.get("url"),
                "client_secret": resp.get("client_secret"),
                "created_ms": resp.get("created").and_then(Value::as_i64).map(|s| s.saturating_mul(1000)),
            }),
        })
    }

    /// `GET /v1/identity/verification_sessions/{id}?expand[]=verified_outputs`:
    /// the status, the workflow event it stands for, the last error and its
    /// class, the report of the last submission (`attempt`), a fresh hosted
    /// `url` while the user may (re)submit, and the verified outputs.
    pub async fn retrieve(&self, args: &Value) -> Result<CallOutput, CallError> {
        let id = session_id(args)?;
        let started = Instant::now();
        let what = format!("GET {SESSIONS}/{{id}}");
        let resp = self
            .send(
                self.client
                    .get(self.url(&format!("{SESSIONS}/{id}"))?)
                    .query(&[("expand[]", "verified_outputs")]),
                &what,
            )
            .await?;
        let result = session_result(&resp);
        Ok(CallOutput {
            record: json!({
                "call": what,
                "id": id,
                "status": result["status"],
                "last_error_code": result["last_error"]["code"],
                "duration_ms": started.elapsed().as_millis(),
            }),
            result,
        })
    }

    /// `POST …/{id}/cancel`. Stripe cancels only a session that waits for the
    /// user (`requires_input`); any other is read back and its status
    /// answered (`canceled: false`), so a cancel that races a verification,
    /// or is sent twice, does not fail the step.
    pub async fn cancel(
        &self,
        args: &Value,
        idempotency_key: &str,
    ) -> Result<CallOutput, CallError> {
        let id = session_id(args)?;
        let what = format!("POST {SESSIONS}/{{id}}/cancel");
        let sent = self
            .send(
                self.client
                    .post(self.url(&format!("{SESSIONS}/{id}/cancel"))?)
                    .header("Idempotency-Key", idempotency_key),
                &what,
            )
            .await;
        let resp = match sent {
            Ok(resp) => resp,
            Err(e) if !e.transient => {
                let read = self.retrieve(args).await?;
                let status = read.result["status"].clone();
                return Ok(CallOutput {
                    record: json!({"call": what, "id": id, "refused": e.message, "status": status}),
                    result: json!({"id": id, "status": status, "canceled": status == "canceled"}),
                });
            }
            Err(e) => return Err(e),
        };
        let status = resp.get("status").cloned().unwrap_or(Value::Null);
        Ok(CallOutput {
            record: json!({"call": what, "id": id, "status": status}),
            result: json!({"id": id, "status": status, "canceled": status == "canceled"}),
        })
    }

    /// `POST …/{id}/redact`: Stripe removes the personal data it collected
    /// (`redaction.status` becomes `processing`, then `redacted` with the
    /// `identity.verification_session.redacted` event).
    pub async fn redact(
        &self,
        args: &Value,
        idempotency_key: &str,
    ) -> Result<CallOutput, CallError> {
        let id = session_id(args)?;
        let what = format!("POST {SESSIONS}/{{id}}/redact");
        let resp = self
            .send(
                self.client
                    .post(self.url(&format!("{SESSIONS}/{id}/redact"))?)
                    .header("Idempotency-Key", idempotency_key),
                &what,
            )
            .await?;
        let redaction = resp
            .pointer("/redaction/status")
            .cloned()
            .unwrap_or(Value::Null);
        Ok(CallOutput {
            record: json!({"call": what, "id": id, "redaction_status": redaction}),
            result: json!({"id": id, "status": resp.get("status"), "redaction_status": redaction}),
        })
    }

    /// Sends with the secret key as a bearer token (and `Stripe-Version`
    /// when configured) and classifies the answer; Stripe's error message is
    /// at `error.message`.
    async fn send(&self, req: reqwest::RequestBuilder, what: &str) -> Result<Value, CallError> {
        let cfg = self.config()?;
        let mut req = req.bearer_auth(&cfg.secret_key);
        if let Some(v) = &cfg.api_version {
            req = req.header("Stripe-Version", v);
        }
        crate::connectors::send_json(req, "stripe", what, &["/error/message"])
            .await
            .map(|(v, _)| v)
    }
}

/// What a workflow reads of a retrieved VerificationSession (pure).
pub fn session_result(resp: &Value) -> Value {
    let status = resp.get("status").and_then(Value::as_str).unwrap_or("");
    let last_error = resp
        .get("last_error")
        .filter(|e| e.is_object())
        .map(|e| json!({"code": e.get("code"), "reason": e.get("reason")}));
    let code = last_error
        .as_ref()
        .and_then(|e| e["code"].as_str())
        .unwrap_or("");
    let redaction = resp.pointer("/redaction/status").and_then(Value::as_str);
    let event = event_for(status, last_error.is_some(), redaction == Some("redacted"));
    let attempt = match resp.get("last_verification_report") {
        Some(Value::String(s)) => Value::String(s.clone()),
        Some(Value::Object(r)) => r.get("id").cloned().unwrap_or(Value::Null),
        _ => Value::Null,
    };
    json!({
        "id": resp.get("id"),
        "status": status,
        "event": event,
        "last_error": last_error,
        "error_class": (!code.is_empty()).then(|| error_class(code)),
        "attempt": attempt,
        "url": resp.get("url"),
        "client_secret": resp.get("client_secret"),
        "verified_outputs": resp.get("verified_outputs").cloned().unwrap_or(Value::Null),
        "redaction_status": redaction,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_follow_status_error_and_redaction() {
        assert_eq!(event_for("requires_input", false, false), None);
        assert_eq!(
            event_for("requires_input", true, false),
            Some("stripe.requires_input")
        );
        assert_eq!(event_for("verified", false, false), Some("stripe.verified"));
        assert_eq!(event_for("verified", false, true), Some("stripe.redacted"));
        assert_eq!(event_for("canceled", false, false), Some("stripe.canceled"));
        assert_eq!(
            event_for("processing", false, false),
            Some("stripe.processing")
        );
    }

    #[test]
    fn every_documented_code_has_a_class() {
        for code in super::super::LAST_ERROR_CODES {
            assert_ne!(error_class(code), "unknown", "{code}");
        }
        assert_eq!(error_class("something_new"), "unknown");
    }

    #[test]
    fn retrieved_session_reads_the_report_id_either_way() {
        let r = session_result(&json!({
            "id": "vs_1", "status": "requires_input",
            "last_error": {"code": "document_expired", "reason": "expired"},
            "last_verification_report": {"id": "vr_2"},
        }));
        assert_eq!(r["event"], "stripe.requires_input");
        assert_eq!(r["error_class"], "fixable");
        assert_eq!(r["attempt"], "vr_2");
        let r =
            session_result(&json!({"id": "vs_1", "status": "requires_input", "last_error": null}));
        assert_eq!(r["event"], Value::Null);
        assert_eq!(r["error_class"], Value::Null);
    }

    #[test]
    fn ids_are_path_segments_only() {
        assert!(session_id(&json!({"id": "vs_1AbC"})).is_ok());
        for bad in ["", "vs_../x", "vs_1/cancel", "pi_1", "vs_1?x=1"] {
            assert!(session_id(&json!({"id": bad})).is_err(), "{bad}");
        }
    }
}
