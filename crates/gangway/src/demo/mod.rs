//! `gangway demo`: the server with the built-in simulators on the same
//! listener, the shipped workflows, a demo API key, and the demo customer
//! site at `/demo` (site.rs), its customer backend (backend.rs) and the
//! backend's webhook receiver (inbox.rs).

mod backend;
mod inbox;
mod site;

use anyhow::Context;
use gangway_server::config::{Config, EndpointConfig};
use gangway_server::ids;
use gangway_server::sim::incode::IncodeKnobs;
use gangway_server::sim::setup::{
    SimCredentials, SimOptions, configure_dialog360, configure_incode, configure_ockto,
    configure_oih, configure_score, simulators,
};
use std::path::PathBuf;

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
        configure_score(&mut config, &base, &creds);
    }
    if config.incode.is_none() {
        configure_incode(&mut config, &base, &creds);
    }
    if config.ockto.is_none() {
        configure_ockto(&mut config, &base, &creds);
    }
    if config.dialog360.is_none() {
        configure_dialog360(&mut config, &base, &creds);
    }
    if config.oih.is_none() {
        configure_oih(&mut config, &base, &creds);
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
    let sims = simulators(
        &base,
        &base,
        &creds,
        SimOptions {
            frame_ancestors,
            incode_knobs: knobs,
            ockto: None,
            oih_not_found_delay_ms: None,
        },
    );
    let site = site::router(site::Site {
        gangway_url: base.clone(),
        api_key: api_key.clone(),
        inbox,
        frame_sources,
        own_origins,
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
    println!(
        "  Simulators: {base}/sim/score/  {base}/sim/incode/  {base}/sim/ockto/  {base}/sim/360dialog/  {base}/sim/oih/"
    );
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
