//! The OIH simulator wired to a Gangway: mounted at `/sim/oih`, every
//! shipped flow taking the same HMAC key.

use super::{OihSim, OihSimConfig, shipped_flows};
use crate::config::Config;
use crate::providers::oih::config::OihConfig;
use crate::providers::{DemoValue, SimCredential};
use crate::sim::setup::{SimCredentials, Wiring};
use axum::Router;

/// What the simulator shares with Gangway: `gangway sim`'s flags and
/// `SIM_*` variables (docs/simulators.md), the demo's values.
pub const CREDENTIALS: &[SimCredential] = &[SimCredential {
    id: "oih_hmac_key",
    flag: "oih-hmac-key",
    env: "SIM_OIH_HMAC_KEY",
    help: "HMAC key the simulated Open Integration Hub's flows require.",
    default: Some(""),
    demo: DemoValue::Secret("oihhmac"),
}];

pub fn router(w: &Wiring<'_>) -> Option<Router> {
    let sim = OihSim::new(OihSimConfig {
        flows: shipped_flows(w.creds.get("oih_hmac_key")),
        public_url: format!("{}/sim/oih", w.sim_url),
        not_found_delay_ms: w.opts.oih_not_found_delay_ms.unwrap_or(1000),
        knobs: Default::default(),
    });
    Some(sim.router())
}

pub fn configured(config: &Config) -> bool {
    config.section::<OihConfig>().is_some()
}

/// Points the `oih` connector at the simulated hub on `base`; every shipped
/// flow takes the same HMAC key.
pub fn configure(config: &mut Config, base: &str, creds: &SimCredentials) {
    config.set_section(OihConfig {
        base_url: format!("{base}/sim/oih"),
        hmac_key: Some(creds.get("oih_hmac_key").to_string()),
        flows: Default::default(),
    });
}
