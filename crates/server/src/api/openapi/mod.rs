//! The OpenAPI 3.1 document at `/openapi.json`, written by hand next to the
//! routes it describes: the operations (paths.rs) and the bodies
//! (schemas.rs). Every operation has an `operationId` (the names generated
//! clients use), a tag, its security (`[]` where no API key or client
//! secret is taken) and every status it answers. `scripts/clients` lints it
//! (Redocly) and runs clients generated from it against a live server.

mod paths;
mod schemas;

use super::AppState;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(document()) }))
}

/// `Problem` responses for these statuses.
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

/// An operation. `security` is `apiKey:<scope>` (the scope the key needs),
/// `clientSecret`, or empty (none: `security: []`); credentialed operations
/// may also answer 429, and 403 (API key: a key without the scope; client
/// secret: a request from an origin not allowed).
fn op(id: &str, tag: &str, summary: &str, security: &str, ok: Value, errors: &[&str]) -> Value {
    let mut errors = errors.to_vec();
    let (scheme, scope) = security.split_once(':').unwrap_or((security, ""));
    if scheme == "apiKey" || scheme == "clientSecret" {
        errors.push("403");
    }
    if !scheme.is_empty() {
        errors.push("429");
    }
    let mut responses = problem_responses(&errors);
    if let (Value::Object(r), Value::Object(o)) = (&mut responses, ok) {
        r.extend(o);
    }
    let security = if scheme.is_empty() {
        json!([])
    } else {
        let scopes: Vec<&str> = (!scope.is_empty()).then_some(scope).into_iter().collect();
        if scheme == "apiKey" {
            // An operator's console session reaches the same operations,
            // by its role's scopes (docs/console.md).
            json!([{ "apiKey": scopes.clone() }, { "consoleSession": scopes }])
        } else {
            json!([{ scheme: scopes }])
        }
    };
    json!({"operationId": id, "tags": [tag], "summary": summary, "security": security, "responses": responses})
}

/// A 200 with a JSON body of this schema.
fn ok(schema: &str) -> Value {
    ok_with("OK", schema)
}

fn ok_with(description: &str, schema: &str) -> Value {
    json!({"200": {"description": description, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}}})
}

/// A JSON request body of this schema.
fn body(schema: &str, required: bool) -> Value {
    json!({"required": required, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

/// Every operation with a path parameter may answer 400 (a path that is
/// not UTF-8 once decoded) and 422 (a control character in it), before
/// its handler runs (shapes.rs); found missing by schemathesis. Every
/// operation may answer 414 (a request target over 8 KiB) and 431 (too
/// many or too large header fields), also before any handler.
fn common_errors(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for item in paths.values_mut() {
        let Some(ops) = item.as_object_mut() else {
            continue;
        };
        for op in ops.values_mut() {
            let has_path_param = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["in"] == "path"));
            let mut codes = vec!["414", "431"];
            if has_path_param {
                codes.extend(["400", "422"]);
            }
            if let Some(responses) = op["responses"].as_object_mut() {
                for code in codes {
                    responses
                        .entry(code)
                        .or_insert_with(|| json!({"$ref": "#/components/responses/Problem"}));
                }
            }
        }
    }
}

pub fn document() -> Value {
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {"title": "Gangway API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Durable workflows for embedded onboarding steps. Errors are RFC 9457 problem JSON. Reference: docs/api.md.",
                 "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}},
        // Relative: the server that serves this document.
        "servers": [{"url": "/", "description": "The Gangway that serves this document"}],
        "tags": [
            {"name": "sessions", "description": "Sessions, for the customer's backend (API key)"},
            {"name": "reviews", "description": "The review queue: claim and decide sessions waiting in a `review` step (API key with reviews:read / reviews:decide)"},
            {"name": "workflows", "description": "Loaded workflows and dry runs (API key)"},
            {"name": "admin", "description": "API keys (API key with the `admin` scope)"},
            {"name": "client", "description": "The browser's view of one session (client secret)"},
            {"name": "webhooks", "description": "Provider webhooks, callbacks and redirects, each authenticated in its own way"},
            {"name": "operations", "description": "Health, readiness, metrics and this document"}
        ],
        "paths": paths::paths(),
        "components": {
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "The customer backend's API key (`gangway keys create`). Each operation lists the scope the key needs: sessions:read, sessions:write, secrets:read, workflows:read, workflows:dry-run, sessions:erase, reviews:read, reviews:decide or admin (admin implies the reviews scopes; docs/api.md#scopes); without it the answer is 403 with `missing_scope`."},
                "consoleSession": {"type": "apiKey", "in": "cookie", "name": "gangway_console", "description": "An operator's console session (sign in at /console/login; docs/console.md). Its role grants scopes: viewer sessions:read, workflows:read, reviews:read; reviewer also reviews:decide; admin also sessions:write, workflows:dry-run and admin. State-changing requests must send the session's CSRF token (GET /v1/console/me) in `X-CSRF-Token` and come from the console's origin (403 `csrf` otherwise)."},
                "clientSecret": {"type": "http", "scheme": "bearer", "description": "The session's short-lived client secret; `?client_secret=` is accepted on the event stream (EventSource) and on qr.svg (img)."},
                "clientSecretQuery": {"type": "apiKey", "in": "query", "name": "client_secret", "description": "The client secret as a query parameter, where an `EventSource` or an `<img>` cannot send headers (the event stream, qr.svg)."}
            },
            "responses": {"Problem": {"description": "RFC 9457 problem", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}},
            "schemas": schemas::schemas()
        }
    });
    common_errors(&mut doc);
    doc
}

#[cfg(test)]
mod tests;
