//! Open Integration Hub: flows triggered at `POST /hook/{flow}` with a
//! base64 HMAC over the exact body bytes and `x-request-id` (client.rs); the
//! flow's callbacks at `/v1/callbacks/oih/{token}` (callback.rs); `[oih]`
//! (config.rs); and its simulator, a small hub with flows (sim/).

pub mod callback;
pub mod client;
pub mod config;
pub mod sim;

use super::{Context, Prepared, Provider, Registration};
use crate::api::AppState;
use crate::connectors::{CallError, CallOutput};
use crate::crypto::Sealer;
use axum::Router;
use axum::routing::post;
use gangway_core::catalog::ActionSpec;
use serde_json::Value;

pub const PROVIDER: Registration = Registration {
    name: "oih",
    actions: &[ActionSpec {
        name: "oih.trigger",
        required: &["flow"],
        optional: &["input", "session_id"],
        url_paths: &[],
        summary: "Triggers an Open Integration Hub flow (POST /hook/{flow}, HMAC-signed) with a per-run callback URL; result is {request_id, flow, sent_ms}. The flow answers with oih.progress, oih.result and oih.error events.",
    }],
    connect,
    routes,
    secret_words: &[],
    config: crate::config::ConfigSection::of::<config::OihConfig>(config::check),
    sim: Some(super::SimRegistration {
        mount: "oih",
        router: sim::setup::router,
        configured: sim::setup::configured,
        configure: sim::setup::configure,
        credentials: sim::setup::CREDENTIALS,
    }),
    // OIH documents no way to stop a queued flow run (providers.md 5).
    release: None,
    retained: "the Open Integration Hub flow keeps what it was sent under the flow's own retention; OIH documents no deletion call for it",
};

/// The client and the sealer its callback tokens are derived under.
struct Oih {
    client: client::OihConnector,
    sealer: Sealer,
}

fn connect(cx: &Context<'_>) -> Result<Box<dyn Provider>, String> {
    Ok(Box::new(Oih {
        client: client::OihConnector::new(
            cx.config.section::<config::OihConfig>().cloned(),
            cx.config.engine.request_timeout,
            cx.config.base_url(),
            cx.sealer.clone(),
        )?,
        sealer: cx.sealer.clone(),
    }))
}

fn routes() -> Router<AppState> {
    Router::new().route("/v1/callbacks/oih/{token}", post(callback::callback))
}

#[async_trait::async_trait]
impl Provider for Oih {
    async fn call(&self, action: &str, args: &Value, _key: &str) -> Result<CallOutput, CallError> {
        match action {
            // The hub never deduplicates: a retried trigger may run the flow
            // twice, with the same request id (flows should be idempotent on it).
            "oih.trigger" => self.client.trigger(args).await,
            other => Err(super::unlisted(other)),
        }
    }

    /// The request id and callback token, correlated to the session in the
    /// transaction that records the call, so an early callback finds it.
    fn prepare(&self, action: &str, args: &Value) -> Option<Prepared> {
        (action == "oih.trigger").then(|| client::prepare(args, &self.sealer))
    }
}
