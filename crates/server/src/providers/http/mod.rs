//! The generic `http` provider: templated JSON requests to configured
//! services (client.rs), HMAC-signed inbound webhooks at
//! `/v1/webhooks/http/{name}` (webhook.rs), `[http.services]` and
//! `[http.webhooks]` (config.rs), and the "score" simulator (sim/).

pub mod client;
pub mod config;
pub mod sim;
pub mod webhook;

use super::{Context, Provider, Registration};
use crate::connectors::{CallError, CallOutput};
use gangway_core::catalog::ActionSpec;
use serde_json::Value;

pub const PROVIDER: Registration = Registration {
    name: "http",
    actions: &[ActionSpec {
        name: "http.request",
        required: &["service", "path"],
        optional: &["method", "body", "query", "headers"],
        url_paths: &["path"],
        summary: "A JSON request to a configured HTTP service; result is {status, body}.",
    }],
    connect,
    routes: webhook::routes,
    secret_words: &[],
    config: crate::config::ConfigSection::of::<config::HttpConnectorConfig>(config::check),
    sim: Some(super::SimRegistration {
        mount: "score",
        router: sim::setup::router,
        configured: sim::setup::configured,
        configure: sim::setup::configure,
        credentials: sim::setup::CREDENTIALS,
    }),
    // A generic endpoint documents no way to stop what it started.
    release: None,
    retained: "the service behind the generic http connector keeps what it was sent under its own retention; Gangway knows no deletion call for it",
};

fn connect(cx: &Context<'_>) -> Result<Box<dyn Provider>, String> {
    Ok(Box::new(client::HttpConnector::new(
        cx.config
            .section::<config::HttpConnectorConfig>()
            .cloned()
            .unwrap_or_default(),
        cx.config.engine.request_timeout,
    )?))
}

#[async_trait::async_trait]
impl Provider for client::HttpConnector {
    async fn call(&self, _action: &str, args: &Value, key: &str) -> Result<CallOutput, CallError> {
        self.request(args, key).await
    }

    /// Each service is a namespace of its own: two services may use the
    /// same reference for different things.
    fn namespace(&self, _action: &str, args: &Value) -> Option<String> {
        let service = args.get("service").and_then(Value::as_str);
        Some(client::namespace(service.unwrap_or_default()))
    }
}
