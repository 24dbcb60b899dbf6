//! `gangway demo`: the server with the built-in simulators on the same
//! listener, the shipped workflows, a demo API key, and the demo customer
//! site at `/demo` (site.rs), its customer backend (backend.rs) and the
//! backend's webhook receiver (inbox.rs).

mod backend;
mod inbox;
mod site;

use anyhow::Context;
use gangway_server::config::EndpointConfig;
use gangway_server::ids;
use gangway_server::keys::Scope;
use gangway_server::sim::incode::IncodeKnobs;
use gangway_server::sim::setup::{SimCredentials, SimOptions, configure_missing, simulators};
use std::path::PathBuf;

/// The demo operators' emails: `<role>@` this domain.
pub const DEMO_OPERATOR_DOMAIN: &str = "kestrel.example";

pub async fn run(
    listen: Option<String>,
    config_file: Option<PathBuf>,
    allow_public: bool,
) -> anyhow::Result<()> {
    let mut config = super::load_config(config_file.as_deref())?;
    if let Some(l) = listen {
        config.listen = l
            .parse()
            .with_context(|| format!("--listen: `{l}` is not an address like 127.0.0.1:8080"))?;
    }
    check_exposure(config.listen.ip(), allow_public)?;
    if config.encryption_refusal().is_some() {
        config.encryption_key = Some(demo_key(&config.database_url)?);
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    config.listen = addr;
    // One plain listener, no load balancer to drain for.
    config.tls = None;
    config.admin_listen = None;
    config.server.drain_period = std::time::Duration::ZERO;
    let base = format!("http://{addr}");
    let creds = SimCredentials::random();
    // Providers the config sets keep their settings; the others use the simulators.
    configure_missing(&mut config, &base, &creds);
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
    // Its own address is (most likely) loopback or private: allowed
    // explicitly, and no other.
    config.webhooks.allowed_networks.push(addr.ip().to_string());
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
        .section::<gangway_server::providers::incode::config::IncodeConfig>()
        .and_then(|i| reqwest::Url::parse(&i.base_url).ok())
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| *o != base)
    {
        frame_sources.push(origin);
    }
    let engine = gangway_server::app::start(config).await?;
    let exposed = (!addr.ip().is_loopback()).then(|| {
        format!(
            "the demo listens on {}, beyond this machine (--allow-public)",
            addr.ip()
        )
    });
    gangway_server::app::audit_start(&engine, "demo", exposed.into_iter().collect()).await?;
    // SIGHUP re-reads workflows_dir (not in sandboxes: only here).
    gangway_server::runtime::workflows::hangup::spawn(engine.clone());
    // The default scopes, and the review ones: with the demo's key you can
    // also decide the sessions its workflows hand to a reviewer
    // (docs/api.md#reviews).
    let scopes = Scope::DEFAULT
        .iter()
        .chain(&[Scope::ReviewsRead, Scope::ReviewsDecide])
        .map(|s| s.as_str().to_string())
        .collect();
    engine
        .create_api_key(
            &gangway_server::store::NewApiKey {
                id: ids::new_id("key"),
                name: "demo".into(),
                key_hash: ids::hash_secret(&api_key),
                scopes,
                created_at: ids::now_ms(),
                expires_at: None,
            },
            &gangway_server::audit::Actor::System,
        )
        .await?;
    // Console operators, one per role, all with one password (printed, or
    // GANGWAY_DEMO_OPERATOR_PASSWORD): admin@, reviewer@ and viewer@ the
    // demo's bank.
    let operator_password = std::env::var("GANGWAY_DEMO_OPERATOR_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(gangway_server::operators::generate_password);
    for role in gangway_server::operators::Role::ALL {
        let email = format!("{}@{DEMO_OPERATOR_DOMAIN}", role.as_str());
        let op = gangway_server::operators::new_operator(&email, role, &operator_password)
            .map_err(|e| anyhow::anyhow!("GANGWAY_DEMO_OPERATOR_PASSWORD: {e}"))?;
        engine
            .provision_operator(&op, &gangway_server::audit::Actor::System)
            .await?;
    }
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
            ..SimOptions::default()
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
    let shutdown = gangway_server::app::shutdown_signal();
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
        "  Console:    {base}/console   (sign in as admin@{DEMO_OPERATOR_DOMAIN}, reviewer@… or viewer@…, password {operator_password})"
    );
    println!(
        "  Simulators: {base}/sim/score/  {base}/sim/incode/  {base}/sim/ockto/  {base}/sim/360dialog/  {base}/sim/oih/  {base}/sim/stripe/"
    );
    println!();
    gangway_server::app::serve(
        gangway_server::app::Listeners::plain(listener),
        engine,
        router,
        shutdown,
    )
    .await?;
    Ok(())
}

/// The demo's own encryption key when the config sets none: generated once
/// and kept beside the SQLite file (readable by this user only), so that
/// the sessions of an earlier run stay readable; said on every start.
fn demo_key(database_url: &str) -> anyhow::Result<String> {
    let path = match gangway_server::store::sqlite_file(database_url) {
        Some(db) => {
            let mut name = db.into_os_string();
            name.push(".key");
            PathBuf::from(name)
        }
        None => PathBuf::from("gangway-demo.key"),
    };
    let key = match std::fs::read_to_string(&path) {
        Ok(k) => k.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = gangway_server::crypto::generate_key();
            write_private(&path, &key).with_context(|| {
                format!(
                    "cannot write the demo's encryption key to {}",
                    path.display()
                )
            })?;
            key
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    eprintln!(
        "demo: no encryption_key configured; personal data is sealed under the demo's own key in {} (keep it with the database)",
        path.display()
    );
    Ok(key)
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path)?.write_all(text.as_bytes())
}

/// The demo serves the simulators' control routes (approve, fail, fault
/// injection) and a demo backend that creates sessions with its own API
/// key, all without authentication: only on loopback, unless the operator
/// says otherwise with `--allow-public`, and then with a loud warning.
fn check_exposure(ip: std::net::IpAddr, allow_public: bool) -> anyhow::Result<()> {
    if ip.is_loopback() {
        return Ok(());
    }
    if !allow_public {
        anyhow::bail!(
            "refusing to run the demo on {ip}, which is not a loopback address: anyone who can \
             reach it could drive the simulators and create sessions with the demo's API key. \
             Use --listen 127.0.0.1:8080, or add --allow-public if this network is yours alone"
        );
    }
    let line = "!".repeat(76);
    for text in [
        line.as_str(),
        &format!("WARNING: the demo listens on {ip} (--allow-public), beyond this machine."),
        "Anyone who reaches it can approve, fail or fault any simulated provider session,",
        "create sessions with the demo's API key through its backend, and read its webhooks.",
        "Never run `gangway demo` where strangers can reach it; use `gangway serve` instead.",
        line.as_str(),
    ] {
        eprintln!("{text}");
    }
    tracing::warn!(address = %ip, "the demo listens beyond loopback (--allow-public)");
    Ok(())
}
