//! JSON views of a session: the full one for the customer's backend and
//! webhooks, and the small one a browser may see.

use crate::store::SessionRow;
use serde_json::{Value, json};

fn rfc3339(ms: i64) -> Value {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000);
    match t.map(|t| t.format(&time::format_description::well_known::Rfc3339)) {
        Ok(Ok(s)) => Value::String(s),
        _ => Value::Null,
    }
}

pub fn time_json(ms: Option<i64>) -> Value {
    ms.map(rfc3339).unwrap_or(Value::Null)
}

/// The session as the customer's backend sees it (API and webhooks).
pub fn session_json(row: &SessionRow) -> Value {
    let s = &row.state;
    let waiting_on = s.wait.as_ref().map(|w| {
        let mut on = json!({
            "events": w.events,
            "since": rfc3339(w.since_ms),
            "deadline": rfc3339(w.deadline_ms),
        });
        // A `run` step waits for its child session: say which.
        if let Some(child) = &s.child {
            on["session"] = json!(child);
        }
        // A `review` step waits for a reviewer (GET /v1/reviews/{id}).
        if let Some(review) = &w.review {
            on["review"] = json!({"group": review.group});
        }
        on
    });
    json!({
        "id": row.id,
        "workflow": row.workflow_id,
        "version": row.version,
        "status": s.status.as_str(),
        "step": s.step,
        "outcome": s.outcome.map(|o| o.as_str()),
        "reason": s.reason,
        "output": s.output,
        "reference": row.reference,
        "input": row.input,
        "created_at": rfc3339(row.created_at),
        "updated_at": rfc3339(row.updated_at),
        "ended_at": time_json(s.ended_ms),
        "waiting_on": waiting_on,
        "providers": s.providers,
        "refused_events": s.intake.refused,
        // Set once its personal data was erased: the rest is a tombstone.
        "erased_at": time_json(row.erased_at),
    })
}

/// What the browser may know: the step to present and the outcome, nothing
/// from provider results or state. A `qr` presentation carries the rendered
/// SVG instead of the provider's payload (see [`super::qr::for_browser`]).
pub fn client_json(row: &SessionRow) -> Value {
    let s = &row.state;
    let present = s
        .present
        .as_ref()
        .map(|p| super::qr::for_browser(p, &row.id));
    json!({
        "id": row.id,
        "status": s.status.as_str(),
        "step": s.step.as_ref().map(|name| json!({"name": name, "present": present})),
        "outcome": s.outcome.map(|o| o.as_str()),
        "reason": s.reason,
        "deadline": s.wait.as_ref().map(|w| rfc3339(w.deadline_ms)),
    })
}
