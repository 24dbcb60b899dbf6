//! `gangway sandbox`: runs one workflow file in-process against the
//! built-in simulators (gangway_server::sandbox) and prints each step as it
//! happens, the equivalent of a visual workflow tool's sandbox with logging.

mod trace;

use anyhow::{Context, bail};
use gangway_server::sandbox::{Sandbox, script};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

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

pub async fn run(cmd: SandboxCmd) -> anyhow::Result<ExitCode> {
    let name = cmd.workflow.display().to_string();
    let text =
        std::fs::read_to_string(&cmd.workflow).with_context(|| format!("cannot read {name}"))?;
    let wf = match gangway_core::workflow::parse(&text, gangway_server::providers::catalog()) {
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
    // Templates the workflow may run, beside it in templates/.
    let file_name = cmd
        .workflow
        .file_name()
        .context("the workflow path names no file")?
        .to_string_lossy()
        .to_string();
    let mut files = vec![(file_name, text)];
    if let Some(templates) = cmd.workflow.parent().map(|p| p.join("templates"))
        && templates.is_dir()
    {
        collect(&templates, Path::new("templates"), &mut files)?;
    }
    let others: Vec<std::sync::Arc<gangway_core::workflow::Workflow>> = files[1..]
        .iter()
        .filter_map(|(_, src)| {
            gangway_core::workflow::parse(src, gangway_server::providers::catalog()).ok()
        })
        .map(std::sync::Arc::new)
        .collect();
    let lookup = |id: &str| others.iter().find(|w| w.id == id).cloned();
    for (i, ev) in events.iter().enumerate() {
        if !gangway_server::sandbox::step_known(&wf, &ev.at, &lookup) {
            eprintln!(
                "{}: event {} waits for step `{}`, which neither {} nor a workflow it runs has",
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

    let sandbox = Sandbox::start(&files).await?;
    let mut printer = trace::Printer::new(&wf.id, &input);
    let finished = sandbox
        .run(
            &wf.id,
            input,
            events,
            Duration::from_secs(cmd.timeout),
            |item| printer.print(item),
        )
        .await;
    sandbox.stop().await;
    let finished = finished?;
    Ok(printer.finished(&finished, cmd.timeout))
}

fn collect(dir: &Path, rel: &Path, out: &mut Vec<(String, String)>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = rel.join(entry.file_name());
        if path.is_dir() {
            collect(&path, &name, out)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push((
                name.to_string_lossy().to_string(),
                std::fs::read_to_string(&path)?,
            ));
        }
    }
    Ok(())
}
