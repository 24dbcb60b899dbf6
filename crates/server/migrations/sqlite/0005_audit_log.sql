-- gangway: backward-compatible
-- The audit log: security-relevant actions (API keys created, revoked and
-- rotated; secrets read; sessions created, canceled and erased; starts with
-- a risky configuration), each with who did it. Append-only: the triggers
-- refuse any change or removal, so neither a bug nor session retention can
-- rewrite it. It holds no personal data beyond ids.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    action      TEXT NOT NULL,
    actor       TEXT NOT NULL,
    session_id  TEXT,
    target      TEXT,
    data        TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_session ON audit_log (session_id, id) WHERE session_id IS NOT NULL;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
