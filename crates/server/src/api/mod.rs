//! The HTTP API (axum): the customer backend's `/v1` (API key), the
//! browser's `/v1/client` (client secret), provider webhooks, and operations
//! endpoints. Handlers parse input into domain types and call the engine;
//! none of them talks SQL.

mod admin;
mod audit;
pub(crate) mod auth;
mod changes;
mod chat;
mod client;
mod console;
mod deliveries;
mod deploy;
mod dry_run;
pub mod error;
pub(crate) mod extract;
mod long_poll;
mod openapi;
mod ops;
mod origin;
mod reviews;
mod sessions;
mod shapes;
mod stats;
mod validate;
mod workflows;

/// The pure parts of inbound requests: webhook and callback verifiers and
/// body parsers, the chat protocol's messages (fuzzed in `fuzz/`).
pub mod inbound {
    pub use super::chat::{Hello, SayLine, parse_hello, parse_say};
    pub use crate::providers::dialog360::webhook::{
        PartnerEvent, parse_partner_event, token_param,
    };
    pub use crate::providers::http::webhook::{
        HttpEvent, http_event, verify as verify_http_webhook,
    };
    pub use crate::providers::incode::webhook::{
        IncodeEvent, client_credentials_grant, client_credentials_ok, issue_token,
        parse_webhook as parse_incode_webhook, token_valid, webhook_credentials_ok,
    };
    pub use crate::providers::oih::callback::{Callback, parse_callback};
    pub use crate::providers::stripe::webhook::{
        SignatureHeader, StripeEvent, parse_event as parse_stripe_event,
        parse_signature_header as parse_stripe_signature, sign as sign_stripe,
        verify as verify_stripe_webhook,
    };
    pub use axum::http::HeaderMap;
}

/// The process-wide metrics recorder (installed on first use).
pub use ops::metrics_handle;

use crate::limits::Limits;
use crate::runtime::Engine;
use axum::Router;
use axum::http::{HeaderValue, Method, header};
use std::sync::Arc;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    /// Rate limits and failed-authentication lockouts of this node.
    pub(crate) limits: Arc<Limits>,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// One permit per dry run, held until its sandbox has stopped.
    dry_runs: Arc<tokio::sync::Semaphore>,
    /// One permit per long poll waiting on this node.
    long_polls: Arc<tokio::sync::Semaphore>,
}

/// A webhook path no registered provider serves.
async fn no_such_webhook(
    axum::extract::Path(connector): axum::extract::Path<String>,
) -> error::Problem {
    error::Problem::not_found(format!(
        "no connector `{connector}` receives webhooks here; generic webhooks go to /v1/webhooks/http/{{name}}"
    ))
}

/// Largest request body accepted anywhere (webhooks included).
const BODY_LIMIT: usize = 1024 * 1024;

/// The operations endpoints alone (`/healthz`, `/readyz`, `/metrics`), for
/// `admin_listen`.
pub fn admin_router(engine: Arc<Engine>) -> Router {
    let state = AppState {
        limits: Arc::new(Limits::new(&engine.config().rate_limits)),
        metrics: ops::metrics_handle(),
        dry_runs: Arc::new(tokio::sync::Semaphore::new(1)),
        long_polls: Arc::new(tokio::sync::Semaphore::new(1)),
        engine,
    };
    ops::routes(true)
        .fallback(|| async { error::Problem::not_found("no such endpoint on the admin listener") })
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .with_state(state)
}

pub fn router(engine: Arc<Engine>) -> Router {
    // With an admin listener, `/metrics` is served there only.
    let metrics_here = engine.config().admin_listen.is_none();
    let limits = Arc::new(Limits::new(&engine.config().rate_limits));
    limits.spawn_maintenance(engine.shutdown_signal());
    let state = AppState {
        engine: engine.clone(),
        limits,
        metrics: ops::metrics_handle(),
        dry_runs: Arc::new(tokio::sync::Semaphore::new(engine.config().limits.dry_runs)),
        long_polls: Arc::new(tokio::sync::Semaphore::new(
            engine.config().limits.long_polls,
        )),
    };
    // Routes that carry no API key or client secret: limited per address.
    let unauthenticated = Router::new()
        .merge(crate::providers::routes())
        .route(
            "/v1/webhooks/{connector}",
            axum::routing::post(no_such_webhook),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::unauthenticated_limits,
        ));
    let origins: Vec<HeaderValue> = engine
        .config()
        .client
        .allowed_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok())
        .collect();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("last-event-id"),
        ]);
    // Inside CORS: another origin's request is refused readably (origin.rs).
    let client = client::routes()
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            origin::check,
        ))
        .layer(cors);
    Router::new()
        .merge(sessions::routes())
        .merge(changes::routes())
        .merge(reviews::routes())
        .merge(deliveries::routes())
        .merge(stats::routes())
        .merge(console::routes())
        .merge(client)
        .merge(unauthenticated)
        .merge(admin::routes())
        .merge(audit::routes())
        .merge(deploy::routes())
        .merge(workflows::routes())
        .route(
            "/v1/client/sessions/{id}/chat",
            axum::routing::get(chat::socket),
        )
        .merge(ops::routes(metrics_here))
        .merge(openapi::routes())
        .merge(crate::web::routes())
        .fallback(|| async { error::Problem::not_found("no such endpoint; see /openapi.json") })
        .method_not_allowed_fallback(|| async {
            error::Problem::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                "this endpoint does not accept that method",
            )
        })
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        // Outside the body limit, so that its 413 is shaped too.
        .layer(axum::middleware::from_fn(shapes::problem_shapes))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .with_state(state)
}
