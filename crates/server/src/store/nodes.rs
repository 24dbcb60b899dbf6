//! Which process holds a node id (`engine.node_id`): a row per node with a
//! random token per process and its last heartbeat, so that a second
//! process with the id of a live node is refused instead of freeing that
//! node's leases (runtime/node.rs decides; this is the storage).

use super::Result;
use async_trait::async_trait;

/// The process that holds a node id, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeHolder {
    pub token: String,
    /// Which process: `<boot id>/<pid namespace>/<pid>/<start time>` on
    /// Linux (runtime/node.rs), empty elsewhere.
    pub process: String,
    pub started_at: i64,
    pub heartbeat_at: i64,
}

#[async_trait]
pub trait Nodes {
    /// The process holding `node_id`, if any.
    async fn node_holder(&self, node_id: &str) -> Result<Option<NodeHolder>>;
    /// Takes `node_id` for the process with `token`: when no process holds
    /// it (`previous` is `None`), or when it is still held exactly as
    /// `previous` was read (same token and heartbeat: a compare-and-swap,
    /// so two processes taking over one dead node cannot both win).
    /// False when someone else changed it first.
    async fn claim_node(
        &self,
        node_id: &str,
        token: &str,
        process: &str,
        now: i64,
        previous: Option<&NodeHolder>,
    ) -> Result<bool>;
    /// Renews the heartbeat; false when this process no longer holds the id.
    async fn node_heartbeat(&self, node_id: &str, token: &str, now: i64) -> Result<bool>;
    /// Gives the id up (clean shutdown), if this process still holds it.
    async fn leave_node(&self, node_id: &str, token: &str) -> Result<()>;
}
