//! What the rest of the server (API handlers, provider webhooks, the
//! sandbox, the app's setup) may ask of the engine. The store, config,
//! registry, connectors and streams stay private to the runtime: callers
//! get these narrow methods, grouped by what they serve, so a read cannot
//! grow into a write that bypasses the committer, and what the API depends
//! on is listed in one place.

use super::{Engine, watch, workflows};
use crate::audit::{self, Actor};
use crate::config::Config;
use crate::store::{
    self, ApiKeyMatch, ApiKeyRow, AuditFilter, AuditRow, ClientEvent, Delivery, JobBacklog,
    NewApiKey, NewAudit, OperatorRow, PoolStats, SessionFilter, SessionRow, TimelineEntry,
};
use gangway_core::workflow::Workflow;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Settings.
impl Engine {
    /// The server's configuration, read-only: the app's listeners and
    /// limits, and each provider's section for its webhook verification.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

/// Sessions, read as the API shows them (writes go through `create`,
/// `apply`, `ingest` and `record`).
impl Engine {
    pub async fn session(&self, id: &str) -> store::Result<Option<SessionRow>> {
        self.store.session(id).await
    }

    pub async fn sessions(&self, filter: &SessionFilter) -> store::Result<Vec<SessionRow>> {
        self.store.sessions(filter).await
    }

    /// The session a provider's reference (e.g. its interview id, a
    /// callback token's hash) is correlated to.
    pub async fn session_for_reference(
        &self,
        namespace: &str,
        reference: &str,
    ) -> store::Result<Option<String>> {
        self.store.session_for_reference(namespace, reference).await
    }

    pub async fn timeline(&self, session_id: &str) -> store::Result<Vec<TimelineEntry>> {
        self.store.timeline(session_id).await
    }

    pub async fn deliveries(&self, session_id: &str) -> store::Result<Vec<Delivery>> {
        self.store.deliveries(session_id).await
    }

    /// The client events after `seq` (a stream's backlog on reconnect).
    pub async fn client_events_after(
        &self,
        session_id: &str,
        seq: i64,
    ) -> store::Result<Vec<ClientEvent>> {
        self.store.client_events_after(session_id, seq).await
    }

    /// Opens a sealed provider token (e.g. a chat's 360dialog client id).
    pub fn open_sealed(&self, sealed: &str) -> Result<String, crate::crypto::Error> {
        self.connectors.open_sealed(sealed)
    }
}

/// Live streams and long polls on this node.
impl Engine {
    /// Follows a session's client events, unless `limits.streams_per_session`
    /// streams on this node follow it already.
    pub fn subscribe_client_events(
        &self,
        session_id: &str,
    ) -> Option<broadcast::Receiver<ClientEvent>> {
        self.hub
            .subscribe_at_most(session_id, self.config.limits.streams_per_session)
    }

    /// Woken whenever the session changes (long polls).
    pub fn watch_session(&self, session_id: &str) -> watch::Watcher {
        self.session_watch.watch(session_id)
    }

    /// Turns true on shutdown: open streams end with a reconnect hint.
    pub fn shutdown_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// An operator's stream of session changes (changes.rs); `None` when
    /// `changes::MAX_STREAMS` are open on this node.
    pub fn subscribe_session_changes(&self) -> Option<super::changes::Subscription> {
        self.changes.subscribe()
    }

    /// Number of sessions with at least one live stream (for metrics).
    pub fn open_streams(&self) -> usize {
        self.hub.streams()
    }
}

/// Workflows.
impl Engine {
    pub fn latest_workflow(&self, id: &str) -> Option<Arc<Workflow>> {
        self.workflows.latest(id)
    }

    pub fn workflow(&self, id: &str, version: u32) -> Option<Arc<Workflow>> {
        self.workflows.get(id, version)
    }

    /// `(id, latest version, description, all versions)`.
    pub fn workflow_list(&self) -> Vec<(String, u32, String, Vec<u32>)> {
        self.workflows.list()
    }

    /// One version, as the engine runs it, with its source text: loaded
    /// here, or stored by another node (then loaded from the database).
    /// `None` when no node stored it.
    pub async fn workflow_with_source(
        &self,
        id: &str,
        version: u32,
    ) -> Result<Option<(Arc<Workflow>, String)>, workflows::Error> {
        let Some(source) = self.store.workflow_version(id, version).await? else {
            return Ok(None);
        };
        let wf = self
            .workflows
            .resolve(self.store.as_ref(), id, version)
            .await?;
        Ok(wf.map(|wf| (wf, source)))
    }

    /// Sessions counted by workflow version, status and outcome.
    pub async fn session_counts(
        &self,
        workflow: Option<&str>,
    ) -> store::Result<Vec<store::SessionCount>> {
        self.store.session_counts(workflow).await
    }

    /// Every stored version: `(id, version, source)`.
    pub async fn workflow_versions(&self) -> store::Result<Vec<(String, u32, String)>> {
        self.store.workflow_versions().await
    }

    /// Validates the sources and, unless `dry_run`, stores them as new
    /// versions and tells the other nodes.
    pub async fn deploy_workflows(
        &self,
        sources: &[workflows::Source],
        dry_run: bool,
    ) -> Result<Vec<workflows::Deployed>, workflows::Error> {
        self.workflows
            .deploy(self.store.as_ref(), sources, dry_run)
            .await
    }
}

/// API keys. Revoking and rotating drop the authentication cache, so a
/// changed key takes effect on this node at once.
impl Engine {
    /// Recently authenticated keys, consulted before the database.
    pub fn key_cache(&self) -> &crate::keys::KeyCache {
        &self.keys
    }

    pub async fn api_key_by_hash(
        &self,
        key_hash: &str,
        now: i64,
    ) -> store::Result<Option<ApiKeyMatch>> {
        self.store.api_key_by_hash(key_hash, now).await
    }

    pub async fn api_keys(&self, now: i64) -> store::Result<Vec<ApiKeyRow>> {
        self.store.api_keys(now).await
    }

    pub async fn api_key(&self, id: &str, now: i64) -> store::Result<Option<ApiKeyRow>> {
        self.store.api_key(id, now).await
    }

    /// Stores a key, audited as created by `actor`.
    pub async fn create_api_key(&self, key: &NewApiKey, actor: &Actor) -> store::Result<bool> {
        self.store
            .create_api_key(key, &audit::key_created(actor, key))
            .await
    }

    /// An all-scopes key (the sandbox's and `gangway demo`'s own).
    pub async fn insert_api_key(
        &self,
        id: &str,
        name: &str,
        key_hash: &str,
        at: i64,
    ) -> store::Result<()> {
        self.store.insert_api_key(id, name, key_hash, at).await
    }

    /// `None` for an unknown id.
    /// Audited as revoked by `actor` when it was not revoked before.
    pub async fn revoke_api_key(
        &self,
        id: &str,
        at: i64,
        actor: &Actor,
    ) -> store::Result<Option<ApiKeyRow>> {
        let Some(before) = self.store.api_key(id, at).await? else {
            return Ok(None);
        };
        let audit = audit::key_revoked(actor, &before, at);
        let row = self.store.revoke_api_key(id, at, &audit).await?;
        if row.is_some() {
            self.keys.invalidate();
        }
        Ok(row)
    }

    /// `None` for an unknown or revoked key.
    pub async fn rotate_api_key(
        &self,
        id: &str,
        new_hash: &str,
        at: i64,
        grace_until: i64,
        actor: &Actor,
    ) -> store::Result<Option<ApiKeyRow>> {
        let Some(before) = self.store.api_key(id, at).await? else {
            return Ok(None);
        };
        let audit = audit::key_rotated(actor, &before, at, grace_until);
        let row = self
            .store
            .rotate_api_key(id, new_hash, at, grace_until, &audit)
            .await?;
        if row.is_some() {
            self.keys.invalidate();
        }
        Ok(row)
    }
}

/// The audit log.
impl Engine {
    pub async fn audit_entries(&self, filter: &AuditFilter) -> store::Result<Vec<AuditRow>> {
        self.store.audit_entries(filter).await
    }

    /// Appends entries that no other change carries (a start).
    pub async fn append_audit(&self, entries: &[NewAudit]) -> store::Result<()> {
        self.store.append_audit(entries).await
    }
}

/// Operators and their console sessions (crate::operators holds the policy).
impl Engine {
    pub async fn sign_in(
        &self,
        email: &str,
        password: String,
    ) -> Result<crate::operators::SignedIn, crate::operators::SignInError> {
        crate::operators::sign_in(self.store.as_ref(), &self.config.console, email, password).await
    }

    /// The operator signed in with this console token, and its role.
    pub async fn console_operator(
        &self,
        token: &str,
    ) -> Result<(OperatorRow, crate::operators::Role), crate::operators::SessionEnded> {
        crate::operators::session_operator(self.store.as_ref(), &self.config.console, token).await
    }

    /// Stores `op` (crate::operators::new_operator), or gives the
    /// operator with its email its password (the demo's operators, at each
    /// start).
    pub async fn provision_operator(&self, op: &OperatorRow, actor: &Actor) -> store::Result<()> {
        use crate::operators::audit_entry;
        let at = op.created_at;
        let created = audit_entry(audit::action::OPERATOR_CREATED, actor, op, at);
        if self.store.create_operator(op, &created).await? {
            return Ok(());
        }
        if let Some(existing) = self.store.operator_by_email(&op.email).await? {
            let entry = audit_entry(audit::action::OPERATOR_PASSWORD_SET, actor, &existing, at);
            self.store
                .set_operator_password(&existing.id, &op.password_hash, &entry)
                .await?;
        }
        Ok(())
    }

    /// Ends the console session with this token (sign-out, audited).
    pub async fn sign_out(&self, token: &str, op: &OperatorRow) -> store::Result<bool> {
        let entry = crate::operators::audit_entry(
            audit::action::OPERATOR_SIGNED_OUT,
            &Actor::Operator(op.id.clone()),
            op,
            crate::ids::now_ms(),
        );
        self.store
            .end_console_session(&crate::ids::hash_secret(token), Some(&entry))
            .await
    }
}

/// Health and metrics.
impl Engine {
    /// Succeeds when the database answers (readiness).
    pub async fn ping_store(&self) -> store::Result<()> {
        self.store.ping().await
    }

    pub async fn count_by_status(&self) -> store::Result<Vec<(String, i64)>> {
        self.store.count_by_status().await
    }

    pub async fn job_backlog(&self, now: i64) -> store::Result<Vec<JobBacklog>> {
        self.store.job_backlog(now).await
    }

    pub fn pool_stats(&self) -> PoolStats {
        self.store.pool_stats()
    }
}
