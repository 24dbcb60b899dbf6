//! The review queue on PostgreSQL (store/reviews.rs).

use super::super::audit::NewAudit;
use super::super::reviews::{self, Arg, ReviewFilter, ReviewRow, Reviews};
use super::super::seal::Seal;
use super::super::{Error, Result};
use super::PgStore;
use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgRow;

/// `facts` come from the session's state: sealed at rest as it is.
pub(super) fn review_from_row(r: &PgRow, seal: &Seal) -> Result<ReviewRow> {
    let version: i64 = r.try_get(2)?;
    let facts: String = r.try_get(6)?;
    Ok(ReviewRow {
        session_id: r.try_get(0)?,
        workflow_id: r.try_get(1)?,
        version: u32::try_from(version).map_err(|_| Error::Corrupt("review version".into()))?,
        reference: r.try_get(3)?,
        step: r.try_get(4)?,
        group: r.try_get(5)?,
        facts: seal.parse(&facts, "review facts")?,
        since_ms: r.try_get(7)?,
        deadline_ms: r.try_get(8)?,
        claimed_by: r.try_get(9)?,
        claim_until: r.try_get(10)?,
    })
}

/// `UPSERT_REVIEW` with its arguments bound.
pub(super) fn upsert<'a>(
    r: &'a ReviewRow,
    seal: &Seal,
) -> sqlx::query::Query<'a, sqlx::Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(reviews::UPSERT_REVIEW)
        .bind(&r.session_id)
        .bind(&r.workflow_id)
        .bind(i64::from(r.version))
        .bind(&r.reference)
        .bind(&r.step)
        .bind(&r.group)
        .bind(seal.json(&r.facts))
        .bind(r.since_ms)
        .bind(r.deadline_ms)
}

#[async_trait]
impl Reviews for PgStore {
    async fn reviews(&self, f: &ReviewFilter) -> Result<Vec<ReviewRow>> {
        let (sql, args) = reviews::list(f);
        let mut q = sqlx::query(&sql);
        for a in args {
            q = match a {
                Arg::Text(t) => q.bind(t),
                Arg::Int(i) => q.bind(i),
            };
        }
        q.fetch_all(&mut *self.conn().await?)
            .await?
            .iter()
            .map(|r| review_from_row(r, &self.seal))
            .collect()
    }

    async fn review(&self, session_id: &str) -> Result<Option<ReviewRow>> {
        sqlx::query(reviews::REVIEW_BY_ID)
            .bind(session_id)
            .fetch_optional(&mut *self.conn().await?)
            .await?
            .as_ref()
            .map(|r| review_from_row(r, &self.seal))
            .transpose()
    }

    async fn claim_review(
        &self,
        session_id: &str,
        holder: &str,
        now: i64,
        until: i64,
        audit: &NewAudit,
    ) -> Result<Option<ReviewRow>> {
        let mut tx = self.begin_tx().await?;
        let found = sqlx::query(reviews::CLAIM_REVIEW)
            .bind(holder)
            .bind(until)
            .bind(session_id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?
            .as_ref()
            .map(|r| review_from_row(r, &self.seal))
            .transpose()?;
        if found.is_some() {
            super::audit::append(&mut *tx, std::slice::from_ref(audit)).await?;
        }
        tx.commit().await?;
        Ok(found)
    }
}
