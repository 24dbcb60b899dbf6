//! The Ockto connector (providers.md 3): source availability, start a
//! session (its QR code), read the status (polled: Ockto has no webhook)
//! and read the shared data. Credentials, provider code and the client
//! certificate stay in this module's HTTP client; the QR code and the data
//! go into session state only, never into the timeline.

mod odm;
mod wire;

use crate::connectors::{CallError, CallOutput};
use crate::providers::ockto::config::OcktoConfig;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use wire::fail;

pub use odm::summary;
pub use wire::read_answer;

/// An Ockto session status (providers.md 3.3). Unknown values are progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Created,
    Scanned,
    DataAvailable,
    Cancelled,
    Expired,
    Error,
    Unknown(String),
}

impl Status {
    pub fn parse(s: &str) -> Status {
        match s {
            "CREATED" => Status::Created,
            "SCANNED" => Status::Scanned,
            "DATA_AVAILABLE" => Status::DataAvailable,
            "CANCELLED" => Status::Cancelled,
            "EXPIRED" => Status::Expired,
            "ERROR" => Status::Error,
            other => Status::Unknown(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Status::Created => "CREATED",
            Status::Scanned => "SCANNED",
            Status::DataAvailable => "DATA_AVAILABLE",
            Status::Cancelled => "CANCELLED",
            Status::Expired => "EXPIRED",
            Status::Error => "ERROR",
            Status::Unknown(s) => s,
        }
    }

    /// The workflow event (G) this status stands for.
    pub fn event(&self) -> Option<&'static str> {
        match self {
            Status::Created | Status::Unknown(_) => None,
            Status::Scanned => Some("ockto.scanned"),
            Status::DataAvailable => Some("ockto.data_received"),
            Status::Cancelled => Some("ockto.canceled"),
            Status::Expired => Some("ockto.expired"),
            Status::Error => Some("ockto.error"),
        }
    }

    /// The QR code was scanned (a poll that skipped SCANNED still counts).
    pub fn scanned(&self) -> bool {
        matches!(self, Status::Scanned | Status::DataAvailable)
    }

    pub fn terminal(&self) -> bool {
        matches!(
            self,
            Status::DataAvailable | Status::Cancelled | Status::Expired | Status::Error
        )
    }
}

pub struct OcktoConnector {
    config: Option<OcktoConfig>,
    client: Result<wire::Client, String>,
}

fn arg<'a>(args: &'a Value, name: &str) -> Option<&'a Value> {
    args.get(name).filter(|v| !v.is_null())
}

fn session_arg(args: &Value, what: &str) -> Result<String, CallError> {
    match arg(args, "session_id").and_then(Value::as_str) {
        Some(s) if !s.is_empty() => Ok(s.to_string()),
        _ => Err(fail(
            false,
            format!("{what}: argument `session_id` is empty"),
            Value::Null,
        )),
    }
}

/// A path segment: Ockto session ids are opaque, so they are escaped.
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

impl OcktoConnector {
    pub fn new(config: Option<OcktoConfig>, timeout: Duration) -> OcktoConnector {
        let client = match &config {
            Some(cfg) => wire::Client::new(cfg, timeout),
            None => Err("the ockto connector is not configured ([ockto] in the config)".into()),
        };
        OcktoConnector { config, client }
    }

    fn client(&self) -> Result<&wire::Client, CallError> {
        self.client
            .as_ref()
            .map_err(|e| fail(false, e.clone(), Value::Null))
    }

    fn default_type(&self) -> &str {
        self.config.as_ref().map_or("P", |c| c.ockto_type.as_str())
    }

    /// `GET /sources/availability?ocktoType=`: `{available, sources,
    /// unavailable, unavailable_text}`; with `required`, only those codes count.
    pub async fn sources(&self, args: &Value) -> Result<CallOutput, CallError> {
        let started = Instant::now();
        let ockto_type = arg(args, "ockto_type")
            .and_then(Value::as_str)
            .unwrap_or(self.default_type())
            .to_string();
        let required: Option<Vec<String>> =
            arg(args, "required").and_then(Value::as_array).map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            });
        let (resp, status) = self
            .client()?
            .get(&format!(
                "/sources/availability?ocktoType={}",
                segment(&ockto_type)
            ))
            .await?;
        let sources = resp
            .get("sources")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let is_up = |code: &str| {
            sources.iter().any(|s| {
                s.get("code").and_then(Value::as_str) == Some(code)
                    && s.get("available").and_then(Value::as_bool) == Some(true)
            })
        };
        let unavailable: Vec<String> = match &required {
            Some(codes) => codes.iter().filter(|c| !is_up(c)).cloned().collect(),
            None => sources
                .iter()
                .filter(|s| s.get("available").and_then(Value::as_bool) != Some(true))
                .filter_map(|s| s.get("code").and_then(Value::as_str).map(str::to_string))
                .collect(),
        };
        let overall = resp
            .get("available")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let available = unavailable.is_empty() && (required.is_some() || overall);
        let text = if unavailable.is_empty() && !available {
            "all".to_string()
        } else {
            unavailable.join(", ")
        };
        Ok(CallOutput {
            record: json!({"call": "GET /sources/availability", "status": status, "ockto_type": ockto_type, "available": available, "unavailable": unavailable, "duration_ms": started.elapsed().as_millis()}),
            result: json!({"available": available, "sources": sources, "unavailable": unavailable, "unavailable_text": text}),
        })
    }

    /// `POST /sessions`: `{session_id, qr_code}`. `session_id` defaults to
    /// the step's idempotency key (our reference at Ockto).
    pub async fn start(
        &self,
        args: &Value,
        idempotency_key: &str,
    ) -> Result<CallOutput, CallError> {
        let started = Instant::now();
        let cfg_consent = self.config.as_ref().and_then(|c| c.consent_code.clone());
        let mut body = json!({
            "sessionId": arg(args, "session_id").and_then(Value::as_str).unwrap_or(idempotency_key),
            "ocktoType": arg(args, "ockto_type").and_then(Value::as_str).unwrap_or(self.default_type()),
        });
        if let Some(c) = arg(args, "consent_code")
            .cloned()
            .or(cfg_consent.map(Value::String))
        {
            body["consentCode"] = c;
        }
        if let Some(m) = arg(args, "psd2_amount_of_months")
            && !m.as_u64().is_some_and(|m| (1..=12).contains(&m))
        {
            return Err(fail(
                false,
                "ockto.start: `psd2_amount_of_months` must be a whole number from 1 to 12",
                Value::Null,
            ));
        }
        for (name, field) in [
            ("test_case_id", "testCaseId"),
            ("odm_version", "odmVersion"),
            ("request_documents", "requestDocuments"),
            ("disable_partner", "disablePartner"),
            ("psd2_info_included", "psd2InfoIncluded"),
            ("psd2_amount_of_months", "psd2AmountOfMonths"),
        ] {
            if let Some(v) = arg(args, name) {
                body[field] = v.clone();
            }
        }
        let (resp, status) = self.client()?.post("/sessions", &body).await?;
        let (Some(id), Some(qr)) = (
            resp.get("sessionId").and_then(Value::as_str),
            resp.get("qrCode").and_then(Value::as_str),
        ) else {
            // Outcome unknown: retry, accepting a possible orphan session.
            return Err(fail(
                true,
                "POST /sessions answered without sessionId or qrCode",
                json!({"call": "POST /sessions", "status": status}),
            ));
        };
        Ok(CallOutput {
            record: json!({"call": "POST /sessions", "status": status, "session_id": id, "duration_ms": started.elapsed().as_millis()}),
            result: json!({"session_id": id, "qr_code": qr}),
        })
    }

    /// `GET /sessions/{id}/status`: `{session_id, status, event, scanned,
    /// terminal, qr_code}`; `qr_code` is the rotated code, or null.
    pub async fn status(&self, args: &Value) -> Result<CallOutput, CallError> {
        let started = Instant::now();
        let id = session_arg(args, "ockto.status")?;
        let (resp, _) = self
            .client()?
            .get(&format!("/sessions/{}/status", segment(&id)))
            .await?;
        let raw = resp.get("status").and_then(Value::as_str).unwrap_or("");
        let status = Status::parse(raw);
        if let Status::Unknown(s) = &status {
            tracing::info!(ockto_session = %id, status = %s, "unknown Ockto status; treated as progress");
        }
        let qr = resp.get("qrCode").and_then(Value::as_str);
        Ok(CallOutput {
            record: json!({"call": "GET /sessions/{id}/status", "session_id": id, "status": status.as_str(), "qr_rotated": qr.is_some(), "duration_ms": started.elapsed().as_millis()}),
            result: json!({
                "session_id": id,
                "status": status.as_str(),
                "event": status.event(),
                "scanned": status.scanned(),
                "terminal": status.terminal(),
                "qr_code": qr,
            }),
        })
    }

    /// `GET /sessions/{id}/result`: `{odm, summary}` (see [`summary`]).
    pub async fn result(&self, args: &Value) -> Result<CallOutput, CallError> {
        let started = Instant::now();
        let id = session_arg(args, "ockto.result")?;
        let (odm, status) = self
            .client()?
            .get(&format!("/sessions/{}/result", segment(&id)))
            .await?;
        let summary = summary(&odm).map_err(|e| {
            fail(
                false,
                format!("GET /sessions/{{id}}/result: unusable result: {e}"),
                json!({"call": "GET /sessions/{id}/result", "status": status}),
            )
        })?;
        // The ODM is personal data: the timeline gets its shape, not its content.
        let record = json!({
            "call": "GET /sessions/{id}/result",
            "status": status,
            "session_id": id,
            "odm_version": odm.get("odmVersion"),
            "persons": summary["persons"],
            "documents": summary["documents"],
            "duration_ms": started.elapsed().as_millis(),
        });
        Ok(CallOutput {
            result: json!({"odm": odm, "summary": summary}),
            record,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Status;

    #[test]
    fn statuses_map_to_events() {
        assert_eq!(Status::parse("CREATED").event(), None);
        assert_eq!(Status::parse("SCANNED").event(), Some("ockto.scanned"));
        let data = Status::parse("DATA_AVAILABLE");
        assert!(data.scanned() && data.terminal());
        assert_eq!(data.event(), Some("ockto.data_received"));
        assert_eq!(Status::parse("CANCELLED").event(), Some("ockto.canceled"));
        let odd = Status::parse("PAUSED");
        assert_eq!(
            (odd.event(), odd.terminal(), odd.as_str()),
            (None, false, "PAUSED")
        );
    }

    #[test]
    fn session_ids_are_escaped_in_paths() {
        assert_eq!(super::segment("ses_1:2"), "ses_1%3A2");
    }
}
