//! Re-sealing on PostgreSQL: one batch in one transaction. A committer
//! that changed a row meanwhile holds its lock; the compare-and-set waits
//! for it, sees the new value and leaves it (it is under the active key).

use super::super::reseal::{KeyPart, Resealed, SealedTable, resealed};
use super::super::{Result, seal::Seal};
use super::PgStore;
use sqlx::Row;

fn bind<'q>(
    q: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    k: &KeyPart,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    match k {
        KeyPart::Text(t) => q.bind(t.clone()),
        KeyPart::Int(i) => q.bind(*i),
    }
}

pub(super) async fn batch(
    store: &PgStore,
    seal: &Seal,
    table: &SealedTable,
    after: Option<Vec<KeyPart>>,
    limit: u32,
) -> Result<Resealed> {
    let mut tx = store.begin_tx().await?;
    let sql = table.select(after.is_some());
    let mut q = sqlx::query(&sql);
    for k in after.iter().flatten() {
        q = bind(q, k);
    }
    let found = q.bind(i64::from(limit)).fetch_all(&mut *tx).await?;
    let n = table.key.len();
    let mut done = Resealed {
        rows: found.len() as u64,
        ..Resealed::default()
    };
    let mut last = None;
    for r in &found {
        let mut key = Vec::with_capacity(n);
        for (i, (_, int)) in table.key.iter().enumerate() {
            key.push(if *int {
                KeyPart::Int(r.try_get(i)?)
            } else {
                KeyPart::Text(r.try_get(i)?)
            });
        }
        for (j, column) in table.columns.iter().enumerate() {
            let stored: Option<String> = r.try_get(n + j)?;
            let Some(stored) = stored else { continue };
            let Some(new) = resealed(seal, &stored, column)? else {
                continue;
            };
            let update = table.update(column);
            let mut q = sqlx::query(&update).bind(new).bind(stored);
            for k in &key {
                q = bind(q, k);
            }
            if q.execute(&mut *tx).await?.rows_affected() == 1 {
                done.values += 1;
            } else {
                done.raced += 1;
            }
        }
        last = Some(key);
    }
    tx.commit().await?;
    if found.len() as u64 == u64::from(limit) {
        done.next = last;
    }
    Ok(done)
}
