//! The 360dialog simulator wired to a Gangway: mounted at `/sim/360dialog`
//! with two partner hubs (Partner Payment and Direct Payment) whose webhooks
//! and redirects go to Gangway.

use super::{Dialog360Sim, Dialog360SimConfig, SimPartner};
use crate::config::Config;
use crate::providers::dialog360::config::{Dialog360Config, Dialog360Hub, Dialog360Payment};
use crate::providers::{DemoValue, SimCredential};
use crate::sim::setup::{SimCredentials, Wiring};
use axum::Router;

/// Partner ids of the simulated 360dialog hubs.
pub const PARTNER: &str = "gangway-partner";
pub const DIRECT_PARTNER: &str = "gangway-direct";

/// What the simulator shares with Gangway: `gangway sim`'s flags and
/// `SIM_*` variables (docs/simulators.md), the demo's values.
pub const CREDENTIALS: &[SimCredential] = &[
    SimCredential {
        id: "dialog360_api_key",
        flag: "dialog360-api-key",
        env: "SIM_DIALOG360_API_KEY",
        help: "Partner API key of the simulated 360dialog Partner-Payment hub (`gangway-partner`).",
        default: Some(""),
        demo: DemoValue::Secret("d360key"),
    },
    SimCredential {
        id: "dialog360_direct_api_key",
        flag: "dialog360-direct-api-key",
        env: "SIM_DIALOG360_DIRECT_API_KEY",
        help: "Partner API key of the simulated Direct-Payment hub (`gangway-direct`).",
        default: Some(""),
        demo: DemoValue::Secret("d360direct"),
    },
    SimCredential {
        id: "dialog360_webhook_token",
        flag: "dialog360-webhook-token",
        env: "SIM_DIALOG360_WEBHOOK_TOKEN",
        help: "Token the 360dialog simulator puts in Gangway's webhook URL.",
        default: Some(""),
        demo: DemoValue::Secret("d360wh"),
    },
];

pub fn router(w: &Wiring<'_>) -> Option<Router> {
    let gangway_url = w.gangway_url;
    let webhook_url = format!(
        "{gangway_url}/v1/webhooks/360dialog?token={}",
        w.creds.get("dialog360_webhook_token")
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
            partner(PARTNER, w.creds.get("dialog360_api_key"), false),
            partner(
                DIRECT_PARTNER,
                w.creds.get("dialog360_direct_api_key"),
                true,
            ),
        ],
        advance_ms: 200,
    });
    Some(sim.router())
}

pub fn configured(config: &Config) -> bool {
    config.section::<Dialog360Config>().is_some()
}

/// Points the `dialog360` connector at the simulator on `base`: hub `main`
/// (Partner Payment, the default) and hub `direct` (Direct Payment).
pub fn configure(config: &mut Config, base: &str, creds: &SimCredentials) {
    let hubs = [
        (
            "main".to_string(),
            Dialog360Hub {
                partner_id: PARTNER.into(),
                api_key: creds.get("dialog360_api_key").to_string(),
                payment: Dialog360Payment::Partner,
            },
        ),
        (
            "direct".to_string(),
            Dialog360Hub {
                partner_id: DIRECT_PARTNER.into(),
                api_key: creds.get("dialog360_direct_api_key").to_string(),
                payment: Dialog360Payment::Direct,
            },
        ),
    ]
    .into_iter()
    .collect();
    config.set_section(Dialog360Config {
        base_url: format!("{base}/sim/360dialog/api/v2"),
        hub_url: format!("{base}/sim/360dialog"),
        webhook_token: creds.get("dialog360_webhook_token").to_string(),
        default_hub: Some("main".into()),
        hubs,
    });
}
