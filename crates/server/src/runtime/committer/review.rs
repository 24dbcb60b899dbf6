//! A reviewer's decision, under the session's lock: the review must still
//! be open and claimed by this reviewer (a claim taken meanwhile by another
//! waits for this transaction on PostgreSQL, and SQLite has one writer),
//! then it is applied like any other input. A refusal changes nothing.

use super::*;
use crate::runtime::reviews::{DecideRequest, ReviewRefusal};

pub(super) async fn decide(
    engine: &Arc<Engine>,
    tx: &mut dyn Tx,
    req: &DecideRequest,
    now: i64,
    after: &mut AfterCommit,
) -> Result<Answer, crate::store::Error> {
    let Some(mut row) = tx.lock_session(&req.session_id).await? else {
        return Ok(Answer::Refused(Error::NotFound));
    };
    let refusal = match tx.lock_review(&req.session_id).await? {
        None => Some(ReviewRefusal::absent(&row)),
        Some(review) => ReviewRefusal::check_claim(&review, &req.reviewer, now),
    };
    if let Some(why) = refusal {
        return Ok(Answer::Refused(Error::Review(why)));
    }
    let input = Input::Review {
        visit: row.state.visit,
        decision: req.decision,
        note: req.note.clone(),
        by: req.reviewer.actor(),
    };
    if !transition(engine, tx, &mut row, input, now, after).await? {
        // An open review whose session is not in its step: never left so
        // by the committer, but refused rather than half-applied.
        return Ok(Answer::Refused(Error::Review(ReviewRefusal::NotInReview)));
    }
    // Audited with the change: who decided what; the note (which may speak
    // of the person) stays in the timeline.
    after.audit.push(crate::audit::session(
        crate::audit::action::REVIEW_DECIDED,
        &req.reviewer.audit_actor(),
        &row.id,
        now,
        json!({"decision": req.decision}),
    ));
    Ok(Answer::Apply(Some(row)))
}
