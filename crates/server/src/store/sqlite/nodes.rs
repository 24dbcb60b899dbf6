//! Node ids on SQLite (store/nodes.rs): two processes opening one file
//! with the same node id are refused as on PostgreSQL.

use super::super::Result;
use super::super::nodes::{NodeHolder, Nodes};
use super::SqliteStore;
use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

#[async_trait]
impl Nodes for SqliteStore {
    async fn node_holder(&self, node_id: &str) -> Result<Option<NodeHolder>> {
        let node_id = node_id.to_owned();
        self.run(move |c| {
            Ok(c.prepare_cached(
                "SELECT token, process, started_at, heartbeat_at FROM nodes WHERE node_id = ?",
            )?
            .query_row([node_id], |r| {
                Ok(NodeHolder {
                    token: r.get(0)?,
                    process: r.get(1)?,
                    started_at: r.get(2)?,
                    heartbeat_at: r.get(3)?,
                })
            })
            .optional()?)
        })
        .await
    }

    async fn claim_node(
        &self,
        node_id: &str,
        token: &str,
        process: &str,
        now: i64,
        previous: Option<&NodeHolder>,
    ) -> Result<bool> {
        let (node_id, token, process) = (node_id.to_owned(), token.to_owned(), process.to_owned());
        let previous = previous.cloned();
        self.run(move |c| {
            let n = match previous {
                None => c
                    .prepare_cached(
                        "INSERT INTO nodes (node_id, token, process, started_at, heartbeat_at)
                         VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (node_id) DO NOTHING",
                    )?
                    .execute(params![node_id, token, process, now])?,
                Some(p) => c
                    .prepare_cached(
                        "UPDATE nodes SET token = ?2, process = ?3, started_at = ?4, heartbeat_at = ?4
                         WHERE node_id = ?1 AND token = ?5 AND heartbeat_at = ?6",
                    )?
                    .execute(params![node_id, token, process, now, p.token, p.heartbeat_at])?,
            };
            Ok(n == 1)
        })
        .await
    }

    async fn node_heartbeat(&self, node_id: &str, token: &str, now: i64) -> Result<bool> {
        let (node_id, token) = (node_id.to_owned(), token.to_owned());
        self.run(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE nodes SET heartbeat_at = MAX(heartbeat_at + 1, ?3) WHERE node_id = ?1 AND token = ?2",
                )?
                .execute(params![node_id, token, now])?;
            Ok(n == 1)
        })
        .await
    }

    async fn leave_node(&self, node_id: &str, token: &str) -> Result<()> {
        let (node_id, token) = (node_id.to_owned(), token.to_owned());
        self.run(move |c| {
            c.prepare_cached("DELETE FROM nodes WHERE node_id = ? AND token = ?")?
                .execute([node_id, token])?;
            Ok(())
        })
        .await
    }
}
