-- gangway: backward-compatible
-- Which process holds each `engine.node_id`: a random token per process
-- and its last heartbeat. A process that starts with the id of a node whose
-- heartbeat still advances refuses to start; a crashed node's id is taken
-- over once its heartbeat has stopped, or at once when `process` names a
-- process on the same machine that no longer runs (runtime/node.rs).
CREATE TABLE nodes (
    node_id      TEXT PRIMARY KEY,
    token        TEXT NOT NULL,
    process      TEXT NOT NULL,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);
