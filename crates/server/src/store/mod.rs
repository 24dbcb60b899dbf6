//! Durable storage behind domain verbs. The engine sees only these traits;
//! each backend (SQLite now, PostgreSQL next) has its own module and
//! migrations. A transaction (`Tx`) carries one group commit.

mod sqlite;

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
    #[error("unsupported database URL `{0}`")]
    Unsupported(String),
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

#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    pub status: Option<String>,
    pub workflow: Option<String>,
    pub reference: Option<String>,
    /// Page after this id (ids sort by creation time; newest first).
    pub before: Option<String>,
    pub limit: i64,
}

/// One transaction: reads see its own writes; nothing is visible until commit.
#[async_trait]
pub trait Tx: Send {
    /// The session, locked against concurrent writers until commit.
    async fn lock_session(&mut self, id: &str) -> Result<Option<SessionRow>>;
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
    /// Records the reference and adopts events that arrived before it.
    async fn insert_correlation(
        &mut self,
        namespace: &str,
        reference: &str,
        session_id: &str,
    ) -> Result<()>;
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
    async fn commit(self: Box<Self>) -> Result<()>;
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// True when a transaction runs its statements inline, blocking the
    /// calling thread (embedded SQLite): the committer then gets a thread of
    /// its own. False for network databases driven asynchronously.
    fn inline_transactions(&self) -> bool {
        false
    }

    async fn migrate(&self) -> Result<()>;
    async fn begin(&self) -> Result<Box<dyn Tx>>;

    async fn insert_api_key(&self, id: &str, name: &str, key_hash: &str, at: i64) -> Result<()>;
    async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<String>>;

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

    async fn session(&self, id: &str) -> Result<Option<SessionRow>>;
    async fn sessions(&self, filter: &SessionFilter) -> Result<Vec<SessionRow>>;
    async fn timeline(&self, session_id: &str) -> Result<Vec<TimelineEntry>>;
    async fn client_events_after(&self, session_id: &str, seq: i64) -> Result<Vec<ClientEvent>>;
    async fn deliveries(&self, session_id: &str) -> Result<Vec<Delivery>>;
    async fn count_by_status(&self) -> Result<Vec<(String, i64)>>;

    /// Claims up to `limit` due, unleased jobs until `lease_until`.
    async fn claim_due_jobs(&self, now: i64, limit: i64, lease_until: i64) -> Result<Vec<Job>>;
    /// The earliest due time of any job not leased at `now`.
    async fn next_due(&self, now: i64) -> Result<Option<i64>>;
    /// Frees every lease (single-node backends, at start).
    async fn release_all_leases(&self) -> Result<()>;
    async fn reschedule_job(&self, id: i64, due_at: i64, attempts: i64) -> Result<()>;
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
}

/// Opens the store named by the URL's scheme.
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url).await?))
    } else {
        Err(Error::Unsupported(crate::config::redact_url(url)))
    }
}
