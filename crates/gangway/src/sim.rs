//! `gangway sim`: the provider simulators alone, on their own listener
//! (docs/simulators.md). Only the simulators whose credentials are given
//! are served, so a deployment that wants Incode alone needs no score flags.

use anyhow::Context;
use gangway_server::sim::setup;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct SimCmd {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Where the simulators send webhooks, e.g. http://127.0.0.1:8080; with
    /// several Gangway nodes, the load balancer in front of them.
    #[arg(long)]
    gangway_url: String,
    /// API key the score simulator expects. With --score-webhook-secret;
    /// without both, /sim/score is not served.
    #[arg(long, env = "SIM_SCORE_API_KEY", requires = "score_webhook_secret")]
    score_api_key: Option<String>,
    /// HMAC secret the score simulator signs webhooks with.
    #[arg(long, env = "SIM_SCORE_WEBHOOK_SECRET", requires = "score_api_key")]
    score_webhook_secret: Option<String>,
    /// API key the Incode simulator expects. With --incode-client-secret;
    /// without both, /sim/incode is not served.
    #[arg(long, env = "SIM_INCODE_API_KEY", requires = "incode_client_secret")]
    incode_api_key: Option<String>,
    /// OAuth2 client the Incode simulator uses at Gangway's token endpoint.
    #[arg(long, env = "SIM_INCODE_CLIENT_ID", default_value = "incode-webhooks")]
    incode_client_id: String,
    #[arg(long, env = "SIM_INCODE_CLIENT_SECRET", requires = "incode_api_key")]
    incode_client_secret: Option<String>,
    /// Basic credentials and provider code the Ockto simulator expects.
    #[arg(long, env = "SIM_OCKTO_USERNAME", default_value = "gangway")]
    ockto_username: String,
    #[arg(
        long,
        env = "SIM_OCKTO_PASSWORD",
        default_value = "ockto-simulator-password"
    )]
    ockto_password: String,
    #[arg(long, env = "SIM_OCKTO_PROVIDER_CODE", default_value = "GANGWAY")]
    ockto_provider_code: String,
    #[command(flatten)]
    ockto_tls: OcktoTls,
    /// Partner API key of the simulated 360dialog Partner-Payment hub (`gangway-partner`).
    #[arg(long, env = "SIM_DIALOG360_API_KEY", default_value = "")]
    dialog360_api_key: String,
    /// Partner API key of the simulated Direct-Payment hub (`gangway-direct`).
    #[arg(long, env = "SIM_DIALOG360_DIRECT_API_KEY", default_value = "")]
    dialog360_direct_api_key: String,
    /// Token the 360dialog simulator puts in Gangway's webhook URL.
    #[arg(long, env = "SIM_DIALOG360_WEBHOOK_TOKEN", default_value = "")]
    dialog360_webhook_token: String,
    /// HMAC key the simulated Open Integration Hub's flows require.
    #[arg(long, env = "SIM_OIH_HMAC_KEY", default_value = "")]
    oih_hmac_key: String,
    /// Secret key the Stripe simulator expects. With --stripe-webhook-secret;
    /// without both, /sim/stripe is not served.
    #[arg(
        long,
        env = "SIM_STRIPE_SECRET_KEY",
        requires = "stripe_webhook_secret"
    )]
    stripe_secret_key: Option<String>,
    /// Signing secret of the Stripe simulator's events (Gangway's
    /// `stripe.webhook_secrets` lists it).
    #[arg(
        long,
        env = "SIM_STRIPE_WEBHOOK_SECRET",
        requires = "stripe_secret_key"
    )]
    stripe_webhook_secret: Option<String>,
    /// Delay of the simulated hub's 404 for unknown or stopped flows.
    #[arg(long, default_value_t = 1000)]
    oih_not_found_delay_ms: u64,
    /// Origins that may frame the simulators' hosted pages (CSP
    /// `frame-ancestors`), e.g. a sample page at https://localhost:5173;
    /// repeat the flag or separate with commas. Without it only the
    /// simulators' own origin may.
    #[arg(long, env = "SIM_FRAME_ANCESTORS", value_delimiter = ',')]
    frame_ancestors: Vec<String>,
}

/// Mutual TLS for the Ockto simulator: its API moves to its own HTTPS
/// listener that requires a client certificate issued by `--ockto-client-ca`.
#[derive(clap::Args)]
pub struct OcktoTls {
    /// Address of the HTTPS listener (e.g. 127.0.0.1:0); enables mutual TLS.
    #[arg(long, requires_all = ["ockto_tls_cert", "ockto_tls_key", "ockto_client_ca"])]
    ockto_tls_listen: Option<String>,
    /// Server certificate chain (PEM file).
    #[arg(long)]
    ockto_tls_cert: Option<PathBuf>,
    /// Server private key (PEM file).
    #[arg(long)]
    ockto_tls_key: Option<PathBuf>,
    /// CA that issues accepted client certificates (PEM file).
    #[arg(long)]
    ockto_client_ca: Option<PathBuf>,
}

/// Serves the simulators until SIGTERM or Ctrl-C.
pub async fn run(cmd: SimCmd) -> anyhow::Result<()> {
    let SimCmd {
        listen,
        gangway_url,
        score_api_key,
        score_webhook_secret,
        incode_api_key,
        incode_client_id,
        incode_client_secret,
        ockto_username,
        ockto_password,
        ockto_provider_code,
        ockto_tls,
        dialog360_api_key,
        dialog360_direct_api_key,
        dialog360_webhook_token,
        oih_hmac_key,
        stripe_secret_key,
        stripe_webhook_secret,
        oih_not_found_delay_ms,
        frame_ancestors,
    } = cmd;
    let frame_ancestors = frame_ancestor_origins(&frame_ancestors)?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    // A simulator whose credentials are not given is not served (clap
    // checks that each pair is given whole).
    let without_score = score_api_key.is_none();
    let without_incode = incode_api_key.is_none();
    let without_stripe = stripe_secret_key.is_none();
    let creds = setup::SimCredentials {
        score_api_key: score_api_key.unwrap_or_default(),
        score_webhook_secret: score_webhook_secret.unwrap_or_default(),
        incode_api_key: incode_api_key.unwrap_or_default(),
        incode_client_id,
        incode_client_secret: incode_client_secret.unwrap_or_default(),
        ockto_username,
        ockto_password,
        ockto_provider_code,
        dialog360_api_key,
        dialog360_direct_api_key,
        dialog360_webhook_token,
        oih_hmac_key,
        stripe_secret_key: stripe_secret_key.unwrap_or_default(),
        stripe_webhook_secret: stripe_webhook_secret.unwrap_or_default(),
    };
    let sim_url = format!("http://{addr}");
    let ockto = setup::ockto_sim(&sim_url, &creds);
    let ockto_router = match &ockto_tls.ockto_tls_listen {
        None => ockto.router(),
        Some(tls_listen) => {
            let tls_addr = serve_ockto_mtls(&ockto, tls_listen, &ockto_tls).await?;
            println!("ockto mtls listening on https://{tls_addr}");
            ockto.public_router()
        }
    };
    let router = setup::simulators(
        &gangway_url,
        &sim_url,
        &creds,
        setup::SimOptions {
            ockto: Some(ockto_router),
            oih_not_found_delay_ms: Some(oih_not_found_delay_ms),
            frame_ancestors,
            without_score,
            without_incode,
            ..Default::default()
        },
    );
    let mut served = vec!["/sim/ockto", "/sim/360dialog", "/sim/oih"];
    let mut skipped = Vec::new();
    for (off, mount, flags) in [
        (
            without_incode,
            "/sim/incode",
            "--incode-api-key, --incode-client-secret",
        ),
        (
            without_score,
            "/sim/score",
            "--score-api-key, --score-webhook-secret",
        ),
        (
            without_stripe,
            "/sim/stripe",
            "--stripe-secret-key, --stripe-webhook-secret",
        ),
    ] {
        if off {
            skipped.push(format!("{mount} (give {flags} to serve it)"));
        } else {
            served.insert(0, mount);
        }
    }
    println!("serving {}", served.join(", "));
    if !skipped.is_empty() {
        println!("not serving {}", skipped.join(", "));
    }
    println!("simulators listening on http://{addr}");
    gangway_server::app::serve_router(listener, router, gangway_server::app::shutdown_signal())
        .await?;
    Ok(())
}

/// `--frame-ancestors`: each value must be an origin (scheme, host, port),
/// as a CSP `frame-ancestors` source and a browser's `Origin` spell it.
fn frame_ancestor_origins(values: &[String]) -> anyhow::Result<Vec<String>> {
    let mut origins = Vec::new();
    for value in values.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
        let origin = reqwest::Url::parse(value)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .map(|u| u.origin().ascii_serialization())
            .filter(|o| o == value.trim_end_matches('/'));
        let Some(origin) = origin else {
            anyhow::bail!(
                "--frame-ancestors: `{value}` is not an origin like https://localhost:5173 \
                 (scheme, host and port only)"
            );
        };
        origins.push(origin);
    }
    Ok(origins)
}

/// Starts the Ockto simulator's HTTPS listener that requires a client certificate.
async fn serve_ockto_mtls(
    ockto: &gangway_server::sim::ockto::OcktoSim,
    listen: &str,
    tls: &OcktoTls,
) -> anyhow::Result<std::net::SocketAddr> {
    use gangway_server::sim::tls;
    let read = |flag: &str, path: &Option<PathBuf>| -> anyhow::Result<String> {
        let path = path
            .as_ref()
            .with_context(|| format!("--{flag} is required with --ockto-tls-listen"))?;
        std::fs::read_to_string(path)
            .with_context(|| format!("--{flag}: cannot read {}", path.display()))
    };
    let pem = tls::MtlsPem {
        cert: read("ockto-tls-cert", &tls.ockto_tls_cert)?,
        key: read("ockto-tls-key", &tls.ockto_tls_key)?,
        client_ca: read("ockto-client-ca", &tls.ockto_client_ca)?,
    };
    let config = tls::server_config(&pem).context("ockto mutual TLS")?;
    let tcp = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let listener = tls::MtlsListener::new(tcp, config, ockto.rejections())?;
    let addr = axum::serve::Listener::local_addr(&listener)?;
    let router = gangway_server::Router::new().nest("/sim/ockto", ockto.router());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(gangway_server::app::shutdown_signal())
            .await
        {
            tracing::error!(error = %e, "ockto mtls listener failed");
        }
    });
    Ok(addr)
}
