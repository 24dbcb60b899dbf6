//! The Incode simulator wired to a Gangway: mounted at `/sim/incode`, its
//! webhooks sent with OAuth2 client credentials Gangway issues tokens for.

use super::{IncodeSim, IncodeSimConfig, IncodeWebhookAuth};
use crate::config::Config;
use crate::providers::incode::config::IncodeConfig;
use crate::providers::{DemoValue, SimCredential};
use crate::sim::setup::{SimCredentials, Wiring};
use axum::Router;

/// What the simulator shares with Gangway: `gangway sim`'s flags and
/// `SIM_*` variables (docs/simulators.md), the demo's values.
pub const CREDENTIALS: &[SimCredential] = &[
    SimCredential {
        id: "incode_api_key",
        flag: "incode-api-key",
        env: "SIM_INCODE_API_KEY",
        help: "API key the Incode simulator expects. With --incode-client-secret; without both, /sim/incode is not served.",
        default: None,
        demo: DemoValue::Secret("incodekey"),
    },
    SimCredential {
        id: "incode_client_id",
        flag: "incode-client-id",
        env: "SIM_INCODE_CLIENT_ID",
        help: "OAuth2 client the Incode simulator uses at Gangway's token endpoint.",
        default: Some("incode-webhooks"),
        demo: DemoValue::Fixed("incode-webhooks"),
    },
    SimCredential {
        id: "incode_client_secret",
        flag: "incode-client-secret",
        env: "SIM_INCODE_CLIENT_SECRET",
        help: "That OAuth2 client's secret.",
        default: None,
        demo: DemoValue::Secret("incodewh"),
    },
];

pub fn router(w: &Wiring<'_>) -> Option<Router> {
    let gangway_url = w.gangway_url;
    let sim = IncodeSim::new(IncodeSimConfig {
        api_key: w.creds.get("incode_api_key").to_string(),
        webhook_url: format!("{gangway_url}/v1/webhooks/incode"),
        webhook_auth: IncodeWebhookAuth::OAuth2 {
            token_url: format!("{gangway_url}/v1/webhooks/incode/token"),
            client_id: w.creds.get("incode_client_id").to_string(),
            client_secret: w.creds.get("incode_client_secret").to_string(),
        },
        public_url: format!("{}/sim/incode", w.sim_url),
        frame_ancestors: w.opts.frame_ancestors.clone(),
    });
    if let Err(e) = sim.set_knobs(w.opts.incode_knobs.clone()) {
        tracing::warn!(error = %e, "incode sim: knobs refused; using the defaults");
    }
    Some(sim.router())
}

pub fn configured(config: &Config) -> bool {
    config.section::<IncodeConfig>().is_some()
}

/// Points the `incode` connector at the simulator on `base`.
pub fn configure(config: &mut Config, base: &str, creds: &SimCredentials) {
    config.set_section(IncodeConfig {
        base_url: format!("{base}/sim/incode"),
        api_key: creds.get("incode_api_key").to_string(),
        configuration_id: "gangway-demo-flow".into(),
        language: "en-US".into(),
        webhook_client_id: Some(creds.get("incode_client_id").to_string()),
        webhook_client_secret: Some(creds.get("incode_client_secret").to_string()),
        webhook_header_secret: None,
    });
}
