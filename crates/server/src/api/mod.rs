//! The HTTP API (axum): the customer backend's `/v1` (API key), the
//! browser's `/v1/client` (client secret), provider webhooks, and operations
//! endpoints. Handlers parse input into domain types and call the engine;
//! none of them talks SQL.

mod chat;
mod client;
mod dialog360;
mod dry_run;
pub mod error;
mod extract;
mod incode;
mod oih;
mod openapi;
mod ops;
mod sessions;
mod webhooks;

use crate::runtime::Engine;
use axum::Router;
use axum::http::{HeaderValue, Method, header};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    /// API key hash -> key id, so that hot paths skip the lookup.
    key_cache: Arc<Mutex<HashMap<String, String>>>,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
}

/// Largest request body accepted anywhere (webhooks included).
const BODY_LIMIT: usize = 1024 * 1024;

pub fn router(engine: Arc<Engine>) -> Router {
    let state = AppState {
        engine: engine.clone(),
        key_cache: Arc::default(),
        metrics: ops::metrics_handle(),
    };
    let origins: Vec<HeaderValue> = engine
        .config
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
    let client = client::routes().layer(cors);
    Router::new()
        .merge(sessions::routes())
        .merge(client)
        .merge(webhooks::routes())
        .route(
            "/v1/client/sessions/{id}/chat",
            axum::routing::get(chat::socket),
        )
        .route(
            "/v1/callbacks/oih/{token}",
            axum::routing::post(oih::callback),
        )
        .route(
            "/v1/redirect/360dialog/{state}",
            axum::routing::get(dialog360::redirect_page).post(dialog360::redirect_post),
        )
        .merge(ops::routes())
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
