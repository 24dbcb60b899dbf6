//! The simulators wired to a Gangway: credentials shared by both sides, the
//! simulators' router, and the config that points Gangway's connectors at
//! them. Used by `gangway demo`, `gangway sim`, the sandbox and dry runs.

use crate::config::{
    Config, Dialog360Config, Dialog360Hub, Dialog360Payment, HttpService, HttpWebhook,
    IncodeConfig, OcktoConfig, OihConfig,
};
use crate::ids;
use crate::sim::dialog360::{Dialog360Sim, Dialog360SimConfig, SimPartner};
use crate::sim::incode::{IncodeKnobs, IncodeSim, IncodeSimConfig, IncodeWebhookAuth};
use crate::sim::ockto::{OcktoSim, OcktoSimConfig};
use crate::sim::oih::{OihSim, OihSimConfig};
use crate::sim::score::{ScoreSim, ScoreSimConfig};
use axum::Router;
use std::time::Duration;

/// Credentials shared by the simulators and the Gangway config that talks to them.
pub struct SimCredentials {
    pub score_api_key: String,
    pub score_webhook_secret: String,
    pub incode_api_key: String,
    pub incode_client_id: String,
    pub incode_client_secret: String,
    pub ockto_username: String,
    pub ockto_password: String,
    pub ockto_provider_code: String,
    /// Partner API keys of the simulated Partner-Payment and Direct-Payment hubs.
    pub dialog360_api_key: String,
    pub dialog360_direct_api_key: String,
    /// The token in the partner webhook URL.
    pub dialog360_webhook_token: String,
    /// The HMAC key of the simulated hub's flows (its API_KEY secret).
    pub oih_hmac_key: String,
}

/// Partner ids of the simulated 360dialog hubs.
pub const DIALOG360_PARTNER: &str = "gangway-partner";
pub const DIALOG360_DIRECT_PARTNER: &str = "gangway-direct";

impl SimCredentials {
    pub fn random() -> SimCredentials {
        SimCredentials {
            score_api_key: ids::new_secret("simkey"),
            score_webhook_secret: ids::new_secret("simwh"),
            incode_api_key: ids::new_secret("incodekey"),
            incode_client_id: "incode-webhooks".into(),
            incode_client_secret: ids::new_secret("incodewh"),
            ockto_username: "gangway-demo".into(),
            ockto_password: ids::new_secret("ocktopw"),
            ockto_provider_code: "GANGWAY-DEMO".into(),
            dialog360_api_key: ids::new_secret("d360key"),
            dialog360_direct_api_key: ids::new_secret("d360direct"),
            dialog360_webhook_token: ids::new_secret("d360wh"),
            oih_hmac_key: ids::new_secret("oihhmac"),
        }
    }
}

/// How the simulators are set up beyond their credentials.
#[derive(Default)]
pub struct SimOptions {
    /// Origins that may frame the simulators' hosted pages.
    pub frame_ancestors: Vec<String>,
    pub incode_knobs: IncodeKnobs,
    /// The Ockto router to mount (its public part alone when its API sits
    /// behind a mutual-TLS listener); by default the whole simulator.
    pub ockto: Option<Router>,
    /// How long the OIH simulator waits before its 404 (OIH: 1000 ms).
    pub oih_not_found_delay_ms: Option<u64>,
}

/// The Ockto simulator; phones reach it (the QR code's URL) at `sim_url`.
pub fn ockto_sim(sim_url: &str, creds: &SimCredentials) -> OcktoSim {
    OcktoSim::new(OcktoSimConfig {
        username: creds.ockto_username.clone(),
        password: creds.ockto_password.clone(),
        provider_code: creds.ockto_provider_code.clone(),
        public_url: format!("{}/sim/ockto", sim_url.trim_end_matches('/')),
    })
}

/// The simulators' router, mounted under `/sim/{provider}`. `gangway_url`
/// receives their webhooks; `sim_url` is where browsers reach the simulators.
pub fn simulators(
    gangway_url: &str,
    sim_url: &str,
    creds: &SimCredentials,
    opts: SimOptions,
) -> Router {
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
        frame_ancestors: opts.frame_ancestors,
    });
    if let Err(e) = incode.set_knobs(opts.incode_knobs) {
        tracing::warn!(error = %e, "incode sim: knobs refused; using the defaults");
    }
    let ockto = opts
        .ockto
        .unwrap_or_else(|| ockto_sim(sim_url, creds).router());
    let webhook_url = format!(
        "{gangway_url}/v1/webhooks/360dialog?token={}",
        creds.dialog360_webhook_token
    );
    let partner = |partner_id: &str, api_key: &str, direct: bool| SimPartner {
        partner_id: partner_id.into(),
        api_key: api_key.into(),
        direct,
        webhook_url: Some(webhook_url.clone()),
        redirect_prefix: format!("{gangway_url}/v1/redirect/360dialog/"),
    };
    let dialog360 = Dialog360Sim::new(Dialog360SimConfig {
        partners: vec![
            partner(DIALOG360_PARTNER, &creds.dialog360_api_key, false),
            partner(
                DIALOG360_DIRECT_PARTNER,
                &creds.dialog360_direct_api_key,
                true,
            ),
        ],
        advance_ms: 200,
    });
    let oih = OihSim::new(OihSimConfig {
        flows: crate::sim::oih::shipped_flows(&creds.oih_hmac_key),
        public_url: format!("{}/sim/oih", sim_url.trim_end_matches('/')),
        not_found_delay_ms: opts.oih_not_found_delay_ms.unwrap_or(1000),
        knobs: Default::default(),
    });
    Router::new()
        .nest("/sim/score", score.router())
        .nest("/sim/oih", oih.router())
        .nest("/sim/incode", incode.router())
        .nest("/sim/ockto", ockto)
        .nest("/sim/360dialog", dialog360.router())
}

/// Points every connector that has a simulator at the simulators on `base`.
pub fn configure_all(config: &mut Config, base: &str, creds: &SimCredentials) {
    configure_score(config, base, creds);
    configure_incode(config, base, creds);
    configure_ockto(config, base, creds);
    configure_dialog360(config, base, creds);
    configure_oih(config, base, creds);
}

/// Points the `oih` connector at the simulated hub on `base`; every shipped
/// flow takes the same HMAC key.
pub fn configure_oih(config: &mut Config, base: &str, creds: &SimCredentials) {
    config.oih = Some(OihConfig {
        base_url: format!("{base}/sim/oih"),
        hmac_key: Some(creds.oih_hmac_key.clone()),
        flows: Default::default(),
    });
}

/// Points the `dialog360` connector at the simulator on `base`: hub `main`
/// (Partner Payment, the default) and hub `direct` (Direct Payment).
pub fn configure_dialog360(config: &mut Config, base: &str, creds: &SimCredentials) {
    let hubs = [
        (
            "main".to_string(),
            Dialog360Hub {
                partner_id: DIALOG360_PARTNER.into(),
                api_key: creds.dialog360_api_key.clone(),
                payment: Dialog360Payment::Partner,
            },
        ),
        (
            "direct".to_string(),
            Dialog360Hub {
                partner_id: DIALOG360_DIRECT_PARTNER.into(),
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

/// Points the `ockto` connector at the simulator on `base` (plain HTTP).
pub fn configure_ockto(config: &mut Config, base: &str, creds: &SimCredentials) {
    config.ockto = Some(OcktoConfig {
        base_url: format!("{base}/sim/ockto"),
        username: creds.ockto_username.clone(),
        password: creds.ockto_password.clone(),
        provider_code: creds.ockto_provider_code.clone(),
        client_cert: None,
        client_key: None,
        ca_cert: None,
        ockto_type: "P".into(),
        consent_code: None,
    });
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
pub fn configure_score(config: &mut Config, base: &str, creds: &SimCredentials) {
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
