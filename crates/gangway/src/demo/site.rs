//! The demo customer site at `/demo`: a landing page with one card per
//! onboarding flow, a flow page that embeds the SDK exactly as docs/sdk.md
//! shows, a page listing the signed webhooks the customer backend received,
//! and that tiny customer backend (`/demo/api/...`). The backend holds the
//! API key and creates sessions over HTTP as a real customer backend would;
//! the browser only ever gets a session id and its client secret.

use super::inbox::Inbox;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use gangway_server::Router;
use gangway_server::api::error::Problem;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// A flow the demo offers (one card on the landing page).
struct DemoFlow {
    slug: &'static str,
    workflow: &'static str,
    eyebrow: &'static str,
    title: &'static str,
    lead: &'static str,
    /// The session input the demo backend sends (JSON).
    input: &'static str,
}

const FLOWS: &[DemoFlow] = &[
    DemoFlow {
        slug: "incode-identity",
        workflow: "incode-identity",
        eyebrow: "Account opening · identity",
        title: "Verify your identity",
        lead: "Photograph your ID and take a selfie. It takes about a minute, and your data goes straight to our verification partner.",
        input: "{}",
    },
    DemoFlow {
        slug: "ockto-mortgage",
        workflow: "ockto-mortgage",
        eyebrow: "Mortgage · € 250,000 · income check",
        title: "Check your mortgage",
        lead: "Scan the code with your phone and share your income, fixed costs and debts from official sources. We decide in seconds.",
        input: r#"{"loan_amount": 250000}"#,
    },
];

const INDEX: &str = include_str!("../../../../web/demo/index.html");
const FLOW_PAGE: &str = include_str!("../../../../web/demo/flow.html");
const WEBHOOKS_PAGE: &str = include_str!("../../../../web/demo/webhooks.html");

/// `(name, content type, body)` of the files under `/demo/assets/`.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "demo.css",
        "text/css; charset=utf-8",
        include_str!("../../../../web/demo/demo.css"),
    ),
    (
        "embed.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../web/demo/embed.js"),
    ),
    (
        "flow-page.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../web/demo/flow-page.js"),
    ),
    (
        "landing.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../web/demo/landing.js"),
    ),
    (
        "webhooks.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../../web/demo/webhooks.js"),
    ),
    (
        "logo.svg",
        "image/svg+xml",
        include_str!("../../../../web/demo/logo.svg"),
    ),
];

/// What the demo backend needs: where Gangway is and its API key.
pub struct Site {
    /// Gangway's base URL, as the backend reaches it.
    pub gangway_url: String,
    pub api_key: String,
    pub inbox: Inbox,
    /// Origins the flow pages may frame (the providers' hosted pages).
    pub frame_sources: Vec<String>,
}

#[derive(Clone)]
struct Shared {
    site: Arc<Site>,
    http: reqwest::Client,
    csp: Arc<str>,
}

pub fn router(site: Site) -> Router {
    let mut frame_src = vec!["'self'".to_string()];
    frame_src.extend(site.frame_sources.iter().cloned());
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; frame-src {}; frame-ancestors 'none'; base-uri 'none'; \
         form-action 'self'; object-src 'none'",
        frame_src.join(" ")
    );
    let shared = Shared {
        site: Arc::new(site),
        http: reqwest::Client::new(),
        csp: csp.into(),
    };
    Router::new()
        .route("/", get(|| async { Redirect::to("/demo") }))
        .route("/demo", get(index))
        .route("/demo/", get(index))
        .route("/demo/flows/{flow}", get(flow_page))
        .route("/demo/webhooks", get(webhooks_page))
        .route("/demo/assets/{file}", get(asset))
        .route("/demo/api/sessions", axum::routing::post(create_session))
        .route("/demo/api/sessions/{id}/decision", get(decision))
        .route(
            "/demo/api/webhooks",
            get(list_webhooks).post(receive_webhook),
        )
        .with_state(shared)
}

fn page(shared: &Shared, html: String) -> Response {
    let mut resp = html.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&shared.csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    resp
}

async fn index(State(shared): State<Shared>) -> Response {
    page(&shared, INDEX.to_string())
}

async fn webhooks_page(State(shared): State<Shared>) -> Response {
    page(&shared, WEBHOOKS_PAGE.to_string())
}

async fn flow_page(State(shared): State<Shared>, Path(slug): Path<String>) -> Response {
    let Some(flow) = FLOWS.iter().find(|f| f.slug == slug) else {
        return Problem::not_found("no demo flow with this name; see /demo").into_response();
    };
    // The values are constants of this file, and contain no markup.
    let html = FLOW_PAGE
        .replace("{{FLOW}}", flow.slug)
        .replace("{{EYEBROW}}", flow.eyebrow)
        .replace("{{TITLE}}", flow.title)
        .replace("{{LEAD}}", flow.lead);
    page(&shared, html)
}

async fn asset(Path(file): Path<String>) -> Response {
    let Some((_, content_type, body)) = ASSETS.iter().find(|(name, _, _)| *name == file) else {
        return Problem::not_found("no such demo asset").into_response();
    };
    let mut resp = (*body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartRequest {
    flow: String,
    /// The shopper's order: the same order resumes the same session.
    order: String,
}

/// `POST /demo/api/sessions {flow, order}`: what a customer backend does.
/// It creates the session with its API key, using the order as the
/// `Idempotency-Key`, so a reload gets the same session with a fresh client
/// secret; the browser gets only `{id, client_secret, client_secret_expires_at}`.
async fn create_session(State(shared): State<Shared>, body: Bytes) -> Result<Json<Value>, Problem> {
    let req: StartRequest = serde_json::from_slice(&body).map_err(|e| {
        if e.is_data() {
            Problem::validation(format!("expected {{flow, order}}: {e}"))
        } else {
            Problem::bad_request(format!("malformed JSON: {e}"))
        }
    })?;
    let flow = FLOWS
        .iter()
        .find(|f| f.slug == req.flow)
        .ok_or_else(|| Problem::validation("unknown flow; see /demo"))?;
    let order_ok = (8..=64).contains(&req.order.len())
        && req
            .order
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !order_ok {
        return Err(Problem::validation(
            "`order` must be 8 to 64 letters, digits, `-` or `_`",
        ));
    }
    let url = format!("{}/v1/sessions", shared.site.gangway_url);
    let answer = shared
        .http
        .post(&url)
        .bearer_auth(&shared.site.api_key)
        .header(
            "Idempotency-Key",
            format!("demo-{}-{}", flow.slug, req.order),
        )
        .json(&json!({
            "workflow": flow.workflow,
            "reference": format!("demo-order-{}", req.order),
            "input": serde_json::from_str::<Value>(flow.input).unwrap_or_else(|_| json!({})),
        }))
        .send()
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "demo backend: Gangway did not answer");
            bad_gateway("Gangway did not answer; try again")
        })?;
    let status = answer.status();
    let session: Value = answer.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        tracing::warn!(%status, detail = %session["detail"], "demo backend: creating a session failed");
        return Err(bad_gateway(format!(
            "Gangway refused the session: {}",
            session["detail"].as_str().unwrap_or("no detail")
        )));
    }
    Ok(Json(json!({
        "id": session["id"],
        "client_secret": session["client_secret"],
        "client_secret_expires_at": session["client_secret_expires_at"],
    })))
}

fn bad_gateway(detail: impl Into<String>) -> Problem {
    Problem::new(
        StatusCode::BAD_GATEWAY,
        "bad-gateway",
        "Bad gateway",
        detail,
    )
}

async fn receive_webhook(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    shared.site.inbox.receive(&headers, &body)
}

async fn list_webhooks(State(shared): State<Shared>) -> Json<Value> {
    Json(json!({ "data": shared.site.inbox.list() }))
}

/// `GET /demo/api/sessions/{id}/decision?order=`: the outcome and the rules
/// that decided it, read from the session's timeline with the API key, as a
/// customer backend would show its own staff. Only for the order's session.
async fn decision(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, Problem> {
    let order = query
        .as_deref()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("order=")))
        .filter(|o| !o.is_empty())
        .ok_or_else(|| Problem::validation("`?order=` names the order the session belongs to"))?
        .to_string();
    let get = |path: String| {
        shared
            .http
            .get(format!("{}{path}", shared.site.gangway_url))
            .bearer_auth(&shared.site.api_key)
            .send()
    };
    let unreachable = |e: reqwest::Error| {
        tracing::warn!(error = %e, "demo backend: Gangway did not answer");
        bad_gateway("Gangway did not answer; try again")
    };
    let valid_id = !id.is_empty()
        && id.len() <= 64
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_id {
        return Err(Problem::not_found("no such session"));
    }
    let session: Value = get(format!("/v1/sessions/{id}"))
        .await
        .map_err(unreachable)?
        .json()
        .await
        .unwrap_or(Value::Null);
    if session["reference"].as_str() != Some(&format!("demo-order-{order}")) {
        return Err(Problem::not_found("no such session for this order"));
    }
    let timeline: Value = get(format!("/v1/sessions/{id}/timeline"))
        .await
        .map_err(unreachable)?
        .json()
        .await
        .unwrap_or(Value::Null);
    // The rules of the last decide step: the ones that made the decision.
    let evaluated: Vec<&Value> = timeline["entries"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e["kind"] == "rule.evaluated" || e["kind"] == "rule.default")
                .collect()
        })
        .unwrap_or_default();
    let last_step = evaluated.last().map(|e| e["step"].clone());
    let rules: Vec<Value> = evaluated
        .iter()
        .filter(|e| Some(&e["step"]) == last_step.as_ref())
        .map(|e| json!({"step": e["step"], "when": e["data"]["when"], "result": e["data"]["result"], "default": e["data"]["next"]}))
        .collect();
    Ok(Json(json!({
        "status": session["status"],
        "outcome": session["outcome"],
        "reason": session["reason"],
        "rules": rules,
    })))
}
