//! `components.schemas` of the OpenAPI document: every body the API sends
//! or takes. Response objects list every member the server writes, all
//! required (the server always writes them, `null` when empty), so that
//! generated clients get exact types; `scripts/clients` and
//! `scripts/schemathesis` check what the server sends against them with
//! every object closed (no member the document does not name). Members
//! that hold the workflow's or a provider's own JSON say
//! `additionalProperties: true`.

use serde_json::{Map, Value, json};

/// An object schema whose members are all required.
pub fn exact(properties: Value) -> Value {
    let required: Vec<String> = properties
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    json!({"type": "object", "required": required, "properties": properties})
}

/// `exact`, or `null`.
fn exact_or_null(properties: Value) -> Value {
    let mut v = exact(properties);
    v["type"] = json!(["object", "null"]);
    v
}

/// `base`'s members and `more`, all required: one flat object instead of
/// an `allOf`, which a closed object cannot be extended by.
fn extend(base: &Value, more: Value) -> Value {
    let mut props: Map<String, Value> = base.as_object().cloned().unwrap_or_default();
    if let Value::Object(m) = more {
        props.extend(m);
    }
    exact(Value::Object(props))
}

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn time() -> Value {
    json!({"type": "string", "format": "date-time"})
}

fn time_or_null() -> Value {
    json!({"type": ["string", "null"], "format": "date-time"})
}

fn string_or_null() -> Value {
    json!({"type": ["string", "null"]})
}

/// Any JSON object (the workflow's or a provider's own).
fn any_object(description: &str) -> Value {
    json!({"type": "object", "additionalProperties": true, "description": description})
}

fn session_properties() -> Value {
    json!({
        "id": {"type": "string", "description": "`ses_…`"},
        "workflow": {"type": "string"},
        "version": {"type": "integer", "minimum": 1, "description": "The workflow version the session runs on, fixed at creation"},
        "status": r("SessionStatus"),
        "step": {"type": ["string", "null"], "description": "The current step; once ended, the step it ended in"},
        "outcome": {"oneOf": [r("Outcome"), {"type": "null"}]},
        "reason": {"type": ["string", "null"], "description": "Once ended: why, in words"},
        "output": {"description": "Once ended through an `end` step with `output`: the value it handed back (any JSON); `null` otherwise"},
        "reference": string_or_null(),
        "input": any_object("The input given at creation"),
        "created_at": time(),
        "updated_at": time(),
        "ended_at": time_or_null(),
        "waiting_on": {
            "type": ["object", "null"], "required": ["events", "since", "deadline"],
            "description": "While waiting: the events it waits for, since when, and the deadline",
            "properties": {
                "events": {"type": "array", "items": {"type": "string"}},
                "since": time(), "deadline": time(),
                "session": {"type": "string", "description": "A `run` step: the child session it waits for"},
                "review": exact(json!({"group": {"type": ["string", "null"], "description": "The reviewers' group it is assigned to"}}))}},
        "providers": {"type": "array", "items": exact(json!({"connector": {"type": "string"}, "provider_session_id": {"type": "string"}}))},
        "refused_events": {"type": "integer", "minimum": 0, "description": "Inputs refused and not stored: sent after the end, or beyond a per-session limit"},
        "erased_at": {"type": ["string", "null"], "format": "date-time", "description": "When its personal data was erased (on request or at the end of its retention); what is left is a tombstone: `input` is `{}`, `output` and `reason` are `null`"}
    })
}

fn api_key_properties() -> Value {
    json!({
        "id": {"type": "string", "description": "`key_…`"}, "name": {"type": "string"},
        "scopes": {"type": "array", "items": r("Scope")},
        "status": {"enum": ["active", "expired", "revoked"]},
        "created_at": time(), "expires_at": time_or_null(),
        "revoked_at": time_or_null(), "rotated_at": time_or_null(),
        "previous_secret_expires_at": {"type": ["string", "null"], "format": "date-time", "description": "Until when the secret a rotation replaced still works"}
    })
}

pub fn schemas() -> Value {
    let session = session_properties();
    let api_key = api_key_properties();
    merge([
        json!({
            "Problem": {"type": "object", "required": ["type", "title", "status", "detail"], "properties": {
                "type": {"type": "string", "format": "uri"}, "title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"},
                "missing_scope": {"type": "string", "description": "403: the scope the API key lacks"},
                "limit": {"enum": ["api_key", "client_secret", "source", "failed_auth"], "description": "429: the limit that refused the request (with Retry-After)"},
                "errors": {"type": "array", "description": "422: each way `input` does not match the workflow's `input` schema (at most 20)", "items": r("InputError")},
                "problems": {"type": "array", "items": {"type": "string"}, "description": "422 from a workflow deploy: every problem as `file:line:col: message`"},
                "reason": {"enum": ["not_in_review", "already_decided", "not_claimed", "claimed_by_another", "claim_expired"], "description": "Reviews (409, or 404 on GET /v1/reviews/{id}): why the claim or decision was refused"},
                "claimed_until": {"type": "string", "format": "date-time", "description": "409 `claimed_by_another`: until when the other claim runs"},
                "diagnostics": {"type": "array", "items": r("Diagnostic"), "description": "422 from a dry run of a draft (`source`): every problem with its line and column"}}},
            "Diagnostic": exact(json!({"line": {"type": "integer", "minimum": 1}, "col": {"type": "integer", "minimum": 1}, "message": {"type": "string"}})),
            "ValidateWorkflow": {"type": "object", "required": ["source"], "additionalProperties": false, "properties": {
                "source": {"type": "string", "maxLength": 262_144, "description": "A workflow file's YAML (at most 256 KiB)"}}},
            "WorkflowValidation": exact(json!({
                "valid": {"type": "boolean"},
                "diagnostics": {"type": "array", "items": r("Diagnostic"), "description": "Every problem, in source order; empty when valid"},
                "workflow": exact_or_null(json!({"id": {"type": "string"}, "version": {"type": "integer"}, "steps": {"type": "integer"},
                    "latest_version": {"type": ["integer", "null"], "description": "The version new sessions of this id start on now (null: not deployed)"}})),
                "graph": {"type": ["object", "null"], "required": ["nodes", "edges"], "description": "The valid draft's graph, as `WorkflowVersion` has it; null with problems",
                    "properties": {"nodes": {"type": "array", "items": r("GraphNode")}, "edges": {"type": "array", "items": r("GraphEdge")}}}})),
            "InputError": exact(json!({"pointer": {"type": "string", "description": "JSON Pointer into `input` (`\"\"`: the input itself)"},
                "detail": {"type": "string", "description": "What is wrong; never the value sent"}})),
            "Scope": {"enum": ["sessions:read", "sessions:write", "secrets:read", "workflows:read", "workflows:dry-run", "sessions:erase", "admin", "reviews:read", "reviews:decide"]},
            "CreateApiKey": {"type": "object", "required": ["name"], "additionalProperties": false, "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 100},
                "scopes": {"type": "array", "items": r("Scope"), "description": "Default: every scope but sessions:erase, admin and the reviews scopes"},
                "expires_at": {"type": "string", "format": "date-time"},
                "expires_in": {"type": "string", "description": "A duration from now, e.g. `90d` (instead of expires_at)"}}},
            "RotateApiKey": {"type": "object", "additionalProperties": false, "properties": {
                "grace": {"type": "string", "description": "A duration, e.g. `1h`; `0s` ends the current secret at once; at most `30d`", "default": "24h"}}},
            "ApiKey": exact(api_key.clone()),
            "ApiKeyWithSecret": extend(&api_key, json!({"key": {"type": "string", "description": "The secret (`gw_…`), shown only in this answer"}})),
            "ApiKeys": exact(json!({"data": {"type": "array", "items": r("ApiKey")}}))
        }),
        json!({
            "AuditAction": {"enum": crate::audit::action::ALL},
            "AuditEntry": exact(json!({
                "id": {"type": "string", "pattern": "^[0-9]+$", "description": "Increases with every entry: the log's order"},
                "at": time(),
                "action": r("AuditAction"),
                "actor": {"type": "string", "description": "`api_key:<id>`, `operator:<id>`, `cli`, `cli:<user>` or `system`"},
                "session_id": string_or_null(),
                "target": {"type": ["string", "null"], "description": "What the action was done to when not a session: a key id, a node id"},
                "data": any_object("Details: names, scopes, counts; never a secret or a person's data")})),
            "ConsoleMe": exact(json!({
                "operator": exact(json!({"id": {"type": "string"}, "email": {"type": "string"},
                    "role": {"enum": ["viewer", "reviewer", "admin"]}})),
                "scopes": {"type": "array", "items": r("Scope")},
                "csrf_token": {"type": "string", "description": "Send it in `X-CSRF-Token` with every state-changing request of this console session"},
                "idle_timeout_s": {"type": "integer", "description": "The session ends after this long without a request"}})),
            "AuditPage": exact(json!({"data": {"type": "array", "items": r("AuditEntry")},
                "next_cursor": {"type": ["string", "null"], "description": "`cursor` of the next (older) page; `null` on the last"}}))
        }),
        json!({
            "CreateSession": {"type": "object", "required": ["workflow"], "additionalProperties": false, "properties": {
                "workflow": {"type": "string"}, "input": any_object("The workflow's input (default `{}`)"),
                "reference": {"type": "string", "minLength": 1, "maxLength": 256, "description": "Your reference; sessions can be listed by it"}}},
            "CancelSession": {"type": "object", "additionalProperties": false, "properties": {
                "reason": {"type": "string", "maxLength": 1000, "description": "Default: `canceled by the customer`"}}},
            "SessionStatus": {"enum": ["running", "waiting", "ended"]},
            "Outcome": {"enum": ["approved", "declined", "review", "failed", "canceled", "expired"]},
            "Session": exact(session.clone()),
            "CreatedSession": extend(&session, json!({
                "client_secret": {"type": "string", "description": "For the browser (`gwcs_…`); shown only in this answer"},
                "client_secret_expires_at": time()})),
            "SessionPage": exact(json!({"data": {"type": "array", "items": r("Session")},
                "next_cursor": {"type": ["string", "null"], "description": "`cursor` of the next page; `null` on the last"}})),
            "ClientSession": exact(json!({"id": {"type": "string"}, "status": r("SessionStatus"),
                "step": exact_or_null(json!({"name": {"type": "string"},
                    "present": {"type": ["object", "null"], "additionalProperties": true, "properties": {"kind": {"type": "string", "description": "`iframe`, `popup`, `qr`, `chat`, … (docs/workflows.md)"}},
                        "description": "In a `wait` step with `present`: the rendered presentation; a `qr` carries `svg` and `svg_url` (or `image`) instead of the provider's payload"}})),
                "outcome": {"oneOf": [r("Outcome"), {"type": "null"}]}, "reason": string_or_null(),
                "deadline": {"type": ["string", "null"], "format": "date-time", "description": "The current wait's deadline"}})),
            "ClientEvent": {"type": "object", "required": ["event", "data"], "description": "One Server-Sent Event",
            "properties": {
                "id": {"type": "string", "pattern": "^[0-9]+$", "description": "Its number, for Last-Event-ID (not on `reconnect`)"},
                "event": {"enum": ["step", "ended", "chat", "reconnect"]},
                "data": {"type": "string", "contentMediaType": "application/json",
                    "description": "JSON: the ClientSession (`step`, `ended`), the message (`chat`), `{}` (`reconnect`)"},
                "retry": {"type": "integer", "description": "`reconnect`: milliseconds before reconnecting"}}},
        "Signal": {"type": "object", "required": ["name"], "additionalProperties": false, "properties": {
                "name": {"type": "string", "pattern": "^[a-z0-9_]{1,64}$", "description": "The event is `signal.<name>`"},
                "data": {"description": "Any JSON, at most 16 KiB"},
                "id": {"type": "string", "description": "Deduplicates retries of the same signal"}}},
            "SessionChangeEvent": {"type": "object", "required": ["event", "data"], "description": "One Server-Sent Event of GET /v1/sessions/changes",
            "properties": {
                "event": {"enum": ["ready", "session", "resync", "reconnect"]},
                "data": {"type": "string", "contentMediaType": "application/json",
                    "description": "JSON: the Session (`session`), `{}` otherwise"},
                "retry": {"type": "integer", "description": "`reconnect`: milliseconds before reconnecting"}}},
            "SignalAccepted": exact(json!({"accepted": {"type": "boolean", "description": "Whether the session took it now (it waited for it)"},
                "duplicate": {"type": "boolean"}}))
        }),
        json!({
            "TimelineEntry": exact(json!({"seq": {"type": "integer", "minimum": 1}, "at": time(),
                "elapsed_ms": {"type": "integer"}, "since_previous_ms": {"type": "integer"},
                "kind": {"type": "string", "description": "docs/workflows.md#the-timeline"}, "step": string_or_null(),
                "data": {"description": "Details (any JSON), redacted"}})),
            "Timeline": exact(json!({"session": r("Session"), "entries": {"type": "array", "items": r("TimelineEntry")}})),
            "Secret": {"type": "object", "required": ["name", "channel_id", "key_id", "address", "app_id", "value", "step"], "properties": {
                "name": {"type": "string", "description": "`channel_api_key`"}, "channel_id": {"type": "string"},
                "key_id": string_or_null(), "address": string_or_null(), "app_id": string_or_null(),
                "value": {"type": ["string", "null"], "description": "The secret; `null` when sealed under another `encryption_key` (see `error`)"},
                "error": {"type": "string"},
                "step": {"type": "string", "description": "The `save_as` of the call that produced it"}}},
            "Secrets": exact(json!({"session_id": {"type": "string"}, "ready": {"type": "boolean"},
                "secrets": {"type": "array", "items": r("Secret")}})),
            "DeliveryAttempt": exact(json!({"attempt": {"type": "integer", "minimum": 1}, "at": time(),
                "status_code": {"type": ["integer", "null"], "description": "`null` when no answer came back"},
                "error": string_or_null(), "duration_ms": {"type": "integer"}})),
            "Delivery": exact(json!({"id": {"type": "string", "description": "`msg_…`, the `webhook-id` header"},
                "session_id": {"type": "string"},
                "endpoint": {"type": "string"}, "event_type": {"enum": ["session.updated", "session.ended", "session.erased"]},
                "status": {"enum": ["pending", "delivered", "failed"]}, "attempts": {"type": "integer", "minimum": 0},
                "created_at": time(), "next_attempt_at": time_or_null(), "delivered_at": time_or_null(),
                "attempt_log": {"type": "array", "items": r("DeliveryAttempt")}})),
            "Deliveries": exact(json!({"data": {"type": "array", "items": r("Delivery")}}))
        }),
        json!({
            "DryRunRequest": {"type": "object", "additionalProperties": false, "properties": {
                "input": any_object("The session's input (default `{}`)"),
                "events": {"type": "array", "maxItems": 100, "items": {"type": "object", "required": ["at"], "additionalProperties": false, "properties": {
                    "at": {"type": "string", "description": "The step the session waits in"}, "sim": {"type": "string"}, "action": {"type": "string"}, "body": {},
                    "signal": {"type": "string"}, "data": {}}}},
                "timeout_s": {"type": "integer", "minimum": 1, "maximum": 60, "default": 10, "description": "Seconds to run at most; absent: 10 (null is refused)"},
                "source": {"type": "string", "maxLength": 262_144, "description": "A draft of the workflow (its YAML) to run instead of its current version; it must validate and declare the path's id, which need not be deployed"}}},
            "TraceItem": {"type": "object", "required": ["kind", "data"], "properties": {
                "kind": {"type": "string"}, "at_ms": {"type": "integer"}, "step": string_or_null(),
                "data": {"description": "Any JSON"}, "session": {"type": "string", "description": "The child session an entry is of"}}},
            "DryRun": exact(json!({"workflow": {"type": "string"}, "version": {"type": "integer"},
                "input_schema": input_schema(),
                "ended": {"type": "boolean"}, "session": r("Session"), "trace": {"type": "array", "items": r("TraceItem")}})),
            "Workflow": exact(json!({"id": {"type": "string"}, "version": {"type": "integer", "description": "The latest: the one new sessions use"},
                "description": {"type": "string"}, "versions": {"type": "array", "items": {"type": "integer"}, "description": "Every stored version, ascending"},
                "input_schema": input_schema()})),
            "Workflows": exact(json!({"data": {"type": "array", "items": r("Workflow")}})),
            "SessionCounts": exact(json!({"running": {"type": "integer", "minimum": 0}, "waiting": {"type": "integer", "minimum": 0},
                "ended": exact(json!({"approved": {"type": "integer"}, "declined": {"type": "integer"}, "review": {"type": "integer"},
                    "failed": {"type": "integer"}, "canceled": {"type": "integer"}, "expired": {"type": "integer"}})),
                "total": {"type": "integer", "minimum": 0}})),
            "GraphNode": exact(json!({"id": {"type": "string", "description": "The step's name, or `outcome:<outcome>`"},
                "kind": {"enum": ["call", "wait", "decide", "end", "run", "review", "outcome"]},
                "label": {"type": "string"}, "detail": {"type": "string", "description": "The action called, the workflow run, the review group…; may be empty"},
                "line": {"type": ["integer", "null"], "description": "The step's line in `source`; `null` for outcomes"},
                "start": {"type": "boolean"}})),
            "GraphEdge": exact(json!({"from": {"type": "string"}, "to": {"type": "string"},
                "label": {"type": "string", "description": "What takes it: an event, a rule's condition, `ok`, `error`, `timeout`, `default`, an outcome"},
                "implicit": {"type": "boolean", "description": "Not written in the source (a call without `on_error` ends `failed`)"}})),
            "WorkflowVersion": exact(json!({"id": {"type": "string"}, "version": {"type": "integer", "minimum": 1},
                "description": {"type": "string"}, "latest": {"type": "boolean", "description": "New sessions start on this version"},
                "start": {"type": "string", "description": "The first step"}, "source": {"type": "string", "description": "The YAML as deployed"},
                "graph": exact(json!({"nodes": {"type": "array", "items": r("GraphNode")}, "edges": {"type": "array", "items": r("GraphEdge")}})),
                "counts": r("SessionCounts")})),
            "WorkflowCounts": exact(json!({"data": {"type": "array", "items": exact(json!({"workflow": {"type": "string"},
                "version": {"type": "integer", "minimum": 1}, "counts": r("SessionCounts")}))}}))
        }),
        json!({
            "Review": exact(json!({"session_id": {"type": "string"}, "workflow": {"type": "string"},
                "version": {"type": "integer", "minimum": 1}, "reference": string_or_null(),
                "step": {"type": "string", "description": "The `review` step the session waits in"},
                "group": string_or_null(),
                "facts": any_object("What the workflow hands the reviewer (`facts:` of the step, rendered when it was entered)"),
                "since": time(), "deadline": {"type": "string", "format": "date-time", "description": "Undecided by then, the session goes to the step's `on_timeout`"},
                "claim": exact_or_null(json!({
                    "by": exact(json!({"kind": {"enum": ["api_key"], "description": "Who holds it: an API key (operators later)"}, "id": {"type": "string"}})),
                    "expires_at": time()}))})),
            "ReviewPage": exact(json!({"data": {"type": "array", "items": r("Review")},
                "next_cursor": {"type": ["string", "null"], "description": "`cursor` of the next page; `null` on the last"}})),
            "ClaimReview": {"type": "object", "additionalProperties": false, "properties": {
                "ttl_s": {"type": "integer", "minimum": 1, "maximum": 3600, "default": 900, "description": "Seconds the claim lasts; then anyone may claim it"}}},
            "DecideReview": {"type": "object", "required": ["decision", "note"], "additionalProperties": false, "properties": {
                "decision": {"enum": ["approved", "declined"]},
                "note": {"type": "string", "minLength": 1, "maxLength": 2000, "description": "Why; recorded in the timeline with who and when"}}}
        }),
        json!({
            "DeployWorkflows": {"type": "object", "required": ["files"], "additionalProperties": false, "properties": {
                "files": {"type": "array", "minItems": 1, "maxItems": 100, "items": {"type": "object", "required": ["name", "source"], "additionalProperties": false,
                    "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 255, "description": "The file's name, for `file:line:col` in problems"},
                        "source": {"type": "string", "description": "The workflow's YAML"}}}},
                "dry_run": {"type": "boolean", "default": false, "description": "Only say what would change; store nothing"}}},
            "DeployedWorkflow": exact(json!({"file": {"type": "string"}, "id": {"type": "string"}, "version": {"type": "integer"},
                "change": {"enum": ["new_workflow", "new_version", "unchanged", "older_version"]},
                "previous": {"type": ["integer", "null"], "description": "The version new sessions started on before; null for a new workflow"}})),
            "Deployed": exact(json!({"dry_run": {"type": "boolean"}, "data": {"type": "array", "items": r("DeployedWorkflow")}}))
        }),
        json!({
            "Received": {"type": "object", "required": ["received"], "properties": {
                "received": {"const": true}, "duplicate": {"type": "boolean", "description": "Already stored"},
                "correlated": {"type": "boolean", "description": "360dialog: `false` when the event names no client (recorded nowhere)"},
                "ignored": {"type": "boolean", "description": "Stripe: an event type no workflow waits for (answered 2xx, so Stripe stops resending it)"}}},
            "StripeEvent": {"type": "object", "required": ["id", "type"], "additionalProperties": true,
                "description": "A Stripe event (`identity.verification_session.*`); `data.object.id` names the VerificationSession",
                "properties": {"id": {"type": "string", "minLength": 1, "maxLength": 255}, "type": {"type": "string"},
                    "data": {"type": "object", "additionalProperties": true}}},
            "HttpWebhook": {"type": "object", "additionalProperties": true,
                "description": "The provider's event; the fields `[http.webhooks.<name>]` names (`reference_field`, `event_field`, `id_field`) must be strings or numbers"},
            "IncodeWebhook": {"type": "object", "required": ["interviewId", "onboardingStatus"], "additionalProperties": true, "properties": {
                "interviewId": {"type": "string", "minLength": 1, "maxLength": 64}, "onboardingStatus": {"type": "string", "minLength": 1, "maxLength": 64}}},
            "IncodeWebhookAnswer": exact(json!({"success": {"const": true}})),
            "IncodeTokenRequest": {"type": "object", "required": ["grant_type"], "additionalProperties": true, "properties": {"grant_type": {"const": "client_credentials"}}}
        }),
        json!({
            "IncodeToken": exact(json!({"access_token": {"type": "string"}, "token_type": {"const": "Bearer"}, "expires_in": {"type": "integer", "description": "Seconds"}})),
            "OAuthError": exact(json!({"error": {"enum": ["invalid_client", "unsupported_grant_type"]}})),
            "Dialog360Webhook": {"type": "object", "additionalProperties": true,
                "description": "A partner event: `event` (or `type`), e.g. `channel_running`; the ids in `data` (or at the top level); `id` deduplicates",
                "properties": {"event": {"type": "string", "pattern": "^[a-z_]{1,64}$"}, "type": {"type": "string"}, "id": {"type": "string"},
                    "data": {"type": "object", "additionalProperties": true}}},
            "Dialog360Redirect": {"type": "object", "required": ["query"], "additionalProperties": false,
                "properties": {"query": {"type": "string", "maxLength": 4096, "description": "`window.location.search` of the redirect page"}}},
            "OihCallback": {"type": "object", "required": ["requestId", "seq", "type"], "properties": {
            "requestId": {"type": "string", "minLength": 1, "maxLength": 64}, "seq": {"type": "integer", "minimum": 1},
            "type": {"enum": ["progress", "result", "error"]}, "data": {"type": "object"}, "message": {"type": "string"}}},
        "Health": exact(json!({"status": {"const": "ok"}})),
            "Readiness": exact(json!({"status": {"enum": ["ready", "stopping", "database unavailable"]}}))
        }),
        super::operators::schemas(),
    ])
}

/// A workflow's `input` JSON Schema (its own JSON, open), or null: any object.
fn input_schema() -> Value {
    json!({"type": ["object", "null"], "additionalProperties": true,
        "description": "The `input` JSON Schema new sessions are checked against (docs/workflows.md#input); null: any object"})
}

/// One object of several (one `json!` would pass the macro recursion limit).
fn merge<const N: usize>(parts: [Value; N]) -> Value {
    let mut all = Map::new();
    for part in parts {
        if let Value::Object(m) = part {
            all.extend(m);
        }
    }
    Value::Object(all)
}
