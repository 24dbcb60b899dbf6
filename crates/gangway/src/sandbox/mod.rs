//! `gangway sandbox`: runs one workflow in-process against the built-in
//! simulators and prints each step as it happens (the equivalent of a visual
//! workflow tool's sandbox with logging). The server is the real one: SQLite
//! in a temporary directory, the simulators on the same loopback listener,
//! the session created and driven over HTTP exactly as a customer and a
//! browser would; only the trace reads the store directly.

mod script;
mod trace;

use crate::demo;
use anyhow::{Context, bail};
use gangway_server::config::Config;
use gangway_server::ids;
use script::ScriptEvent;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct SandboxCmd {
    /// The workflow file to run.
    pub workflow: PathBuf,
    /// JSON object: the session's input.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// YAML list of what happens outside (simulator actions, browser
    /// signals), each applied once the session waits in the step it names.
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// Give up after this many seconds if the workflow has not ended.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
}

/// How often the trace looks at the store; in-process, so cheap.
const TICK: Duration = Duration::from_millis(20);

pub async fn run(cmd: SandboxCmd) -> anyhow::Result<ExitCode> {
    let name = cmd.workflow.display().to_string();
    let text =
        std::fs::read_to_string(&cmd.workflow).with_context(|| format!("cannot read {name}"))?;
    let wf = match gangway_core::workflow::parse(&text) {
        Ok(wf) => wf,
        Err(d) => {
            eprintln!("{}", d.render(&name));
            return Ok(ExitCode::from(2));
        }
    };
    let input = match &cmd.input {
        None => json!({}),
        Some(p) => {
            let raw = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            let v: Value = serde_json::from_str(&raw)
                .with_context(|| format!("{}: not valid JSON", p.display()))?;
            if !v.is_object() {
                bail!("{}: the input must be a JSON object", p.display());
            }
            v
        }
    };
    let events = match &cmd.events {
        None => Vec::new(),
        Some(p) => {
            let raw = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            match script::parse(&p.display().to_string(), &raw) {
                Ok(e) => e,
                Err(msg) => {
                    eprintln!("{msg}");
                    return Ok(ExitCode::from(2));
                }
            }
        }
    };
    for (i, ev) in events.iter().enumerate() {
        if wf.step(&ev.at).is_none() {
            eprintln!(
                "{}: event {} waits for step `{}`, which {} does not have",
                cmd.events
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                i + 1,
                ev.at,
                wf.id
            );
            return Ok(ExitCode::from(2));
        }
    }

    let dir = tempfile::tempdir()?;
    let sandbox = Sandbox::start(dir.path(), &cmd.workflow).await?;
    let code = sandbox
        .drive(&wf.id, input, events, Duration::from_secs(cmd.timeout))
        .await;
    sandbox.engine.stop();
    code
}

struct Sandbox {
    engine: std::sync::Arc<gangway_server::runtime::Engine>,
    base: String,
    api_key: String,
    http: reqwest::Client,
}

impl Sandbox {
    async fn start(dir: &Path, workflow: &Path) -> anyhow::Result<Sandbox> {
        let wf_dir = dir.join("workflows");
        std::fs::create_dir_all(&wf_dir)?;
        let file_name = workflow
            .file_name()
            .context("the workflow path names no file")?;
        std::fs::copy(workflow, wf_dir.join(file_name))?;
        // Templates that the workflow may run as children.
        if let Some(templates) = workflow.parent().map(|p| p.join("templates"))
            && templates.is_dir()
        {
            copy_dir(&templates, &wf_dir.join("templates"))?;
        }
        let mut config = Config::load(None).context("invalid configuration")?;
        config.listen = "127.0.0.1:0".parse()?;
        config.database_url = format!("sqlite://{}", dir.join("sandbox.db").display());
        config.workflows_dir = wf_dir;
        config.webhooks.endpoints.clear();
        config.encryption_key = Some(gangway_server::crypto::generate_key());
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        config.listen = addr;
        config.public_url = None;
        let base = format!("http://{addr}");
        let creds = demo::SimCredentials::random();
        demo::configure_score(
            &mut config,
            &base,
            &creds.score_api_key,
            &creds.score_webhook_secret,
        );
        demo::configure_incode(&mut config, &base, &creds);
        demo::configure_dialog360(&mut config, &base, &creds);
        let engine = gangway_server::app::start(config).await?;
        let api_key = ids::new_secret("gw_sandbox");
        engine
            .store
            .insert_api_key(
                &ids::new_id("key"),
                "sandbox",
                &ids::hash_secret(&api_key),
                ids::now_ms(),
            )
            .await?;
        let sims = demo::simulators(&base, &base, &creds, vec![base.clone()]);
        let router = gangway_server::app::router(engine.clone(), Some(sims));
        let serving = engine.clone();
        tokio::spawn(async move {
            let stopped = serving.clone();
            let _ = gangway_server::app::serve(listener, serving, router, async move {
                let mut rx = stopped.shutdown.subscribe();
                let _ = rx.wait_for(|s| *s).await;
            })
            .await;
        });
        Ok(Sandbox {
            engine,
            base,
            api_key,
            http: reqwest::Client::new(),
        })
    }

    async fn drive(
        &self,
        workflow: &str,
        input: Value,
        events: Vec<ScriptEvent>,
        timeout: Duration,
    ) -> anyhow::Result<ExitCode> {
        let resp = self
            .http
            .post(format!("{}/v1/sessions", self.base))
            .bearer_auth(&self.api_key)
            .json(&json!({"workflow": workflow, "input": input, "reference": "sandbox"}))
            .send()
            .await?;
        let status = resp.status();
        let created: Value = resp.json().await?;
        if !status.is_success() {
            bail!(
                "the session was refused: {}",
                created["detail"].as_str().unwrap_or("?")
            );
        }
        let id = created["id"].as_str().context("no session id")?.to_string();
        let secret = created["client_secret"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut printer = trace::Printer::new(&id, workflow, &input);
        let mut pending = events.into_iter().peekable();
        let deadline = Instant::now() + timeout;
        loop {
            let row = self
                .engine
                .store
                .session(&id)
                .await?
                .context("the session disappeared")?;
            let entries = self.engine.store.timeline(&id).await?;
            printer.entries(&entries, &row.state);
            if row.state.status == gangway_core::SessionStatus::Ended {
                printer.finished(&row.state);
                return Ok(ExitCode::SUCCESS);
            }
            let waiting_in = (row.state.status == gangway_core::SessionStatus::Waiting)
                .then(|| row.state.step.clone())
                .flatten();
            if let Some(step) = waiting_in {
                if pending.peek().is_some_and(|e| e.at == step) {
                    let ev = pending.next().context("event vanished")?;
                    printer.note(&format!("→ {}", ev.describe()));
                    self.apply(&id, &secret, &row.state.providers, &ev).await?;
                } else {
                    printer.idle(&step, pending.peek().map(|e| e.at.as_str()));
                }
            }
            if Instant::now() > deadline {
                printer.note(&format!(
                    "✗ not ended after {} s (use --timeout to wait longer)",
                    timeout.as_secs()
                ));
                return Ok(ExitCode::FAILURE);
            }
            tokio::time::sleep(TICK).await;
        }
    }

    async fn apply(
        &self,
        id: &str,
        secret: &str,
        providers: &[gangway_core::engine::ProviderRef],
        ev: &ScriptEvent,
    ) -> anyhow::Result<()> {
        let (url, body, auth) = match (&ev.signal, &ev.sim, &ev.action) {
            (Some(signal), _, _) => (
                format!("{}/v1/client/sessions/{id}/signal", self.base),
                json!({"name": signal, "data": ev.data.clone().unwrap_or(Value::Null)}),
                Some(secret),
            ),
            (None, Some(sim), Some(action)) => {
                // The provider session this simulator knows: the newest one
                // of a connector with the simulator's name, else the newest.
                let provider = providers
                    .iter()
                    .rev()
                    .find(|p| &p.connector == sim)
                    .or(providers.last())
                    .context("no provider session has started yet")?;
                (
                    format!(
                        "{}/sim/{sim}/control/{}/{action}",
                        self.base, provider.provider_session_id
                    ),
                    ev.body.clone().unwrap_or_else(|| json!({})),
                    None,
                )
            }
            _ => bail!("event at `{}` does nothing", ev.at),
        };
        let mut req = self.http.post(&url).json(&body);
        if let Some(s) = auth {
            req = req.bearer_auth(s);
        }
        let resp = req.send().await?;
        if !resp.status().is_success() {
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            bail!("{} answered {status}: {text}", ev.describe());
        }
        Ok(())
    }
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
