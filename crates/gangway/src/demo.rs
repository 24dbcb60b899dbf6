//! `gangway demo`: the server with the built-in simulators on the same
//! listener, the shipped workflows and a demo API key.

use anyhow::Context;
use gangway_server::config::{
    Config, Dialog360Config, Dialog360Hub, Dialog360Payment, HttpService, HttpWebhook, IncodeConfig,
};
use gangway_server::ids;
use gangway_server::sim::dialog360::{Dialog360Sim, Dialog360SimConfig, SimPartner};
use gangway_server::sim::incode::{IncodeSim, IncodeSimConfig, IncodeWebhookAuth};
use gangway_server::sim::score::{ScoreSim, ScoreSimConfig};
use std::path::PathBuf;
use std::time::Duration;

/// Credentials shared by the simulators and the Gangway config that talks to them.
pub struct SimCredentials {
    pub score_api_key: String,
    pub score_webhook_secret: String,
    pub incode_api_key: String,
    pub incode_client_id: String,
    pub incode_client_secret: String,
    /// Partner API keys of the simulated Partner-Payment and Direct-Payment hubs.
    pub dialog360_api_key: String,
    pub dialog360_direct_api_key: String,
    /// The token in the partner webhook URL.
    pub dialog360_webhook_token: String,
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
            dialog360_api_key: ids::new_secret("d360key"),
            dialog360_direct_api_key: ids::new_secret("d360direct"),
            dialog360_webhook_token: ids::new_secret("d360wh"),
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
) -> gangway_server::Router {
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
    gangway_server::Router::new()
        .nest("/sim/score", score.router())
        .nest("/sim/incode", incode.router())
        .nest("/sim/360dialog", dialog360.router())
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

fn indexmap_of(pairs: &[(&str, &String)]) -> gangway_server::config::Headers {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub async fn run(listen: Option<String>, config_file: Option<PathBuf>) -> anyhow::Result<()> {
    let mut config = Config::load(config_file.as_deref()).context("invalid configuration")?;
    if let Some(l) = listen {
        config.listen = l
            .parse()
            .with_context(|| format!("--listen: `{l}` is not an address like 127.0.0.1:8080"))?;
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    config.listen = addr;
    let base = format!("http://{addr}");
    let creds = SimCredentials::random();
    if !config.http.services.contains_key("score") {
        configure_score(
            &mut config,
            &base,
            &creds.score_api_key,
            &creds.score_webhook_secret,
        );
    }
    if config.incode.is_none() {
        configure_incode(&mut config, &base, &creds);
    }
    if config.dialog360.is_none() {
        configure_dialog360(&mut config, &base, &creds);
    }
    let api_key = std::env::var("GANGWAY_DEMO_API_KEY")
        .ok()
        .filter(|k| !k.is_empty());
    let (api_key, generated) = match api_key {
        Some(k) => (k, false),
        None => (ids::new_secret("gw_demo"), true),
    };
    let engine = gangway_server::app::start(config).await?;
    engine
        .store
        .insert_api_key(
            &ids::new_id("key"),
            "demo",
            &ids::hash_secret(&api_key),
            ids::now_ms(),
        )
        .await?;
    let sims = simulators(&base, &base, &creds, vec![base.clone()]);
    let router = gangway_server::app::router(engine.clone(), Some(sims));
    println!("gangway listening on {base}");
    println!();
    println!("  Gangway demo is running at {base}");
    println!("  API:        {base}/openapi.json");
    if generated {
        println!("  API key:    {api_key}   (set GANGWAY_DEMO_API_KEY to choose one)");
    } else {
        println!("  API key:    from GANGWAY_DEMO_API_KEY");
    }
    println!("  Simulators: {base}/sim/score/  {base}/sim/incode/  {base}/sim/360dialog/");
    println!();
    gangway_server::app::serve(
        listener,
        engine,
        router,
        gangway_server::app::shutdown_signal(),
    )
    .await?;
    Ok(())
}
