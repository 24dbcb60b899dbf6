//! The Stripe simulator wired to a Gangway: mounted at `/sim/stripe`, its
//! events signed with the webhook secret Gangway's `[stripe]` lists.

use super::{StripeSim, StripeSimConfig};
use crate::config::Config;
use crate::providers::stripe::config::StripeConfig;
use crate::providers::{DemoValue, SimCredential};
use crate::sim::setup::{SimCredentials, Wiring};
use axum::Router;
use std::time::Duration;

/// What the simulator shares with Gangway: `gangway sim`'s flags and
/// `SIM_*` variables (docs/simulators.md), the demo's values.
pub const CREDENTIALS: &[SimCredential] = &[
    SimCredential {
        id: "stripe_secret_key",
        flag: "stripe-secret-key",
        env: "SIM_STRIPE_SECRET_KEY",
        help: "Secret key the Stripe simulator expects. With --stripe-webhook-secret; without both, /sim/stripe is not served.",
        default: None,
        demo: DemoValue::Secret("sk_test"),
    },
    SimCredential {
        id: "stripe_webhook_secret",
        flag: "stripe-webhook-secret",
        env: "SIM_STRIPE_WEBHOOK_SECRET",
        help: "Signing secret of the Stripe simulator's events (Gangway's `stripe.webhook_secrets` lists it).",
        default: None,
        demo: DemoValue::Secret("whsec"),
    },
];

pub fn router(w: &Wiring<'_>) -> Option<Router> {
    let sim = StripeSim::new(StripeSimConfig {
        secret_key: w.creds.get("stripe_secret_key").to_string(),
        webhook_url: format!("{}/v1/webhooks/stripe", w.gangway_url),
        webhook_secrets: vec![w.creds.get("stripe_webhook_secret").to_string()],
        public_url: format!("{}/sim/stripe", w.sim_url),
        frame_ancestors: w.opts.frame_ancestors.clone(),
    });
    Some(sim.router())
}

pub fn configured(config: &Config) -> bool {
    config.section::<StripeConfig>().is_some()
}

/// Points the `stripe` connector at the simulator on `base`.
pub fn configure(config: &mut Config, base: &str, creds: &SimCredentials) {
    config.set_section(StripeConfig {
        base_url: format!("{base}/sim/stripe"),
        secret_key: creds.get("stripe_secret_key").to_string(),
        webhook_secrets: vec![creds.get("stripe_webhook_secret").to_string()],
        tolerance: Duration::from_secs(300),
        require_matching_selfie: true,
        return_url: None,
        api_version: None,
    });
}
