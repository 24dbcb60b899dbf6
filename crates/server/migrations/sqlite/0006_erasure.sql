-- gangway: backward-compatible
-- Retention and erasure (issue 20). `retain_ms` is how long a session's
-- personal data is kept after it ends, fixed when it is created (its
-- workflow's `retention`, else `retention.default`); `erased_at` is when it
-- was erased, leaving a tombstone. An older release ignores both columns.
ALTER TABLE sessions ADD COLUMN retain_ms INTEGER;
ALTER TABLE sessions ADD COLUMN erased_at INTEGER;
-- The retention sweep's next sessions, without scanning kept tombstones.
CREATE INDEX sessions_erase_due ON sessions ((ended_at + retain_ms))
    WHERE erased_at IS NULL AND ended_at IS NOT NULL AND retain_ms IS NOT NULL;
