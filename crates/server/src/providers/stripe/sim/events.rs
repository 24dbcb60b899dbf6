//! Submissions (verified or failed after `processing`) and the events the
//! simulator sends, signed as Stripe signs them.

use std::time::Duration;

use serde_json::{Value, json};

use super::{StripeSim, now_unix, reason_for, stripe_id};
use crate::providers::stripe::LAST_ERROR_CODES;
use crate::providers::stripe::webhook::sign;

/// How a submission ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Verified,
    /// Back to `requires_input` with this `last_error.code`.
    Failed(String),
}

impl Outcome {
    /// `{"result": "verified"}` or `{"result": "requires_input", "code": …}`.
    pub fn parse(result: &str, code: Option<&str>) -> Result<Outcome, String> {
        match (result, code) {
            ("verified", _) => Ok(Outcome::Verified),
            ("requires_input", Some(code)) if LAST_ERROR_CODES.contains(&code) => {
                Ok(Outcome::Failed(code.to_owned()))
            }
            ("requires_input", _) => Err(format!(
                "requires_input needs a `code`, one of {}",
                LAST_ERROR_CODES.join(", ")
            )),
            _ => Err("result must be verified or requires_input".into()),
        }
    }
}

impl StripeSim {
    /// The user submits: `processing` now, the outcome after `processing_ms`.
    /// Refused unless the session waits for the user.
    pub(crate) fn submit(&self, id: &str, outcome: Outcome) -> Result<(), String> {
        let (generation, delay) = {
            let mut st = self.lock();
            let generation = st.generation;
            let delay = st.knobs.processing_ms;
            let Some(s) = st.sessions.get_mut(id) else {
                return Err(format!("no session {id}"));
            };
            if s.status != "requires_input" || s.redaction.is_some() {
                return Err(format!("the session is {}, not requires_input", s.status));
            }
            s.status = "processing".into();
            (generation, delay)
        };
        let sim = self.clone();
        let id = id.to_owned();
        tokio::spawn(async move {
            let processing = sim.event(&id, "processing");
            sim.deliver(processing).await;
            tokio::time::sleep(Duration::from_millis(delay)).await;
            let kind = {
                let mut st = sim.lock();
                if st.generation != generation {
                    return;
                }
                let Some(s) = st.sessions.get_mut(&id) else {
                    return;
                };
                s.report = Some(stripe_id("vr"));
                match &outcome {
                    Outcome::Verified => {
                        s.status = "verified".into();
                        s.last_error = None;
                        "verified"
                    }
                    Outcome::Failed(code) => {
                        s.status = "requires_input".into();
                        s.last_error = Some((code.clone(), reason_for(code)));
                        "requires_input"
                    }
                }
            };
            let event = sim.event(&id, kind);
            sim.deliver(event).await;
        });
        Ok(())
    }

    /// Sends these events of a session, in order, in the background.
    pub(super) fn send_events(&self, id: &str, kinds: Vec<&'static str>) {
        let events: Vec<Option<Value>> = kinds.iter().map(|k| self.event(id, k)).collect();
        let sim = self.clone();
        tokio::spawn(async move {
            for e in events {
                sim.deliver(e).await;
            }
        });
    }

    /// The event object for the session as it is now.
    fn event(&self, id: &str, kind: &str) -> Option<Value> {
        let st = self.lock();
        let s = st.sessions.get(id)?;
        Some(json!({
            "id": stripe_id("evt"),
            "object": "event",
            "api_version": "2025-03-31.basil",
            "created": now_unix(),
            "data": {"object": s.object(&self.inner.config.public_url, false)},
            "livemode": false,
            "pending_webhooks": 1,
            "request": {"id": null, "idempotency_key": null},
            "type": format!("identity.verification_session.{kind}"),
        }))
    }

    /// Posts one event (twice with `duplicate`; not at all with `drop`),
    /// retried once, and records it in `control/events`.
    async fn deliver(&self, event: Option<Value>) {
        let Some(event) = event else { return };
        let knobs = self.knobs();
        let copies = if knobs.drop {
            0
        } else if knobs.duplicate {
            2
        } else {
            1
        };
        let body = event.to_string();
        let mut statuses = Vec::new();
        for _ in 0..copies {
            if knobs.delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(knobs.delay_ms)).await;
            }
            let mut status = 0;
            for _attempt in 0..2 {
                let t = now_unix();
                let header = std::iter::once(format!("t={t}"))
                    .chain(
                        self.inner
                            .config
                            .webhook_secrets
                            .iter()
                            .map(|s| format!("v1={}", sign(s, t, body.as_bytes()))),
                    )
                    .collect::<Vec<_>>()
                    .join(",");
                let sent = self
                    .inner
                    .http
                    .post(&self.inner.config.webhook_url)
                    .header("content-type", "application/json; charset=utf-8")
                    .header("stripe-signature", header)
                    .body(body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => {
                        status = r.status().as_u16();
                        break;
                    }
                    Ok(r) => status = r.status().as_u16(),
                    Err(e) => {
                        tracing::debug!(error = %e, "stripe sim: webhook not delivered");
                    }
                }
            }
            statuses.push(status);
        }
        self.lock().events.push(json!({
            "id": event["id"],
            "type": event["type"],
            "session": event["data"]["object"]["id"],
            "statuses": statuses,
        }));
    }
}
