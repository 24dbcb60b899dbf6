//! Logs on stderr, as `log.*` configures them: text lines (coloured only on
//! a terminal, never with `NO_COLOR`) or one JSON object per line; the
//! filter from `RUST_LOG` or `log.level`; this node's id on every JSON line
//! once the engine has one; and the access log (access.rs).

mod access;
mod json;

pub use access::{AccessNote, access_log};

use crate::config::{LogConfig, LogFormat};
use std::io::IsTerminal;
use std::sync::OnceLock;
use tracing_subscriber::EnvFilter;

static NODE_ID: OnceLock<String> = OnceLock::new();

/// Names this process's node on the log lines from now on. The first call
/// wins: a sandbox engine started later in the process keeps the node's id.
pub fn set_node_id(id: &str) {
    let _ = NODE_ID.set(id.to_string());
}

fn node_id() -> Option<&'static str> {
    NODE_ID.get().map(String::as_str)
}

/// The filter for `log.level`: a bare level keeps sqlx and hyper, which
/// log every statement and connection at info, at warn; a filter is taken
/// as written.
pub fn filter(level: &str) -> Result<EnvFilter, String> {
    let level = level.trim();
    let bare = ["error", "warn", "info", "debug", "trace", "off"]
        .iter()
        .any(|l| level.eq_ignore_ascii_case(l));
    let directives = if bare {
        format!("{level},sqlx=warn,hyper=warn")
    } else {
        level.to_string()
    };
    EnvFilter::builder()
        .parse(&directives)
        .map_err(|e| format!("`{level}` is not a level or filter ({e}); e.g. \"info\" or \"info,gangway::access=off\""))
}

/// Installs the process's subscriber. `RUST_LOG`, when set and valid,
/// replaces `log.level`; when invalid, the level is used and a line says so.
pub fn init(config: &LogConfig) -> Result<(), String> {
    let mut warning = None;
    let filter = match std::env::var("RUST_LOG") {
        Ok(rust_log) if !rust_log.trim().is_empty() => {
            EnvFilter::builder().parse(&rust_log).or_else(|e| {
                warning = Some(format!(
                    "RUST_LOG is not a valid filter ({e}); using log.level `{}`",
                    config.level
                ));
                filter(&config.level)
            })?
        }
        _ => filter(&config.level)?,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match config.format {
        LogFormat::Text => builder.with_ansi(colour()).try_init(),
        LogFormat::Json => builder
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(json::Json)
            .try_init(),
    };
    installed.map_err(|e| format!("cannot install the logger: {e}"))?;
    if let Some(w) = warning {
        tracing::warn!("{w}");
    }
    Ok(())
}

/// Colour codes only for a person at a terminal: never into a file, a
/// pipe or a log collector, and never with `NO_COLOR` (no-color.org).
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
