-- gangway: backward-compatible
-- The operator console (issue 22).
-- `sessions_counts` holds every column the per-version counts read (GROUP BY
-- workflow_id, version, status, outcome), so they come from the index alone.
CREATE INDEX sessions_counts ON sessions (workflow_id, version, status, outcome);
-- The session list's filters: each an equality on an indexed column walked
-- in id order (keyset pages, newest first), as status, workflow and
-- reference already are; the created-time range on its own index.
CREATE INDEX sessions_outcome ON sessions (outcome, id);
CREATE INDEX sessions_created ON sessions (created_at, id);
