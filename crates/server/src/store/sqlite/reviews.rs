//! The review queue on SQLite (store/reviews.rs).

use super::super::audit::NewAudit;
use super::super::reviews::{self, Arg, ReviewFilter, ReviewRow, Reviews};
use super::super::seal::Seal;
use super::super::{Error, Result};
use super::SqliteStore;
use async_trait::async_trait;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

/// `facts` come from the session's state: sealed at rest as it is.
pub(super) fn review_from_row(r: &Row<'_>, seal: &Seal) -> Result<ReviewRow> {
    let version: i64 = r.get(2)?;
    let facts: String = r.get(6)?;
    Ok(ReviewRow {
        session_id: r.get(0)?,
        workflow_id: r.get(1)?,
        version: u32::try_from(version).map_err(|_| Error::Corrupt("review version".into()))?,
        reference: r.get(3)?,
        step: r.get(4)?,
        group: r.get(5)?,
        facts: seal.parse(&facts, "review facts")?,
        since_ms: r.get(7)?,
        deadline_ms: r.get(8)?,
        claimed_by: r.get(9)?,
        claim_until: r.get(10)?,
    })
}

pub(super) fn review_by_id(c: &Connection, id: &str, seal: &Seal) -> Result<Option<ReviewRow>> {
    let mut stmt = c.prepare_cached(reviews::REVIEW_BY_ID)?;
    let mut rows = stmt.query([id])?;
    rows.next()?.map(|r| review_from_row(r, seal)).transpose()
}

pub(super) fn upsert(c: &Connection, r: &ReviewRow, seal: &Seal) -> Result<()> {
    c.prepare_cached(reviews::UPSERT_REVIEW)?.execute(params![
        r.session_id,
        r.workflow_id,
        i64::from(r.version),
        r.reference,
        r.step,
        r.group,
        seal.json(&r.facts),
        r.since_ms,
        r.deadline_ms,
    ])?;
    Ok(())
}

pub(super) fn delete(c: &Connection, session_id: &str) -> Result<()> {
    c.prepare_cached(reviews::DELETE_REVIEW)?
        .execute([session_id])?;
    Ok(())
}

#[async_trait]
impl Reviews for SqliteStore {
    async fn reviews(&self, f: &ReviewFilter) -> Result<Vec<ReviewRow>> {
        let (sql, args) = reviews::list(f);
        let args: Vec<SqlValue> = args
            .into_iter()
            .map(|a| match a {
                Arg::Text(t) => SqlValue::Text(t),
                Arg::Int(i) => SqlValue::Integer(i),
            })
            .collect();
        let seal = self.seal.clone();
        self.run(move |c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let mut rows = stmt.query(params_from_iter(args))?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(review_from_row(r, &seal)?);
            }
            Ok(out)
        })
        .await
    }

    async fn review(&self, session_id: &str) -> Result<Option<ReviewRow>> {
        let (id, seal) = (session_id.to_owned(), self.seal.clone());
        self.run(move |c| review_by_id(c, &id, &seal)).await
    }

    async fn claim_review(
        &self,
        session_id: &str,
        holder: &str,
        now: i64,
        until: i64,
        audit: &NewAudit,
    ) -> Result<Option<ReviewRow>> {
        let (id, holder) = (session_id.to_owned(), holder.to_owned());
        let (seal, audit) = (self.seal.clone(), audit.clone());
        self.run(move |c| {
            let tx = c.transaction()?;
            let found = {
                let mut stmt = tx.prepare_cached(reviews::CLAIM_REVIEW)?;
                stmt.query_row(params![holder, until, id, now], |r| {
                    Ok(review_from_row(r, &seal))
                })
                .optional()?
                .transpose()?
            };
            if found.is_some() {
                super::audit::append(&tx, std::slice::from_ref(&audit))?;
            }
            tx.commit()?;
            Ok(found)
        })
        .await
    }
}
