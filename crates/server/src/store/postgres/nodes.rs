//! Node ids on PostgreSQL (store/nodes.rs).

use super::super::Result;
use super::super::nodes::{NodeHolder, Nodes};
use super::PgStore;
use async_trait::async_trait;

#[async_trait]
impl Nodes for PgStore {
    async fn node_holder(&self, node_id: &str) -> Result<Option<NodeHolder>> {
        let row: Option<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT token, process, started_at, heartbeat_at FROM nodes WHERE node_id = $1",
        )
        .bind(node_id)
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        Ok(
            row.map(|(token, process, started_at, heartbeat_at)| NodeHolder {
                token,
                process,
                started_at,
                heartbeat_at,
            }),
        )
    }

    async fn claim_node(
        &self,
        node_id: &str,
        token: &str,
        process: &str,
        now: i64,
        previous: Option<&NodeHolder>,
    ) -> Result<bool> {
        let done =
            match previous {
                None => {
                    sqlx::query(
                        "INSERT INTO nodes (node_id, token, process, started_at, heartbeat_at)
                 VALUES ($1, $2, $3, $4, $4) ON CONFLICT (node_id) DO NOTHING",
                    )
                    .bind(node_id)
                    .bind(token)
                    .bind(process)
                    .bind(now)
                    .execute(&mut *self.conn().await?)
                    .await?
                }
                Some(p) => sqlx::query(
                    "UPDATE nodes SET token = $2, process = $3, started_at = $4, heartbeat_at = $4
                 WHERE node_id = $1 AND token = $5 AND heartbeat_at = $6",
                )
                .bind(node_id)
                .bind(token)
                .bind(process)
                .bind(now)
                .bind(&p.token)
                .bind(p.heartbeat_at)
                .execute(&mut *self.conn().await?)
                .await?,
            };
        Ok(done.rows_affected() == 1)
    }

    async fn node_heartbeat(&self, node_id: &str, token: &str, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE nodes SET heartbeat_at = GREATEST(heartbeat_at + 1, $3) WHERE node_id = $1 AND token = $2",
        )
        .bind(node_id)
        .bind(token)
        .bind(now)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn leave_node(&self, node_id: &str, token: &str) -> Result<()> {
        sqlx::query("DELETE FROM nodes WHERE node_id = $1 AND token = $2")
            .bind(node_id)
            .bind(token)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }
}
