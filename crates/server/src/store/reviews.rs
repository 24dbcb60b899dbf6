//! The review queue as stored: one row per session waiting in a `review`
//! step (written and deleted by the committer in its transaction), and the
//! claims reviewers take on them (one conditional statement, outside the
//! committer: a claim is not session state). Statements read alike in both
//! dialects (`$N` placeholders, as store/sql.rs explains).

use super::Result;
use super::audit::NewAudit;
use async_trait::async_trait;
use serde_json::Value;

/// A session waiting for a reviewer.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewRow {
    pub session_id: String,
    pub workflow_id: String,
    pub version: u32,
    pub reference: Option<String>,
    /// The `review` step the session waits in.
    pub step: String,
    /// The reviewers' group it is assigned to.
    pub group: Option<String>,
    /// What the workflow hands the reviewer.
    pub facts: Value,
    pub since_ms: i64,
    pub deadline_ms: i64,
    /// Who holds the claim (`Reviewer::id`), while `claim_until` is ahead.
    pub claimed_by: Option<String>,
    pub claim_until: i64,
}

impl ReviewRow {
    /// The claim's holder, if the claim is still valid at `now`.
    pub fn holder(&self, now: i64) -> Option<&str> {
        self.claimed_by
            .as_deref()
            .filter(|_| self.claim_until > now)
    }
}

/// Which reviews to list: oldest first, after the keyset cursor.
#[derive(Debug, Clone, Default)]
pub struct ReviewFilter {
    pub workflow: Option<String>,
    pub group: Option<String>,
    /// Only reviews that began at or before this time (a minimum age).
    pub since_at_most: Option<i64>,
    /// Page after this `(since_ms, session_id)`.
    pub after: Option<(i64, String)>,
    pub limit: i64,
}

/// The review queue of a store.
#[async_trait]
pub trait Reviews: Send + Sync {
    async fn reviews(&self, filter: &ReviewFilter) -> Result<Vec<ReviewRow>>;
    async fn review(&self, session_id: &str) -> Result<Option<ReviewRow>>;
    /// Claims the review for `holder` until `until`, unless another holder's
    /// claim runs past `now`; the review as claimed, or `None` when it is
    /// held by another or not in the queue. One statement: of two
    /// reviewers claiming at once, exactly one wins. `audit` is appended in
    /// the same transaction when (and only when) the claim is taken.
    async fn claim_review(
        &self,
        session_id: &str,
        holder: &str,
        now: i64,
        until: i64,
        audit: &NewAudit,
    ) -> Result<Option<ReviewRow>>;
}

/// One argument of a built statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
}

/// The columns every review read selects, in the order the rows modules read them.
macro_rules! review_columns {
    () => {
        "session_id, workflow_id, version, reference, step, grp, facts, since_ms, deadline_ms, claimed_by, claim_until"
    };
}

pub(crate) const REVIEW_BY_ID: &str = concat!(
    "SELECT ",
    review_columns!(),
    " FROM reviews WHERE session_id = $1"
);
/// In the committer's transaction: PostgreSQL locks the row, so a claim
/// waits for the decision to commit (and then finds no review).
pub(crate) const REVIEW_BY_ID_FOR_UPDATE: &str = concat!(
    "SELECT ",
    review_columns!(),
    " FROM reviews WHERE session_id = $1 FOR UPDATE"
);
/// Entering a review step again starts a new review: no claim carries over.
pub(crate) const UPSERT_REVIEW: &str = "INSERT INTO reviews
       (session_id, workflow_id, version, reference, step, grp, facts, since_ms, deadline_ms, claimed_by, claim_until)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, 0)
     ON CONFLICT (session_id) DO UPDATE SET step = excluded.step, grp = excluded.grp,
       facts = excluded.facts, since_ms = excluded.since_ms, deadline_ms = excluded.deadline_ms,
       claimed_by = NULL, claim_until = 0";
pub(crate) const DELETE_REVIEW: &str = "DELETE FROM reviews WHERE session_id = $1";
pub(crate) const CLAIM_REVIEW: &str = concat!(
    "UPDATE reviews SET claimed_by = $1, claim_until = $2
     WHERE session_id = $3 AND (claimed_by IS NULL OR claimed_by = $1 OR claim_until <= $4)
     RETURNING ",
    review_columns!()
);

/// The listing for a filter: the statement and its arguments, the limit last.
pub(crate) fn list(f: &ReviewFilter) -> (String, Vec<Arg>) {
    let mut sql = String::from(concat!(
        "SELECT ",
        review_columns!(),
        " FROM reviews WHERE 1 = 1"
    ));
    let mut args = Vec::with_capacity(6);
    let mut push = |sql: &mut String, cond: &str, arg: Arg| {
        args.push(arg);
        sql.push_str(&cond.replace("$?", &format!("${}", args.len())));
    };
    if let Some(w) = &f.workflow {
        push(&mut sql, " AND workflow_id = $?", Arg::Text(w.clone()));
    }
    if let Some(g) = &f.group {
        push(&mut sql, " AND grp = $?", Arg::Text(g.clone()));
    }
    if let Some(t) = f.since_at_most {
        push(&mut sql, " AND since_ms <= $?", Arg::Int(t));
    }
    if let Some((since, id)) = &f.after {
        push(
            &mut sql,
            " AND (since_ms, session_id) > ($?",
            Arg::Int(*since),
        );
        push(&mut sql, ", $?)", Arg::Text(id.clone()));
    }
    push(
        &mut sql,
        " ORDER BY since_ms, session_id LIMIT $?",
        Arg::Int(f.limit),
    );
    (sql, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_number_their_arguments_in_order() {
        let f = ReviewFilter {
            group: Some("kyc".into()),
            after: Some((5, "ses_a".into())),
            limit: 10,
            ..ReviewFilter::default()
        };
        let (sql, args) = list(&f);
        assert!(
            sql.ends_with(
                "AND grp = $1 AND (since_ms, session_id) > ($2, $3) ORDER BY since_ms, session_id LIMIT $4"
            ),
            "{sql}"
        );
        assert_eq!(
            args,
            [
                Arg::Text("kyc".into()),
                Arg::Int(5),
                Arg::Text("ses_a".into()),
                Arg::Int(10)
            ]
        );
    }
}
