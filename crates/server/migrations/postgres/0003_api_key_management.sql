-- API keys can be scoped, expire, be revoked and be rotated. Keys created
-- before this migration keep every scope except `admin` (key management is
-- new, so no existing integration needs it).
ALTER TABLE api_keys ADD COLUMN scopes TEXT NOT NULL DEFAULT 'sessions:read sessions:write secrets:read workflows:read workflows:dry-run';
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;
ALTER TABLE api_keys ADD COLUMN revoked_at BIGINT;
ALTER TABLE api_keys ADD COLUMN rotated_at BIGINT;

-- Secrets that a rotation replaced; each keeps working until its own
-- `expires_at` (the rotation's grace period), unless the key is revoked.
CREATE TABLE api_key_predecessors (
    key_hash    TEXT PRIMARY KEY,
    key_id      TEXT NOT NULL REFERENCES api_keys (id),
    expires_at  BIGINT NOT NULL
);
CREATE INDEX api_key_predecessors_key ON api_key_predecessors (key_id);
