//! The score simulator wired to a Gangway: mounted at `/sim/score`, its
//! webhooks signed for `[http.webhooks.score]`.

use super::{ScoreSim, ScoreSimConfig};
use crate::config::{Config, HttpService, HttpWebhook};
use crate::sim::setup::{SimCredentials, Wiring};
use axum::Router;
use std::time::Duration;

pub fn router(w: &Wiring<'_>) -> Option<Router> {
    if w.opts.without_score {
        return None;
    }
    let sim = ScoreSim::new(ScoreSimConfig {
        api_key: w.creds.score_api_key.clone(),
        webhook_url: format!("{}/v1/webhooks/http/score", w.gangway_url),
        webhook_secret: w.creds.score_webhook_secret.clone(),
    });
    Some(sim.router())
}

pub fn configured(config: &Config) -> bool {
    config.http.services.contains_key("score")
}

/// Points the `score` service and webhook at the simulator on `base`.
pub fn configure(config: &mut Config, base: &str, creds: &SimCredentials) {
    let headers = [(
        "Authorization".to_string(),
        format!("Bearer {}", creds.score_api_key),
    )]
    .into_iter()
    .collect();
    config.http.services.insert(
        "score".into(),
        HttpService {
            base_url: format!("{base}/sim/score"),
            headers,
        },
    );
    config.http.webhooks.insert(
        "score".into(),
        HttpWebhook {
            service: "score".into(),
            secret: creds.score_webhook_secret.clone(),
            signature_header: "X-Score-Signature".into(),
            signature_prefix: "sha256=".into(),
            timestamp_header: Some("X-Score-Timestamp".into()),
            tolerance: Duration::from_secs(300),
            reference_field: "id".into(),
            event_field: "status".into(),
            id_field: None,
        },
    );
}
