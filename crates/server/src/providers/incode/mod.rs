//! Incode Omni: sessions started server-side, the onboarding URL the browser
//! opens, status and score reads with token renewal (client.rs); its OAuth2
//! or header-secret webhooks at `/v1/webhooks/incode` (webhook.rs); `[incode]`
//! (config.rs); and its simulator with the hosted flow page (sim/).

pub mod client;
pub mod config;
pub mod sim;
pub mod webhook;

use super::{Context, Provider, Registration};
use crate::api::AppState;
use crate::connectors::{CallError, CallOutput};
use axum::Router;
use axum::routing::post;
use gangway_core::catalog::ActionSpec;
use serde_json::Value;

pub const PROVIDER: Registration = Registration {
    name: "incode",
    actions: &[
        ActionSpec {
            name: "incode.start",
            required: &[],
            optional: &[
                "configuration_id",
                "language",
                "country_code",
                "external_customer_id",
                "redirection_url",
                "custom_fields",
            ],
            url_paths: &[],
            summary: "Starts an Incode Omni session; result is {interview_id, url, token (sealed)}.",
        },
        ActionSpec {
            name: "incode.status",
            required: &["interview_id", "token"],
            optional: &[],
            url_paths: &[],
            summary: "Reads the onboarding status; result is {onboarding_status, event}.",
        },
        ActionSpec {
            name: "incode.score",
            required: &["interview_id", "token"],
            optional: &[],
            url_paths: &[],
            summary: "Reads the score; result is {overall_status, overall_value, score}.",
        },
    ],
    connect,
    routes,
    secret_words: &[],
    config: crate::config::ConfigSection::of::<config::IncodeConfig>(config::check),
    sim: Some(super::SimRegistration {
        mount: "incode",
        router: sim::setup::router,
        configured: sim::setup::configured,
        configure: sim::setup::configure,
        credentials: sim::setup::CREDENTIALS,
    }),
    // Incode documents no cancel of an interview (providers.md 2.1); its
    // `DELETE /omni/interviews` is retention, for erasure (issue 20).
    release: None,
    retained: "Incode keeps the interview (images, document and face data) under the retention set in its dashboard; its API documents DELETE /omni/interviews, which needs an executive token Gangway does not hold, so delete it there",
};

fn connect(cx: &Context<'_>) -> Result<Box<dyn Provider>, String> {
    Ok(Box::new(client::IncodeConnector::new(
        cx.config.section::<config::IncodeConfig>().cloned(),
        cx.config.engine.request_timeout,
        cx.sealer.clone(),
    )?))
}

fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/webhooks/incode", post(webhook::webhook))
        .route("/v1/webhooks/incode/token", post(webhook::token))
}

#[async_trait::async_trait]
impl Provider for client::IncodeConnector {
    async fn call(&self, action: &str, args: &Value, _key: &str) -> Result<CallOutput, CallError> {
        match action {
            // Incode documents no idempotency header: a crash between start
            // and commit can leave one orphan session, never presented.
            "incode.start" => self.start(args).await,
            "incode.status" => self.status(args).await,
            "incode.score" => self.score(args).await,
            other => Err(super::unlisted(other)),
        }
    }
}
