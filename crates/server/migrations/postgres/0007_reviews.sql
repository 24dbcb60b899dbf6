-- gangway: backward-compatible
-- The review queue: one row per session waiting in a `review` step, written
-- by the committer when the step is entered and deleted when the review
-- ends (decided, timed out, canceled). `facts` is what the workflow hands
-- the reviewer (JSON text). A claim (`claimed_by`, a reviewer's id such as
-- `api_key:key_...`, until `claim_until`) is taken with one conditional
-- UPDATE, so two reviewers cannot both hold it; it lapses by itself.
-- Listing is oldest first with keyset pagination on (since_ms, session_id),
-- filtered by workflow or group through an index each; no OFFSET.
-- No foreign key to `sessions`: a session and its review are written in the
-- same transaction, the session row at commit (PostgreSQL).
CREATE TABLE reviews (
    session_id   TEXT PRIMARY KEY,
    workflow_id  TEXT NOT NULL,
    version      BIGINT NOT NULL,
    reference    TEXT,
    step         TEXT NOT NULL,
    grp          TEXT,
    facts        TEXT NOT NULL,
    since_ms     BIGINT NOT NULL,
    deadline_ms  BIGINT NOT NULL,
    claimed_by   TEXT,
    claim_until  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX reviews_oldest ON reviews (since_ms, session_id);
CREATE INDEX reviews_by_workflow ON reviews (workflow_id, since_ms, session_id);
CREATE INDEX reviews_by_group ON reviews (grp, since_ms, session_id);
