//! The Stripe simulator wired to a Gangway: mounted at `/sim/stripe`, its
//! events signed with the webhook secret Gangway's `[stripe]` lists.

use super::{StripeSim, StripeSimConfig};
use crate::config::Config;
use crate::providers::stripe::config::StripeConfig;
use crate::sim::setup::{SimCredentials, Wiring};
use axum::Router;
use std::time::Duration;

pub fn router(w: &Wiring<'_>) -> Option<Router> {
    if w.creds.stripe_secret_key.is_empty() || w.creds.stripe_webhook_secret.is_empty() {
        return None;
    }
    let sim = StripeSim::new(StripeSimConfig {
        secret_key: w.creds.stripe_secret_key.clone(),
        webhook_url: format!("{}/v1/webhooks/stripe", w.gangway_url),
        webhook_secrets: vec![w.creds.stripe_webhook_secret.clone()],
        public_url: format!("{}/sim/stripe", w.sim_url),
        frame_ancestors: w.opts.frame_ancestors.clone(),
    });
    Some(sim.router())
}

pub fn configured(config: &Config) -> bool {
    config.stripe.is_some()
}

/// Points the `stripe` connector at the simulator on `base`.
pub fn configure(config: &mut Config, base: &str, creds: &SimCredentials) {
    config.stripe = Some(StripeConfig {
        base_url: format!("{base}/sim/stripe"),
        secret_key: creds.stripe_secret_key.clone(),
        webhook_secrets: vec![creds.stripe_webhook_secret.clone()],
        tolerance: Duration::from_secs(300),
        require_matching_selfie: true,
        return_url: None,
        api_version: None,
    });
}
