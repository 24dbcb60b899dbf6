//! Paths and schemas of the operator console's operations routes: customer
//! webhook deliveries across sessions and their redelivery (api/deliveries.rs),
//! and the dashboard's figures (api/stats.rs).
//! Kept apart from paths.rs so that each part of the console adds its own.

use super::{body, op};
use serde_json::{Value, json};

/// A 202 with a JSON body of this schema.
fn accepted(schema: &str) -> Value {
    json!({"202": {"description": "Accepted: queued for an attempt now", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}}})
}

fn delivery_id() -> Value {
    json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}, "description": "The delivery id (`msg_…`, its `webhook-id`)"}])
}

pub fn paths() -> Value {
    let mut list = op(
        "listDeliveries",
        "deliveries",
        "Customer webhook deliveries across sessions, newest first, each with its attempts",
        "apiKey:sessions:read",
        super::ok("DeliveryPage"),
        &["400", "401", "422"],
    );
    list["parameters"] = json!([
        {"name": "status", "in": "query", "schema": {"enum": ["pending", "delivered", "failed"]}},
        {"name": "endpoint", "in": "query", "schema": {"type": "string", "minLength": 1, "maxLength": 2048}, "description": "The endpoint URL, as configured"},
        {"name": "event_type", "in": "query", "schema": {"type": "string", "minLength": 1, "maxLength": 2048}, "description": "`session.updated`, `session.ended`, `session.erased`"},
        {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}, "description": "Created at or after (RFC 3339)"},
        {"name": "cursor", "in": "query", "schema": {"type": "string"}, "description": "`next_cursor` of the previous page"},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}}
    ]);
    let mut show = op(
        "getDelivery",
        "deliveries",
        "One delivery with its attempts",
        "apiKey:sessions:read",
        super::ok("Delivery"),
        &["401", "404"],
    );
    show["parameters"] = delivery_id();
    let mut one = op(
        "redeliverDelivery",
        "deliveries",
        "Send a delivery again now: one attempt with the same `webhook-id` (a pending one's next attempt moves to now); audited",
        "apiKey:sessions:write",
        accepted("Delivery"),
        &["401", "404", "503"],
    );
    one["parameters"] = delivery_id();
    let mut bulk = op(
        "redeliverFailed",
        "deliveries",
        "Replay the failed deliveries created since a time (after an outage), newest first, at most `max`; each audited",
        "apiKey:sessions:write",
        accepted("Redelivered"),
        &["400", "401", "415", "422", "503"],
    );
    bulk["requestBody"] = body("RedeliverFailed", true);
    let period = |workflow: bool| {
        let mut p = vec![
            json!({"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}, "description": "Start, inclusive (RFC 3339); default a week before `until`"}),
            json!({"name": "until", "in": "query", "schema": {"type": "string", "format": "date-time"}, "description": "End, exclusive (RFC 3339); default now. At most 366 days after `since`"}),
        ];
        if workflow {
            p.push(json!({"name": "workflow", "in": "query", "schema": {"type": "string"}, "description": "The workflow's id"}));
        }
        Value::Array(p)
    };
    let mut funnel = op(
        "getFunnel",
        "stats",
        "A workflow's funnel over a period: per step the sessions that reached it, where they went next or ended, how many are still in it, the median time spent",
        "apiKey:sessions:read",
        super::ok("Funnel"),
        &["400", "401", "404", "422"],
    );
    funnel["parameters"] = period(true);
    if let Some(p) = funnel["parameters"].as_array_mut() {
        p[2]["required"] = json!(true);
    }
    let mut outcomes = op(
        "getOutcomes",
        "stats",
        "Sessions ended per hour or day and outcome over a period, of one workflow or all",
        "apiKey:sessions:read",
        super::ok("Outcomes"),
        &["400", "401", "422"],
    );
    outcomes["parameters"] = period(true);
    if let Some(p) = outcomes["parameters"].as_array_mut() {
        p.push(json!({"name": "bucket", "in": "query", "schema": {"enum": ["hour", "day"]}, "description": "Default: `hour` up to two days, else `day`; at most 500 buckets"}));
    }
    let mut providers = op(
        "getProviderHealth",
        "stats",
        "Provider calls per connector over a period (calls, error rate, latency), the customer-webhook backlog now and the delivery lag",
        "apiKey:sessions:read",
        super::ok("ProviderHealth"),
        &["400", "401", "422"],
    );
    providers["parameters"] = period(false);
    json!({
        "/v1/stats/funnel": {"get": funnel},
        "/v1/stats/outcomes": {"get": outcomes},
        "/v1/stats/providers": {"get": providers},
        "/v1/deliveries": {"get": list},
        "/v1/deliveries/redeliver": {"post": bulk},
        "/v1/deliveries/{id}": {"get": show},
        "/v1/deliveries/{id}/redeliver": {"post": one}
    })
}

pub fn schemas() -> Value {
    json!({
        "DeliveryPage": {"type": "object", "required": ["data", "next_cursor"], "additionalProperties": false, "properties": {
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/Delivery"}},
            "next_cursor": {"type": ["string", "null"], "description": "`cursor` of the next page; `null` on the last"}}},
        "RedeliverFailed": {"type": "object", "required": ["status", "since"], "additionalProperties": false, "properties": {
            "status": {"const": "failed"},
            "since": {"type": "string", "format": "date-time", "description": "Deliveries created at or after (RFC 3339)"},
            "endpoint": {"type": "string", "minLength": 1, "maxLength": 2048},
            "event_type": {"type": "string", "minLength": 1, "maxLength": 2048},
            "max": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 10000}}},
        "Funnel": {"type": "object", "required": ["workflow", "since", "until", "steps"], "additionalProperties": false, "properties": {
            "workflow": {"type": "string"}, "since": {"type": "string", "format": "date-time"}, "until": {"type": "string", "format": "date-time"},
            "steps": {"type": "array", "description": "In the workflow's order", "items": {"type": "object",
                "required": ["step", "kind", "sessions", "visits", "in_step", "exits", "median_ms"], "additionalProperties": false, "properties": {
                "step": {"type": "string"}, "kind": {"type": ["string", "null"], "description": "null: a step only an older version has"},
                "sessions": {"type": "integer", "description": "Sessions that entered it in the period"},
                "visits": {"type": "integer", "description": "Entries (a session may enter a step more than once)"},
                "in_step": {"type": "integer", "description": "Visits not left yet"},
                "exits": {"type": "array", "items": {"type": "object", "required": ["visits"], "additionalProperties": false, "properties": {
                    "step": {"type": "string", "description": "Went on to this step"}, "outcome": {"type": "string", "description": "Ended here with this outcome"},
                    "visits": {"type": "integer"}}}},
                "median_ms": {"type": ["integer", "null"], "description": "Median time in the step of the visits that left it (from a histogram, interpolated)"}}}}}},
        "Outcomes": {"type": "object", "required": ["workflow", "since", "until", "bucket_ms", "series"], "additionalProperties": false, "properties": {
            "workflow": {"type": ["string", "null"]}, "since": {"type": "string", "format": "date-time"}, "until": {"type": "string", "format": "date-time"},
            "bucket_ms": {"type": "integer"},
            "series": {"type": "array", "items": {"type": "object", "required": ["start", "counts"], "additionalProperties": false, "properties": {
                "start": {"type": "string", "format": "date-time"},
                "counts": {"type": "object", "additionalProperties": {"type": "integer"}, "description": "Sessions ended per outcome"}}}}}},
        "ProviderHealth": {"type": "object", "required": ["since", "until", "connectors", "webhooks"], "additionalProperties": false, "properties": {
            "since": {"type": "string", "format": "date-time"}, "until": {"type": "string", "format": "date-time"},
            "connectors": {"type": "array", "items": {"type": "object", "required": ["connector", "calls", "errors", "error_rate", "avg_ms", "max_ms"], "additionalProperties": false, "properties": {
                "connector": {"type": "string"}, "calls": {"type": "integer", "description": "Call and poll attempts"},
                "errors": {"type": "integer"}, "error_rate": {"type": "number"}, "avg_ms": {"type": "integer"}, "max_ms": {"type": "integer"}}}},
            "webhooks": {"type": "object", "required": ["pending", "failed", "oldest_pending_at", "delivered", "avg_lag_ms", "max_lag_ms"], "additionalProperties": false, "properties": {
                "pending": {"type": "integer", "description": "Deliveries waiting for an attempt now"}, "failed": {"type": "integer"},
                "oldest_pending_at": {"type": ["string", "null"], "format": "date-time"},
                "delivered": {"type": "integer", "description": "Deliveries created in the period and delivered"},
                "avg_lag_ms": {"type": ["integer", "null"], "description": "From creation to delivery"}, "max_lag_ms": {"type": ["integer", "null"]}}}}},
        "Redelivered": {"type": "object", "required": ["queued", "more"], "additionalProperties": false, "properties": {
            "queued": {"type": "integer", "minimum": 0},
            "more": {"type": "boolean", "description": "`max` was reached and more matched: send the request again"}}}
    })
}
