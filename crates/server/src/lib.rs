//! Gangway's runtime: configuration, the durable store, the engine runner,
//! connectors, the HTTP API, the browser SDK and the built-in provider simulators.

pub mod api;
pub mod app;
pub mod config;
pub mod connectors;
pub mod crypto;
pub mod ids;
pub mod runtime;
pub mod sandbox;
pub mod sim;
pub mod store;
pub mod web;

/// The router type the binary composes (re-exported so it need not depend on axum).
pub use axum::Router;
