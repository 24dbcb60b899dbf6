//! One simulated interview: its verdict, status and webhook outbox.

use std::time::Duration;

use rand::Rng;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::{IncodeInterview, IncodeKnobs, UNKNOWN, is_terminal};

pub(super) enum Verdict {
    Ok,
    Fail,
    /// `overall.status` of a review (the `review_status` knob).
    Review(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FinishResult {
    Pass,
    Fail,
    Review,
    Abandon,
    Expire,
}

impl FinishResult {
    pub(super) fn parse(s: &str) -> Option<FinishResult> {
        Some(match s {
            "pass" => FinishResult::Pass,
            "fail" => FinishResult::Fail,
            "review" => FinishResult::Review,
            "abandon" => FinishResult::Abandon,
            "expire" => FinishResult::Expire,
            _ => return None,
        })
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            FinishResult::Pass => "pass",
            FinishResult::Fail => "fail",
            FinishResult::Review => "review",
            FinishResult::Abandon => "abandon",
            FinishResult::Expire => "expire",
        }
    }
}

/// One webhook (with its copies) waiting in an interview's outbox.
pub(super) struct Outgoing {
    pub(super) generation: u64,
    pub(super) status: String,
    pub(super) body: Vec<u8>,
    pub(super) copies: u32,
    pub(super) bad_auth: bool,
    pub(super) due: Option<Instant>,
    /// Signalled once every copy was attempted.
    pub(super) done: Option<oneshot::Sender<()>>,
}

pub(super) struct Interview {
    pub(super) record: IncodeInterview,
    /// The applied verdict (set at `ONBOARDING_FINISHED`).
    pub(super) verdict: Option<Verdict>,
    /// The verdict of the walk in progress.
    pub(super) pending_verdict: Option<Verdict>,
    /// Manual review decision: approve = true.
    pub(super) manual: Option<bool>,
    /// Bumped by every accepted control action; stale background steps stop.
    pub(super) epoch: u64,
    /// A pass/fail/review walk is in progress.
    pub(super) walking: bool,
    /// The status whose webhook `reorder` holds back.
    pub(super) held: Option<String>,
    pub(super) outbox: mpsc::UnboundedSender<Outgoing>,
}

impl Interview {
    pub(super) fn score_status(&self) -> String {
        match (self.manual, &self.verdict) {
            (Some(true), _) => "MANUAL_OK".into(),
            (Some(false), _) => "MANUAL_FAIL".into(),
            (None, Some(Verdict::Ok)) => "OK".into(),
            (None, Some(Verdict::Fail)) => "FAIL".into(),
            (None, Some(Verdict::Review(s))) => s.clone(),
            (None, None) => UNKNOWN.into(),
        }
    }

    /// Queues the webhook(s) for `status` as the knobs say. Returns what to
    /// await for "sent" when the caller should wait (no `delay_ms`).
    pub(super) fn emit(
        &mut self,
        status: &str,
        knobs: &IncodeKnobs,
        generation: u64,
    ) -> Option<oneshot::Receiver<()>> {
        let copies = knobs.duplicate.saturating_add(1);
        if knobs.drop {
            self.record.webhooks_dropped += u64::from(copies);
            return None;
        }
        let held = self.held.take();
        let mut batch = Vec::with_capacity(2);
        match held {
            None if knobs.reorder && !is_terminal(status) => {
                self.held = Some(status.to_owned());
                return None;
            }
            None => batch.push(status.to_owned()),
            Some(h) if knobs.reorder => {
                batch.push(status.to_owned());
                batch.push(h);
            }
            Some(h) => {
                batch.push(h);
                batch.push(status.to_owned());
            }
        }
        let due = knobs
            .delay_ms
            .map(|ms| Instant::now() + Duration::from_millis(ms));
        let mut last = None;
        let n = batch.len();
        for (i, status) in batch.into_iter().enumerate() {
            let (done, rx) = if i + 1 == n {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Some(rx))
            } else {
                (None, None)
            };
            let body = webhook_body(
                &self.record.interview_id,
                &status,
                self.record.external_customer_id.as_deref(),
            );
            let job = Outgoing {
                generation,
                status,
                body,
                copies,
                bad_auth: knobs.bad_auth,
                due,
                done,
            };
            if self.outbox.send(job).is_ok() {
                last = rx;
            }
        }
        if knobs.delay_ms.is_some() { None } else { last }
    }
}

fn webhook_body(interview_id: &str, status: &str, external_id: Option<&str>) -> Vec<u8> {
    let mut body = serde_json::Map::new();
    body.insert("interviewId".into(), Value::from(interview_id));
    body.insert("onboardingStatus".into(), Value::from(status));
    if let Some(ext) = external_id {
        body.insert("externalId".into(), Value::from(ext));
    }
    serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
}

/// Result of applying one status.
pub(super) enum Step {
    /// The interview is gone or another control action superseded this one.
    Stale,
    Applied(Option<oneshot::Receiver<()>>),
}

/// Six uppercase letters and digits.
pub(super) fn interview_code() -> String {
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..6)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::incode::sim::{
        FACE_VALIDATION_FINISHED, GOVERNMENT_VALIDATION_FINISHED, ID_VALIDATION_FINISHED,
        ONBOARDING_FINISHED, POST_PROCESSING_FINISHED,
    };

    #[test]
    fn reorder_swaps_pairs_and_flushes_on_terminal() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut iv = Interview {
            record: IncodeInterview {
                interview_id: "i".into(),
                interview_code: "C".into(),
                configuration_id: "f".into(),
                country_code: "ALL".into(),
                language: "en-US".into(),
                external_customer_id: None,
                redirection_url: None,
                custom_fields: None,
                onboarding_status: UNKNOWN.into(),
                history: Vec::new(),
                score_status: UNKNOWN.into(),
                result: None,
                review_decision: None,
                identity_id: None,
                created_at: String::new(),
                starts: 1,
                tokens_issued: 1,
                webhooks_sent: 0,
                webhook_attempts: 0,
                webhooks_delivered: 0,
                webhooks_dropped: 0,
                webhooks: Vec::new(),
            },
            verdict: None,
            pending_verdict: None,
            manual: None,
            epoch: 0,
            walking: false,
            held: None,
            outbox: tx,
        };
        let knobs = IncodeKnobs {
            reorder: true,
            ..IncodeKnobs::default()
        };
        for s in [
            ID_VALIDATION_FINISHED,
            POST_PROCESSING_FINISHED,
            FACE_VALIDATION_FINISHED,
            GOVERNMENT_VALIDATION_FINISHED,
            ONBOARDING_FINISHED,
        ] {
            iv.emit(s, &knobs, 0);
        }
        let mut order = Vec::new();
        while let Ok(job) = rx.try_recv() {
            order.push(job.status);
        }
        assert_eq!(
            order,
            vec![
                POST_PROCESSING_FINISHED,
                ID_VALIDATION_FINISHED,
                GOVERNMENT_VALIDATION_FINISHED,
                FACE_VALIDATION_FINISHED,
                ONBOARDING_FINISHED,
            ]
        );
    }
}
