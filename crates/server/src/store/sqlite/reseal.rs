//! Re-sealing on SQLite: one batch in one immediate transaction, short
//! enough that the server's commits wait at most a few milliseconds.

use super::super::reseal::{KeyPart, Resealed, SealedTable, resealed};
use super::super::{Result, seal::Seal};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params_from_iter};

fn sql_value(k: &KeyPart) -> SqlValue {
    match k {
        KeyPart::Text(t) => SqlValue::Text(t.clone()),
        KeyPart::Int(i) => SqlValue::Integer(*i),
    }
}

pub(super) fn batch(
    c: &mut Connection,
    seal: &Seal,
    table: &SealedTable,
    after: Option<Vec<KeyPart>>,
    limit: u32,
) -> Result<Resealed> {
    let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut args: Vec<SqlValue> = after.iter().flatten().map(sql_value).collect();
    args.push(SqlValue::Integer(i64::from(limit)));
    let n = table.key.len();
    let mut rows: Vec<(Vec<KeyPart>, Vec<Option<String>>)> = Vec::new();
    {
        let mut stmt = tx.prepare_cached(&table.select(after.is_some()))?;
        let mut found = stmt.query(params_from_iter(args))?;
        while let Some(r) = found.next()? {
            let mut key = Vec::with_capacity(n);
            for (i, (_, int)) in table.key.iter().enumerate() {
                key.push(if *int {
                    KeyPart::Int(r.get(i)?)
                } else {
                    KeyPart::Text(r.get(i)?)
                });
            }
            let values = (0..table.columns.len())
                .map(|j| r.get::<_, Option<String>>(n + j))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            rows.push((key, values));
        }
    }
    let mut done = Resealed {
        rows: rows.len() as u64,
        ..Resealed::default()
    };
    for (key, values) in &rows {
        for (column, value) in table.columns.iter().zip(values) {
            let Some(stored) = value else { continue };
            let Some(new) = resealed(seal, stored, column)? else {
                continue;
            };
            let mut args = vec![SqlValue::Text(new), SqlValue::Text(stored.clone())];
            args.extend(key.iter().map(sql_value));
            let changed = tx
                .prepare_cached(&table.update(column))?
                .execute(params_from_iter(args))?;
            if changed == 1 {
                done.values += 1;
            } else {
                done.raced += 1;
            }
        }
    }
    tx.commit()?;
    if rows.len() as u64 == u64::from(limit) {
        done.next = rows.last().map(|(k, _)| k.clone());
    }
    Ok(done)
}
