//! An interview's life: creation, the status walk of a finish, manual review.

use std::time::Duration;

use axum::http::StatusCode;
use rand::seq::SliceRandom;
use tokio::sync::mpsc;

use super::api::StartRequest;
use super::errors::ApiError;
use super::interview::{FinishResult, Interview, Step, Verdict, interview_code};
use super::tokens::TokenKind;
use super::webhooks::outbox_worker;
use super::*;
use crate::sim::now_rfc3339;

impl IncodeSim {
    pub(super) fn create_interview(&self, req: StartRequest) -> (String, String, String) {
        let id = hex::encode(rand::random::<[u8; 12]>());
        let code = interview_code();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(outbox_worker(Arc::downgrade(&self.inner), id.clone(), rx));
        let now = now_rfc3339();
        let record = IncodeInterview {
            interview_id: id.clone(),
            interview_code: code.clone(),
            configuration_id: req.configuration_id,
            country_code: req.country_code.unwrap_or_else(|| "ALL".into()),
            language: req.language.unwrap_or_else(|| "en-US".into()),
            external_customer_id: req.external_customer_id,
            redirection_url: req.redirection_url,
            custom_fields: req.custom_fields,
            onboarding_status: UNKNOWN.into(),
            history: vec![StatusChange {
                status: UNKNOWN.into(),
                at: now.clone(),
            }],
            score_status: UNKNOWN.into(),
            result: None,
            review_decision: None,
            identity_id: None,
            created_at: now,
            starts: 1,
            tokens_issued: 1,
            webhooks_sent: 0,
            webhook_attempts: 0,
            webhooks_delivered: 0,
            webhooks_dropped: 0,
            webhooks: Vec::new(),
        };
        let mut st = self.lock();
        let ttl = i64::try_from(st.knobs.token_ttl_s).unwrap_or(i64::MAX);
        let token = self.issue_token(&mut st, TokenKind::Session(id.clone()), ttl);
        st.interviews.insert(
            id.clone(),
            Interview {
                record,
                verdict: None,
                pending_verdict: None,
                manual: None,
                epoch: 0,
                walking: false,
                held: None,
                outbox: tx,
            },
        );
        (id, code, token)
    }

    /// Sets `status` if `epoch` is still current and queues its webhook(s).
    pub(super) fn apply(&self, interview_id: &str, epoch: u64, status: &str) -> Step {
        let mut st = self.lock();
        let generation = st.generation;
        let knobs = st.knobs.clone();
        let Some(iv) = st.interviews.get_mut(interview_id) else {
            return Step::Stale;
        };
        if iv.epoch != epoch {
            return Step::Stale;
        }
        iv.record.onboarding_status = status.to_owned();
        iv.record.history.push(StatusChange {
            status: status.to_owned(),
            at: now_rfc3339(),
        });
        if status == ONBOARDING_FINISHED {
            iv.verdict = iv.pending_verdict.take();
        }
        if is_terminal(status) {
            iv.walking = false;
        }
        iv.record.score_status = iv.score_status();
        tracing::debug!(interview = %interview_id, %status, "incode sim: status changed");
        Step::Applied(iv.emit(status, &knobs, generation))
    }

    /// [`Self::apply`], then waits until the webhooks were sent (unless delayed).
    /// False when stale.
    pub(super) async fn step(&self, interview_id: &str, epoch: u64, status: &str) -> bool {
        match self.apply(interview_id, epoch, status) {
            Step::Stale => false,
            Step::Applied(wait) => {
                if let Some(rx) = wait {
                    let _ = rx.await;
                }
                true
            }
        }
    }

    /// Walks `statuses`: the first at once, the others `step_delay_ms` apart
    /// (in the background when that is not 0).
    pub(super) async fn walk(
        &self,
        interview_id: &str,
        epoch: u64,
        statuses: Vec<&'static str>,
        step_delay_ms: u64,
    ) {
        let mut rest = statuses.into_iter();
        if let Some(first) = rest.next()
            && !self.step(interview_id, epoch, first).await
        {
            return;
        }
        if step_delay_ms == 0 {
            for status in rest {
                if !self.step(interview_id, epoch, status).await {
                    return;
                }
            }
            return;
        }
        let sim = self.clone();
        let id = interview_id.to_owned();
        let rest: Vec<&'static str> = rest.collect();
        tokio::spawn(async move {
            for status in rest {
                tokio::time::sleep(Duration::from_millis(step_delay_ms)).await;
                if matches!(sim.apply(&id, epoch, status), Step::Stale) {
                    return;
                }
            }
        });
    }

    /// The finish of the hosted flow (or of a test). `immediate` ignores
    /// `step_delay_ms` (used by `early`). Returns the status afterwards.
    pub(super) async fn finish(
        &self,
        interview_id: &str,
        result: FinishResult,
        immediate: bool,
    ) -> Result<String, ApiError> {
        let (epoch, knobs) = {
            let mut st = self.lock();
            let knobs = st.knobs.clone();
            let iv = st
                .interviews
                .get_mut(interview_id)
                .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "interview not found"))?;
            let status = &iv.record.onboarding_status;
            if is_terminal(status) {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("the interview is already {status}"),
                ));
            }
            if iv.walking && result != FinishResult::Expire {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "the interview is already finishing",
                ));
            }
            iv.epoch += 1;
            iv.record.result = Some(result.as_str().into());
            iv.pending_verdict = match result {
                FinishResult::Pass => Some(Verdict::Ok),
                FinishResult::Fail => Some(Verdict::Fail),
                FinishResult::Review => Some(Verdict::Review(knobs.review_status.clone())),
                FinishResult::Abandon | FinishResult::Expire => None,
            };
            iv.walking = iv.pending_verdict.is_some();
            (iv.epoch, knobs)
        };
        match result {
            FinishResult::Pass | FinishResult::Fail | FinishResult::Review => {
                let mut middle = [
                    POST_PROCESSING_FINISHED,
                    FACE_VALIDATION_FINISHED,
                    GOVERNMENT_VALIDATION_FINISHED,
                ];
                if knobs.shuffle_statuses {
                    middle.shuffle(&mut rand::rng());
                }
                let mut statuses = vec![ID_VALIDATION_FINISHED];
                statuses.extend(middle);
                statuses.push(ONBOARDING_FINISHED);
                let delay = if immediate { 0 } else { knobs.step_delay_ms };
                self.walk(interview_id, epoch, statuses, delay).await;
            }
            FinishResult::Abandon => match knobs.abandon_expire_ms {
                None => {}
                Some(0) => {
                    self.step(interview_id, epoch, EXPIRED).await;
                }
                Some(ms) => {
                    let sim = self.clone();
                    let id = interview_id.to_owned();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        sim.apply(&id, epoch, EXPIRED);
                    });
                }
            },
            FinishResult::Expire => {
                self.step(interview_id, epoch, EXPIRED).await;
            }
        }
        Ok(self
            .session(interview_id)
            .map(|s| s.onboarding_status)
            .unwrap_or_default())
    }

    /// A manual review decision on a finished interview.
    pub(super) async fn review(
        &self,
        interview_id: &str,
        approve: bool,
    ) -> Result<String, ApiError> {
        let (epoch, status) = {
            let mut st = self.lock();
            let iv = st
                .interviews
                .get_mut(interview_id)
                .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "interview not found"))?;
            if iv.record.onboarding_status != ONBOARDING_FINISHED {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!(
                        "only an ONBOARDING_FINISHED interview can be reviewed (it is {})",
                        iv.record.onboarding_status
                    ),
                ));
            }
            iv.epoch += 1;
            iv.manual = Some(approve);
            iv.record.review_decision = Some(if approve { "approve" } else { "reject" }.into());
            let status = if approve {
                MANUAL_REVIEW_APPROVED
            } else {
                MANUAL_REVIEW_REJECTED
            };
            (iv.epoch, status)
        };
        self.step(interview_id, epoch, status).await;
        Ok(status.to_owned())
    }
}
