//! 360dialog (WhatsApp number connection through the Partner API): the
//! permissions URL with a one-time state, redirect confirmation, channel
//! statuses and sealed channel API keys, for several partner hubs
//! (client.rs); partner webhooks, the redirect page and the audited secrets
//! endpoint (webhook.rs); `[dialog360]` (config.rs); and its simulator (sim/).

pub mod client;
pub mod config;
pub mod sim;
pub mod webhook;

use super::{Context, Provider, Registration};
use crate::api::AppState;
use crate::connectors::{CallError, CallOutput};
use axum::Router;
use axum::routing::{get, post};
use gangway_core::catalog::ActionSpec;
use serde_json::Value;

pub const PROVIDER: Registration = Registration {
    name: "dialog360",
    actions: &[
        ActionSpec {
            name: "dialog360.start",
            required: &["session_id"],
            optional: &[
                "hub",
                "origin",
                "return_url",
                "number",
                "email",
                "name",
                "next",
                "client_id",
            ],
            url_paths: &[],
            summary: "Builds the 360dialog permissions URL with a one-time state; result is {state, url, hub, payment, origin, return_url}.",
        },
        ActionSpec {
            name: "dialog360.confirm",
            required: &["hub", "state", "redirect"],
            optional: &[],
            url_paths: &[],
            summary: "Confirms a redirect's client and channels with the Partner API; result is {confirmed, reason, client, channels, revoked}.",
        },
        ActionSpec {
            name: "dialog360.channels",
            required: &["hub", "client", "channels"],
            optional: &[],
            url_paths: &[],
            summary: "Reads the channels' statuses; result is {statuses, all_running, any_error, all_gone, pending}.",
        },
        ActionSpec {
            name: "dialog360.create_keys",
            required: &["hub", "channels"],
            optional: &[],
            url_paths: &[],
            summary: "Creates one API key per running channel, sealed; result is {created, permission_missing, reason, secrets}.",
        },
        ActionSpec {
            name: "dialog360.key_permission",
            required: &["hub", "channels"],
            optional: &[],
            url_paths: &[],
            summary: "Whether the client allows API key creation (Direct Payment); result is {allowed}.",
        },
    ],
    connect,
    routes,
    secret_words: &[],
    config: crate::config::ConfigSection::of::<config::Dialog360Config>(config::check),
    sim: Some(super::SimRegistration {
        mount: "360dialog",
        router: sim::setup::router,
        configured: sim::setup::configured,
        configure: sim::setup::configure,
        credentials: sim::setup::CREDENTIALS,
    }),
    // Nothing to close: a permissions page left alone grants nothing.
    release: None,
    retained: "360dialog keeps the WhatsApp channel and its partner data under its own terms; its Partner API documents no deletion of a client's data",
};

fn connect(cx: &Context<'_>) -> Result<Box<dyn Provider>, String> {
    Ok(Box::new(client::Dialog360Connector::new(
        cx.config.section::<config::Dialog360Config>().cloned(),
        cx.config.engine.request_timeout,
        cx.sealer.clone(),
        cx.config.base_url(),
        cx.config.client.allowed_origins.clone(),
    )?))
}

fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/webhooks/360dialog", post(webhook::webhook))
        .route(
            "/v1/redirect/360dialog/{state}",
            get(webhook::redirect_page).post(webhook::redirect_post),
        )
}

#[async_trait::async_trait]
impl Provider for client::Dialog360Connector {
    async fn call(&self, action: &str, args: &Value, _key: &str) -> Result<CallOutput, CallError> {
        match action {
            "dialog360.start" => self.start(args),
            "dialog360.confirm" => self.confirm(args).await,
            "dialog360.channels" => self.channels(args).await,
            "dialog360.create_keys" => self.create_keys(args).await,
            "dialog360.key_permission" => self.key_permission(args).await,
            other => Err(super::unlisted(other)),
        }
    }
}
