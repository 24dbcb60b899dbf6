//! The OIH simulator wired to a Gangway: mounted at `/sim/oih`, every
//! shipped flow taking the same HMAC key.

use super::{OihSim, OihSimConfig, shipped_flows};
use crate::config::{Config, OihConfig};
use crate::sim::setup::{SimCredentials, Wiring};
use axum::Router;

pub fn router(w: &Wiring<'_>) -> Option<Router> {
    let sim = OihSim::new(OihSimConfig {
        flows: shipped_flows(&w.creds.oih_hmac_key),
        public_url: format!("{}/sim/oih", w.sim_url),
        not_found_delay_ms: w.opts.oih_not_found_delay_ms.unwrap_or(1000),
        knobs: Default::default(),
    });
    Some(sim.router())
}

pub fn configured(config: &Config) -> bool {
    config.oih.is_some()
}

/// Points the `oih` connector at the simulated hub on `base`; every shipped
/// flow takes the same HMAC key.
pub fn configure(config: &mut Config, base: &str, creds: &SimCredentials) {
    config.oih = Some(OihConfig {
        base_url: format!("{base}/sim/oih"),
        hmac_key: Some(creds.oih_hmac_key.clone()),
        flows: Default::default(),
    });
}
