//! What an erasure does to a session's pending jobs and sent deliveries,
//! decided here on the opened JSON (their columns are sealed, so no SQL
//! JSON function can read them) and written back sealed by each backend.

use serde_json::Value;

/// What becomes of one of the session's jobs.
#[derive(Debug, PartialEq)]
pub(crate) enum JobAfterErasure {
    /// Left as it is: a provider release (the redaction itself) or a child
    /// cancel.
    Keep,
    /// Dropped: timers, polls and calls carry the session's data.
    Drop,
    /// A delivery job without the body it would send: the delivery then
    /// reads its (erased) row.
    Rewrite(Value),
}

pub(crate) fn job_after_erasure(kind: &str, payload: &Value) -> JobAfterErasure {
    match kind {
        "timer" | "poll" => JobAfterErasure::Drop,
        "call" => {
            let release = payload.get("release").is_some_and(|r| !r.is_null());
            let cancel = payload.get("action").and_then(Value::as_str) == Some("workflow.cancel");
            if release || cancel {
                JobAfterErasure::Keep
            } else {
                JobAfterErasure::Drop
            }
        }
        "deliver" if payload.get("body").is_some() => {
            let mut stripped = payload.clone();
            if let Some(o) = stripped.as_object_mut() {
                o.remove("body");
            }
            JobAfterErasure::Rewrite(stripped)
        }
        _ => JobAfterErasure::Keep,
    }
}

/// A delivery's payload with the tombstone as its `data`.
pub(crate) fn delivery_after_erasure(mut payload: Value, tombstone: &Value) -> Value {
    if let Some(o) = payload.as_object_mut() {
        o.insert("data".into(), tombstone.clone());
    }
    payload
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn erasure_drops_the_work_that_carries_data_and_keeps_releases() {
        assert_eq!(job_after_erasure("poll", &json!({})), JobAfterErasure::Drop);
        assert_eq!(
            job_after_erasure("timer", &json!({})),
            JobAfterErasure::Drop
        );
        assert_eq!(
            job_after_erasure(
                "call",
                &json!({"action": "http.request", "args": {"name": "x"}})
            ),
            JobAfterErasure::Drop
        );
        assert_eq!(
            job_after_erasure("call", &json!({"release": {"purpose": "redact"}})),
            JobAfterErasure::Keep
        );
        assert_eq!(
            job_after_erasure("call", &json!({"action": "workflow.cancel"})),
            JobAfterErasure::Keep
        );
        assert_eq!(
            job_after_erasure("deliver", &json!({"delivery_id": "d", "body": {"x": 1}})),
            JobAfterErasure::Rewrite(json!({"delivery_id": "d"}))
        );
        assert_eq!(
            job_after_erasure("deliver", &json!({"delivery_id": "d"})),
            JobAfterErasure::Keep
        );
        assert_eq!(
            delivery_after_erasure(
                json!({"type": "session.ended", "data": {"input": 1}}),
                &json!({"id": "s"})
            ),
            json!({"type": "session.ended", "data": {"id": "s"}})
        );
    }
}
