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
    /// Each registered simulator's credentials (`--incode-api-key`, ...).
    #[command(flatten)]
    creds: Credentials,
    #[command(flatten)]
    ockto_tls: OcktoTls,
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

/// The simulators' credentials as flags and `SIM_*` variables, built from
/// what each registered simulator declares (its sim/setup.rs CREDENTIALS),
/// so a new provider's simulator needs no edit here.
pub struct Credentials(setup::SimCredentials);

impl clap::FromArgMatches for Credentials {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut creds = setup::SimCredentials::default();
        for c in setup::declared() {
            let value = m.get_one::<String>(c.id).cloned().unwrap_or_default();
            creds.set(c.id, value);
        }
        Ok(Credentials(creds))
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl clap::Args for Credentials {
    fn augment_args(mut cmd: clap::Command) -> clap::Command {
        for sim in gangway_server::providers::REGISTRY
            .iter()
            .filter_map(|p| p.sim.as_ref())
        {
            // A simulator's required credentials are given together or not at all.
            let required: Vec<&'static str> = sim
                .credentials
                .iter()
                .filter(|c| c.default.is_none())
                .map(|c| c.id)
                .collect();
            for c in sim.credentials {
                let mut arg = clap::Arg::new(c.id)
                    .long(c.flag)
                    .value_name(c.env.strip_prefix("SIM_").unwrap_or(c.id))
                    .env(c.env)
                    .help(c.help)
                    .action(clap::ArgAction::Set);
                match c.default {
                    Some(default) => arg = arg.default_value(default),
                    None => {
                        for other in required.iter().filter(|o| **o != c.id) {
                            arg = arg.requires(*other);
                        }
                    }
                }
                cmd = cmd.arg(arg);
            }
        }
        cmd
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
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
        creds,
        ockto_tls,
        oih_not_found_delay_ms,
        frame_ancestors,
    } = cmd;
    let creds = creds.0;
    let frame_ancestors = frame_ancestor_origins(&frame_ancestors)?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
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
            ..Default::default()
        },
    );
    // A simulator whose required credentials are not all given is not
    // served (clap checks that each provider's are given whole).
    let mut served = Vec::new();
    let mut skipped = Vec::new();
    for sim in gangway_server::providers::REGISTRY
        .iter()
        .filter_map(|p| p.sim.as_ref())
    {
        let mount = format!("/sim/{}", sim.mount);
        if creds.complete_for(sim) {
            served.push(mount);
        } else {
            let flags: Vec<String> = sim
                .credentials
                .iter()
                .filter(|c| c.default.is_none())
                .map(|c| format!("--{}", c.flag))
                .collect();
            skipped.push(format!("{mount} (give {} to serve it)", flags.join(", ")));
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
