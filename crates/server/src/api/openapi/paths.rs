//! `paths` of the OpenAPI document: every route, with its operationId (the
//! name generated clients give it), tag, security and statuses.

use super::{body, ok, ok_with, op};
use serde_json::{Value, json};

fn path_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}, "description": description})
}

fn with_params(mut v: Value, params: Value) -> Value {
    v["parameters"] = params;
    v
}

fn session_id() -> Value {
    json!([path_param("id", "The session id (`ses_…`)")])
}

fn key_id() -> Value {
    json!([path_param("id", "The key's id (`key_…`)")])
}

/// A successful answer that is not JSON.
fn ok_as(media: &str, description: &str) -> Value {
    json!({"200": {"description": description, "content": {media: {"schema": {"type": "string"}}}}})
}

/// A browser operation: the client secret as a bearer token, or where an
/// `EventSource` or `<img>` cannot send headers, as `?client_secret=`.
fn client_secret_in_query(mut v: Value) -> Value {
    v["security"] = json!([{"clientSecret": []}, {"clientSecretQuery": []}]);
    v
}

fn sessions() -> Value {
    let mut create = op(
        "createSession",
        "sessions",
        "Create a session",
        "apiKey:sessions:write",
        json!({
            "201": {"description": "Created", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CreatedSession"}}}},
            "200": {"description": "Replayed for the same Idempotency-Key and body", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CreatedSession"}}}}
        }),
        &["400", "401", "409", "415", "422", "503"],
    );
    create["requestBody"] = body("CreateSession", true);
    create["parameters"] = json!([{"name": "Idempotency-Key", "in": "header", "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        "description": "Retries with the same key and body answer the same session (200)"}]);
    let list = with_params(
        op(
            "listSessions",
            "sessions",
            "List sessions, newest first",
            "apiKey:sessions:read",
            ok("SessionPage"),
            &["400", "401", "422"],
        ),
        json!([
            {"name": "status", "in": "query", "schema": {"$ref": "#/components/schemas/SessionStatus"}},
            {"name": "workflow", "in": "query", "schema": {"type": "string"}},
            {"name": "reference", "in": "query", "schema": {"type": "string"}},
            {"name": "outcome", "in": "query", "schema": {"$ref": "#/components/schemas/Outcome"}},
            {"name": "created_since", "in": "query", "schema": {"type": "string", "format": "date-time"}, "description": "Created at or after (inclusive)"},
            {"name": "created_until", "in": "query", "schema": {"type": "string", "format": "date-time"}, "description": "Created before (exclusive)"},
            {"name": "cursor", "in": "query", "schema": {"type": "string"}, "description": "`next_cursor` of the previous page"},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}}
        ]),
    );
    let mut show = with_params(
        op(
            "getSession",
            "sessions",
            "Get a session; with `wait`, at its next change (long poll)",
            "apiKey:sessions:read",
            ok("Session"),
            &["400", "401", "404"],
        ),
        session_id(),
    );
    if let Some(params) = show["parameters"].as_array_mut() {
        params.push(json!({"name": "wait", "in": "query", "schema": {"type": "string"},
            "description": "Answer at the session's next change or after this long (`30s`, `500ms`, or whole seconds); capped by `limits.long_poll_max_wait`"}));
        params.push(json!({"name": "after", "in": "query", "schema": {"type": "string", "format": "date-time"},
            "description": "With `wait`: the `updated_at` seen; a session updated since answers at once"}));
    }
    let mut cancel = with_params(
        op(
            "cancelSession",
            "sessions",
            "Cancel a session (ends `canceled`)",
            "apiKey:sessions:write",
            ok("Session"),
            &["400", "401", "404", "409", "422"],
        ),
        session_id(),
    );
    cancel["requestBody"] = body("CancelSession", false);
    json!({
        "/v1/sessions": {"post": create, "get": list},
        "/v1/sessions/changes": {"get": op("streamSessionChanges", "sessions", "Sessions as they change, for operators (Server-Sent Events): `ready` once subscribed, `session` with a changed session, `resync` when changes may have been missed (read the list again), `reconnect` at shutdown",
            "apiKey:sessions:read",
            json!({"200": {"description": "The stream (the schema describes each event)",
                "content": {"text/event-stream": {"schema": {"$ref": "#/components/schemas/SessionChangeEvent"}}}}}),
            &["401"])},
        "/v1/sessions/{id}": {"get": show},
        "/v1/sessions/{id}/cancel": {"post": cancel},
        "/v1/sessions/{id}/data": {"delete": with_params(op("eraseSessionData", "sessions", "Erase the session's personal data (input, state, outputs, timeline and browser event payloads, provider results), canceling it first if it runs; asks providers that can to redact their copy; answers the tombstone, again on a repeat (docs/api.md#erase-a-sessions-data)", "apiKey:sessions:erase", ok("Session"), &["401", "404", "409"]), session_id())},
        "/v1/sessions/{id}/timeline": {"get": with_params(op("getSessionTimeline", "sessions", "Everything that happened, with timings; secrets redacted", "apiKey:sessions:read", ok("Timeline"), &["401", "404"]), session_id())},
        "/v1/sessions/{id}/deliveries": {"get": with_params(op("listSessionDeliveries", "sessions", "Customer webhook deliveries and every attempt", "apiKey:sessions:read", ok("Deliveries"), &["401", "404"]), session_id())},
        "/v1/sessions/{id}/secrets": {"get": with_params(op("getSessionSecrets", "sessions", "The session's provider secrets (360dialog channel API keys), opened; every read is recorded in the timeline (`secrets.accessed`)", "apiKey:secrets:read", ok("Secrets"), &["401", "404"]), session_id())}
    })
}

fn reviews() -> Value {
    let list = with_params(
        op(
            "listReviews",
            "reviews",
            "The review queue: sessions waiting in a `review` step, oldest first",
            "apiKey:reviews:read",
            ok("ReviewPage"),
            &["400", "401", "422"],
        ),
        json!([
            {"name": "workflow", "in": "query", "schema": {"type": "string"}, "description": "Only this workflow's reviews"},
            {"name": "group", "in": "query", "schema": {"type": "string"}, "description": "Only reviews assigned to this group (`group:` of the step)"},
            {"name": "min_age_s", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 315_360_000}, "description": "Only reviews waiting at least this many seconds"},
            {"name": "cursor", "in": "query", "schema": {"type": "string"}, "description": "`next_cursor` of the previous page"},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}}
        ]),
    );
    let mut claim = with_params(
        op(
            "claimReview",
            "reviews",
            "Claim a review for this key (again: extend the claim); 409 while another reviewer holds it",
            "apiKey:reviews:decide",
            ok("Review"),
            &["400", "401", "404", "409", "422"],
        ),
        session_id(),
    );
    claim["requestBody"] = body("ClaimReview", false);
    let mut decide = with_params(
        op(
            "decideReview",
            "reviews",
            "Decide a claimed review (`approved` or `declined`, with a note); the workflow goes on from the decision; answers the session after it",
            "apiKey:reviews:decide",
            ok("Session"),
            &["400", "401", "404", "409", "415", "422", "503"],
        ),
        session_id(),
    );
    decide["requestBody"] = body("DecideReview", true);
    json!({
        "/v1/reviews": {"get": list},
        "/v1/reviews/{id}": {"get": with_params(op("getReview", "reviews", "A session's open review, with its facts and claim; 404 when it is not in review", "apiKey:reviews:read", ok("Review"), &["401", "404"]), session_id())},
        "/v1/reviews/{id}/claim": {"post": claim},
        "/v1/reviews/{id}/decide": {"post": decide}
    })
}

fn workflows_and_admin() -> Value {
    let mut dry_run = with_params(
        op(
            "dryRunWorkflow",
            "workflows",
            "Run the workflow's current version (or a draft of it, `source`) against the built-in simulators (never a real provider) and return the trace",
            "apiKey:workflows:dry-run",
            ok("DryRun"),
            &["400", "401", "404", "415", "422", "503"],
        ),
        json!([path_param("id", "The workflow id")]),
    );
    dry_run["requestBody"] = body("DryRunRequest", true);
    let mut validate = op(
        "validateWorkflow",
        "workflows",
        "Check a draft workflow as `gangway validate` does: every problem with its line and column (200 `valid: false`), or what a deploy would make of it",
        "apiKey:workflows:dry-run",
        ok("WorkflowValidation"),
        &["400", "401", "413", "415", "422"],
    );
    validate["requestBody"] = body("ValidateWorkflow", true);
    let mut create_key = op(
        "createApiKey",
        "admin",
        "Create an API key; its secret is in the answer (`key`) and never shown again",
        "apiKey:admin",
        json!({"201": {"description": "Created", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiKeyWithSecret"}}}}}),
        &["400", "401", "415", "422"],
    );
    create_key["requestBody"] = body("CreateApiKey", true);
    let mut rotate_key = with_params(
        op(
            "rotateApiKey",
            "admin",
            "Give a key a new secret (in `key`, shown once); the current secret keeps working for `grace` (default 24h)",
            "apiKey:admin",
            ok("ApiKeyWithSecret"),
            &["400", "401", "404", "409", "422"],
        ),
        key_id(),
    );
    rotate_key["requestBody"] = body("RotateApiKey", false);
    let mut deploy = op(
        "deployWorkflows",
        "admin",
        "Deploy workflow files without a restart (every node within a second), or with `dry_run` say what would change; a changed file under a stored version is 409, files that do not validate 422 with `problems`",
        "apiKey:admin",
        ok("Deployed"),
        &["400", "401", "409", "413", "415", "422", "503"],
    );
    deploy["requestBody"] = body("DeployWorkflows", true);
    let audit_filters = || {
        vec![
            json!({"name": "action", "in": "query", "schema": {"$ref": "#/components/schemas/AuditAction"}}),
            json!({"name": "actor", "in": "query", "schema": {"type": "string"}, "description": "e.g. `api_key:key_…`, `cli`, `system`"}),
            json!({"name": "session_id", "in": "query", "schema": {"type": "string"}}),
            json!({"name": "target", "in": "query", "schema": {"type": "string"}}),
            json!({"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}, "description": "Inclusive"}),
            json!({"name": "until", "in": "query", "schema": {"type": "string", "format": "date-time"}, "description": "Exclusive"}),
            json!({"name": "cursor", "in": "query", "schema": {"type": "string", "pattern": "^[0-9]+$"}, "description": "`next_cursor` of the previous page (the list), or the `id` of the last entry read (the export)"}),
        ]
    };
    let mut list_filters = audit_filters();
    list_filters.push(json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}));
    let audit = with_params(
        op(
            "listAuditEntries",
            "admin",
            "The audit log, newest first: API keys created, revoked and rotated, secrets read, sessions created, canceled and erased, starts",
            "apiKey:admin",
            ok("AuditPage"),
            &["400", "401", "422"],
        ),
        Value::Array(list_filters),
    );
    let export = with_params(
        op(
            "exportAuditEntries",
            "admin",
            "The matching audit entries, oldest first, as JSON lines (one `AuditEntry` per line)",
            "apiKey:admin",
            json!({"200": {"description": "JSON lines", "content": {"application/jsonl": {"schema": {"type": "string"}}}}}),
            &["400", "401", "422"],
        ),
        Value::Array(audit_filters()),
    );
    let mut me = op(
        "getConsoleSession",
        "admin",
        "The operator signed in to the console: role, scopes and the CSRF token to send in `X-CSRF-Token`",
        "",
        ok("ConsoleMe"),
        &["401"],
    );
    me["security"] = json!([{"consoleSession": []}]);
    json!({
        "/v1/console/me": {"get": me},
        "/v1/admin/audit": {"get": audit},
        "/v1/admin/audit/export": {"get": export},
        "/v1/workflows": {"get": op("listWorkflows", "workflows", "Loaded workflows and their versions", "apiKey:workflows:read", ok("Workflows"), &["401"])},
        "/v1/workflows/validate": {"post": validate},
        "/v1/workflows/{id}/dry-run": {"post": dry_run},
        "/v1/workflows/{id}/versions/{version}": {"get": with_params(op("getWorkflowVersion", "workflows", "One workflow version: its YAML source, its graph (steps, branches, outcomes) and its sessions counted by status and outcome", "apiKey:workflows:read", ok("WorkflowVersion"), &["400", "401", "404", "422", "503"]),
            json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[a-z0-9_-]{1,255}$"}, "description": "The workflow id"},
                {"name": "version", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[1-9][0-9]{0,8}$"}, "description": "The version (a positive integer)"}]))},
        "/v1/workflows/counts": {"get": with_params(op("countWorkflowSessions", "workflows", "Sessions counted per workflow version by status and outcome (versions without sessions are absent)", "apiKey:workflows:read", ok("WorkflowCounts"), &["400", "401", "422"]),
            json!([{"name": "workflow", "in": "query", "schema": {"type": "string", "pattern": "^[a-z0-9_-]{1,255}$"}, "description": "Only this workflow's versions"}]))},
        "/v1/admin/keys": {
            "get": op("listApiKeys", "admin", "List API keys (never their secrets)", "apiKey:admin", ok("ApiKeys"), &["401"]),
            "post": create_key
        },
        "/v1/admin/keys/{id}": {"get": with_params(op("getApiKey", "admin", "Get an API key", "apiKey:admin", ok("ApiKey"), &["401", "404"]), key_id())},
        "/v1/admin/keys/{id}/revoke": {"post": with_params(op("revokeApiKey", "admin", "Revoke an API key: every secret of it stops working, on every node within a second; revoking again changes nothing", "apiKey:admin", ok("ApiKey"), &["401", "404"]), key_id())},
        "/v1/admin/keys/{id}/rotate": {"post": rotate_key},
        "/v1/admin/workflows": {"post": deploy}
    })
}

fn client() -> Value {
    let mut signal = with_params(
        op(
            "sendClientSignal",
            "client",
            "Send a browser signal (event `signal.<name>`)",
            "clientSecret",
            ok_with(
                "Stored (`accepted`: the session took it now)",
                "SignalAccepted",
            ),
            &["400", "401", "409", "415", "422"],
        ),
        session_id(),
    );
    signal["requestBody"] = body("Signal", true);
    let mut events = client_secret_in_query(with_params(
        op(
            "streamClientSessionEvents",
            "client",
            "Live session events (Server-Sent Events, resumable with Last-Event-ID)",
            "clientSecret",
            json!({"200": {"description": "The stream: `step`, `ended`, `chat` and `reconnect` events (the schema describes each)",
                "content": {"text/event-stream": {"schema": {"$ref": "#/components/schemas/ClientEvent"}}}}}),
            &["400", "401"],
        ),
        session_id(),
    ));
    if let Some(p) = events["parameters"].as_array_mut() {
        p.push(json!({"name": "Last-Event-ID", "in": "header", "schema": {"type": "integer", "minimum": 0},
            "description": "The last event id seen; the stream resumes after it"}));
    }
    let qr = client_secret_in_query(with_params(
        op(
            "getClientSessionQr",
            "client",
            "The QR code the session presents now, as SVG (`?client_secret=` accepted)",
            "clientSecret",
            ok_as("image/svg+xml", "The SVG document; Cache-Control: no-store"),
            &["401", "404", "422"],
        ),
        session_id(),
    ));
    let chat = with_params(
        op(
            "openClientSessionChat",
            "client",
            "The chat of a session that presents `kind: chat`, as a WebSocket: first message {type: hello, secret, last_id}; then message frames with ids, say/ack (docs/api.md#chat-websocket). The client secret travels in the hello message, not in the upgrade request.",
            "",
            json!({"101": {"description": "Switching to the WebSocket protocol"}}),
            &["400", "403", "429"],
        ),
        session_id(),
    );
    json!({
        "/v1/client/sessions/{id}": {"get": with_params(op("getClientSession", "client", "What the browser presents now", "clientSecret", ok("ClientSession"), &["401"]), session_id())},
        "/v1/client/sessions/{id}/events": {"get": events},
        "/v1/client/sessions/{id}/signal": {"post": signal},
        "/v1/client/sessions/{id}/qr.svg": {"get": qr},
        "/v1/client/sessions/{id}/chat": {"get": chat}
    })
}

fn webhooks() -> Value {
    let received = ok_with("Stored (or a duplicate)", "Received");
    let mut http = with_params(
        op(
            "receiveHttpWebhook",
            "webhooks",
            "Generic provider webhook, HMAC-SHA256 verified over the exact body with the secret of `[http.webhooks.<name>]` (docs/api.md#generic-http-webhooks)",
            "",
            received.clone(),
            &["400", "401", "404", "422", "429"],
        ),
        json!([path_param("name", "The name under `[http.webhooks]`")]),
    );
    http["requestBody"] = body("HttpWebhook", true);
    let mut incode = op(
        "receiveIncodeWebhook",
        "webhooks",
        "Incode webhook: a bearer token from `issueIncodeWebhookToken`, or the `X-Gangway-Webhook-Secret` header (docs/api.md#incode-webhooks)",
        "",
        ok_with(
            "Stored (or a duplicate, or a status no workflow waits for)",
            "IncodeWebhookAnswer",
        ),
        &["400", "401", "404", "422", "429"],
    );
    incode["requestBody"] = body("IncodeWebhook", true);
    let oauth_error = |d: &str| json!({"description": d, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OAuthError"}}}});
    let mut token = op(
        "issueIncodeWebhookToken",
        "webhooks",
        "OAuth2 client credentials (RFC 6749 4.4) for Incode's webhooks: HTTP Basic with `incode.webhook_client_id` and `incode.webhook_client_secret`",
        "",
        ok("IncodeToken"),
        &["404", "429"],
    );
    token["responses"]["400"] = oauth_error("`unsupported_grant_type`");
    token["responses"]["401"] = oauth_error("`invalid_client` (with WWW-Authenticate: Basic)");
    token["requestBody"] = json!({"required": true, "content": {"application/x-www-form-urlencoded": {"schema": {"$ref": "#/components/schemas/IncodeTokenRequest"}}}});
    let mut d360 = with_params(
        op(
            "receiveDialog360Webhook",
            "webhooks",
            "360dialog partner webhook (channel_created, channel_running, cancellation_request, ...)",
            "",
            received.clone(),
            &["400", "401", "404", "422", "429"],
        ),
        json!([{"name": "token", "in": "query", "required": true, "schema": {"type": "string"}, "description": "`dialog360.webhook_token`, registered with the webhook URL"}]),
    );
    d360["requestBody"] = body("Dialog360Webhook", true);
    let state = json!([path_param(
        "state",
        "The one-time state of the session's permission request (`d360st_…`)."
    )]);
    let mut redirect_page = with_params(
        op(
            "getDialog360RedirectPage",
            "webhooks",
            "360dialog redirect page: hands the query to the opener with an explicit target origin and closes, or finishes with a link back",
            "",
            ok_as("text/html", "The page"),
            &["429"],
        ),
        state.clone(),
    );
    redirect_page["responses"]["404"] = json!({"description": "Unknown state", "content": {"text/html": {"schema": {"type": "string"}}}});
    let mut redirect_post = with_params(
        op(
            "recordDialog360Redirect",
            "webhooks",
            "Record a 360dialog redirect for the workflow to confirm (posted by the redirect page)",
            "",
            ok_with("Recorded; the session waits for it", "Received"),
            &["400", "404", "409", "415", "422", "429"],
        ),
        state,
    );
    redirect_post["requestBody"] = body("Dialog360Redirect", true);
    let mut oih = with_params(
        op(
            "receiveOihCallback",
            "webhooks",
            "Open Integration Hub flow callback (providers.md 5.2): progress, result or error of one run; deduplicated by (requestId, seq)",
            "",
            received,
            &["400", "401", "409", "422", "429"],
        ),
        json!([path_param(
            "token",
            "The run's callback token (sent in the trigger's callbackUrl); stored hashed"
        )]),
    );
    oih["requestBody"] = body("OihCallback", true);
    let mut stripe = with_params(
        op(
            "receiveStripeWebhook",
            "webhooks",
            "Stripe Identity event: `Stripe-Signature` (`t=…,v1=…`) HMAC-SHA256 over `t.body` under any of `stripe.webhook_secrets`, within `stripe.tolerance` (docs/api.md#stripe-webhooks)",
            "",
            ok_with(
                "Stored (or a duplicate, or an event type no workflow waits for)",
                "Received",
            ),
            &["400", "401", "404", "422", "429"],
        ),
        json!([{"name": "Stripe-Signature", "in": "header", "required": true, "schema": {"type": "string"},
            "description": "`t=<unix seconds>,v1=<hex HMAC>`; several `v1` while a secret is rolled"}]),
    );
    stripe["requestBody"] = body("StripeEvent", true);
    json!({
        "/v1/webhooks/stripe": {"post": stripe},
        "/v1/webhooks/http/{name}": {"post": http},
        "/v1/webhooks/incode": {"post": incode},
        "/v1/webhooks/incode/token": {"post": token},
        "/v1/webhooks/360dialog": {"post": d360},
        "/v1/redirect/360dialog/{state}": {"get": redirect_page, "post": redirect_post},
        "/v1/callbacks/oih/{token}": {"post": oih}
    })
}

fn operations() -> Value {
    let mut ready = op(
        "getReadiness",
        "operations",
        "Readiness (database reachable, not stopping)",
        "",
        ok_with("Ready", "Readiness"),
        &[],
    );
    ready["responses"]["503"] = json!({"description": "Not ready", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Readiness"}}}});
    json!({
        "/healthz": {"get": op("getHealth", "operations", "Liveness", "", ok("Health"), &[])},
        "/readyz": {"get": ready},
        "/metrics": {"get": op("getMetrics", "operations", "Prometheus metrics (on admin_listen instead, when it is set)", "", ok_as("text/plain", "Prometheus text format 0.0.4"), &[])},
        "/openapi.json": {"get": op("getOpenApiDocument", "operations", "This document", "",
            json!({"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object", "additionalProperties": true}}}}}), &[])}
    })
}

pub fn paths() -> Value {
    let mut all = serde_json::Map::new();
    for part in [
        sessions(),
        reviews(),
        super::operators::paths(),
        workflows_and_admin(),
        client(),
        webhooks(),
        operations(),
    ] {
        if let Value::Object(m) = part {
            all.extend(m);
        }
    }
    Value::Object(all)
}
