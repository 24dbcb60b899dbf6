-- gangway: backward-compatible
-- Operators: people who use the console (not API keys). `email` is stored
-- lowercased and unique; `password_hash` is an Argon2id PHC string, never a
-- password. `failed_logins` counts consecutive failed sign-ins; past a few,
-- `locked_until` (Unix ms) refuses sign-ins with a growing backoff. A
-- disabled operator keeps the row (the audit log names it) and signs in no
-- more.
CREATE TABLE operators (
    id             TEXT PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,
    role           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    disabled_at    BIGINT,
    failed_logins  BIGINT NOT NULL DEFAULT 0,
    locked_until   BIGINT NOT NULL DEFAULT 0,
    last_login_at  BIGINT
);
-- Console sessions: one per sign-in, found by the SHA-256 of the cookie's
-- token (the token itself is never stored). A session ends at sign-out, at
-- `expires_at` (its lifetime) or when unused for the idle timeout since
-- `last_seen_at`, which is refreshed at most once a minute.
CREATE TABLE console_sessions (
    token_hash    TEXT PRIMARY KEY,
    operator_id   TEXT NOT NULL REFERENCES operators (id),
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX console_sessions_by_operator ON console_sessions (operator_id);
