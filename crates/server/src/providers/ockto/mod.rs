//! Ockto (bank and pension data shared from the user's phone): sources,
//! start, status and result over mutual TLS (client/); no webhooks, so its
//! waits poll; `[ockto]` (config.rs); and its simulator with the phone page
//! behind a client-certificate listener (sim/).

pub mod client;
pub mod config;
pub mod sim;

use super::{Context, Provider, Registration};
use crate::connectors::{CallError, CallOutput};
use gangway_core::catalog::ActionSpec;
use serde_json::Value;

pub const PROVIDER: Registration = Registration {
    name: "ockto",
    actions: &[
        ActionSpec {
            name: "ockto.sources",
            required: &[],
            optional: &["ockto_type", "required"],
            url_paths: &[],
            summary: "Checks which Ockto data sources are available; result is {available, sources, unavailable, unavailable_text}.",
        },
        ActionSpec {
            name: "ockto.start",
            required: &[],
            optional: &[
                "session_id",
                "test_case_id",
                "consent_code",
                "ockto_type",
                "odm_version",
                "request_documents",
                "disable_partner",
                "psd2_info_included",
                "psd2_amount_of_months",
            ],
            url_paths: &[],
            summary: "Starts an Ockto session; result is {session_id, qr_code}.",
        },
        ActionSpec {
            name: "ockto.status",
            required: &["session_id"],
            optional: &[],
            url_paths: &[],
            summary: "Reads an Ockto session's status; result is {session_id, status, event, scanned, terminal, qr_code}.",
        },
        ActionSpec {
            name: "ockto.result",
            required: &["session_id"],
            optional: &[],
            url_paths: &[],
            summary: "Reads the shared data (ODM); result is {odm, summary}.",
        },
    ],
    connect,
    // Ockto sends no webhooks: its waits poll.
    routes: axum::Router::new,
    // A QR code opens someone's data-sharing session.
    secret_words: &["qrcode", "qr_code"],
    config: crate::config::ConfigSection::of::<config::OcktoConfig>(config::check),
    sim: Some(super::SimRegistration {
        mount: "ockto",
        router: sim::setup::router,
        configured: sim::setup::configured,
        configure: sim::setup::configure,
        credentials: sim::setup::CREDENTIALS,
    }),
    // Ockto's public wrapper documents no cancel (providers.md 3.1).
    release: None,
    retained: "Ockto documents no deletion API; it keeps the shared data under its own retention (document links expire after 10 minutes)",
};

fn connect(cx: &Context<'_>) -> Result<Box<dyn Provider>, String> {
    Ok(Box::new(client::OcktoConnector::new(
        cx.config.section::<config::OcktoConfig>().cloned(),
        cx.config.engine.request_timeout,
    )))
}

#[async_trait::async_trait]
impl Provider for client::OcktoConnector {
    async fn call(&self, action: &str, args: &Value, key: &str) -> Result<CallOutput, CallError> {
        match action {
            "ockto.sources" => self.sources(args).await,
            // Ockto documents no idempotency header; the step's key
            // becomes our `sessionId` at Ockto.
            "ockto.start" => self.start(args, key).await,
            "ockto.status" => self.status(args).await,
            "ockto.result" => self.result(args).await,
            other => Err(super::unlisted(other)),
        }
    }
}
