//! Stripe Identity: VerificationSessions created, read back, canceled and
//! redacted server-side with the secret key (client.rs); Stripe's signed
//! events at `/v1/webhooks/stripe` (webhook.rs); `[stripe]` (config.rs); and
//! its simulator with the hosted verification page (sim/).

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

/// The `last_error.code` values Stripe documents for a VerificationSession.
pub const LAST_ERROR_CODES: [&str; 19] = [
    "abandoned",
    "consent_declined",
    "country_not_supported",
    "device_not_supported",
    "document_expired",
    "document_type_not_supported",
    "document_unverified_other",
    "email_unverified_other",
    "email_verification_declined",
    "id_number_insufficient_document_data",
    "id_number_mismatch",
    "id_number_unverified_other",
    "phone_unverified_other",
    "phone_verification_declined",
    "selfie_document_missing_photo",
    "selfie_face_mismatch",
    "selfie_manipulated",
    "selfie_unverified_other",
    "under_supported_age",
];

pub const PROVIDER: Registration = Registration {
    name: "stripe",
    actions: &[
        ActionSpec {
            name: "stripe.create",
            required: &[],
            optional: &[
                "reference",
                "return_url",
                "require_matching_selfie",
                "allowed_types",
                "metadata",
            ],
            url_paths: &[],
            summary: "Creates a document VerificationSession (Idempotency-Key: a retry gets the same one); result is {id, status, url, client_secret, created_ms}.",
        },
        ActionSpec {
            name: "stripe.retrieve",
            required: &["id"],
            optional: &[],
            url_paths: &[],
            summary: "Reads the VerificationSession with verified_outputs; result is {id, status, event, last_error, error_class, attempt, url, client_secret, verified_outputs, redaction_status}.",
        },
        ActionSpec {
            name: "stripe.cancel",
            required: &["id"],
            optional: &[],
            url_paths: &[],
            summary: "Cancels the VerificationSession if it still waits for the user; result is {id, status, canceled}.",
        },
        ActionSpec {
            name: "stripe.redact",
            required: &["id"],
            optional: &[],
            url_paths: &[],
            summary: "Asks Stripe to redact the VerificationSession's personal data; result is {id, status, redaction_status}.",
        },
    ],
    connect,
    routes,
    // `client_secret` is covered by the shared words; the hosted `url` is
    // a bearer link to the user's verification, so it stays out of records.
    secret_words: &[],
    config: crate::config::ConfigSection::of::<config::StripeConfig>(config::check),
    sim: Some(super::SimRegistration {
        mount: "stripe",
        router: sim::setup::router,
        configured: sim::setup::configured,
        configure: sim::setup::configure,
        credentials: sim::setup::CREDENTIALS,
    }),
    // A VerificationSession left open could still be submitted and billed.
    release: Some(super::Release {
        cancel: Some("stripe.cancel"),
        redact: Some("stripe.redact"),
    }),
    retained: "Stripe keeps a VerificationSession's data until it is redacted (Gangway asks for that when it erases the session)",
};

fn connect(cx: &Context<'_>) -> Result<Box<dyn Provider>, String> {
    Ok(Box::new(client::StripeConnector::new(
        cx.config.section::<config::StripeConfig>().cloned(),
        cx.config.engine.request_timeout,
    )?))
}

fn routes() -> Router<AppState> {
    Router::new().route("/v1/webhooks/stripe", post(webhook::webhook))
}

#[async_trait::async_trait]
impl Provider for client::StripeConnector {
    async fn call(&self, action: &str, args: &Value, key: &str) -> Result<CallOutput, CallError> {
        match action {
            // Stripe deduplicates POSTs on Idempotency-Key: a retried step
            // visit gets the VerificationSession the first attempt created.
            "stripe.create" => self.create(args, key).await,
            "stripe.retrieve" => self.retrieve(args).await,
            "stripe.cancel" => self.cancel(args, key).await,
            "stripe.redact" => self.redact(args, key).await,
            other => Err(super::unlisted(other)),
        }
    }
}
