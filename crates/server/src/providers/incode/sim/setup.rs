//! The Incode simulator wired to a Gangway: mounted at `/sim/incode`, its
//! webhooks sent with OAuth2 client credentials Gangway issues tokens for.

use super::{IncodeSim, IncodeSimConfig, IncodeWebhookAuth};
use crate::config::{Config, IncodeConfig};
use crate::sim::setup::{SimCredentials, Wiring};
use axum::Router;

pub fn router(w: &Wiring<'_>) -> Option<Router> {
    if w.opts.without_incode {
        return None;
    }
    let gangway_url = w.gangway_url;
    let sim = IncodeSim::new(IncodeSimConfig {
        api_key: w.creds.incode_api_key.clone(),
        webhook_url: format!("{gangway_url}/v1/webhooks/incode"),
        webhook_auth: IncodeWebhookAuth::OAuth2 {
            token_url: format!("{gangway_url}/v1/webhooks/incode/token"),
            client_id: w.creds.incode_client_id.clone(),
            client_secret: w.creds.incode_client_secret.clone(),
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
    config.incode.is_some()
}

/// Points the `incode` connector at the simulator on `base`.
pub fn configure(config: &mut Config, base: &str, creds: &SimCredentials) {
    config.incode = Some(IncodeConfig {
        base_url: format!("{base}/sim/incode"),
        api_key: creds.incode_api_key.clone(),
        configuration_id: "gangway-demo-flow".into(),
        language: "en-US".into(),
        webhook_client_id: Some(creds.incode_client_id.clone()),
        webhook_client_secret: Some(creds.incode_client_secret.clone()),
        webhook_header_secret: None,
    });
}
