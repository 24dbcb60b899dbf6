//! The `gangway` binary: clap commands over the server library.

mod bench;
mod demo;
mod sandbox;

use anyhow::Context;
use clap::{Parser, Subcommand};
use gangway_server::config::Config;
use gangway_server::sim::setup;
use std::path::PathBuf;

/// mimalloc instead of glibc malloc: allocation was a quarter of the
/// server's CPU per session under load (see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "gangway",
    version,
    about = "Durable workflows for embedded onboarding steps"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start: the size of the `sim` variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Run the server with the built-in provider simulators and demo API key.
    Demo {
        /// Address to listen on (port 0 picks a free one).
        #[arg(long)]
        listen: Option<String>,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Validate workflow files; prints every problem as file:line:col.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Create or upgrade the database schema.
    Migrate {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Print the JSON Schema of the workflow language.
    Schema,
    /// Run one workflow against the built-in simulators and print each step
    /// as it happens (calls, state diffs, rules, waits and their events).
    Sandbox(sandbox::SandboxCmd),
    /// Load-test the http-score workload and print throughput, latency, memory and CPU.
    Bench(bench::BenchCmd),
    /// Run the provider simulators alone (for tests and local development).
    Sim {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        /// Where the simulators send webhooks, e.g. http://127.0.0.1:8080
        #[arg(long)]
        gangway_url: String,
        /// API key the score simulator expects.
        #[arg(long, env = "SIM_SCORE_API_KEY")]
        score_api_key: String,
        /// HMAC secret the score simulator signs webhooks with.
        #[arg(long, env = "SIM_SCORE_WEBHOOK_SECRET")]
        score_webhook_secret: String,
        /// API key the Incode simulator expects.
        #[arg(long, env = "SIM_INCODE_API_KEY")]
        incode_api_key: String,
        /// OAuth2 client the Incode simulator uses at Gangway's token endpoint.
        #[arg(long, env = "SIM_INCODE_CLIENT_ID", default_value = "incode-webhooks")]
        incode_client_id: String,
        #[arg(long, env = "SIM_INCODE_CLIENT_SECRET")]
        incode_client_secret: String,
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
        /// Delay of the simulated hub's 404 for unknown or stopped flows.
        #[arg(long, default_value_t = 1000)]
        oih_not_found_delay_ms: u64,
    },
}

/// Mutual TLS for the Ockto simulator: its API moves to its own HTTPS
/// listener that requires a client certificate issued by `--ockto-client-ca`.
#[derive(clap::Args)]
struct OcktoTls {
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

#[derive(Subcommand)]
enum KeysCommand {
    /// Create an API key; it is printed once and stored hashed.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The sandbox prints its own trace; the server's logs would drown it.
    init_tracing(match cli.command {
        Command::Sandbox(_) => "warn",
        _ => "info,sqlx=warn,hyper=warn",
    });
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn load_config(file: Option<&std::path::Path>) -> anyhow::Result<Config> {
    Config::load(file).context("invalid configuration")
}

async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    match cli.command {
        Command::Serve { config } => {
            let config = load_config(config.as_deref())?;
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("cannot listen on {}", config.listen))?;
            let addr = listener.local_addr()?;
            let engine = gangway_server::app::start(config).await?;
            println!("gangway listening on http://{addr}");
            let router = gangway_server::app::router(engine.clone(), None);
            gangway_server::app::serve(
                listener,
                engine,
                router,
                gangway_server::app::shutdown_signal(),
            )
            .await?;
        }
        Command::Demo { listen, config } => demo::run(listen, config).await?,
        Command::Validate { files } => return Ok(validate(&files)),
        Command::Sandbox(cmd) => return sandbox::run(cmd).await,
        Command::Migrate { config } => {
            let config = load_config(config.as_deref())?;
            let store = gangway_server::store::open(&config.database_url).await?;
            store.migrate().await?;
            println!("database is up to date");
        }
        Command::Keys {
            command: KeysCommand::Create { name, config },
        } => {
            anyhow::ensure!(!name.trim().is_empty(), "--name must not be empty");
            let config = load_config(config.as_deref())?;
            let store = gangway_server::store::open(&config.database_url).await?;
            store.migrate().await?;
            let key = gangway_server::ids::new_secret("gw");
            let id = gangway_server::ids::new_id("key");
            store
                .insert_api_key(
                    &id,
                    &name,
                    &gangway_server::ids::hash_secret(&key),
                    gangway_server::ids::now_ms(),
                )
                .await?;
            eprintln!("Created API key `{name}` ({id}). It is shown only this once:");
            println!("{key}");
        }
        Command::Bench(cmd) => bench::main(cmd).await?,
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&gangway_core::workflow::json_schema())?
            );
        }
        Command::Sim {
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
            oih_not_found_delay_ms,
        } => {
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            let addr = listener.local_addr()?;
            let creds = setup::SimCredentials {
                score_api_key,
                score_webhook_secret,
                incode_api_key,
                incode_client_id,
                incode_client_secret,
                ockto_username,
                ockto_password,
                ockto_provider_code,
                dialog360_api_key,
                dialog360_direct_api_key,
                dialog360_webhook_token,
                oih_hmac_key,
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
                    ..Default::default()
                },
            );
            println!("simulators listening on http://{addr}");
            gangway_server::app::serve_router(
                listener,
                router,
                gangway_server::app::shutdown_signal(),
            )
            .await?;
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
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

fn validate(files: &[PathBuf]) -> std::process::ExitCode {
    let mut failed = false;
    for f in files {
        let name = f.display().to_string();
        match std::fs::read_to_string(f) {
            Err(e) => {
                eprintln!("{name}: cannot read: {e}");
                failed = true;
            }
            Ok(text) => match gangway_core::workflow::parse(&text) {
                Ok(wf) => println!(
                    "{name}: ok ({} v{}, {} steps)",
                    wf.id,
                    wf.version,
                    wf.steps.len()
                ),
                Err(d) => {
                    eprintln!("{}", d.render(&name));
                    failed = true;
                }
            },
        }
    }
    if failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}
