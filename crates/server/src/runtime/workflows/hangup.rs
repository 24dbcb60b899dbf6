//! SIGHUP re-reads `workflows_dir` and deploys what changed, as
//! `POST /v1/admin/workflows` would: new versions start new sessions at
//! once here and on the other nodes; a directory that does not validate (or
//! a changed file with an unchanged version) is logged and changes nothing.

use super::deploy::{Change, read_dir};
use crate::runtime::Engine;
use std::sync::Arc;

/// Runs until the engine stops. The handler is installed before this
/// returns: a SIGHUP that came before the task first ran would otherwise
/// meet the default action and end the process.
pub fn spawn(engine: Arc<Engine>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: workflows are re-read only by a deploy");
            return;
        };
        tokio::spawn(async move {
            let mut stopping = engine.shutdown.subscribe();
            loop {
                tokio::select! {
                    got = hup.recv() => if got.is_none() { return },
                    _ = stopping.wait_for(|s| *s) => return,
                }
                reload(&engine).await;
            }
        });
    }
    #[cfg(not(unix))]
    let _ = engine;
}

async fn reload(engine: &Engine) {
    let dir = &engine.config.workflows_dir;
    let sources = match read_dir(dir) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP: cannot read the workflows directory; nothing changed");
            return;
        }
    };
    match engine
        .workflows
        .deploy(engine.store.as_ref(), &sources, false)
        .await
    {
        Ok(done) => {
            let changed: Vec<String> = done
                .iter()
                .filter(|d| d.change != Change::Unchanged)
                .map(|d| format!("{} v{}", d.id, d.version))
                .collect();
            tracing::info!(dir = %dir.display(), deployed = %changed.join(", "), "SIGHUP: workflows re-read");
        }
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP: the workflows directory was not deployed; nothing changed");
        }
    }
}
