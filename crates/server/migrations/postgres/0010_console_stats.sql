-- gangway: backward-compatible
-- The console's dashboard (issue 22), computed by the server from clear
-- columns: session state is sealed, so SQL cannot read a session's steps
-- out of it. The committer writes these in the transaction of the change.
--
-- One row per step visit: when a session entered a step, when it left it and
-- where to (`exit_to`: the next step, or `outcome:<outcome>` when the session
-- ended there). `first_visit` is 1 for a session's first visit of that step
-- (0 when it came back to it), so the funnel counts sessions without a
-- DISTINCT. A visit entered before this table existed has no `entered_at`.
-- Holds no personal data: ids, step names and times.
CREATE TABLE session_steps (
    session_id  TEXT NOT NULL,
    visit       BIGINT NOT NULL,
    workflow_id TEXT NOT NULL,
    version     BIGINT NOT NULL,
    step        TEXT NOT NULL,
    entered_at  BIGINT,
    left_at     BIGINT,
    exit_to     TEXT,
    first_visit BIGINT NOT NULL DEFAULT 1,
    PRIMARY KEY (session_id, visit)
);
-- The funnel of a workflow over a period reads only its visits of the
-- period, from this index alone (it holds every column the funnel reads).
CREATE INDEX session_steps_funnel ON session_steps
    (workflow_id, entered_at, step, exit_to, left_at, first_visit);

-- Provider calls and polls per connector and minute, counted at commit:
-- calls, failed ones, and their total and longest duration. `shard`
-- spreads one minute's counts over several rows (on PostgreSQL, by the
-- connection's backend: concurrent committers would otherwise queue on the
-- row lock of one hot row until they commit); reads sum the shards.
CREATE TABLE provider_stats (
    minute      BIGINT NOT NULL,
    connector   TEXT NOT NULL,
    shard       INTEGER NOT NULL DEFAULT 0,
    calls       BIGINT NOT NULL,
    errors      BIGINT NOT NULL,
    total_ms    BIGINT NOT NULL,
    max_ms      BIGINT NOT NULL,
    PRIMARY KEY (minute, connector, shard)
);

-- Outcomes over time: sessions that ended in a period, per workflow or all.
CREATE INDEX sessions_ended ON sessions (ended_at) WHERE ended_at IS NOT NULL;
CREATE INDEX sessions_ended_by_workflow ON sessions (workflow_id, ended_at) WHERE ended_at IS NOT NULL;
