//! Logs on stderr, as `log.*` configures them: text lines (coloured only on
//! a terminal, never with `NO_COLOR`) or one JSON object per line; the
//! filter from `RUST_LOG` or `log.level`; this node's id on every JSON line
//! once the engine has one; and the access log (access.rs).

mod access;
mod json;

pub use access::{AccessNote, access_log};

use crate::config::{LogConfig, LogFormat, OtelConfig};
use std::io::IsTerminal;
use std::sync::OnceLock;
use tracing_subscriber::filter::{FilterExt, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

static NODE_ID: OnceLock<String> = OnceLock::new();

/// Names this process's node on the log lines from now on. The first call
/// wins: a sandbox engine started later in the process keeps the node's id.
pub fn set_node_id(id: &str) {
    let _ = NODE_ID.set(id.to_string());
}

pub(crate) fn node_id() -> Option<&'static str> {
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
    install(config, None)
}

/// As [`init`], and exports traces as `[otel]` says when it is enabled
/// (`gangway serve`); needs the tokio runtime.
pub fn init_traced(config: &LogConfig, otel: &OtelConfig) -> Result<(), String> {
    install(config, Some(otel).filter(|o| o.enabled))
}

fn install(config: &LogConfig, otel: Option<&OtelConfig>) -> Result<(), String> {
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
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt: Box<dyn Layer<Registry> + Send + Sync> = match config.format {
        LogFormat::Text => Box::new(fmt.with_ansi(colour())),
        LogFormat::Json => Box::new(
            fmt.fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
                .event_format(json::Json),
        ),
    };
    // The exported spans (crate::otel) are not log lines.
    let fmt = fmt.with_filter(filter.and(filter_fn(|m| m.target() != crate::otel::TARGET)));
    let otel = otel.map(crate::otel::layer).transpose()?;
    tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init()
        .map_err(|e| format!("cannot install the logger: {e}"))?;
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
