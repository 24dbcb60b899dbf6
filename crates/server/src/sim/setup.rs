//! The simulators wired to a Gangway on the same listener: random
//! credentials shared by both sides, the simulators' router, and the config
//! that points Gangway's connectors at them. Used by `gangway demo`, the
//! sandbox and dry runs.

use crate::config::{Config, HttpService, HttpWebhook, IncodeConfig};
use crate::ids;
use crate::sim::incode::{IncodeSim, IncodeSimConfig, IncodeWebhookAuth};
use crate::sim::score::{ScoreSim, ScoreSimConfig};
use std::time::Duration;

/// Credentials shared by the simulators and the Gangway config that talks to them.
pub struct SimCredentials {
    pub score_api_key: String,
    pub score_webhook_secret: String,
    pub incode_api_key: String,
    pub incode_client_id: String,
    pub incode_client_secret: String,
}

impl SimCredentials {
    pub fn random() -> SimCredentials {
        SimCredentials {
            score_api_key: ids::new_secret("simkey"),
            score_webhook_secret: ids::new_secret("simwh"),
            incode_api_key: ids::new_secret("incodekey"),
            incode_client_id: "incode-webhooks".into(),
            incode_client_secret: ids::new_secret("incodewh"),
        }
    }
}

/// The simulators' router, mounted under `/sim/{provider}`. `gangway_url`
/// receives their webhooks; `sim_url` is where browsers reach the simulators.
pub fn simulators(
    gangway_url: &str,
    sim_url: &str,
    creds: &SimCredentials,
    frame_ancestors: Vec<String>,
) -> axum::Router {
    let gangway_url = gangway_url.trim_end_matches('/');
    let score = ScoreSim::new(ScoreSimConfig {
        api_key: creds.score_api_key.clone(),
        webhook_url: format!("{gangway_url}/v1/webhooks/http/score"),
        webhook_secret: creds.score_webhook_secret.clone(),
    });
    let incode = IncodeSim::new(IncodeSimConfig {
        api_key: creds.incode_api_key.clone(),
        webhook_url: format!("{gangway_url}/v1/webhooks/incode"),
        webhook_auth: IncodeWebhookAuth::OAuth2 {
            token_url: format!("{gangway_url}/v1/webhooks/incode/token"),
            client_id: creds.incode_client_id.clone(),
            client_secret: creds.incode_client_secret.clone(),
        },
        public_url: format!("{}/sim/incode", sim_url.trim_end_matches('/')),
        frame_ancestors,
    });
    axum::Router::new()
        .nest("/sim/score", score.router())
        .nest("/sim/incode", incode.router())
}

/// Points the `incode` connector at the simulator on `base`.
pub fn configure_incode(config: &mut Config, base: &str, creds: &SimCredentials) {
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

/// Points the `score` service and webhook at the simulator on `base`.
pub fn configure_score(config: &mut Config, base: &str, api_key: &str, webhook_secret: &str) {
    let headers = indexmap_of(&[("Authorization", &format!("Bearer {api_key}"))]);
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
            secret: webhook_secret.to_string(),
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

fn indexmap_of(pairs: &[(&str, &String)]) -> crate::config::Headers {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Points every connector that has a simulator at the simulators on `base`.
pub fn configure_all(config: &mut Config, base: &str, creds: &SimCredentials) {
    configure_score(
        config,
        base,
        &creds.score_api_key,
        &creds.score_webhook_secret,
    );
    configure_incode(config, base, creds);
}
