//! The Ockto simulator wired to a Gangway: mounted at `/sim/ockto` (or only
//! its public part there, when its API sits behind a mutual-TLS listener).

use super::{OcktoSim, OcktoSimConfig};
use crate::config::{Config, OcktoConfig};
use crate::sim::setup::{SimCredentials, Wiring};
use axum::Router;

/// The Ockto simulator; phones reach it (the QR code's URL) at `sim_url`.
pub fn sim(sim_url: &str, creds: &SimCredentials) -> OcktoSim {
    OcktoSim::new(OcktoSimConfig {
        username: creds.ockto_username.clone(),
        password: creds.ockto_password.clone(),
        provider_code: creds.ockto_provider_code.clone(),
        public_url: format!("{}/sim/ockto", sim_url.trim_end_matches('/')),
    })
}

pub fn router(w: &Wiring<'_>) -> Option<Router> {
    Some(
        w.opts
            .ockto
            .clone()
            .unwrap_or_else(|| sim(w.sim_url, w.creds).router()),
    )
}

pub fn configured(config: &Config) -> bool {
    config.ockto.is_some()
}

/// Points the `ockto` connector at the simulator on `base` (plain HTTP).
pub fn configure(config: &mut Config, base: &str, creds: &SimCredentials) {
    config.ockto = Some(OcktoConfig {
        base_url: format!("{base}/sim/ockto"),
        username: creds.ockto_username.clone(),
        password: creds.ockto_password.clone(),
        provider_code: creds.ockto_provider_code.clone(),
        client_cert: None,
        client_key: None,
        ca_cert: None,
        ockto_type: "P".into(),
        consent_code: None,
    });
}
