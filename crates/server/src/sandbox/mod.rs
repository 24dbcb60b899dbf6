//! Runs one workflow against the built-in simulators in an isolated engine
//! (SQLite in a temporary directory, the simulators on its own loopback
//! listener) and reports each step as it happens: the timeline, state
//! changes as a diff, what the browser would present, and the scripted
//! events applied. `gangway sandbox` prints the trace; `POST
//! /v1/workflows/{id}/dry-run` returns it as JSON. No real provider is ever
//! called: every connector points at a simulator with throwaway credentials.

pub mod script;

use crate::config::Config;
use crate::ids;
use crate::runtime::Engine;
use crate::sim::setup::{self, SimCredentials};
use crate::store::TimelineEntry;
use gangway_core::SessionStatus;
use gangway_core::engine::{ProviderRef, SessionState};
pub use script::ScriptEvent;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Whether `step` is a step of `root` or of a workflow it runs (children,
/// their children, ...): a scripted event may name either, since the
/// sandbox applies it where the session, or the child it waits for, waits.
pub fn step_known(
    root: &gangway_core::workflow::Workflow,
    step: &str,
    lookup: &dyn Fn(&str) -> Option<Arc<gangway_core::workflow::Workflow>>,
) -> bool {
    let mut seen: Vec<String> = vec![root.id.clone()];
    let mut queue: Vec<Arc<gangway_core::workflow::Workflow>> = Vec::new();
    let mut current: Option<&gangway_core::workflow::Workflow> = Some(root);
    let mut owned;
    // Bounded by the number of distinct workflows reachable.
    while let Some(wf) = current {
        if wf.step(step).is_some() {
            return true;
        }
        for s in wf.steps.values() {
            if let gangway_core::workflow::Step::Run(r) = s
                && !seen.contains(&r.workflow)
            {
                seen.push(r.workflow.clone());
                if let Some(child) = lookup(&r.workflow) {
                    queue.push(child);
                }
            }
        }
        owned = queue.pop();
        current = owned.as_deref();
    }
    false
}

/// How often the driver looks at the store; in-process, so cheap.
const TICK: Duration = Duration::from_millis(20);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the sandbox could not start: {0}")]
    Start(String),
    #[error("the session was refused: {0}")]
    Refused(String),
    #[error("{0}")]
    Event(String),
    #[error("the sandbox's store failed: {0}")]
    Store(#[from] crate::store::Error),
}

/// One thing that happened, in order.
#[derive(Debug, Clone)]
pub enum TraceItem {
    /// The session was created.
    Started {
        session_id: String,
    },
    /// A timeline entry; `at_ms` counts from the session's creation.
    /// `child` names the child session (of a `run` step) it belongs to.
    Entry {
        at_ms: i64,
        entry: TimelineEntry,
        child: Option<String>,
    },
    StateSet {
        key: String,
        value: Value,
    },
    StateRemoved {
        key: String,
    },
    /// What the browser shows now.
    Presented(Value),
    /// A scripted event was applied.
    Applied(ScriptEvent),
    /// The session waits in `step` and the script has nothing for it (yet).
    Idle {
        step: String,
        next_at: Option<String>,
    },
}

impl TraceItem {
    pub fn to_json(&self) -> Value {
        match self {
            TraceItem::Started { session_id } => {
                json!({"kind": "sandbox.started", "data": {"session_id": session_id}})
            }
            TraceItem::Entry {
                at_ms,
                entry,
                child,
            } => {
                let mut v = json!({
                    "at_ms": at_ms, "kind": entry.kind, "step": entry.step, "data": entry.data,
                });
                if let Some(c) = child {
                    v["session"] = json!(c);
                }
                v
            }
            TraceItem::StateSet { key, value } => {
                json!({"kind": "state.set", "data": {"key": key, "value": value}})
            }
            TraceItem::StateRemoved { key } => {
                json!({"kind": "state.removed", "data": {"key": key}})
            }
            TraceItem::Presented(p) => json!({"kind": "browser.presents", "data": p}),
            TraceItem::Applied(ev) => json!({"kind": "script.applied", "data": ev}),
            TraceItem::Idle { step, next_at } => {
                json!({"kind": "script.idle", "step": step, "data": {"next_at": next_at}})
            }
        }
    }
}

/// How a run finished.
pub struct Finished {
    pub session_id: String,
    /// The session as `GET /v1/sessions/{id}` shows it.
    pub session: Value,
    /// False when the timeout passed first.
    pub ended: bool,
}

/// A running sandbox. Dropped without `stop` (a dry run whose client went
/// away drops its handler), it still stops its engine: the server then
/// stops listening, drains and closes the engine, and its store, thread and
/// temporary directory go with it.
pub struct Sandbox {
    engine: Arc<Engine>,
    base: String,
    api_key: String,
    http: reqwest::Client,
    /// The sandbox's server, which drains and closes the engine when it
    /// stops, then removes the temporary directory.
    serving: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.engine.stop();
    }
}

impl Sandbox {
    /// Starts an isolated engine with these workflow files (`(relative
    /// path, YAML)`), the simulators, and a throwaway API key.
    pub async fn start(files: &[(String, String)]) -> Result<Sandbox, Error> {
        let start = |e: &dyn std::fmt::Display| Error::Start(e.to_string());
        let dir = tempfile::tempdir().map_err(|e| start(&e))?;
        let wf_dir = dir.path().join("workflows");
        for (name, source) in files {
            let path = wf_dir.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| start(&e))?;
            }
            std::fs::write(&path, source).map_err(|e| start(&e))?;
        }
        let mut config = Config::load(None).map_err(|e| start(&e))?;
        config.database_url = format!("sqlite://{}", dir.path().join("sandbox.db").display());
        config.workflows_dir = wf_dir;
        config.webhooks.endpoints.clear();
        config.encryption_key = Some(crate::crypto::generate_key());
        config.public_url = None;
        // A throwaway engine: a call still running at the end is not worth
        // waiting long for.
        config.engine.shutdown_grace = Duration::from_secs(1);
        // Plain HTTP on its own loopback port, nothing to drain for.
        config.server.drain_period = Duration::ZERO;
        config.tls = None;
        config.admin_listen = None;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| start(&e))?;
        let addr = listener.local_addr().map_err(|e| start(&e))?;
        config.listen = addr;
        let base = format!("http://{addr}");
        let creds = SimCredentials::random();
        setup::configure_all(&mut config, &base, &creds);
        let engine = crate::app::start(config).await.map_err(|e| start(&e))?;
        let sims = setup::simulators(
            &base,
            &base,
            &creds,
            setup::SimOptions {
                frame_ancestors: vec![base.clone()],
                ..Default::default()
            },
        );
        let router = crate::app::router(engine.clone(), Some(sims));
        let serving = engine.clone();
        let serving = tokio::spawn(async move {
            let mut stopped = serving.shutdown_signal();
            let _ = crate::app::serve(
                crate::app::Listeners::plain(listener),
                serving,
                router,
                async move {
                    let _ = stopped.wait_for(|s| *s).await;
                },
            )
            .await;
            // Drained and closed: nothing writes to the database any more.
            drop(dir);
        });
        // From here on, an early return drops the sandbox, which stops it.
        let sandbox = Sandbox {
            engine,
            base,
            api_key: ids::new_secret("gw_sandbox"),
            http: reqwest::Client::new(),
            serving: Some(serving),
        };
        sandbox
            .engine
            .insert_api_key(
                &ids::new_id("key"),
                "sandbox",
                &ids::hash_secret(&sandbox.api_key),
                ids::now_ms(),
            )
            .await?;
        Ok(sandbox)
    }

    /// Runs a session of `workflow` until it ends or `timeout` passes,
    /// applying `events` as the session reaches their steps.
    pub async fn run(
        &self,
        workflow: &str,
        input: Value,
        events: Vec<ScriptEvent>,
        timeout: Duration,
        mut on: impl FnMut(&TraceItem),
    ) -> Result<Finished, Error> {
        let resp = self
            .http
            .post(format!("{}/v1/sessions", self.base))
            .bearer_auth(&self.api_key)
            .json(&json!({"workflow": workflow, "input": input, "reference": "sandbox"}))
            .send()
            .await
            .map_err(|e| Error::Start(e.to_string()))?;
        let ok = resp.status().is_success();
        let created: Value = resp.json().await.map_err(|e| Error::Start(e.to_string()))?;
        if !ok {
            return Err(Error::Refused(
                created["detail"].as_str().unwrap_or("?").to_string(),
            ));
        }
        let id = created["id"].as_str().unwrap_or_default().to_string();
        let secret = created["client_secret"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        on(&TraceItem::Started {
            session_id: id.clone(),
        });
        let mut tracker = Tracker::default();
        let mut pending = events.into_iter().peekable();
        let deadline = Instant::now() + timeout;
        loop {
            let row = self
                .engine
                .session(&id)
                .await?
                .ok_or_else(|| Error::Event("the session disappeared".into()))?;
            // Children's steps first (they happen before the parent hears
            // of them), then the session's own.
            for child in tracker.children.clone() {
                let entries = self.engine.timeline(&child).await?;
                tracker.observe_child(&child, &entries, &mut on);
            }
            let entries = self.engine.timeline(&id).await?;
            tracker.observe(&entries, &row.state, &mut on);
            if row.state.status == SessionStatus::Ended {
                return Ok(Finished {
                    session_id: id,
                    session: crate::runtime::view::session_json(&row),
                    ended: true,
                });
            }
            // The steps waiting now: this session's and, while it runs a
            // child, the child's (and so on down).
            let chain = self.waiting_chain(&row).await?;
            if let Some((step, visit)) = chain.first().map(|(s, v, _, _)| (s.clone(), *v)) {
                // An event for a step that runs a child acts on the
                // child's providers (the deepest session that has some).
                let hit = pending.peek().and_then(|e| {
                    let at = chain.iter().position(|(s, _, _, _)| *s == e.at)?;
                    chain[at..]
                        .iter()
                        .rev()
                        .find(|(_, _, _, p)| !p.is_empty())
                        .or(chain.get(at))
                        .cloned()
                });
                if let Some((_, _, session, providers)) = hit {
                    if let Some(ev) = pending.next() {
                        on(&TraceItem::Applied(ev.clone()));
                        // Signals go through the top session, as a browser's do.
                        self.apply(&id, &session, &secret, &providers, &ev).await?;
                    }
                } else {
                    let idle_step = chain.last().map(|(s, _, _, _)| s.clone()).unwrap_or(step);
                    tracker.idle(&idle_step, visit, pending.peek(), &mut on);
                }
            }
            if Instant::now() > deadline {
                return Ok(Finished {
                    session_id: id,
                    session: crate::runtime::view::session_json(&row),
                    ended: false,
                });
            }
            tokio::time::sleep(TICK).await;
        }
    }

    /// `(step, visit, session id, providers)` of each waiting session,
    /// from `row` down through the children it waits for.
    /// Empty while any of them is still busy (a child not yet waiting), so
    /// that scripted events wait for the whole chain to settle.
    async fn waiting_chain(
        &self,
        row: &crate::store::SessionRow,
    ) -> Result<Vec<(String, u32, String, Vec<ProviderRef>)>, Error> {
        let mut chain = Vec::new();
        let mut current = Some(row.clone());
        // Bounded: children nest as deep as workflows do, a handful at most.
        for _ in 0..8 {
            let Some(r) = current.take() else { break };
            let Some(step) = r.state.step.clone() else {
                return Ok(Vec::new());
            };
            if r.state.status != SessionStatus::Waiting {
                return Ok(Vec::new());
            }
            chain.push((step, r.state.visit, r.id.clone(), r.state.providers.clone()));
            if let Some(child) = &r.state.child {
                match self.engine.session(child).await? {
                    Some(c) => current = Some(c),
                    None => return Ok(Vec::new()),
                }
            }
        }
        Ok(chain)
    }

    async fn apply(
        &self,
        id: &str,
        _waiting: &str,
        secret: &str,
        providers: &[ProviderRef],
        ev: &ScriptEvent,
    ) -> Result<(), Error> {
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
                    .ok_or_else(|| {
                        Error::Event(format!(
                            "{}: no provider session has started yet",
                            ev.describe()
                        ))
                    })?;
                (
                    format!(
                        "{}/sim/{sim}/control/{}/{action}",
                        self.base, provider.provider_session_id
                    ),
                    ev.body.clone().unwrap_or_else(|| json!({})),
                    None,
                )
            }
            _ => return Err(Error::Event(format!("event at `{}` does nothing", ev.at))),
        };
        let mut req = self.http.post(&url).json(&body);
        if let Some(s) = auth {
            req = req.bearer_auth(s);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| Error::Event(format!("{}: {e}", ev.describe())))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            return Err(Error::Event(format!(
                "{} answered {status}: {text}",
                ev.describe()
            )));
        }
        Ok(())
    }

    /// Stops the engine and waits until its server has drained it, so that
    /// nothing is still writing when the caller's runtime ends.
    pub async fn stop(mut self) {
        self.stopping().await;
    }

    /// Tells the engine to stop and returns what resolves once its server
    /// has drained and closed it; for a caller that cannot await here (a
    /// drop guard hands it to a task).
    pub fn stopping(&mut self) -> impl Future<Output = ()> + Send + 'static {
        self.engine.stop();
        let serving = self.serving.take();
        async move {
            if let Some(serving) = serving {
                let _ = serving.await;
            }
        }
    }
}

/// Turns successive looks at a session into trace items.
#[derive(Default)]
struct Tracker {
    t0: Option<i64>,
    last_seq: i64,
    /// Child sessions seen so far, and how far their timelines were read.
    children: Vec<String>,
    child_seq: std::collections::HashMap<String, i64>,
    vars: Map<String, Value>,
    present: Option<Value>,
    idle_in: Option<(String, u32)>,
}

impl Tracker {
    fn observe(
        &mut self,
        entries: &[TimelineEntry],
        state: &SessionState,
        on: &mut impl FnMut(&TraceItem),
    ) {
        let seen = self.last_seq;
        for e in entries.iter().filter(|e| e.seq > seen) {
            self.last_seq = e.seq;
            let t0 = *self.t0.get_or_insert(e.at);
            self.note_child(e);
            on(&TraceItem::Entry {
                at_ms: e.at - t0,
                entry: e.clone(),
                child: None,
            });
        }
        for (k, v) in &state.vars {
            if self.vars.get(k) != Some(v) {
                on(&TraceItem::StateSet {
                    key: k.clone(),
                    value: v.clone(),
                });
            }
        }
        for k in self.vars.keys() {
            if !state.vars.contains_key(k) {
                on(&TraceItem::StateRemoved { key: k.clone() });
            }
        }
        self.vars = state.vars.clone();
        if state.present != self.present {
            if let Some(p) = &state.present {
                on(&TraceItem::Presented(p.clone()));
            }
            self.present = state.present.clone();
        }
    }

    fn note_child(&mut self, e: &TimelineEntry) {
        if e.kind == "child.started"
            && let Some(c) = e.data.get("session_id").and_then(Value::as_str)
            && !self.children.iter().any(|k| k == c)
        {
            self.children.push(c.to_string());
        }
    }

    fn observe_child(
        &mut self,
        child: &str,
        entries: &[TimelineEntry],
        on: &mut impl FnMut(&TraceItem),
    ) {
        let seen = self.child_seq.get(child).copied().unwrap_or(0);
        for e in entries.iter().filter(|e| e.seq > seen) {
            self.child_seq.insert(child.to_string(), e.seq);
            let t0 = *self.t0.get_or_insert(e.at);
            self.note_child(e);
            on(&TraceItem::Entry {
                at_ms: e.at - t0,
                entry: e.clone(),
                child: Some(child.to_string()),
            });
        }
    }

    /// Reports once per wait that the script has nothing for it.
    fn idle(
        &mut self,
        step: &str,
        visit: u32,
        next: Option<&ScriptEvent>,
        on: &mut impl FnMut(&TraceItem),
    ) {
        let key = (step.to_string(), visit);
        if self.idle_in.as_ref() == Some(&key) {
            return;
        }
        self.idle_in = Some(key);
        on(&TraceItem::Idle {
            step: step.to_string(),
            next_at: next.map(|e| e.at.clone()),
        });
    }
}
