//! `gangway keys rotate-encryption`: every sealed value not under the
//! active key (the first of `encryption_keys`; an older one from the rest,
//! or plaintext written before encryption was on) sealed again under it,
//! table by table in bounded batches beside the running servers
//! (store/reseal.rs). A second pass over what the first left proves that
//! nothing under an old key remains; what a crash interrupted is resumed
//! by running the command again.

use gangway_server::store::Store;
use gangway_server::store::reseal::{Resealed, SEALED};
use std::path::Path;

pub async fn run(config: Option<&Path>, batch: u32) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=10_000).contains(&batch),
        "--batch must be between 1 and 10000"
    );
    let (store, db) = crate::keys::open_sealed(config, true).await?;
    eprintln!("re-sealing personal data in database {db} under the active encryption_key");
    let mut total = 0;
    for pass in 1..=2 {
        let mut written = 0;
        for table in SEALED {
            let done = reseal_table(store.as_ref(), table, batch).await?;
            if pass == 1 || done.values > 0 {
                eprintln!(
                    "  {}: {} rows read, {} values sealed again, {} changed by a server meanwhile",
                    table.table, done.rows, done.values, done.raced
                );
            }
            written += done.values;
        }
        total += written;
        // The second pass finds nothing to do unless a server wrote under
        // an old key meanwhile (a node not yet restarted with the new one).
        if pass == 2 && written > 0 {
            anyhow::bail!(
                "{written} values were under an old key again on a second pass: a server still seals under it; \
                 restart every node with the new encryption_key, then run this again"
            );
        }
    }
    eprintln!("done: {total} values sealed again; none is left under an old key");
    Ok(())
}

/// One table, batch after batch; the sums of its batches.
async fn reseal_table(
    store: &dyn Store,
    table: &'static gangway_server::store::reseal::SealedTable,
    batch: u32,
) -> anyhow::Result<Resealed> {
    let mut sum = Resealed::default();
    let mut after = None;
    // Bounded: each batch moves the cursor forward by `batch` rows, and a
    // table cannot hold more rows than this.
    for _ in 0..u64::MAX / 2 {
        let done = store.reseal_batch(table, after, batch).await?;
        sum.rows += done.rows;
        sum.values += done.values;
        sum.raced += done.raced;
        match done.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(sum)
}
