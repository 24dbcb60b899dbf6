-- Gangway schema, PostgreSQL dialect. Times are Unix milliseconds (BIGINT);
-- JSON is TEXT, stored exactly as serialized (key order kept).

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

-- Every workflow version ever loaded: a session runs on the version it started with.
CREATE TABLE workflow_versions (
    workflow_id TEXT NOT NULL,
    version     BIGINT NOT NULL,
    source      TEXT NOT NULL,
    source_hash TEXT NOT NULL,
    loaded_at   BIGINT NOT NULL,
    PRIMARY KEY (workflow_id, version)
);

-- Ids sort byte-wise (COLLATE "C"), as in SQLite: pages go by id.
CREATE TABLE sessions (
    id                 TEXT COLLATE "C" PRIMARY KEY,
    workflow_id        TEXT NOT NULL,
    version            BIGINT NOT NULL,
    status             TEXT NOT NULL,
    outcome            TEXT,
    reason             TEXT,
    reference          TEXT,
    input              TEXT NOT NULL,
    state              TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    ended_at           BIGINT,
    client_secret_hash TEXT NOT NULL,
    client_secret_expires_at BIGINT NOT NULL,
    api_key_id         TEXT NOT NULL,
    idempotency_key    TEXT,
    request_hash       TEXT,
    timeline_seq       BIGINT NOT NULL DEFAULT 0,
    client_seq         BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX sessions_idempotency ON sessions (api_key_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX sessions_status ON sessions (status, id);
CREATE INDEX sessions_workflow ON sessions (workflow_id, id);
CREATE INDEX sessions_reference ON sessions (reference, id);

-- Provider reference -> session, for correlating inbound events.
CREATE TABLE correlations (
    namespace   TEXT NOT NULL,
    reference   TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    PRIMARY KEY (namespace, reference)
);

-- Inbound events, stored before they are acknowledged, deduplicated by
-- (source, event_key); session_id stays NULL while the reference is unknown.
CREATE TABLE inbound_events (
    id          BIGSERIAL PRIMARY KEY,
    source      TEXT NOT NULL,
    event_key   TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    reference   TEXT NOT NULL,
    session_id  TEXT,
    name        TEXT NOT NULL,
    data        TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    consumed_at BIGINT,
    UNIQUE (source, event_key)
);
CREATE INDEX inbound_pending ON inbound_events (session_id, name) WHERE consumed_at IS NULL;
CREATE INDEX inbound_unmatched ON inbound_events (namespace, reference) WHERE session_id IS NULL;

-- The outbox: provider calls, timers, polls and deliveries, committed with the
-- transition that caused them and leased by the node that runs them. A job
-- is ready when both its due time and its lease have passed; `lease_owner`
-- names the node holding the lease so that a restarted node can free its
-- own leases without touching those of live nodes.
CREATE TABLE jobs (
    id          BIGSERIAL PRIMARY KEY,
    session_id  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    due_at      BIGINT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    lease_until BIGINT NOT NULL DEFAULT 0,
    lease_owner TEXT
);
CREATE INDEX jobs_ready ON jobs ((GREATEST(due_at, lease_until)));
CREATE INDEX jobs_session ON jobs (session_id, kind);
CREATE INDEX jobs_owner ON jobs (lease_owner) WHERE lease_owner IS NOT NULL;

CREATE TABLE timeline (
    session_id  TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    step        TEXT,
    data        TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);

-- What the browser's event stream replays after Last-Event-ID.
CREATE TABLE client_events (
    session_id  TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    event       TEXT NOT NULL,
    data        TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);

CREATE TABLE deliveries (
    id          TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL,
    endpoint    TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    payload     TEXT NOT NULL,
    status      TEXT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    next_attempt_at BIGINT,
    delivered_at BIGINT
);
CREATE INDEX deliveries_session ON deliveries (session_id, created_at);

CREATE TABLE delivery_attempts (
    delivery_id TEXT NOT NULL,
    attempt     BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    status_code BIGINT,
    error       TEXT,
    duration_ms BIGINT NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
