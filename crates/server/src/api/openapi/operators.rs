//! Paths and schemas of the operator console's operations routes: customer
//! webhook deliveries across sessions and their redelivery (api/deliveries.rs).
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
    json!({
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
        "Redelivered": {"type": "object", "required": ["queued", "more"], "additionalProperties": false, "properties": {
            "queued": {"type": "integer", "minimum": 0},
            "more": {"type": "boolean", "description": "`max` was reached and more matched: send the request again"}}}
    })
}
