//! Deploying workflow versions to a running cluster: validate a set of
//! files as a whole, store their new versions, make them the latest here
//! and tell the other nodes (which read them from the database). Running
//! sessions keep their version; a changed file with an unchanged version is
//! refused, as at start.

use super::{Error, Registry, collect_yaml};
use crate::store::Store;
use gangway_core::workflow::{self, Workflow};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

/// One workflow file: its name (for positions in errors) and its text.
#[derive(Debug, Clone)]
pub struct Source {
    pub file: String,
    pub text: String,
}

/// What a deploy did (or, dry, would do) with one file.
#[derive(Debug, Clone, Serialize)]
pub struct Deployed {
    pub file: String,
    pub id: String,
    pub version: u32,
    pub change: Change,
    /// The version new sessions started on before (none for a new workflow).
    pub previous: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// A workflow id no node had: new sessions can start on it.
    NewWorkflow,
    /// A version above the latest: new sessions start on it.
    NewVersion,
    /// This exact version is already stored: nothing to do.
    Unchanged,
    /// A version below the latest that was not stored: stored, but new
    /// sessions stay on the latest.
    OlderVersion,
}

/// The `*.yaml` / `*.yml` files under `dir`, in name order.
pub fn read_dir(dir: &Path) -> Result<Vec<Source>, Error> {
    let mut files = Vec::new();
    collect_yaml(dir, &mut files).map_err(|source| Error::Dir {
        dir: dir.display().to_string(),
        source,
    })?;
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).map_err(|source| Error::Dir {
                dir: f.display().to_string(),
                source,
            })?;
            Ok(Source {
                file: f.display().to_string(),
                text,
            })
        })
        .collect()
}

impl Registry {
    /// Validates `sources` together (every problem of every file at once),
    /// then, unless `dry_run`, stores what is new, makes it the latest on
    /// this node and announces it to the others. Nothing is stored when any
    /// file is refused.
    pub async fn deploy(
        &self,
        store: &dyn Store,
        sources: &[Source],
        dry_run: bool,
    ) -> Result<Vec<Deployed>, Error> {
        let mut problems = Vec::new();
        let mut parsed: Vec<(&Source, Workflow, String)> = Vec::new();
        for s in sources {
            match workflow::parse(&s.text, crate::providers::catalog()) {
                Ok(wf) => parsed.push((s, wf, crate::ids::digest(s.text.as_bytes()))),
                Err(d) => problems.push(d.render(&s.file)),
            }
        }
        // The same version twice in one deploy must be the same text.
        let mut seen: HashMap<(String, u32), (&str, &str)> = HashMap::new();
        for (s, wf, hash) in &parsed {
            if let Some((file, other)) =
                seen.insert((wf.id.clone(), wf.version), (s.file.as_str(), hash))
                && other != hash
            {
                problems.push(format!(
                    "{}: workflow `{}` version {} differs from {file}, which has the same id and version",
                    s.file, wf.id, wf.version
                ));
            }
        }
        // A `run` step must name a workflow that is loaded or deployed here.
        for (s, wf, _) in &parsed {
            for (name, step) in &wf.steps {
                if let workflow::Step::Run(run) = step
                    && self.latest_version(&run.workflow).is_none()
                    && !parsed.iter().any(|(_, w, _)| w.id == run.workflow)
                {
                    problems.push(format!(
                        "{}:{}:{}: step `{name}` runs workflow `{}`, which is not loaded (deploy it too)",
                        s.file, run.at.0, run.at.1, run.workflow
                    ));
                }
            }
        }
        if !problems.is_empty() {
            return Err(Error::Invalid(problems.join("\n")));
        }

        let mut out = Vec::with_capacity(parsed.len());
        for (s, wf, hash) in &parsed {
            let previous = self.latest_version(&wf.id);
            let stored = store.workflow_version(&wf.id, wf.version).await?;
            let change = match (&stored, previous) {
                (Some(text), _) if crate::ids::digest(text.as_bytes()) == *hash => {
                    Change::Unchanged
                }
                (Some(_), _) => {
                    return Err(Error::Changed {
                        file: s.file.clone(),
                        id: wf.id.clone(),
                        version: wf.version,
                    });
                }
                (None, None) => Change::NewWorkflow,
                (None, Some(p)) if wf.version > p => Change::NewVersion,
                (None, Some(_)) => Change::OlderVersion,
            };
            out.push(Deployed {
                file: s.file.clone(),
                id: wf.id.clone(),
                version: wf.version,
                change,
                previous,
            });
        }
        if dry_run || out.iter().all(|d| d.change == Change::Unchanged) {
            return Ok(out);
        }

        let now = crate::ids::now_ms();
        for (s, wf, hash) in &parsed {
            // Another node may have stored a different text meanwhile.
            if let Some(stored) = store
                .upsert_workflow_version(&wf.id, wf.version, &s.text, hash, now)
                .await?
                && stored != *hash
            {
                return Err(Error::Changed {
                    file: s.file.clone(),
                    id: wf.id.clone(),
                    version: wf.version,
                });
            }
        }
        for (_, wf, _) in parsed {
            let (id, version) = (wf.id.clone(), wf.version);
            self.insert(wf);
            tracing::info!(workflow = %id, version, "workflow version deployed");
        }
        if let Err(e) = store.announce_workflows().await {
            // Stored all the same: other nodes find it at their next
            // deploy signal, restart or session that needs it.
            tracing::warn!(error = %e, "could not announce the deployed workflows to other nodes");
        }
        Ok(out)
    }

    /// Loads every stored version this node lacks and moves `latest` to
    /// the highest stored: another node deployed.
    pub async fn refresh(&self, store: &dyn Store) -> Result<usize, Error> {
        let mut added = 0;
        for (id, version, source) in store.workflow_versions().await? {
            if self.get(&id, version).is_some() {
                // Loaded on demand for a session: now the latest if highest.
                self.bump_latest(&id, version);
                continue;
            }
            match workflow::parse(&source, crate::providers::catalog()) {
                Ok(wf) if wf.id == id && wf.version == version => {
                    self.insert(wf);
                    added += 1;
                    tracing::info!(workflow = %id, version, "workflow version deployed by another node loaded");
                }
                Ok(_) => {
                    tracing::warn!(workflow = %id, version, "stored workflow declares another id or version; skipped");
                }
                Err(d) => {
                    tracing::warn!(workflow = %id, version, problems = %d.render("stored"), "stored workflow does not validate on this node; skipped");
                }
            }
        }
        Ok(added)
    }
}
