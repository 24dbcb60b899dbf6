//! The score simulator wired to a Gangway: mounted at `/sim/score`, its
//! webhooks signed for `[http.webhooks.score]`.

use super::{ScoreSim, ScoreSimConfig};
use crate::config::Config;
use crate::providers::http::config::{HttpConnectorConfig, HttpService, HttpWebhook};
use crate::providers::{DemoValue, SimCredential};
use crate::sim::setup::{SimCredentials, Wiring};
use axum::Router;
use std::time::Duration;

/// What the simulator shares with Gangway: `gangway sim`'s flags and
/// `SIM_*` variables (docs/simulators.md), the demo's values.
pub const CREDENTIALS: &[SimCredential] = &[
    SimCredential {
        id: "score_api_key",
        flag: "score-api-key",
        env: "SIM_SCORE_API_KEY",
        help: "API key the score simulator expects. With --score-webhook-secret; without both, /sim/score is not served.",
        default: None,
        demo: DemoValue::Secret("simkey"),
    },
    SimCredential {
        id: "score_webhook_secret",
        flag: "score-webhook-secret",
        env: "SIM_SCORE_WEBHOOK_SECRET",
        help: "HMAC secret the score simulator signs webhooks with.",
        default: None,
        demo: DemoValue::Secret("simwh"),
    },
];

pub fn router(w: &Wiring<'_>) -> Option<Router> {
    let sim = ScoreSim::new(ScoreSimConfig {
        api_key: w.creds.get("score_api_key").to_string(),
        webhook_url: format!("{}/v1/webhooks/http/score", w.gangway_url),
        webhook_secret: w.creds.get("score_webhook_secret").to_string(),
    });
    Some(sim.router())
}

pub fn configured(config: &Config) -> bool {
    config
        .section::<HttpConnectorConfig>()
        .is_some_and(|h| h.services.contains_key("score"))
}

/// Points the `score` service and webhook at the simulator on `base`.
pub fn configure(config: &mut Config, base: &str, creds: &SimCredentials) {
    let headers = [(
        "Authorization".to_string(),
        format!("Bearer {}", creds.get("score_api_key")),
    )]
    .into_iter()
    .collect();
    let mut http = config
        .section::<HttpConnectorConfig>()
        .cloned()
        .unwrap_or_default();
    http.services.insert(
        "score".into(),
        HttpService {
            base_url: format!("{base}/sim/score"),
            headers,
        },
    );
    http.webhooks.insert(
        "score".into(),
        HttpWebhook {
            service: "score".into(),
            secret: creds.get("score_webhook_secret").to_string(),
            signature_header: "X-Score-Signature".into(),
            signature_prefix: "sha256=".into(),
            timestamp_header: Some("X-Score-Timestamp".into()),
            tolerance: Duration::from_secs(300),
            reference_field: "id".into(),
            event_field: "status".into(),
            id_field: None,
        },
    );
    config.set_section(http);
}
