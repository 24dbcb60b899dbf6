//! Gangway's runtime: configuration, the durable store, the engine runner,
//! connectors, the HTTP API, the browser SDK and the built-in provider simulators.

pub mod api;
pub mod app;
pub mod audit;
pub mod config;
pub mod connectors;
pub mod crypto;
pub mod egress;
pub mod ids;
pub mod keys;
pub mod limits;
pub mod logging;
pub mod operators;
pub mod otel;
pub mod providers;
pub mod runtime;
pub mod sandbox;
pub mod serve;
pub mod sim;
pub mod store;
pub mod telemetry;
pub mod web;

/// The router type the binary composes (re-exported so it need not depend on axum).
pub use axum::Router;
