//! The workflow registry: every version ever loaded, kept in the database so a
//! session always runs on the version it started with, even after the file
//! changed or disappeared. A version that another node stored after this one
//! started (a rolling workflow rollout) is loaded from the database the
//! first time one of its sessions needs it here (`Registry::resolve`).
//! New versions are deployed without a restart (`deploy.rs`): through the
//! admin API or SIGHUP on one node, and announced to the others.

mod deploy;
pub mod hangup;

pub use deploy::{Change, Deployed, Source, read_dir};

use crate::store::Store;
use gangway_core::workflow::{self, Workflow};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, RwLock};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read workflows directory {dir}: {source}")]
    Dir { dir: String, source: std::io::Error },
    #[error("{0}")]
    Invalid(String),
    #[error(
        "{file}: workflow `{id}` version {version} differs from the version {version} already stored; \
         bump `version` to change a workflow (running sessions keep the old one)"
    )]
    Changed {
        file: String,
        id: String,
        version: u32,
    },
    #[error(transparent)]
    Store(#[from] crate::store::Error),
}

#[derive(Default)]
pub struct Registry {
    /// Every version loaded so far: at start, and on demand since.
    versions: RwLock<HashMap<(String, u32), Arc<Workflow>>>,
    /// The version new sessions start on: the highest loaded at start or
    /// deployed since. A version loaded on demand for a session runs that
    /// session here but does not change which version this node starts.
    latest: RwLock<BTreeMap<String, u32>>,
}

impl Registry {
    /// Validates every `*.yaml` under `dir`, stores new versions, then loads
    /// every stored version.
    pub async fn load(dir: &Path, store: &dyn Store) -> Result<Registry, Error> {
        let mut files = Vec::new();
        if dir.exists() {
            collect_yaml(dir, &mut files).map_err(|source| Error::Dir {
                dir: dir.display().to_string(),
                source,
            })?;
        } else {
            tracing::warn!(dir = %dir.display(), "workflows directory does not exist; only workflow versions already stored are available");
        }
        files.sort();
        let mut problems = Vec::new();
        let mut parsed = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(file).map_err(|source| Error::Dir {
                dir: file.display().to_string(),
                source,
            })?;
            match workflow::parse(&text, crate::providers::catalog()) {
                Ok(wf) => parsed.push((file.display().to_string(), wf, text)),
                Err(d) => problems.push(d.render(&file.display().to_string())),
            }
        }
        if !problems.is_empty() {
            return Err(Error::Invalid(problems.join("\n")));
        }
        let now = crate::ids::now_ms();
        for (file, wf, text) in &parsed {
            let hash = crate::ids::digest(text.as_bytes());
            if let Some(stored) = store
                .upsert_workflow_version(&wf.id, wf.version, text, &hash, now)
                .await?
                && stored != hash
            {
                return Err(Error::Changed {
                    file: file.clone(),
                    id: wf.id.clone(),
                    version: wf.version,
                });
            }
        }
        let reg = Registry::default();
        for (id, version, source) in store.workflow_versions().await? {
            let wf = workflow::parse(&source, crate::providers::catalog())
                .map_err(|d| Error::Invalid(d.render(&format!("stored {id} v{version}"))))?;
            reg.insert(wf);
        }
        // A `run` step must name a workflow that is loaded.
        let mut missing = Vec::new();
        for (file, wf, _) in &parsed {
            for (name, step) in &wf.steps {
                if let workflow::Step::Run(run) = step
                    && reg.latest(&run.workflow).is_none()
                {
                    missing.push(format!(
                        "{file}:{}:{}: step `{name}` runs workflow `{}`, which is not loaded (no file in the workflows directory has that id)",
                        run.at.0, run.at.1, run.workflow
                    ));
                }
            }
        }
        if !missing.is_empty() {
            return Err(Error::Invalid(missing.join("\n")));
        }
        Ok(reg)
    }

    /// Adds a version; it becomes the latest if it is the highest.
    fn insert(&self, wf: Workflow) -> Arc<Workflow> {
        let wf = Arc::new(wf);
        self.bump_latest(&wf.id, wf.version);
        self.versions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry((wf.id.clone(), wf.version))
            .or_insert(wf)
            .clone()
    }

    fn bump_latest(&self, id: &str, version: u32) {
        let mut latest = self
            .latest
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let v = latest.entry(id.to_string()).or_insert(version);
        if version > *v {
            *v = version;
        }
    }

    fn latest_version(&self, id: &str) -> Option<u32> {
        self.latest
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .copied()
    }

    /// A version loaded on this node (at start or on demand).
    pub fn get(&self, id: &str, version: u32) -> Option<Arc<Workflow>> {
        self.versions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(id.to_string(), version))
            .cloned()
    }

    /// `resolve` for a session in the committer: a version that cannot be
    /// loaded is an error of the session's batch (never "corrupt").
    pub async fn for_session(
        &self,
        store: &dyn Store,
        row: &crate::store::SessionRow,
    ) -> Result<Arc<Workflow>, crate::store::Error> {
        match self.resolve(store, &row.workflow_id, row.version).await {
            Ok(Some(wf)) => Ok(wf),
            Ok(None) => Err(crate::store::Error::Workflow(format!(
                "session {} runs workflow {} v{}, which no node has stored",
                row.id, row.workflow_id, row.version
            ))),
            Err(Error::Store(e)) => Err(e),
            Err(e) => Err(crate::store::Error::Workflow(e.to_string())),
        }
    }

    /// The version a session runs on: loaded here, or else read from the
    /// database, where the node that started the session stored it, and
    /// kept from then on. `None` when the database does not have it either.
    pub async fn resolve(
        &self,
        store: &dyn Store,
        id: &str,
        version: u32,
    ) -> Result<Option<Arc<Workflow>>, Error> {
        if let Some(wf) = self.get(id, version) {
            return Ok(Some(wf));
        }
        let Some(source) = store.workflow_version(id, version).await? else {
            return Ok(None);
        };
        let wf = workflow::parse(&source, crate::providers::catalog())
            .map_err(|d| Error::Invalid(d.render(&format!("stored {id} v{version}"))))?;
        if wf.id != id || wf.version != version {
            return Err(Error::Invalid(format!(
                "stored {id} v{version} declares `{}` version {}",
                wf.id, wf.version
            )));
        }
        tracing::info!(workflow = %id, version, "workflow version loaded from the database (stored by another node)");
        let wf = Arc::new(wf);
        let mut versions = self
            .versions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(Some(
            versions
                .entry((id.to_string(), version))
                .or_insert(wf)
                .clone(),
        ))
    }

    pub fn latest(&self, id: &str) -> Option<Arc<Workflow>> {
        let v = self.latest_version(id)?;
        self.get(id, v)
    }

    /// `(id, latest version, description, all versions)`.
    pub fn list(&self) -> Vec<(String, u32, String, Vec<u32>)> {
        let latest = self
            .latest
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        latest
            .iter()
            .map(|(id, v)| {
                let versions = self
                    .versions
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let mut all: Vec<u32> = versions
                    .keys()
                    .filter(|(i, _)| i == id)
                    .map(|(_, v)| *v)
                    .collect();
                drop(versions);
                all.sort_unstable();
                let desc = self
                    .get(id, *v)
                    .map(|w| w.description.clone())
                    .unwrap_or_default();
                (id.clone(), *v, desc, all)
            })
            .collect()
    }
}

pub(crate) fn collect_yaml(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_yaml(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    Ok(())
}
