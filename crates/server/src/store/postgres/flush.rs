//! What a transaction kept until its commit, written in one statement: each
//! kind of write is a data-modifying `WITH` part, and the notifications are
//! the statement's `SELECT`. A group commit otherwise spent a round trip on
//! each kind (sessions created and changed, jobs dropped and added, timeline,
//! client events, deliveries, consumed events, notifications): about ten per
//! batch. The parts of one statement see the same snapshot, so no part may
//! need another's rows; the callers write such a row earlier on its own (a
//! delivery attempted in the transaction that created it, say).

use super::super::Result;
use sqlx::{Postgres, QueryBuilder, Transaction};

pub(super) type Tx = Transaction<'static, Postgres>;

pub(super) struct Flush<'a> {
    qb: QueryBuilder<'a, Postgres>,
    parts: usize,
}

impl<'a> Flush<'a> {
    pub(super) fn new() -> Flush<'a> {
        Flush {
            qb: QueryBuilder::new(""),
            parts: 0,
        }
    }

    /// Adds one data-modifying statement, which `body` writes.
    pub(super) fn part(&mut self, body: impl FnOnce(&mut Part<'_, 'a>)) {
        self.qb
            .push(if self.parts == 0 { "WITH " } else { ", " })
            .push(format_args!("w{} AS (", self.parts));
        body(&mut Part(&mut self.qb));
        self.qb.push(")");
        self.parts += 1;
    }

    /// Runs the parts, then sends these notifications `(channel, payload)`:
    /// PostgreSQL delivers them at commit, and only if it succeeds.
    pub(super) async fn run(
        mut self,
        tx: &mut Tx,
        channels: Vec<&'a str>,
        payloads: Vec<String>,
    ) -> Result<()> {
        if self.parts == 0 && channels.is_empty() {
            return Ok(());
        }
        if channels.is_empty() {
            self.qb.push(" SELECT 1");
        } else {
            let mut p = Part(&mut self.qb);
            p.sql(" SELECT pg_notify(n.c, n.p) FROM UNNEST(");
            p.array(channels, "text[]");
            p.sql(", ");
            p.array(payloads, "text[]");
            p.sql(") AS n(c, p)");
        }
        self.qb.build().execute(&mut **tx).await?;
        Ok(())
    }
}

/// The text of one part, with its arrays bound as typed parameters.
pub(super) struct Part<'q, 'a>(&'q mut QueryBuilder<'a, Postgres>);

impl<'a> Part<'_, 'a> {
    pub(super) fn sql(&mut self, text: &str) -> &mut Self {
        self.0.push(text);
        self
    }

    /// A parameter cast to `ty` (`text[]`, `int8[]`, ...).
    pub(super) fn array<T>(&mut self, value: T, ty: &str) -> &mut Self
    where
        T: 'a + sqlx::Encode<'a, Postgres> + sqlx::Type<Postgres>,
    {
        self.0.push_bind(value).push("::").push(ty);
        self
    }

    /// Several parameters, comma-separated.
    pub(super) fn columns(&mut self, f: impl FnOnce(&mut Columns<'_, '_, 'a>)) -> &mut Self {
        f(&mut Columns {
            part: self,
            first: true,
        });
        self
    }
}

pub(super) struct Columns<'p, 'q, 'a> {
    part: &'p mut Part<'q, 'a>,
    first: bool,
}

impl<'a> Columns<'_, '_, 'a> {
    pub(super) fn col<T>(&mut self, value: T, ty: &str) -> &mut Self
    where
        T: 'a + sqlx::Encode<'a, Postgres> + sqlx::Type<Postgres>,
    {
        if !self.first {
            self.part.sql(", ");
        }
        self.first = false;
        self.part.array(value, ty);
        self
    }
}
