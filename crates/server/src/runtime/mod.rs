//! The runtime around the pure engine core. One committer task applies
//! inputs to sessions and commits each batch of transitions together with
//! their effects (jobs), timeline entries, client events and deliveries in
//! one transaction (group commit, transactional outbox). After the commit,
//! jobs due now run at once (fast path); timers, polls and retries wait in
//! the database for the scheduler, so nothing is held in memory per waiting
//! session and a restart loses nothing.

mod access;
pub mod changes;
pub mod chat;
mod children;
mod cluster;
mod committer;
mod delivery;
pub mod erasure;
mod executor;
pub mod hub;
mod intake;
mod job;
pub mod node;
mod poll_budget;
pub mod qr;
mod release;
pub mod reviews;
mod route;
mod scheduler;
pub mod view;
pub mod watch;
pub mod workflows;

use crate::config::Config;
use crate::connectors::Connectors;
use crate::store::{NewAudit, NewEvent, SessionRow, Store};
use gangway_core::engine::Input;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};

pub use committer::{CreateRequest, Created, Ingested};

/// What runs after every transition of a session, in this order, in the
/// batch's transaction: a child's ending or view goes to its parent, then
/// a chat's runs and messages follow.
static AFTER_TRANSITION: &[&dyn committer::AfterTransition] =
    &[&children::ToParent, &chat::Messages, &release::OnEnd];
pub use intake::Refused;
pub use reviews::Reviewer;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown workflow `{0}`")]
    UnknownWorkflow(String),
    /// The input does not match the workflow's `input` schema.
    #[error("the input does not match the `input` schema of workflow `{workflow}` v{version}")]
    InvalidInput {
        workflow: String,
        version: u32,
        errors: Vec<gangway_core::workflow::InputError>,
    },
    #[error("session not found")]
    NotFound,
    #[error("Idempotency-Key was already used with a different request body")]
    IdempotencyConflict,
    #[error("session has already ended")]
    Ended,
    /// An erasure of a session that has not ended (it is canceled first).
    #[error("the session is still running")]
    Running,
    #[error("the engine is shutting down")]
    ShuttingDown,
    #[error("refused: {}", .0.reason())]
    Refused(Refused),
    /// A review claim or decision that cannot be taken; nothing changed.
    #[error(transparent)]
    Review(reviews::ReviewRefusal),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
}

/// One unit of work for the committer. Cloneable, so that a failed batch can
/// be retried command by command.
#[derive(Clone)]
pub(crate) enum Work {
    Create(Arc<CreateRequest>),
    Apply {
        session_id: String,
        input: Input,
        /// The job whose result this is: deleted in the same transaction.
        job: Option<i64>,
        /// Timeline entry describing what happened (e.g. the provider call).
        record: Option<Arc<(String, Value)>>,
        /// Audit entry, written when the input applies (a cancel by a key).
        audit: Option<Arc<NewAudit>>,
    },
    Ingest(Arc<NewEvent>),
    /// A timeline entry that changes nothing else (e.g. an audited read).
    Record {
        session_id: String,
        entry: Arc<(String, Value)>,
        /// The job whose result this is (a release job on an ended
        /// session): deleted in the same transaction.
        job: Option<i64>,
        /// Audit entry written with it (a secrets read by a key).
        audit: Option<Arc<NewAudit>>,
    },
    /// The outcome of one customer webhook delivery attempt.
    Delivered(Arc<DeliveryOutcome>),
    /// Erases an ended session's personal data (erasure.rs).
    Erase {
        session_id: String,
        trigger: erasure::Trigger,
        /// Who erases it (the API key, or the system for retention):
        /// audited in the same transaction.
        actor: Arc<crate::audit::Actor>,
    },
    /// Answered once every command sent before it is committed.
    Barrier,
    /// A line typed in a chat, or a chat run that could not start.
    Chat(Arc<chat::ChatWork>),
    /// A reviewer's decision on a session's `review` step.
    Decide(Arc<reviews::DecideRequest>),
    /// Gives a reference's early events to its session, if they were stored
    /// while another writer committed the reference (shared databases).
    Adopt {
        namespace: String,
        reference: String,
        /// The session the reference is correlated to, when already read
        /// (saves a lookup in the transaction).
        session_id: Option<String>,
    },
}

pub(crate) struct DeliveryOutcome {
    pub delivery_id: String,
    pub job: i64,
    pub attempt: crate::store::DeliveryAttempt,
    /// `delivered`, `pending` (retry at `next_attempt_at`) or `failed`.
    pub status: &'static str,
    pub next_attempt_at: Option<i64>,
}

pub(crate) enum Reply {
    Create(oneshot::Sender<Result<Created, Error>>),
    Apply(Option<oneshot::Sender<Result<Option<SessionRow>, Error>>>),
    Ingest(oneshot::Sender<Result<Ingested, Error>>),
    Barrier(oneshot::Sender<()>),
    Chat(oneshot::Sender<Result<chat::Said, Error>>),
    /// Whether the command was committed.
    Done(oneshot::Sender<bool>),
}

pub(crate) struct Command {
    pub work: Work,
    pub reply: Reply,
}

/// The runtime's handle. Its parts are private to `runtime/`: the rest of
/// the server uses the commands below and the narrow reads in access.rs.
pub struct Engine {
    store: Arc<dyn Store>,
    config: Config,
    workflows: workflows::Registry,
    connectors: Connectors,
    hub: hub::Hub,
    /// Long polls waiting for a session's next change.
    session_watch: Arc<watch::SessionWatch>,
    /// Operators' streams of session changes (the console).
    changes: changes::Changes,
    /// API keys authenticated recently (dropped when a key changes).
    keys: crate::keys::KeyCache,
    /// One queue per committer (route.rs picks one per command).
    commands: Vec<mpsc::Sender<Command>>,
    /// Wakes the scheduler when a job is due before its planned wake-up.
    wake: Notify,
    next_wake: AtomicI64,
    inflight: Semaphore,
    /// Customer webhooks: no redirects, only allowed addresses (egress).
    delivery_client: reqwest::Client,
    delivery_addresses: crate::egress::AddressPolicy,
    stopping: AtomicBool,
    /// Set on SIGTERM, before `stopping`: `/readyz` answers 503 while the
    /// node still serves everything (`server.drain_period`).
    draining: AtomicBool,
    /// Set once drained: committers return after their current batch, so
    /// their threads and their hold on the engine (and so on the store's
    /// connections) end with it.
    closed: AtomicBool,
    /// Flips to true on shutdown; open streams end with a reconnect hint.
    shutdown: tokio::sync::watch::Sender<bool>,
    /// This process's hold on its node id, given up when drained.
    membership: std::sync::Mutex<Option<node::Membership>>,
}

impl Engine {
    /// Builds the engine and starts its committer and scheduler tasks.
    pub async fn start(
        config: Config,
        store: Arc<dyn Store>,
        workflows: workflows::Registry,
    ) -> Result<Arc<Engine>, Error> {
        let freed = store.release_leases_at_start().await?;
        if freed > 0 {
            tracing::info!(
                jobs = freed,
                "freed the leases an earlier run of this node held"
            );
        }
        let signals = store.signals().await?;
        let sealer = match config.encryption_keys() {
            Some((k, read)) => crate::crypto::Sealer::with_previous(k, read)
                .map_err(|e| Error::Store(crate::store::Error::Corrupt(e.to_string())))?,
            // Said at every start by `app::audit_start` (and logged there).
            None => crate::crypto::Sealer::ephemeral(),
        };
        // One writer for an embedded database; several on PostgreSQL.
        let committers = if store.inline_transactions() {
            1
        } else {
            config.postgres.committers.max(1)
        };
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..committers).map(|_| mpsc::channel(8192)).unzip();
        let startup = |e: String| Error::Store(crate::store::Error::Corrupt(e));
        let delivery_addresses = config
            .webhooks
            .address_policy()
            .map_err(|e| startup(e.to_string()))?;
        let delivery_client =
            crate::egress::delivery_client(config.webhooks.timeout, delivery_addresses.clone())
                .map_err(startup)?;
        // Other nodes' key changes arrive as notifications on a shared
        // database; on a file only this process serves, the CLI's do not.
        let key_ttl = if store.is_shared() {
            crate::keys::SHARED_TTL
        } else {
            crate::keys::LOCAL_TTL
        };
        let engine = Arc::new(Engine {
            connectors: Connectors::new(&config, sealer).map_err(startup)?,
            inflight: Semaphore::new(config.engine.max_inflight),
            store,
            config,
            workflows,
            hub: hub::Hub::default(),
            session_watch: Arc::default(),
            changes: changes::Changes::default(),
            keys: crate::keys::KeyCache::new(key_ttl),
            commands: txs,
            wake: Notify::new(),
            next_wake: AtomicI64::new(0),
            delivery_client,
            delivery_addresses,
            stopping: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            shutdown: tokio::sync::watch::Sender::new(false),
            membership: std::sync::Mutex::new(None),
        });
        // With embedded SQLite the committer gets its own thread: its
        // transaction runs inline (no hop to a database thread per
        // statement), which would block a runtime worker; `Handle::block_on`
        // still drives async I/O and spawns onto the runtime.
        for rx in rxs {
            if engine.store.inline_transactions() {
                let handle = tokio::runtime::Handle::current();
                let committer_engine = engine.clone();
                std::thread::Builder::new()
                    .name("gangway-committer".into())
                    .spawn(move || handle.block_on(committer::run(committer_engine, rx)))
                    .map_err(|e| {
                        Error::Store(crate::store::Error::Corrupt(format!(
                            "cannot start the committer thread: {e}"
                        )))
                    })?;
            } else {
                tokio::spawn(committer::run(engine.clone(), rx));
            }
        }
        if engine.store.is_shared() {
            // Adoption checks a crashed writer did not get to run.
            engine.adopt_later(engine.store.unadopted_references().await?);
        }
        tokio::spawn(scheduler::run(engine.clone()));
        tokio::spawn(erasure::sweep(engine.clone()));
        if let Some(signals) = signals {
            tokio::spawn(cluster::run(engine.clone(), signals));
        }
        Ok(engine)
    }

    /// Keeps this process's hold on its node id until `drain`.
    pub fn set_membership(&self, membership: node::Membership) {
        *self
            .membership
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(membership);
    }

    async fn send(&self, cmd: Command) -> Result<(), Error> {
        let n = route::committer_for(&cmd.work, self.commands.len());
        self.commands[n]
            .send(cmd)
            .await
            .map_err(|_| Error::ShuttingDown)
    }

    /// Creates a session and runs it up to its first call or wait.
    pub async fn create(&self, req: CreateRequest) -> Result<Created, Error> {
        let (reply, rx) = oneshot::channel();
        self.send(Command {
            work: Work::Create(Arc::new(req)),
            reply: Reply::Create(reply),
        })
        .await?;
        rx.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Applies an input (e.g. a cancel) and returns the session after it.
    pub async fn apply(&self, session_id: &str, input: Input) -> Result<SessionRow, Error> {
        self.apply_audited(session_id, input, None).await
    }

    /// Applies an input and, in the same transaction if the input applied,
    /// appends an audit entry (a cancel by an API key).
    pub async fn apply_audited(
        &self,
        session_id: &str,
        input: Input,
        audit: Option<NewAudit>,
    ) -> Result<SessionRow, Error> {
        let (reply, rx) = oneshot::channel();
        self.send(Command {
            work: Work::Apply {
                session_id: session_id.to_string(),
                input,
                job: None,
                record: None,
                audit: audit.map(Arc::new),
            },
            reply: Reply::Apply(Some(reply)),
        })
        .await?;
        rx.await
            .map_err(|_| Error::ShuttingDown)??
            .ok_or(Error::NotFound)
    }

    /// Stores an inbound event (deduplicated) and applies it if its session waits for it.
    pub async fn ingest(&self, event: NewEvent) -> Result<Ingested, Error> {
        let (reply, rx) = oneshot::channel();
        self.send(Command {
            work: Work::Ingest(Arc::new(event)),
            reply: Reply::Ingest(reply),
        })
        .await?;
        rx.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Takes a line typed in a chat (or a chat's own bookkeeping).
    pub async fn chat(&self, work: chat::ChatWork) -> Result<chat::Said, Error> {
        let (reply, rx) = oneshot::channel();
        self.send(Command {
            work: Work::Chat(Arc::new(work)),
            reply: Reply::Chat(reply),
        })
        .await?;
        rx.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Adds a timeline entry to a session without changing its state, and
    /// an entry to the audit log in the same transaction (a secrets read);
    /// answers once it is committed.
    pub async fn record(
        &self,
        session_id: &str,
        kind: &str,
        data: Value,
        audit: Option<NewAudit>,
    ) -> Result<(), Error> {
        let (reply, rx) = oneshot::channel();
        self.send(Command {
            work: Work::Record {
                session_id: session_id.to_string(),
                entry: Arc::new((kind.to_string(), data)),
                job: None,
                audit: audit.map(Arc::new),
            },
            reply: Reply::Apply(Some(reply)),
        })
        .await?;
        rx.await
            .map_err(|_| Error::ShuttingDown)??
            .map(|_| ())
            .ok_or(Error::NotFound)
    }

    /// Makes the session's pending poll due now: a provider webhook that is
    /// only a hint triggers a server-side read instead of deciding anything.
    pub async fn expedite_poll(&self, session_id: &str) -> Result<(), Error> {
        let now = crate::ids::now_ms();
        if self
            .store
            .expedite_jobs(session_id, crate::store::JobKind::Poll, now)
            .await?
            > 0
        {
            self.next_wake
                .store(now, std::sync::atomic::Ordering::Relaxed);
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Result of a job, fed back without waiting for the commit.
    pub(crate) async fn job_result(
        &self,
        session_id: &str,
        job: i64,
        input: Input,
        record: Option<(String, Value)>,
    ) {
        let _ = self
            .send(Command {
                work: Work::Apply {
                    session_id: session_id.to_string(),
                    input,
                    job: Some(job),
                    record: record.map(Arc::new),
                    audit: None,
                },
                reply: Reply::Apply(None),
            })
            .await;
    }

    /// The result of a job that changes no state (a release job on an
    /// ended session), as a timeline entry, fed back without waiting for
    /// the commit; the job row goes in the same transaction.
    pub(crate) async fn job_record(&self, session_id: &str, job: i64, kind: &str, data: Value) {
        let _ = self
            .send(Command {
                work: Work::Record {
                    session_id: session_id.to_string(),
                    entry: Arc::new((kind.to_string(), data)),
                    job: Some(job),
                    audit: None,
                },
                reply: Reply::Apply(None),
            })
            .await;
    }

    /// Checks references for early events after a commit (see
    /// `Work::Adopt`): one read finds the few that have any, and only those
    /// go through the committer. Should the read fail, every reference does.
    pub(crate) fn adopt_later(self: &Arc<Self>, refs: Vec<(String, String)>) {
        let engine = self.clone();
        tokio::spawn(async move {
            let found: Vec<(String, String, Option<String>)> = match engine
                .store
                .unadopted_among(&refs)
                .await
            {
                Ok(found) => found
                    .into_iter()
                    .map(|(n, r, sid)| (n, r, Some(sid)))
                    .collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "adoption check failed; checking in the committer");
                    refs.into_iter().map(|(n, r)| (n, r, None)).collect()
                }
            };
            for (namespace, reference, session_id) in found {
                let _ = engine
                    .send(Command {
                        work: Work::Adopt {
                            namespace,
                            reference,
                            session_id,
                        },
                        reply: Reply::Apply(None),
                    })
                    .await;
            }
        });
    }

    /// Records a delivery attempt with the next group commit.
    pub(crate) async fn delivery_result(&self, outcome: DeliveryOutcome) {
        let _ = self
            .send(Command {
                work: Work::Delivered(Arc::new(outcome)),
                reply: Reply::Apply(None),
            })
            .await;
    }

    /// Whether `drain` has finished: committers take nothing more.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Readiness off: the node still serves, but a load balancer should
    /// send it nothing new (`/readyz` answers 503 `stopping`).
    pub fn begin_drain(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether `/readyz` should answer `stopping`: draining or stopped.
    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Relaxed) || self.is_stopping()
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops taking new work: the scheduler claims nothing more, retries
    /// end early (leaving their job to run again), open streams are told to
    /// reconnect elsewhere.
    pub fn stop(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.shutdown.send_replace(true);
        self.wake.notify_one();
    }

    /// After `stop`: waits (up to `grace`) for running jobs to hand in their
    /// results and for the committer to commit them, then frees the leases
    /// this node still holds so that another node runs those jobs at once.
    pub async fn drain(&self, grace: std::time::Duration) {
        let permits = u32::try_from(self.config.engine.max_inflight).unwrap_or(u32::MAX);
        let finished = tokio::time::timeout(grace, async {
            // Every job holds a permit while it runs.
            let _all = self.inflight.acquire_many(permits).await;
            // Every committer has committed what it was given.
            for committer in &self.commands {
                let (reply, rx) = oneshot::channel();
                let barrier = Command {
                    work: Work::Barrier,
                    reply: Reply::Barrier(reply),
                };
                if committer.send(barrier).await.is_ok() {
                    let _ = rx.await;
                }
            }
        })
        .await;
        // (The grace may have been spent on clients' connections already:
        // warn only when jobs were in fact still running.)
        let permits = permits as usize;
        let running = permits - self.inflight.available_permits().min(permits);
        // Jobs that would start now stay with their rows for another node.
        self.inflight.close();
        if finished.is_err() && running > 0 {
            tracing::warn!(
                jobs = running,
                "shutdown: jobs still running after the grace period; their leases are freed"
            );
        }
        match self.store.release_node_leases().await {
            Ok(n) => tracing::info!(jobs = n, "shutdown: freed this node's job leases"),
            Err(e) => tracing::warn!(error = %e, "shutdown: cannot free job leases; they expire"),
        }
        let membership = self
            .membership
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(m) = membership {
            m.leave().await;
        }
        self.close();
    }

    /// Ends the committers: each returns after the batch it has (a
    /// barrier wakes an idle one). A committer holds the engine, and the
    /// engine its queue, so without this an engine that stopped serving
    /// (a dry run's sandbox) would keep its thread, its store and the
    /// store's open files for the life of the process. Later commands fail
    /// with `ShuttingDown`.
    fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        for committer in &self.commands {
            let (reply, _) = oneshot::channel();
            // Full: it has work, and looks at `closed` after that batch.
            let _ = committer.try_send(Command {
                work: Work::Barrier,
                reply: Reply::Barrier(reply),
            });
        }
    }
}
