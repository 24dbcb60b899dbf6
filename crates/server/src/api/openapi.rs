//! The OpenAPI 3.1 document at `/openapi.json`, written by hand next to the
//! routes it describes; a test checks that every route is documented.

use super::AppState;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(document()) }))
}

fn problem_responses(codes: &[&str]) -> Value {
    let mut m = serde_json::Map::new();
    for c in codes {
        m.insert(
            c.to_string(),
            json!({"$ref": "#/components/responses/Problem"}),
        );
    }
    Value::Object(m)
}

fn op(summary: &str, security: &str, ok: Value, errors: &[&str]) -> Value {
    let mut responses = problem_responses(errors);
    if let (Value::Object(r), Value::Object(o)) = (&mut responses, ok) {
        r.extend(o);
    }
    let mut v = json!({"summary": summary, "responses": responses});
    if !security.is_empty() {
        v["security"] = json!([{ security: [] }]);
    }
    v
}

fn ok(schema: &str) -> Value {
    json!({"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}}})
}

fn id_param() -> Value {
    json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}])
}

pub fn document() -> Value {
    let mut create = op(
        "Create a session",
        "apiKey",
        json!({
            "201": {"description": "Created", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CreatedSession"}}}},
            "200": {"description": "Replayed for the same Idempotency-Key and body", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CreatedSession"}}}}
        }),
        &["400", "401", "409", "415", "422", "503"],
    );
    create["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CreateSession"}}}});
    create["parameters"] = json!([{"name": "Idempotency-Key", "in": "header", "schema": {"type": "string", "maxLength": 255}}]);
    let mut list = op(
        "List sessions, newest first",
        "apiKey",
        ok("SessionPage"),
        &["400", "401", "422"],
    );
    list["parameters"] = json!([
        {"name": "status", "in": "query", "schema": {"enum": ["running", "waiting", "ended"]}},
        {"name": "workflow", "in": "query", "schema": {"type": "string"}},
        {"name": "reference", "in": "query", "schema": {"type": "string"}},
        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}}
    ]);
    let with_id = |mut v: Value| {
        v["parameters"] = id_param();
        v
    };
    let mut signal = with_id(op(
        "Send a browser signal (event `signal.<name>`)",
        "clientSecret",
        json!({"200": {"description": "Stored"}}),
        &["400", "401", "415", "422"],
    ));
    signal["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {
        "type": "object", "required": ["name"], "additionalProperties": false,
        "properties": {"name": {"type": "string", "pattern": "^[a-z0-9_]{1,64}$"}, "data": {}, "id": {"type": "string"}}}}}});
    let mut events = with_id(op(
        "Live session events (Server-Sent Events, resumable with Last-Event-ID)",
        "clientSecret",
        json!({"200": {"description": "text/event-stream of `step` and `ended` events, data = ClientSession", "content": {"text/event-stream": {}}}}),
        &["400", "401"],
    ));
    if let Some(p) = events["parameters"].as_array_mut() {
        p.push(json!({"name": "Last-Event-ID", "in": "header", "schema": {"type": "integer"}}));
    }
    let webhook = |summary: &str, param: &str| {
        json!({"post": {"summary": summary, "parameters": [{"name": param, "in": "path", "required": true, "schema": {"type": "string"}}],
            "requestBody": {"required": true, "content": {"application/json": {}}},
            "responses": {"200": {"description": "Stored (or a duplicate)"}, "400": {"$ref": "#/components/responses/Problem"},
                "401": {"$ref": "#/components/responses/Problem"}, "404": {"$ref": "#/components/responses/Problem"}, "422": {"$ref": "#/components/responses/Problem"}}}})
    };
    let mut dry_run = with_id(op(
        "Run the workflow's current version against the built-in simulators (never a real provider) and return the trace",
        "apiKey",
        ok("DryRun"),
        &["400", "401", "404", "415", "422", "503"],
    ));
    dry_run["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": {
        "input": {"type": "object"},
        "events": {"type": "array", "items": {"type": "object", "required": ["at"], "properties": {
            "at": {"type": "string"}, "sim": {"type": "string"}, "action": {"type": "string"}, "body": {},
            "signal": {"type": "string"}, "data": {}}}},
        "timeout_s": {"type": "integer", "minimum": 1, "maximum": 60, "default": 10}}}}}});
    let state_param = json!([{"name": "state", "in": "path", "required": true, "schema": {"type": "string"},
        "description": "The one-time state of the session's permission request (`d360st_…`)."}]);
    let mut redirect_post = op(
        "Record a 360dialog redirect for the workflow to confirm (posted by the redirect page)",
        "",
        json!({"200": {"description": "Recorded; the session waits for it"}}),
        &["400", "404", "409", "415", "422"],
    );
    redirect_post["parameters"] = state_param.clone();
    redirect_post["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {
        "type": "object", "required": ["query"], "additionalProperties": false,
        "properties": {"query": {"type": "string", "maxLength": 4096, "description": "`window.location.search` of the redirect page"}}}}}});
    let redirect_page = json!({"summary": "360dialog redirect page: hands the query to the opener with an explicit target origin and closes, or finishes with a link back",
        "parameters": state_param,
        "responses": {"200": {"description": "text/html", "content": {"text/html": {}}}, "404": {"description": "text/html: unknown state", "content": {"text/html": {}}}}});
    let d360_webhook = json!({"post": {"summary": "360dialog partner webhook (channel_created, channel_running, cancellation_request, ...)",
        "parameters": [{"name": "token", "in": "query", "required": true, "schema": {"type": "string"}, "description": "`dialog360.webhook_token`, registered with the webhook URL"}],
        "requestBody": {"required": true, "content": {"application/json": {}}},
        "responses": {"200": {"description": "Stored (or a duplicate)"}, "400": {"$ref": "#/components/responses/Problem"},
            "401": {"$ref": "#/components/responses/Problem"}, "404": {"$ref": "#/components/responses/Problem"}, "422": {"$ref": "#/components/responses/Problem"}}}});
    let oih_callback = json!({"post": {"summary": "Open Integration Hub flow callback (providers.md 5.2): progress, result or error of one run; deduplicated by (requestId, seq)",
        "parameters": [{"name": "token", "in": "path", "required": true, "schema": {"type": "string"}, "description": "The run's callback token (sent in the trigger's callbackUrl); stored hashed"}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["requestId", "seq", "type"], "properties": {
            "requestId": {"type": "string", "maxLength": 64}, "seq": {"type": "integer", "minimum": 1},
            "type": {"enum": ["progress", "result", "error"]}, "data": {"type": "object"}, "message": {"type": "string"}}}}}},
        "responses": {"200": {"description": "Stored (`duplicate: true` for a repeat)"}, "400": {"$ref": "#/components/responses/Problem"},
            "401": {"$ref": "#/components/responses/Problem"}, "409": {"$ref": "#/components/responses/Problem"}, "422": {"$ref": "#/components/responses/Problem"}}}});
    let chat = json!({"get": {"summary": "The chat of a session that presents `kind: chat`, as a WebSocket: first message {type: hello, secret, last_id}; then message frames with ids, say/ack (docs/api.md#chat)",
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": {"101": {"description": "Switching to the WebSocket protocol"}, "403": {"$ref": "#/components/responses/Problem"}}}});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Gangway API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Durable workflows for embedded onboarding steps. Errors are RFC 9457 problem JSON."},
        "paths": {
            "/v1/sessions": {"post": create, "get": list},
            "/v1/sessions/{id}": {"get": with_id(op("Get a session", "apiKey", ok("Session"), &["401", "404"]))},
            "/v1/sessions/{id}/cancel": {"post": with_id(op("Cancel a session (ends `canceled`)", "apiKey", ok("Session"), &["400", "401", "404", "409"]))},
            "/v1/sessions/{id}/timeline": {"get": with_id(op("Everything that happened, with timings; secrets redacted", "apiKey", ok("Timeline"), &["401", "404"]))},
            "/v1/sessions/{id}/deliveries": {"get": with_id(op("Customer webhook deliveries and every attempt", "apiKey", ok("Deliveries"), &["401", "404"]))},
            "/v1/sessions/{id}/secrets": {"get": with_id(op("The session's provider secrets (360dialog channel API keys), opened; every read is recorded in the timeline (`secrets.accessed`)", "apiKey", ok("Secrets"), &["401", "404"]))},
            "/v1/redirect/360dialog/{state}": {"get": redirect_page, "post": redirect_post},
            "/v1/webhooks/360dialog": d360_webhook,
            "/v1/callbacks/oih/{token}": oih_callback,
            "/v1/client/sessions/{id}/chat": chat,
            "/v1/workflows": {"get": op("Loaded workflows and their versions", "apiKey", ok("Workflows"), &["401"])},
            "/v1/workflows/{id}/dry-run": {"post": dry_run},
            "/v1/client/sessions/{id}": {"get": with_id(op("What the browser presents now", "clientSecret", ok("ClientSession"), &["401"]))},
            "/v1/client/sessions/{id}/events": {"get": events},
            "/v1/client/sessions/{id}/signal": {"post": signal},
            "/v1/client/sessions/{id}/qr.svg": {"get": with_id(op("The QR code the session presents now, as SVG (`?client_secret=` accepted)", "clientSecret", json!({"200": {"description": "image/svg+xml, Cache-Control: no-store", "content": {"image/svg+xml": {}}}}), &["401", "404", "422"]))},
            "/v1/webhooks/http/{name}": webhook("Generic provider webhook, HMAC-SHA256 verified", "name"),
            "/v1/webhooks/{connector}": webhook("Webhook of a dedicated connector", "connector"),
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "OK"}}}},
            "/readyz": {"get": {"summary": "Readiness (database reachable, not stopping)", "responses": {"200": {"description": "Ready"}, "503": {"description": "Not ready"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text/plain"}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}}
        },
        "components": {
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "The customer backend's API key (`gangway keys create`)."},
                "clientSecret": {"type": "http", "scheme": "bearer", "description": "The session's short-lived client secret; `?client_secret=` is accepted on the event stream (EventSource) and on qr.svg (img)."}
            },
            "responses": {"Problem": {"description": "RFC 9457 problem", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}},
            "schemas": {
                "Problem": {"type": "object", "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"}}},
                "CreateSession": {"type": "object", "required": ["workflow"], "additionalProperties": false, "properties": {
                    "workflow": {"type": "string"}, "input": {"type": "object"}, "reference": {"type": "string", "maxLength": 256}}},
                "Outcome": {"enum": ["approved", "declined", "review", "failed", "canceled", "expired"]},
                "Session": {"type": "object", "properties": {
                    "id": {"type": "string"}, "workflow": {"type": "string"}, "version": {"type": "integer"},
                    "status": {"enum": ["running", "waiting", "ended"]}, "step": {"type": ["string", "null"]},
                    "outcome": {"oneOf": [{"$ref": "#/components/schemas/Outcome"}, {"type": "null"}]},
                    "reason": {"type": ["string", "null"]}, "reference": {"type": ["string", "null"]}, "input": {"type": "object"},
                    "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"},
                    "ended_at": {"type": ["string", "null"], "format": "date-time"},
                    "waiting_on": {"type": ["object", "null"], "properties": {"events": {"type": "array", "items": {"type": "string"}}, "since": {"type": "string"}, "deadline": {"type": "string"}}},
                    "providers": {"type": "array", "items": {"type": "object", "properties": {"connector": {"type": "string"}, "provider_session_id": {"type": "string"}}}}}},
                "CreatedSession": {"allOf": [{"$ref": "#/components/schemas/Session"}, {"type": "object", "properties": {
                    "client_secret": {"type": "string"}, "client_secret_expires_at": {"type": "string", "format": "date-time"}}}]},
                "SessionPage": {"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Session"}}, "next_cursor": {"type": ["string", "null"]}}},
                "ClientSession": {"type": "object", "properties": {"id": {"type": "string"}, "status": {"type": "string"},
                    "step": {"type": ["object", "null"], "properties": {"name": {"type": "string"}, "present": {}}},
                    "outcome": {}, "reason": {}, "deadline": {}}},
                "Timeline": {"type": "object", "properties": {"session": {"$ref": "#/components/schemas/Session"}, "entries": {"type": "array", "items": {"type": "object", "properties": {
                    "seq": {"type": "integer"}, "at": {"type": "string"}, "elapsed_ms": {"type": "integer"}, "since_previous_ms": {"type": "integer"},
                    "kind": {"type": "string"}, "step": {"type": ["string", "null"]}, "data": {}}}}}},
                "Secrets": {"type": "object", "properties": {"session_id": {"type": "string"}, "ready": {"type": "boolean"},
                    "secrets": {"type": "array", "items": {"type": "object", "properties": {
                        "name": {"type": "string", "description": "`channel_api_key`"}, "channel_id": {"type": "string"}, "key_id": {},
                        "address": {}, "app_id": {}, "value": {"type": ["string", "null"]}, "step": {"type": "string"}}}}}},
                "Deliveries": {"type": "object", "properties": {"data": {"type": "array", "items": {"type": "object"}}}},
                "DryRun": {"type": "object", "properties": {"workflow": {"type": "string"}, "version": {"type": "integer"},
                    "ended": {"type": "boolean"}, "session": {"$ref": "#/components/schemas/Session"},
                    "trace": {"type": "array", "items": {"type": "object", "properties": {"kind": {"type": "string"}, "at_ms": {"type": "integer"}, "step": {}, "data": {}}}}}},
                "Workflows": {"type": "object", "properties": {"data": {"type": "array", "items": {"type": "object", "properties": {
                    "id": {"type": "string"}, "version": {"type": "integer"}, "description": {"type": "string"}, "versions": {"type": "array"}}}}}}
            }
        }
    })
}
