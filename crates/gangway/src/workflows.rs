//! `gangway workflows deploy|diff|list`: a client of a running server's API
//! (`POST /v1/admin/workflows`, `GET /v1/workflows`), so that every node of
//! a cluster picks a deploy up without a restart. The server's URL and an
//! API key come from flags or `GANGWAY_CLI_URL` / `GANGWAY_CLI_KEY` (a
//! prefix the server's own configuration leaves alone).

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum WorkflowsCommand {
    /// Validate FILES together and store their new versions on the running
    /// server; every node starts new sessions on them within a second.
    Deploy {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        server: Server,
    },
    /// What `deploy` would change, without changing anything.
    Diff {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        server: Server,
    },
    /// The workflows the server runs: latest version, stored versions.
    List {
        #[command(flatten)]
        server: Server,
    },
}

#[derive(Args)]
pub struct Server {
    /// The server's base URL.
    #[arg(long, env = "GANGWAY_CLI_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// An API key: scope `admin` to deploy, `workflows:read` to list.
    #[arg(long, env = "GANGWAY_CLI_KEY", hide_env_values = true)]
    key: String,
}

pub async fn run(cmd: WorkflowsCommand) -> anyhow::Result<std::process::ExitCode> {
    match cmd {
        WorkflowsCommand::Deploy { files, server } => deploy(&files, &server, false).await,
        WorkflowsCommand::Diff { files, server } => deploy(&files, &server, true).await,
        WorkflowsCommand::List { server } => list(&server).await,
    }
}

fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("gangway-cli/", env!("CARGO_PKG_VERSION")))
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .context("cannot build the HTTP client")
}

/// The answer's JSON, or the problem's `detail` (and any `problems`) as the error.
async fn answer(resp: reqwest::Response, url: &str) -> anyhow::Result<Value> {
    let status = resp.status();
    let body: Value = resp.json().await.with_context(|| {
        format!("{url} answered {status} without JSON: is it a Gangway server?")
    })?;
    if status.is_success() {
        return Ok(body);
    }
    let mut text = format!(
        "{url}: {status}: {}",
        body["detail"].as_str().unwrap_or("no detail")
    );
    if let Some(problems) = body["problems"].as_array() {
        for p in problems.iter().filter_map(Value::as_str) {
            text.push('\n');
            text.push_str(p);
        }
    }
    bail!(text)
}

async fn deploy(
    files: &[PathBuf],
    server: &Server,
    dry_run: bool,
) -> anyhow::Result<std::process::ExitCode> {
    let mut list = Vec::with_capacity(files.len());
    for f in files {
        let source =
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
        list.push(json!({"name": f.display().to_string(), "source": source}));
    }
    let url = format!("{}/v1/admin/workflows", server.url.trim_end_matches('/'));
    let resp = client()?
        .post(&url)
        .bearer_auth(&server.key)
        .json(&json!({"files": list, "dry_run": dry_run}))
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let body = answer(resp, &url).await?;
    for d in body["data"].as_array().into_iter().flatten() {
        let (id, version) = (d["id"].as_str().unwrap_or("?"), &d["version"]);
        let line = match (d["change"].as_str(), d["previous"].as_u64()) {
            (Some("new_workflow"), _) => format!("+ {id} v{version} (new workflow)"),
            (Some("new_version"), Some(p)) => format!("~ {id} v{p} -> v{version}"),
            (Some("older_version"), Some(p)) => {
                format!("+ {id} v{version} (stored; new sessions stay on v{p})")
            }
            _ => format!("= {id} v{version} (unchanged)"),
        };
        println!("{line}");
    }
    println!(
        "{}",
        if dry_run {
            "diff only: nothing was deployed"
        } else {
            "deployed: new sessions start on these versions on every node"
        }
    );
    Ok(std::process::ExitCode::SUCCESS)
}

async fn list(server: &Server) -> anyhow::Result<std::process::ExitCode> {
    let url = format!("{}/v1/workflows", server.url.trim_end_matches('/'));
    let resp = client()?
        .get(&url)
        .bearer_auth(&server.key)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let body = answer(resp, &url).await?;
    for w in body["data"].as_array().into_iter().flatten() {
        let versions: Vec<String> = w["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(ToString::to_string)
            .collect();
        println!(
            "{} v{} (stored: {})  {}",
            w["id"].as_str().unwrap_or("?"),
            w["version"],
            versions.join(", "),
            w["description"].as_str().unwrap_or("")
        );
    }
    Ok(std::process::ExitCode::SUCCESS)
}
