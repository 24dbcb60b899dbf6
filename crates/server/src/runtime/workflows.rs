//! The workflow registry: every version ever loaded, kept in the database so a
//! session always runs on the version it started with, even after the file
//! changed or disappeared.

use crate::store::Store;
use gangway_core::workflow::{self, Workflow};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

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
    versions: HashMap<(String, u32), Arc<Workflow>>,
    latest: BTreeMap<String, u32>,
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
            match workflow::parse(&text) {
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
        let mut reg = Registry::default();
        for (id, version, source) in store.workflow_versions().await? {
            let wf = workflow::parse(&source)
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

    fn insert(&mut self, wf: Workflow) {
        let latest = self.latest.entry(wf.id.clone()).or_insert(wf.version);
        if wf.version > *latest {
            *latest = wf.version;
        }
        self.versions
            .insert((wf.id.clone(), wf.version), Arc::new(wf));
    }

    pub fn get(&self, id: &str, version: u32) -> Option<Arc<Workflow>> {
        self.versions.get(&(id.to_string(), version)).cloned()
    }

    pub fn latest(&self, id: &str) -> Option<Arc<Workflow>> {
        let v = self.latest.get(id)?;
        self.get(id, *v)
    }

    /// `(id, latest version, description, all versions)`.
    pub fn list(&self) -> Vec<(String, u32, String, Vec<u32>)> {
        self.latest
            .iter()
            .map(|(id, v)| {
                let mut all: Vec<u32> = self
                    .versions
                    .keys()
                    .filter(|(i, _)| i == id)
                    .map(|(_, v)| *v)
                    .collect();
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

fn collect_yaml(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
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
