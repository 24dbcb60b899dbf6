//! Deliveries across sessions on PostgreSQL (store/deliveries.rs).

use super::super::deliveries::{self, Deliveries, DeliveryFilter};
use super::super::reviews::Arg;
use super::super::{Delivery, DeliveryAttempt, Result};
use super::PgStore;
use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgRow;
use std::collections::HashMap;

fn delivery_from_row(r: &PgRow) -> Result<Delivery> {
    Ok(Delivery {
        id: r.try_get(0)?,
        session_id: r.try_get(1)?,
        endpoint: r.try_get(2)?,
        event_type: r.try_get(3)?,
        status: r.try_get(4)?,
        attempts: r.try_get(5)?,
        created_at: r.try_get(6)?,
        next_attempt_at: r.try_get(7)?,
        delivered_at: r.try_get(8)?,
        attempt_log: Vec::new(),
    })
}

/// The attempts of a page's deliveries, in one round trip.
const ATTEMPTS_OF: &str = "SELECT delivery_id, attempt, at, status_code, error, duration_ms
     FROM delivery_attempts WHERE delivery_id = ANY($1) ORDER BY delivery_id, attempt";

impl PgStore {
    async fn with_attempts(&self, mut list: Vec<Delivery>) -> Result<Vec<Delivery>> {
        if list.is_empty() {
            return Ok(list);
        }
        let ids: Vec<String> = list.iter().map(|d| d.id.clone()).collect();
        let rows = sqlx::query(ATTEMPTS_OF)
            .bind(&ids)
            .fetch_all(&mut *self.conn().await?)
            .await?;
        let mut by_id: HashMap<String, Vec<DeliveryAttempt>> = HashMap::new();
        for r in &rows {
            by_id
                .entry(r.try_get(0)?)
                .or_default()
                .push(DeliveryAttempt {
                    attempt: r.try_get(1)?,
                    at: r.try_get(2)?,
                    status_code: r.try_get(3)?,
                    error: r.try_get(4)?,
                    duration_ms: r.try_get(5)?,
                });
        }
        for d in &mut list {
            d.attempt_log = by_id.remove(&d.id).unwrap_or_default();
        }
        Ok(list)
    }
}

#[async_trait]
impl Deliveries for PgStore {
    async fn list_deliveries(&self, f: &DeliveryFilter) -> Result<Vec<Delivery>> {
        let (sql, args) = deliveries::list(f);
        let mut q = sqlx::query(&sql);
        for a in args {
            q = match a {
                Arg::Text(t) => q.bind(t),
                Arg::Int(i) => q.bind(i),
            };
        }
        let list = q
            .fetch_all(&mut *self.conn().await?)
            .await?
            .iter()
            .map(delivery_from_row)
            .collect::<Result<Vec<_>>>()?;
        self.with_attempts(list).await
    }

    async fn delivery(&self, id: &str) -> Result<Option<Delivery>> {
        let found = sqlx::query(deliveries::DELIVERY_BY_ID)
            .bind(id)
            .fetch_optional(&mut *self.conn().await?)
            .await?
            .as_ref()
            .map(delivery_from_row)
            .transpose()?;
        Ok(self.with_attempts(found.into_iter().collect()).await?.pop())
    }
}
