//! Manual review (`review` steps): who decides (a `Reviewer`), the queue as
//! the API reads it, claims, and decisions. A claim is queue bookkeeping
//! (one conditional statement in the store); a decision changes the session,
//! so it goes through the committer like every other input, which checks
//! the claim again under the session's lock (committer/review.rs).

use super::{Command, Engine, Error, Reply, Work};
use crate::ids;
use crate::store::{ReviewFilter, ReviewRow, SessionRow};
use gangway_core::engine::{Actor, Decision};
use std::sync::Arc;
use tokio::sync::oneshot;

/// Who reviews: an API key with the review scopes, or an operator whose
/// role holds them (crate::operators); the queue, the claims and the
/// timeline record only `kind` and `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reviewer {
    kind: &'static str,
    id: String,
}

impl Reviewer {
    pub fn api_key(id: &str) -> Reviewer {
        Reviewer {
            kind: "api_key",
            id: id.to_string(),
        }
    }

    pub fn operator(id: &str) -> Reviewer {
        Reviewer {
            kind: "operator",
            id: id.to_string(),
        }
    }

    /// How a claim names its holder: `api_key:key_...`, `operator:op_...`.
    pub fn holder(&self) -> String {
        format!("{}:{}", self.kind, self.id)
    }

    /// Who the audit log names (`api_key:<id>`, `operator:<id>`).
    pub fn audit_actor(&self) -> crate::audit::Actor {
        match self.kind {
            "operator" => crate::audit::Actor::Operator(self.id.clone()),
            _ => crate::audit::Actor::ApiKey(self.id.clone()),
        }
    }

    pub fn actor(&self) -> Actor {
        Actor {
            kind: self.kind.to_string(),
            id: self.id.clone(),
        }
    }
}

/// Why a claim or a decision was refused (409 each); nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewRefusal {
    #[error("the session is not waiting for a review")]
    NotInReview,
    #[error("the review was already decided `{}`", .0.as_str())]
    AlreadyDecided(Decision),
    #[error("claim the review first (POST /v1/reviews/{{id}}/claim)")]
    NotClaimed,
    #[error("another reviewer holds the claim on this review")]
    ClaimedByAnother {
        /// Until when (Unix ms) the other claim runs.
        until: i64,
    },
    #[error("your claim on this review has expired; claim it again")]
    ClaimExpired,
}

impl ReviewRefusal {
    /// The `reason` member of the problem JSON.
    pub fn code(&self) -> &'static str {
        match self {
            ReviewRefusal::NotInReview => "not_in_review",
            ReviewRefusal::AlreadyDecided(_) => "already_decided",
            ReviewRefusal::NotClaimed => "not_claimed",
            ReviewRefusal::ClaimedByAnother { .. } => "claimed_by_another",
            ReviewRefusal::ClaimExpired => "claim_expired",
        }
    }

    /// Why a session without a review row is not in review: decided
    /// already (its `state.review`, while it has not entered another
    /// review), or never in one.
    pub(super) fn absent(row: &SessionRow) -> ReviewRefusal {
        let decided = row
            .state
            .vars
            .get("review")
            .and_then(|r| r.get("decision"))
            .and_then(|d| serde_json::from_value::<Decision>(d.clone()).ok());
        match decided {
            Some(d) => ReviewRefusal::AlreadyDecided(d),
            None => ReviewRefusal::NotInReview,
        }
    }

    /// Whether `reviewer` may decide `review` at `now`.
    pub(super) fn check_claim(
        review: &ReviewRow,
        reviewer: &Reviewer,
        now: i64,
    ) -> Option<ReviewRefusal> {
        let holder = reviewer.holder();
        match review.claimed_by.as_deref() {
            Some(h) if h == holder && review.claim_until > now => None,
            Some(h) if h == holder => Some(ReviewRefusal::ClaimExpired),
            Some(_) if review.claim_until > now => Some(ReviewRefusal::ClaimedByAnother {
                until: review.claim_until,
            }),
            _ => Some(ReviewRefusal::NotClaimed),
        }
    }
}

/// A reviewer's decision, for the committer.
pub(crate) struct DecideRequest {
    pub session_id: String,
    pub reviewer: Reviewer,
    pub decision: Decision,
    pub note: String,
}

impl Engine {
    /// The review queue, oldest first.
    pub async fn reviews(&self, filter: &ReviewFilter) -> Result<Vec<ReviewRow>, Error> {
        Ok(self.store.reviews(filter).await?)
    }

    /// One session's review; `NotFound` without the session, a refusal
    /// when it is not in review.
    pub async fn review(&self, session_id: &str) -> Result<ReviewRow, Error> {
        match self.store.review(session_id).await? {
            Some(r) => Ok(r),
            None => Err(self.why_no_review(session_id).await),
        }
    }

    /// Claims a session's review for `reviewer` for `ttl_ms` (again: the
    /// claim is extended). Of two reviewers claiming at once one wins; the
    /// other learns who holds it until when. A claim taken is audited
    /// (`review.claimed`) in the same transaction.
    pub async fn claim_review(
        &self,
        session_id: &str,
        reviewer: &Reviewer,
        ttl_ms: i64,
    ) -> Result<ReviewRow, Error> {
        let now = ids::now_ms();
        let until = now.saturating_add(ttl_ms);
        let holder = reviewer.holder();
        // Written with the claim, only when it is taken: who looked at
        // which session's facts, and for how long they held it.
        let audit = crate::audit::session(
            crate::audit::action::REVIEW_CLAIMED,
            &reviewer.audit_actor(),
            session_id,
            now,
            serde_json::json!({"expires_at": super::view::time_json(Some(until))}),
        );
        if let Some(r) = self
            .store
            .claim_review(session_id, &holder, now, until, &audit)
            .await?
        {
            return Ok(r);
        }
        match self.store.review(session_id).await? {
            Some(r) => Err(Error::Review(ReviewRefusal::ClaimedByAnother {
                until: r.claim_until,
            })),
            None => Err(self.why_no_review(session_id).await),
        }
    }

    /// Decides a session's review; the session after the decision (the
    /// workflow went on from it).
    pub async fn decide_review(
        &self,
        session_id: &str,
        reviewer: Reviewer,
        decision: Decision,
        note: String,
    ) -> Result<SessionRow, Error> {
        let (reply, rx) = oneshot::channel();
        self.send(Command {
            work: Work::Decide(Arc::new(DecideRequest {
                session_id: session_id.to_string(),
                reviewer,
                decision,
                note,
            })),
            reply: Reply::Apply(Some(reply)),
        })
        .await?;
        rx.await
            .map_err(|_| Error::ShuttingDown)??
            .ok_or(Error::NotFound)
    }

    async fn why_no_review(&self, session_id: &str) -> Error {
        match self.store.session(session_id).await {
            Ok(Some(row)) => Error::Review(ReviewRefusal::absent(&row)),
            Ok(None) => Error::NotFound,
            Err(e) => Error::Store(e),
        }
    }
}
