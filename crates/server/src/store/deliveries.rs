//! Customer webhook deliveries across sessions, as the console and the
//! `/v1/deliveries` API read them: newest first with keyset pagination on
//! the id (ids begin with their creation time, ids.rs), filtered by status,
//! endpoint, event type and a creation-time lower bound, each served by an
//! index (migration 0009). Statements read alike in both dialects (`$N`
//! placeholders, as store/sql.rs explains).

use super::reviews::Arg;
use super::{Delivery, Result};
use async_trait::async_trait;

/// Which deliveries to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// `pending`, `delivered` or `failed`.
    pub status: Option<String>,
    pub endpoint: Option<String>,
    pub event_type: Option<String>,
    /// Created at or after this time (ms).
    pub since: Option<i64>,
    /// Page after (older than) this id.
    pub before: Option<String>,
    pub limit: i64,
}

/// Deliveries across sessions.
#[async_trait]
pub trait Deliveries: Send + Sync {
    /// The deliveries of the filter, each with its attempts.
    async fn list_deliveries(&self, filter: &DeliveryFilter) -> Result<Vec<Delivery>>;
    /// One delivery with its attempts.
    async fn delivery(&self, id: &str) -> Result<Option<Delivery>>;
}

/// The prefix of delivery ids (runtime/committer/effects.rs).
pub const ID_PREFIX: &str = "msg";

/// The smallest id a delivery created at `ms` or later can have: ids are
/// `msg_` + 12 hex digits of milliseconds + random digits, so comparing ids
/// compares creation times and `since` uses the same index as the order.
pub fn id_floor(ms: i64) -> String {
    let ms = u64::try_from(ms).unwrap_or_default();
    format!("{ID_PREFIX}_{ms:012x}")
}

/// The columns every delivery read selects, in the order the backends read them.
macro_rules! delivery_columns {
    () => {
        "id, session_id, endpoint, event_type, status, attempts, created_at, next_attempt_at, delivered_at"
    };
}

pub(crate) const DELIVERY_BY_ID: &str = concat!(
    "SELECT ",
    delivery_columns!(),
    " FROM deliveries WHERE id = $1"
);

/// In the committer's transaction: a delivery that is not pending becomes
/// pending again, due now. The status check makes two redeliveries of one
/// delivery at once queue one attempt, not two with the same number.
pub(crate) const REQUEUE_DELIVERY: &str =
    "UPDATE deliveries SET status = 'pending', next_attempt_at = $1
     WHERE id = $2 AND status <> 'pending' RETURNING session_id";

/// The listing for a filter: the statement and its arguments, the limit last.
pub(crate) fn list(f: &DeliveryFilter) -> (String, Vec<Arg>) {
    let mut sql = String::from(concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM deliveries WHERE 1 = 1"
    ));
    let mut args = Vec::with_capacity(6);
    let mut push = |sql: &mut String, cond: &str, arg: Arg| {
        args.push(arg);
        sql.push_str(&cond.replace("$?", &format!("${}", args.len())));
    };
    if let Some(s) = &f.status {
        push(&mut sql, " AND status = $?", Arg::Text(s.clone()));
    }
    if let Some(e) = &f.endpoint {
        push(&mut sql, " AND endpoint = $?", Arg::Text(e.clone()));
    }
    if let Some(t) = &f.event_type {
        push(&mut sql, " AND event_type = $?", Arg::Text(t.clone()));
    }
    if let Some(since) = f.since {
        push(&mut sql, " AND id >= $?", Arg::Text(id_floor(since)));
    }
    if let Some(before) = &f.before {
        push(&mut sql, " AND id < $?", Arg::Text(before.clone()));
    }
    push(&mut sql, " ORDER BY id DESC LIMIT $?", Arg::Int(f.limit));
    (sql, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_number_their_arguments_in_order() {
        let f = DeliveryFilter {
            status: Some("failed".into()),
            event_type: Some("session.ended".into()),
            since: Some(0x10),
            before: Some("msg_b".into()),
            limit: 10,
            ..DeliveryFilter::default()
        };
        let (sql, args) = list(&f);
        assert!(
            sql.ends_with(
                "WHERE 1 = 1 AND status = $1 AND event_type = $2 AND id >= $3 AND id < $4 ORDER BY id DESC LIMIT $5"
            ),
            "{sql}"
        );
        assert_eq!(
            args,
            [
                Arg::Text("failed".into()),
                Arg::Text("session.ended".into()),
                Arg::Text("msg_000000000010".into()),
                Arg::Text("msg_b".into()),
                Arg::Int(10)
            ]
        );
    }

    #[test]
    fn the_id_floor_orders_with_ids_of_later_deliveries() {
        let at = 1_700_000_000_000;
        let id = crate::ids::new_id(ID_PREFIX);
        assert!(id_floor(at) < id);
        assert!(id_floor(crate::ids::now_ms() + 1000) > id);
    }
}
