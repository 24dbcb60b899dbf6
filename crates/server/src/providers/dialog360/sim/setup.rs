//! The 360dialog simulator wired to a Gangway: mounted at `/sim/360dialog`
//! with two partner hubs (Partner Payment and Direct Payment) whose webhooks
//! and redirects go to Gangway.

use super::{Dialog360Sim, Dialog360SimConfig, SimPartner};
use crate::config::{Config, Dialog360Config, Dialog360Hub, Dialog360Payment};
use crate::sim::setup::{SimCredentials, Wiring};
use axum::Router;

/// Partner ids of the simulated 360dialog hubs.
pub const PARTNER: &str = "gangway-partner";
pub const DIRECT_PARTNER: &str = "gangway-direct";

pub fn router(w: &Wiring<'_>) -> Option<Router> {
    let gangway_url = w.gangway_url;
    let webhook_url = format!(
        "{gangway_url}/v1/webhooks/360dialog?token={}",
        w.creds.dialog360_webhook_token
    );
    let partner = |partner_id: &str, api_key: &str, direct: bool| SimPartner {
        partner_id: partner_id.into(),
        api_key: api_key.into(),
        direct,
        webhook_url: Some(webhook_url.clone()),
        redirect_prefix: format!("{gangway_url}/v1/redirect/360dialog/"),
    };
    let sim = Dialog360Sim::new(Dialog360SimConfig {
        partners: vec![
            partner(PARTNER, &w.creds.dialog360_api_key, false),
            partner(DIRECT_PARTNER, &w.creds.dialog360_direct_api_key, true),
        ],
        advance_ms: 200,
    });
    Some(sim.router())
}

pub fn configured(config: &Config) -> bool {
    config.dialog360.is_some()
}

/// Points the `dialog360` connector at the simulator on `base`: hub `main`
/// (Partner Payment, the default) and hub `direct` (Direct Payment).
pub fn configure(config: &mut Config, base: &str, creds: &SimCredentials) {
    let hubs = [
        (
            "main".to_string(),
            Dialog360Hub {
                partner_id: PARTNER.into(),
                api_key: creds.dialog360_api_key.clone(),
                payment: Dialog360Payment::Partner,
            },
        ),
        (
            "direct".to_string(),
            Dialog360Hub {
                partner_id: DIRECT_PARTNER.into(),
                api_key: creds.dialog360_direct_api_key.clone(),
                payment: Dialog360Payment::Direct,
            },
        ),
    ]
    .into_iter()
    .collect();
    config.dialog360 = Some(Dialog360Config {
        base_url: format!("{base}/sim/360dialog/api/v2"),
        hub_url: format!("{base}/sim/360dialog"),
        webhook_token: creds.dialog360_webhook_token.clone(),
        default_hub: Some("main".into()),
        hubs,
    });
}
