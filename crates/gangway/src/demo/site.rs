//! The demo customer site at `/demo`: a landing page with one card per
//! onboarding flow, a flow page that embeds the SDK exactly as docs/sdk.md
//! shows, a page listing the signed webhooks the customer backend received,
//! and the routes of that tiny customer backend (backend.rs). The browser
//! only ever gets a session id and its client secret.

use super::backend;
use super::inbox::Inbox;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use gangway_server::Router;
use gangway_server::api::error::Problem;
use std::sync::Arc;

/// A flow the demo offers (one card on the landing page).
pub(super) struct DemoFlow {
    pub slug: &'static str,
    pub workflow: &'static str,
    eyebrow: &'static str,
    title: &'static str,
    lead: &'static str,
    /// The session input the demo backend sends (JSON).
    pub input: &'static str,
    /// Whether the backend adds the page's `origin` and `return_url` to the
    /// input (a popup flow: where the redirect page posts and links back).
    pub return_to_page: bool,
}

pub(super) const FLOWS: &[DemoFlow] = &[
    DemoFlow {
        slug: "incode-identity",
        workflow: "incode-identity",
        eyebrow: "Account opening · identity",
        title: "Verify your identity",
        lead: "Photograph your ID and take a selfie. It takes about a minute, and your data goes straight to our verification partner.",
        input: "{}",
        return_to_page: false,
    },
    DemoFlow {
        slug: "stripe-identity",
        workflow: "stripe-identity",
        eyebrow: "Marketplace seller · identity",
        title: "Verify with Stripe",
        lead: "Photograph an identity document and take a selfie on Stripe's page, in a window of its own. If a photo does not work out, you can try again.",
        input: "{}",
        return_to_page: false,
    },
    DemoFlow {
        slug: "ockto-mortgage",
        workflow: "ockto-mortgage",
        eyebrow: "Mortgage · € 250,000 · income check",
        title: "Check your mortgage",
        lead: "Scan the code with your phone and share your income, fixed costs and debts from official sources. We decide in seconds.",
        input: r#"{"loan_amount": 250000}"#,
        return_to_page: false,
    },
    DemoFlow {
        slug: "whatsapp-360dialog",
        workflow: "whatsapp-onboarding",
        eyebrow: "Business messaging · WhatsApp",
        title: "Connect WhatsApp",
        lead: "Connect your business number in a window from our messaging partner 360dialog. Kestrel's backend receives the number's API key; it never reaches this page.",
        input: r#"{"number": "+31612345678", "name": "Kestrel Business Customer"}"#,
        return_to_page: true,
    },
    DemoFlow {
        slug: "assistant-oih",
        workflow: "oih-assistant",
        eyebrow: "Support · Assistant",
        title: "Ask the assistant",
        lead: "Type /help. Sign in with /auth, see your profile with /me, or run an integration flow with /run-flow. Flows run on our Open Integration Hub; results arrive here live.",
        input: "{}",
        return_to_page: false,
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
    /// The origins this site is served on (the first is the canonical one).
    pub own_origins: Vec<String>,
}

#[derive(Clone)]
pub(super) struct Shared {
    pub site: Arc<Site>,
    pub http: reqwest::Client,
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
        .route(
            "/demo/api/sessions",
            axum::routing::post(backend::create_session),
        )
        .route("/demo/api/sessions/{id}/decision", get(backend::decision))
        .route(
            "/demo/api/sessions/{id}/channel-key",
            get(backend::channel_key),
        )
        .route(
            "/demo/api/webhooks",
            get(backend::list_webhooks).post(backend::receive_webhook),
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
