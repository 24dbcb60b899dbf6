//! The `gangway` binary: clap commands over the server library.

mod bench;
mod demo;
mod keys;
mod operators;
mod reseal;
mod sandbox;
mod sim;
mod workflows;

use anyhow::Context;
use clap::{Parser, Subcommand};
use gangway_server::config::{Config, LogConfig, LogFormat};
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
        /// Listen on an address other than loopback, although the demo
        /// serves unauthenticated simulator controls and a demo backend
        /// that creates sessions with its API key.
        #[arg(long)]
        allow_public: bool,
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
    /// Manage API keys (create, list, revoke, rotate) in the database the
    /// configuration names, which must exist (`gangway migrate`).
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Manage console operators (create, list, set-password, disable) in
    /// the database the configuration names, which must exist.
    Operators {
        #[command(subcommand)]
        command: operators::OperatorsCommand,
    },
    /// Deploy workflow files to a running server without a restart (or
    /// show what a deploy would change), and list what it runs.
    Workflows {
        #[command(subcommand)]
        command: workflows::WorkflowsCommand,
    },
    /// Print the JSON Schema of the workflow language.
    Schema,
    /// Run one workflow against the built-in simulators and print each step
    /// as it happens (calls, state diffs, rules, waits and their events).
    Sandbox(sandbox::SandboxCmd),
    /// Load-test the http-score workload and print throughput, latency, memory and CPU.
    Bench(bench::BenchCmd),
    /// Run the provider simulators alone (for tests and local development).
    Sim(sim::SimCmd),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Commands that read a config set logging up from its [log] section
    // (load_config); the others log at info, text. The sandbox prints its
    // own trace, which the server's logs would drown.
    let default_level = match cli.command {
        Command::Serve { .. }
        | Command::Demo { .. }
        | Command::Migrate { .. }
        | Command::Keys { .. }
        | Command::Operators { .. } => None,
        Command::Sandbox(_) => Some("warn"),
        _ => Some("info"),
    };
    if let Some(level) = default_level
        && let Err(e) = gangway_server::logging::init(&LogConfig {
            level: level.into(),
            format: LogFormat::Text,
            access: false,
        })
    {
        eprintln!("error: {e}");
        return std::process::ExitCode::FAILURE;
    }
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
            eprintln!("error: {}", report(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each said once: many errors
/// (sqlx's among them) put their cause's text in their own message and
/// return the cause as their `source()` too.
fn report(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let message = cause.to_string();
        if message.is_empty() || text.contains(&message) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&message);
    }
    text
}

/// Loads the configuration and sets logging up as its [log] section says.
fn load_config(file: Option<&std::path::Path>) -> anyhow::Result<Config> {
    let config = Config::load(file).context("invalid configuration")?;
    gangway_server::logging::init(&config.log).map_err(anyhow::Error::msg)?;
    Ok(config)
}

async fn open_store(
    config: &Config,
) -> anyhow::Result<std::sync::Arc<dyn gangway_server::store::Store>> {
    gangway_server::store::open(&config.database_url)
        .await
        .with_context(|| {
            format!(
                "database {}",
                gangway_server::config::redact_url(&config.database_url)
            )
        })
}

async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    match cli.command {
        Command::Serve { config } => {
            // Only `serve` exports traces (`[otel]`).
            let config = Config::load(config.as_deref()).context("invalid configuration")?;
            if let Some(why) = config.encryption_refusal() {
                anyhow::bail!("invalid configuration: {why}");
            }
            gangway_server::logging::init_traced(&config.log, &config.otel)
                .map_err(anyhow::Error::msg)?;
            let listeners = gangway_server::app::Listeners::bind(&config).await?;
            let url = listeners.api_url()?;
            let admin = listeners.admin_url();
            let engine = gangway_server::app::start(config).await?;
            gangway_server::app::audit_start(&engine, "serve", Vec::new()).await?;
            // SIGHUP re-reads workflows_dir (not in sandboxes: only here).
            gangway_server::runtime::workflows::hangup::spawn(engine.clone());
            let shutdown = gangway_server::app::shutdown_signal();
            println!("gangway listening on {url}");
            if let Some(admin) = admin {
                println!("gangway admin listening on {admin}");
            }
            let router = gangway_server::app::router(engine.clone(), None);
            let served = gangway_server::app::serve(listeners, engine, router, shutdown).await;
            // The spans of the last requests and jobs, within `otel.timeout`.
            gangway_server::otel::shutdown().await;
            served?;
        }
        Command::Demo {
            listen,
            config,
            allow_public,
        } => demo::run(listen, config, allow_public).await?,
        Command::Validate { files } => return Ok(validate(&files)),
        Command::Sandbox(cmd) => return sandbox::run(cmd).await,
        Command::Migrate { config } => {
            let config = load_config(config.as_deref())?;
            let store = open_store(&config).await?;
            let migrated = store.migrate().await?;
            println!("{migrated}");
        }
        Command::Keys { command } => keys::run(command).await?,
        Command::Operators { command } => operators::run(command).await?,
        Command::Workflows { command } => return workflows::run(command).await,
        Command::Bench(cmd) => bench::main(cmd).await?,
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&gangway_core::workflow::json_schema(
                    gangway_server::providers::catalog()
                ))?
            );
        }
        Command::Sim(cmd) => sim::run(cmd).await?,
    }
    Ok(std::process::ExitCode::SUCCESS)
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
            Ok(text) => {
                match gangway_core::workflow::parse(&text, gangway_server::providers::catalog()) {
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
                }
            }
        }
    }
    if failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}
