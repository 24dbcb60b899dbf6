//! Which committer a command goes to. SQLite has one writer, so one
//! committer; on PostgreSQL a node runs several, each with its own
//! transaction, and commands are spread by key: everything addressed to one
//! session goes to the same committer and applies in arrival order.
//! Sessions still serialize on their row lock when two committers (of this
//! node or another) reach the same one, e.g. through a provider event that
//! names a reference rather than a session.

use super::Work;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Spreads keyless work (creates without an Idempotency-Key).
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The committer, of `n`, that takes `work`.
pub(super) fn committer_for(work: &Work, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let mut h = DefaultHasher::new();
    match work {
        Work::Create(req) => match &req.idempotency_key {
            // Repeats of one key meet in one committer (and one batch).
            Some(key) => (&req.api_key_id, key).hash(&mut h),
            None => return NEXT.fetch_add(1, Ordering::Relaxed) % n,
        },
        Work::Apply { session_id, .. }
        | Work::Record { session_id, .. }
        | Work::Erase { session_id, .. } => session_id.hash(&mut h),
        // Browser signals name their session: same committer as its inputs.
        Work::Ingest(ev) => ev.reference.hash(&mut h),
        Work::Delivered(d) => d.delivery_id.hash(&mut h),
        // Any committer: the status update is conditional, so two
        // redeliveries of one delivery queue one attempt wherever they run.
        Work::Redeliver(r) => r.deliveries.first().map(|(id, _)| id).hash(&mut h),
        Work::Adopt { reference, .. } => reference.hash(&mut h),
        Work::Chat(chat) => chat.session_id().hash(&mut h),
        Work::Decide(d) => d.session_id.hash(&mut h),
        Work::Barrier => return 0,
    }
    usize::try_from(h.finish() % n as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gangway_core::engine::Input;

    #[test]
    fn one_session_one_committer() {
        let apply = |s: &str| Work::Apply {
            session_id: s.into(),
            input: Input::Start,
            job: None,
            record: None,
            audit: None,
        };
        assert_eq!(committer_for(&apply("ses_1"), 1), 0);
        let firsts: std::collections::HashSet<usize> = (0..64)
            .map(|i| committer_for(&apply(&format!("ses_{i}")), 4))
            .collect();
        assert!(firsts.len() > 1, "spread over committers");
        for i in 0..64 {
            let s = format!("ses_{i}");
            assert_eq!(committer_for(&apply(&s), 4), committer_for(&apply(&s), 4));
        }
    }
}
