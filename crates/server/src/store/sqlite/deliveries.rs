//! Deliveries across sessions on SQLite (store/deliveries.rs).

use super::super::deliveries::{self, Deliveries, DeliveryFilter};
use super::super::reviews::Arg;
use super::super::{Delivery, DeliveryAttempt, Result, sql};
use super::SqliteStore;
use super::rows::collect;
use async_trait::async_trait;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, Row, params_from_iter};

fn delivery_from_row(r: &Row<'_>) -> Result<Delivery> {
    Ok(Delivery {
        id: r.get(0)?,
        session_id: r.get(1)?,
        endpoint: r.get(2)?,
        event_type: r.get(3)?,
        status: r.get(4)?,
        attempts: r.get(5)?,
        created_at: r.get(6)?,
        next_attempt_at: r.get(7)?,
        delivered_at: r.get(8)?,
        attempt_log: Vec::new(),
    })
}

/// Each delivery's attempts: a primary-key lookup per delivery, in process
/// (a page holds at most a few hundred).
fn with_attempts(c: &Connection, mut list: Vec<Delivery>) -> Result<Vec<Delivery>> {
    let mut stmt = c.prepare_cached(sql::DELIVERY_ATTEMPTS)?;
    for d in &mut list {
        d.attempt_log = collect(&mut stmt, [&d.id], |a| {
            Ok(DeliveryAttempt {
                attempt: a.get(0)?,
                at: a.get(1)?,
                status_code: a.get(2)?,
                error: a.get(3)?,
                duration_ms: a.get(4)?,
            })
        })?;
    }
    Ok(list)
}

#[async_trait]
impl Deliveries for SqliteStore {
    async fn list_deliveries(&self, f: &DeliveryFilter) -> Result<Vec<Delivery>> {
        let (sql, args) = deliveries::list(f);
        let args: Vec<SqlValue> = args
            .into_iter()
            .map(|a| match a {
                Arg::Text(t) => SqlValue::Text(t),
                Arg::Int(i) => SqlValue::Integer(i),
            })
            .collect();
        self.run(move |c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let list = collect(&mut stmt, params_from_iter(args), delivery_from_row)?;
            with_attempts(c, list)
        })
        .await
    }

    async fn delivery(&self, id: &str) -> Result<Option<Delivery>> {
        let id = id.to_owned();
        self.run(move |c| {
            let mut stmt = c.prepare_cached(deliveries::DELIVERY_BY_ID)?;
            let list = collect(&mut stmt, [id], delivery_from_row)?;
            Ok(with_attempts(c, list)?.pop())
        })
        .await
    }
}
