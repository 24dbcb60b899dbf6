//! `gangway demo`: the server with the built-in simulators on the same
//! listener, the shipped workflows, a demo API key, and the demo customer
//! site at `/demo` (site.rs) with its webhook receiver (inbox.rs).

mod inbox;
mod site;

use anyhow::Context;
use gangway_server::config::{Config, EndpointConfig, HttpService, HttpWebhook, IncodeConfig};
use gangway_server::ids;
use gangway_server::sim::incode::{IncodeKnobs, IncodeSim, IncodeSimConfig, IncodeWebhookAuth};
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
    incode_knobs: IncodeKnobs,
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
    if let Err(e) = incode.set_knobs(incode_knobs) {
        tracing::warn!(error = %e, "incode sim: knobs refused; using the defaults");
    }
    gangway_server::Router::new()
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
    let api_key = std::env::var("GANGWAY_DEMO_API_KEY")
        .ok()
        .filter(|k| !k.is_empty());
    let (api_key, generated) = match api_key {
        Some(k) => (k, false),
        None => (ids::new_secret("gw_demo"), true),
    };
    // The demo customer backend receives Gangway's signed webhooks, and its
    // pages may call the client API (same origin here; listed all the same).
    let webhook_secret = inbox::new_secret();
    let inbox = inbox::Inbox::new(&webhook_secret)?;
    config.webhooks.endpoints.push(EndpointConfig {
        url: format!("{base}/demo/api/webhooks"),
        secret: webhook_secret,
        events: vec!["session.updated".into(), "session.ended".into()],
    });
    // On a loopback listener the demo is as likely opened as `localhost`.
    let mut own_origins = vec![base.clone()];
    if addr.ip().is_loopback() {
        own_origins.push(format!("http://localhost:{}", addr.port()));
    }
    for origin in &own_origins {
        if !config.client.allowed_origins.contains(origin) {
            config.client.allowed_origins.push(origin.clone());
        }
    }
    // Pages allowed to use the client API may also frame the simulators'
    // hosted pages (a customer page on another origin, trying the SDK).
    let frame_ancestors = config.client.allowed_origins.clone();
    // The demo pages frame the simulator (at `base`) or the real Incode.
    let mut frame_sources = vec![base.clone()];
    if let Some(origin) = config
        .incode
        .as_ref()
        .and_then(|i| reqwest::Url::parse(&i.base_url).ok())
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| *o != base)
    {
        frame_sources.push(origin);
    }
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
    // A user who abandons the hosted flow sees it expire after a few
    // seconds, as Incode's would much later, instead of waiting for the
    // workflow's 30-minute deadline.
    let knobs = IncodeKnobs {
        abandon_expire_ms: Some(3000),
        ..IncodeKnobs::default()
    };
    let sims = simulators(&base, &base, &creds, frame_ancestors, knobs);
    let site = site::router(site::Site {
        gangway_url: base.clone(),
        api_key: api_key.clone(),
        inbox,
        frame_sources,
    });
    let router = gangway_server::app::router(engine.clone(), Some(sims.merge(site)));
    println!("gangway listening on {base}");
    println!();
    println!("  Gangway demo is running: open {base}/demo");
    println!("  Webhooks:   {base}/demo/webhooks (what the demo backend received)");
    println!("  SDK:        {base}/sdk/gangway.js");
    println!("  API:        {base}/openapi.json");
    if generated {
        println!("  API key:    {api_key}   (set GANGWAY_DEMO_API_KEY to choose one)");
    } else {
        println!("  API key:    from GANGWAY_DEMO_API_KEY");
    }
    println!("  Simulators: {base}/sim/score/  {base}/sim/incode/");
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
