//! Durable storage behind domain verbs. The engine sees only these traits;
//! each backend (SQLite for one node, PostgreSQL for one or several nodes)
//! has its own module and migrations. A transaction (`Tx`) carries one group
//! commit.

mod audit;
mod erase;
mod keys;
mod migrate;
mod nodes;
mod observe;
mod operators;
mod postgres;
pub mod reseal;
mod reviews;
pub mod schema;
mod seal;
mod sql;
mod sqlite;

pub use audit::{AuditFilter, AuditLog, AuditRow, NewAudit};
pub use keys::{ApiKeyMatch, ApiKeyRow, ApiKeys, NewApiKey};
pub use nodes::{NodeHolder, Nodes};
pub use observe::{JobBacklog, Observe, PoolStats};
pub use operators::{ConsoleSessionRow, Lockout, OperatorRow, Operators};
pub use postgres::PgStore;
pub use reviews::{ReviewFilter, ReviewRow, Reviews};
pub use schema::Migrated;
pub use seal::Seal;
pub use sqlite::SqliteStore;

use async_trait::async_trait;
use gangway_core::engine::SessionState;
use serde_json::Value;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database has a migration this build does not know, and it is not
    /// declared backward-compatible.
    #[error(
        "the database schema is at version {database}, newer than this build knows (version {known}); \
         migration(s) {incompatible} of a newer release are not declared backward-compatible. \
         Run the release that migrated the database (or a newer one), or restore the database \
         from before that upgrade (docs/deploy.md, \"Upgrades and rollback\")"
    )]
    SchemaTooNew {
        database: i64,
        known: i64,
        incompatible: String,
    },
    /// A session's workflow version cannot be loaded.
    #[error("workflow: {0}")]
    Workflow(String),
    #[error("unsupported database URL `{0}`")]
    Unsupported(String),
    /// The first connection failed: what went wrong, in one sentence.
    #[error("{0}")]
    Connect(String),
}

impl Error {
    /// True for a conflict with a concurrent transaction (a deadlock or a
    /// serialization failure between nodes) that a fresh attempt may not meet.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Db(sqlx::Error::Database(e)) => {
                matches!(e.code().as_deref(), Some("40P01" | "40001"))
            }
            _ => false,
        }
    }

    /// True when the database cannot be reached (down, restarting, no free
    /// connection in time): every statement fails alike for now.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Db(
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::WorkerCrashed,
            ) => true,
            Error::Db(sqlx::Error::Database(e)) => e
                .code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
            _ => false,
        }
    }
}

/// Cluster signals that other nodes sent through the database (PostgreSQL
/// `LISTEN/NOTIFY`); a node's own signals are not echoed back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// A job that no node holds becomes due at this time (Unix ms).
    JobsDue(i64),
    /// Client events were committed: `(session_id, seq)`.
    ClientEvents(Vec<(String, i64)>),
    /// Sessions were created or updated (their ids): operators' change
    /// streams read them again.
    SessionsChanged(Vec<String>),
    /// An API key was revoked or rotated (its id): drop it from caches.
    KeyChanged(String),
    /// Workflow versions were deployed: load them, start new sessions on
    /// the latest.
    WorkflowsDeployed,
    /// The channel was interrupted: signals may have been missed.
    Lost,
}

/// How this process uses the store.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Names this node on the job leases it takes.
    pub node_id: String,
    /// True when `node_id` is the same after a restart of this node, so that
    /// a restart may free the leases its previous run left behind.
    pub stable_node_id: bool,
    /// Most connections open at once (network databases).
    pub pool_size: u32,
    /// How long a caller waits for a connection before failing.
    pub acquire_timeout: std::time::Duration,
    /// The keys personal data is sealed under; none leaves it clear.
    pub seal: Seal,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            node_id: crate::ids::new_id("node"),
            stable_node_id: false,
            pool_size: 10,
            acquire_timeout: std::time::Duration::from_secs(3),
            seal: Seal::default(),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// A session as stored.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: String,
    pub workflow_id: String,
    pub version: u32,
    pub reference: Option<String>,
    pub input: Value,
    pub state: SessionState,
    pub created_at: i64,
    pub updated_at: i64,
    pub client_secret_hash: String,
    pub client_secret_expires_at: i64,
    pub api_key_id: String,
    pub idempotency_key: Option<String>,
    pub request_hash: Option<String>,
    pub timeline_seq: i64,
    pub client_seq: i64,
    /// How long its personal data is kept once it ended (ms), fixed at
    /// creation; `None` for sessions stored before retention existed, which
    /// the retention sweep leaves alone.
    pub retain_ms: Option<i64>,
    /// When its personal data was erased: what is left is a tombstone.
    pub erased_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct TimelineEntry {
    pub seq: i64,
    pub at: i64,
    pub kind: String,
    pub step: Option<String>,
    pub data: Value,
}

#[derive(Debug, Clone)]
pub struct ClientEvent {
    pub seq: i64,
    pub at: i64,
    pub event: String,
    pub data: Value,
}

#[derive(Debug, Clone)]
pub struct NewJob {
    pub session_id: String,
    pub kind: JobKind,
    pub payload: Value,
    pub due_at: i64,
    /// Claimed by this node until then (0: free for the scheduler).
    pub lease_until: i64,
}

/// When the scheduler has work next: polls are paced, other jobs are not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NextDue {
    pub polls: Option<i64>,
    pub other: Option<i64>,
}

impl NextDue {
    /// The earlier of the two.
    pub fn earliest(self) -> Option<i64> {
        match (self.polls, self.other) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Call,
    Timer,
    Poll,
    Deliver,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Call => "call",
            JobKind::Timer => "timer",
            JobKind::Poll => "poll",
            JobKind::Deliver => "deliver",
        }
    }
    pub fn parse(s: &str) -> Option<JobKind> {
        Some(match s {
            "call" => JobKind::Call,
            "timer" => JobKind::Timer,
            "poll" => JobKind::Poll,
            "deliver" => JobKind::Deliver,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub session_id: String,
    pub kind: JobKind,
    pub payload: Value,
    pub due_at: i64,
    pub attempts: i64,
}

#[derive(Debug, Clone)]
pub struct NewEvent {
    pub source: String,
    pub event_key: String,
    pub namespace: String,
    pub reference: String,
    pub name: String,
    pub data: Value,
    pub received_at: i64,
}

#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: i64,
    pub name: String,
    pub source: String,
    pub data: Value,
}

#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub id: String,
    pub session_id: String,
    pub endpoint: String,
    pub event_type: String,
    pub payload: Value,
    pub created_at: i64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct DeliveryAttempt {
    pub attempt: i64,
    pub at: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Delivery {
    pub id: String,
    pub session_id: String,
    pub endpoint: String,
    pub event_type: String,
    pub status: String,
    pub attempts: i64,
    pub created_at: i64,
    pub next_attempt_at: Option<i64>,
    pub delivered_at: Option<i64>,
    pub attempt_log: Vec<DeliveryAttempt>,
}

/// How many sessions of one workflow version are in one status (and, when
/// ended, with one outcome).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCount {
    pub workflow: String,
    pub version: u32,
    pub status: String,
    pub outcome: Option<String>,
    pub count: i64,
}

#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    pub status: Option<String>,
    pub workflow: Option<String>,
    pub reference: Option<String>,
    pub outcome: Option<String>,
    /// Created at or after (Unix ms).
    pub created_since: Option<i64>,
    /// Created before (Unix ms).
    pub created_until: Option<i64>,
    /// Page after this id (ids sort by creation time; newest first).
    pub before: Option<String>,
    pub limit: i64,
}

/// One transaction: reads see its own writes; nothing is visible until commit.
#[async_trait]
pub trait Tx: Send {
    /// The session, locked against concurrent writers until commit.
    async fn lock_session(&mut self, id: &str) -> Result<Option<SessionRow>>;
    /// Locks these sessions up front, in one global order, so that two
    /// nodes' batches touching the same sessions cannot deadlock. A no-op
    /// where one writer holds the whole database.
    async fn lock_sessions(&mut self, _ids: &[&str]) -> Result<()> {
        Ok(())
    }
    async fn insert_session(&mut self, row: &SessionRow) -> Result<()>;
    async fn update_session(&mut self, row: &SessionRow) -> Result<()>;
    async fn set_client_secret(&mut self, id: &str, hash: &str, expires_at: i64) -> Result<()>;
    /// `(session_id, request_hash)` of an earlier create with this key.
    async fn find_idempotent(
        &mut self,
        api_key_id: &str,
        key: &str,
    ) -> Result<Option<(String, Option<String>)>>;
    /// Timeline entries of many sessions, written together.
    async fn insert_timeline(&mut self, entries: &[(String, TimelineEntry)]) -> Result<()>;
    /// Audit entries of the batch's commands, written with it.
    async fn insert_audit(&mut self, entries: &[NewAudit]) -> Result<()>;
    /// Client events of many sessions, written together.
    async fn insert_client_events(&mut self, events: &[(String, ClientEvent)]) -> Result<()>;
    async fn insert_job(&mut self, job: &NewJob) -> Result<i64>;
    async fn delete_job(&mut self, id: i64) -> Result<()>;
    /// Drops a session's jobs of these kinds (a wait's timer and poll).
    async fn delete_session_jobs(&mut self, session_id: &str, kinds: &[JobKind]) -> Result<()>;
    /// Stores an inbound event; `None` when `(source, event_key)` was seen before.
    async fn insert_event(
        &mut self,
        ev: &NewEvent,
        session_id: Option<&str>,
    ) -> Result<Option<i64>>;
    async fn correlation(&mut self, namespace: &str, reference: &str) -> Result<Option<String>>;
    /// The sessions of these `(namespace, reference)`, for those that are
    /// correlated. Network databases answer in one round trip.
    async fn correlations(
        &mut self,
        refs: &[(&str, &str)],
    ) -> Result<std::collections::HashMap<(String, String), String>> {
        let mut found = std::collections::HashMap::new();
        for &(namespace, reference) in refs {
            if let Some(sid) = self.correlation(namespace, reference).await? {
                found.insert((namespace.to_string(), reference.to_string()), sid);
            }
        }
        Ok(found)
    }
    /// Records the reference and adopts events that arrived before it.
    async fn insert_correlation(
        &mut self,
        namespace: &str,
        reference: &str,
        session_id: &str,
    ) -> Result<()>;
    /// Gives the events stored for a reference before it was correlated to
    /// their session; returns how many. `insert_correlation` does this too,
    /// but on a database shared by several writers an event may commit just
    /// after it looked: both sides call this again once they committed.
    /// Backends with one writer never leave such events (the default).
    async fn adopt_events(
        &mut self,
        _namespace: &str,
        _reference: &str,
        _session_id: &str,
    ) -> Result<u64> {
        Ok(0)
    }
    /// `adopt_events` for several `(namespace, reference, session_id)` at
    /// once (the adoption checks of one batch): how many events each
    /// reference gave. Network databases answer in one round trip.
    async fn adopt_events_many(
        &mut self,
        refs: &[(&str, &str, &str)],
    ) -> Result<std::collections::HashMap<(String, String), u64>> {
        let mut adopted = std::collections::HashMap::new();
        for &(namespace, reference, session_id) in refs {
            let n = self.adopt_events(namespace, reference, session_id).await?;
            *adopted
                .entry((namespace.to_string(), reference.to_string()))
                .or_default() += n;
        }
        Ok(adopted)
    }
    /// Unconsumed events of the session with one of these names, oldest first.
    async fn pending_events(&mut self, session_id: &str, names: &[String])
    -> Result<Vec<EventRow>>;
    async fn consume_event(&mut self, id: i64, at: i64) -> Result<()>;
    /// Marks every other unconsumed event of that name consumed: the first one won.
    async fn consume_events_named(&mut self, session_id: &str, name: &str, at: i64) -> Result<()>;
    async fn insert_delivery(&mut self, d: &NewDelivery) -> Result<()>;
    /// Records one delivery attempt and the delivery's new status.
    async fn record_delivery_attempt(
        &mut self,
        id: &str,
        attempt: &DeliveryAttempt,
        status: &str,
        next_attempt_at: Option<i64>,
    ) -> Result<()>;
    /// Moves a job to a later time and frees its lease.
    async fn reschedule_job(&mut self, id: i64, due_at: i64, attempts: i64) -> Result<()>;
    /// Erases what the session holds outside its `state` (written by the
    /// next `update_session`): its input, the payloads of its timeline,
    /// client events and inbound events; its deliveries' `data` becomes
    /// `view` (the tombstone); its pending timers, polls and calls go
    /// (releases and child cancels stay) and its delivery jobs lose the
    /// body they carry. Rows are rewritten in place (runtime/erasure.rs).
    async fn erase_session(&mut self, id: &str, at: i64, view: &Value) -> Result<()>;
    /// Puts a session in the review queue (again: a new review, unclaimed).
    async fn open_review(&mut self, review: &ReviewRow) -> Result<()>;
    /// Takes a session out of the review queue.
    async fn close_review(&mut self, session_id: &str) -> Result<()>;
    /// The session's review, locked against claims until commit.
    async fn lock_review(&mut self, session_id: &str) -> Result<Option<ReviewRow>>;
    async fn commit(self: Box<Self>) -> Result<()>;
}

#[async_trait]
pub trait Store:
    ApiKeys + AuditLog + Nodes + Observe + Operators + Reviews + Send + Sync + 'static
{
    /// True when a transaction runs its statements inline, blocking the
    /// calling thread (embedded SQLite): the committer then gets a thread of
    /// its own. False for network databases driven asynchronously.
    fn inline_transactions(&self) -> bool {
        false
    }

    /// True when several writers (committers of several nodes) may share
    /// the database, so that what one transaction looked up may change
    /// before it commits.
    fn is_shared(&self) -> bool {
        false
    }

    /// `(namespace, reference)` of stored events whose reference is
    /// correlated but which were never given to their session (a writer
    /// died between its commit and its adoption check).
    async fn unadopted_references(&self) -> Result<Vec<(String, String)>> {
        Ok(Vec::new())
    }

    /// Of these `(namespace, reference)`, the ones that are correlated and
    /// still have events stored without a session, with that session:
    /// `(namespace, reference, session_id)`. Read outside a transaction, so
    /// that the adoption checks after a commit cost one statement, not a
    /// transaction each.
    async fn unadopted_among(
        &self,
        _refs: &[(String, String)],
    ) -> Result<Vec<(String, String, String)>> {
        Ok(Vec::new())
    }

    /// Applies the migrations the database lacks; refuses a database that
    /// a newer release migrated, unless its newer migrations are all
    /// backward-compatible (store/schema.rs).
    async fn migrate(&self) -> Result<Migrated>;
    /// Migrations this build knows that the database lacks (all of them
    /// for an empty database).
    async fn pending_migrations(&self) -> Result<Vec<i64>>;
    async fn begin(&self) -> Result<Box<dyn Tx>>;

    /// Stores a key with the default scopes and no expiry (the demo's and
    /// the sandbox's own keys); a secret stored before is left as it is.
    async fn insert_api_key(&self, id: &str, name: &str, key_hash: &str, at: i64) -> Result<()> {
        let scopes: Vec<String> = crate::keys::Scope::DEFAULT
            .iter()
            .map(|s| s.as_str().to_string())
            .collect();
        let key = NewApiKey {
            id: id.to_string(),
            name: name.to_string(),
            key_hash: key_hash.to_string(),
            scopes,
            created_at: at,
            expires_at: None,
        };
        let audit = crate::audit::key_created(&crate::audit::Actor::System, &key);
        self.create_api_key(&key, &audit).await.map(|_| ())
    }

    /// Stores a workflow version; returns the stored hash if it already existed.
    async fn upsert_workflow_version(
        &self,
        id: &str,
        version: u32,
        source: &str,
        hash: &str,
        at: i64,
    ) -> Result<Option<String>>;
    /// Every stored workflow version `(id, version, source)`.
    async fn workflow_versions(&self) -> Result<Vec<(String, u32, String)>>;
    /// Tells the other nodes on this database that workflow versions were
    /// deployed (`Signal::WorkflowsDeployed`). One node alone: nothing to do.
    async fn announce_workflows(&self) -> Result<()> {
        Ok(())
    }
    /// The source of one stored workflow version (a node that did not load
    /// it at start runs a session that another node started on it).
    async fn workflow_version(&self, id: &str, version: u32) -> Result<Option<String>>;

    async fn session(&self, id: &str) -> Result<Option<SessionRow>>;
    async fn sessions(&self, filter: &SessionFilter) -> Result<Vec<SessionRow>>;
    async fn timeline(&self, session_id: &str) -> Result<Vec<TimelineEntry>>;
    async fn client_events_after(&self, session_id: &str, seq: i64) -> Result<Vec<ClientEvent>>;
    async fn deliveries(&self, session_id: &str) -> Result<Vec<Delivery>>;
    async fn count_by_status(&self) -> Result<Vec<(String, i64)>>;
    /// Sessions counted by workflow version, status and outcome; of one
    /// workflow, or of all. One GROUP BY over the covering index
    /// `sessions_counts`, never a table scan.
    async fn session_counts(&self, workflow: Option<&str>) -> Result<Vec<SessionCount>>;
    /// Succeeds when the database answers (readiness checks).
    async fn ping(&self) -> Result<()> {
        self.count_by_status().await.map(|_| ())
    }

    /// Claims, oldest first, up to `limit` due, unleased jobs other than
    /// polls and up to `poll_limit` due polls, until `lease_until`. Two
    /// nodes never claim the same job while its lease runs.
    async fn claim_due_jobs(
        &self,
        now: i64,
        limit: i64,
        poll_limit: i64,
        lease_until: i64,
    ) -> Result<Vec<Job>>;
    /// When the next poll and the next other job are ready (due and not
    /// leased), never before `now`.
    async fn next_due(&self, now: i64) -> Result<NextDue>;
    /// Frees the leases this node holds, at start (left by a crashed run)
    /// and at shutdown, so that they run again at once. A single-node
    /// backend frees every lease; a shared one only this node's, and at
    /// start only when the node's id is stable across restarts. Leases of
    /// other nodes are never touched: they expire.
    async fn release_node_leases(&self) -> Result<u64>;
    /// At start: frees the leases a crashed earlier run of this node left.
    async fn release_leases_at_start(&self) -> Result<u64> {
        self.release_node_leases().await
    }
    /// Signals from other nodes sharing the database; `None` when the
    /// backend serves a single node. Call once.
    async fn signals(&self) -> Result<Option<tokio::sync::mpsc::UnboundedReceiver<Signal>>> {
        Ok(None)
    }
    async fn reschedule_job(&self, id: i64, due_at: i64, attempts: i64) -> Result<()>;
    /// Keeps a running job's lease until at least `lease_until`, if this
    /// node still holds it; false when it does not (or the job is gone).
    async fn extend_lease(&self, id: i64, lease_until: i64) -> Result<bool>;
    /// Moves a session's unleased jobs of `kind` due later than `due_at` to
    /// `due_at`; returns how many moved.
    async fn expedite_jobs(&self, session_id: &str, kind: JobKind, due_at: i64) -> Result<u64>;
    /// The session a provider reference belongs to, outside a transaction.
    async fn session_for_reference(
        &self,
        namespace: &str,
        reference: &str,
    ) -> Result<Option<String>>;
    async fn finish_job(&self, id: i64) -> Result<()>;

    async fn delivery_payload(&self, id: &str) -> Result<Option<(String, String, Value, i64)>>;
    /// Re-seals one batch of a table's sealed values under the active key
    /// (store/reseal.rs), from after `after` in key order.
    async fn reseal_batch(
        &self,
        table: &'static reseal::SealedTable,
        after: Option<Vec<reseal::KeyPart>>,
        limit: u32,
    ) -> Result<reseal::Resealed>;

    /// Up to `limit` ended sessions whose retention ran out by `now` and
    /// that are not erased yet, soonest due first.
    async fn erasures_due(&self, now: i64, limit: i64) -> Result<Vec<String>>;
    /// How many sessions `erasures_due` would give without a limit.
    async fn erasure_backlog(&self, now: i64) -> Result<i64>;
    /// After erasures: makes what they overwrote leave the database's files
    /// where the backend can (SQLite: a truncating WAL checkpoint; freed
    /// pages are zeroed by `secure_delete`). PostgreSQL: nothing here, see
    /// docs/deploy.md on vacuum.
    async fn reclaim_erased(&self) -> Result<()> {
        Ok(())
    }
}

/// The file of a `sqlite:` URL; `None` for other databases.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    url.starts_with("sqlite:")
        .then(|| sqlite::path_of_url(url).ok())
        .flatten()
}

/// Opens the store named by the URL's scheme, for a one-off command.
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    open_with(url, &OpenOptions::default()).await
}

/// Opens the store named by the URL's scheme.
pub async fn open_with(url: &str, options: &OpenOptions) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(
            SqliteStore::open(url).await?.sealed(options.seal.clone()),
        ))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(PgStore::open(url, options).await?))
    } else {
        Err(Error::Unsupported(crate::config::redact_url(url)))
    }
}
