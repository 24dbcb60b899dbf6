//! The Ockto simulator wired to a Gangway: mounted at `/sim/ockto` (or only
//! its public part there, when its API sits behind a mutual-TLS listener).

use super::{OcktoSim, OcktoSimConfig};
use crate::config::Config;
use crate::providers::ockto::config::OcktoConfig;
use crate::providers::{DemoValue, SimCredential};
use crate::sim::setup::{SimCredentials, Wiring};
use axum::Router;

/// What the simulator shares with Gangway: `gangway sim`'s flags and
/// `SIM_*` variables (docs/simulators.md), the demo's values.
pub const CREDENTIALS: &[SimCredential] = &[
    SimCredential {
        id: "ockto_username",
        flag: "ockto-username",
        env: "SIM_OCKTO_USERNAME",
        help: "Basic credentials and provider code the Ockto simulator expects.",
        default: Some("gangway"),
        demo: DemoValue::Fixed("gangway-demo"),
    },
    SimCredential {
        id: "ockto_password",
        flag: "ockto-password",
        env: "SIM_OCKTO_PASSWORD",
        help: "Basic password the Ockto simulator expects.",
        default: Some("ockto-simulator-password"),
        demo: DemoValue::Secret("ocktopw"),
    },
    SimCredential {
        id: "ockto_provider_code",
        flag: "ockto-provider-code",
        env: "SIM_OCKTO_PROVIDER_CODE",
        help: "Provider code (X-Ockto-Provider-Code) the Ockto simulator expects.",
        default: Some("GANGWAY"),
        demo: DemoValue::Fixed("GANGWAY-DEMO"),
    },
];

/// The Ockto simulator; phones reach it (the QR code's URL) at `sim_url`.
pub fn sim(sim_url: &str, creds: &SimCredentials) -> OcktoSim {
    OcktoSim::new(OcktoSimConfig {
        username: creds.get("ockto_username").to_string(),
        password: creds.get("ockto_password").to_string(),
        provider_code: creds.get("ockto_provider_code").to_string(),
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
    config.section::<OcktoConfig>().is_some()
}

/// Points the `ockto` connector at the simulator on `base` (plain HTTP).
pub fn configure(config: &mut Config, base: &str, creds: &SimCredentials) {
    config.set_section(OcktoConfig {
        base_url: format!("{base}/sim/ockto"),
        username: creds.get("ockto_username").to_string(),
        password: creds.get("ockto_password").to_string(),
        provider_code: creds.get("ockto_provider_code").to_string(),
        client_cert: None,
        client_key: None,
        ca_cert: None,
        ockto_type: "P".into(),
        consent_code: None,
    });
}
