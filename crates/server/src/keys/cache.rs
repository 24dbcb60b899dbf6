//! The keys this node authenticated recently, by secret hash, so that a
//! hot path does not read the database per request. An entry is only a
//! copy: it is dropped when a key changes (revoked or rotated: by this
//! node directly, by other nodes through a PostgreSQL notification) and
//! re-read after a short time anyway, which bounds how long a change made
//! where no notification reaches (the CLI on a SQLite file) goes unseen.
//!
//! A lookup that started before a change must not put its stale answer
//! back: every change bumps a generation, and an answer is cached only if
//! the generation is still the one its lookup started under.

use super::Scopes;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Re-read interval on a database only this process writes to: a key
/// revoked by the CLI stops working here within this time.
pub const LOCAL_TTL: Duration = Duration::from_millis(500);
/// Re-read interval on a shared database, where changes arrive as
/// notifications: only a safety net for a notification that was lost
/// without the channel noticing.
pub const SHARED_TTL: Duration = Duration::from_secs(60);

/// What a cached secret authenticates as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedKey {
    pub id: String,
    pub name: String,
    pub scopes: Scopes,
    /// When this secret stops working: the key's expiry or, for a secret a
    /// rotation replaced, the end of its grace, whichever comes first.
    pub expires_at: Option<i64>,
    /// The secret is one a rotation replaced (it works during the grace).
    pub replaced: bool,
    /// Revoked keys are cached too: revocation is final.
    pub revoked_at: Option<i64>,
}

struct Entry {
    key: CachedKey,
    fetched: Instant,
    /// Since when one request re-reads this entry (others keep using it
    /// meanwhile instead of all reading the database at once).
    refreshing: Option<Instant>,
}

#[derive(Default)]
struct Inner {
    generation: u64,
    entries: HashMap<String, Entry>,
}

pub struct KeyCache {
    inner: Mutex<Inner>,
    ttl: Duration,
}

/// The answer of [`KeyCache::get`].
#[derive(Debug, PartialEq, Eq)]
pub enum CacheLookup {
    Hit(CachedKey),
    /// Read the database, then `insert` under this generation. `known`:
    /// the secret was valid when last read (only its copy is old).
    Miss {
        generation: u64,
        known: bool,
    },
}

impl KeyCache {
    pub fn new(ttl: Duration) -> KeyCache {
        KeyCache {
            inner: Mutex::default(),
            ttl,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, hash: &str) -> CacheLookup {
        let mut inner = self.lock();
        let generation = inner.generation;
        let ttl = self.ttl;
        match inner.entries.get_mut(hash) {
            Some(e) if e.fetched.elapsed() < ttl => CacheLookup::Hit(e.key.clone()),
            Some(e) if e.refreshing.is_some_and(|since| since.elapsed() < ttl) => {
                CacheLookup::Hit(e.key.clone())
            }
            Some(e) => {
                e.refreshing = Some(Instant::now());
                CacheLookup::Miss {
                    generation,
                    known: true,
                }
            }
            None => CacheLookup::Miss {
                generation,
                known: false,
            },
        }
    }

    /// Caches what a lookup found, unless a key changed since it started.
    pub fn insert(&self, hash: String, key: CachedKey, generation: u64) {
        let mut inner = self.lock();
        if inner.generation == generation {
            inner.entries.insert(
                hash,
                Entry {
                    key,
                    fetched: Instant::now(),
                    refreshing: None,
                },
            );
        }
    }

    /// Forgets a secret a lookup found to be no longer valid.
    pub fn remove(&self, hash: &str) {
        self.lock().entries.remove(hash);
    }

    /// A key changed: forget everything (keys are few; a change is rare).
    pub fn invalidate(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CachedKey {
        CachedKey {
            id: "key_1".into(),
            name: "n".into(),
            scopes: Scopes::default(),
            expires_at: None,
            replaced: false,
            revoked_at: None,
        }
    }

    #[test]
    fn a_lookup_that_raced_a_change_is_not_cached() {
        let cache = KeyCache::new(Duration::from_secs(60));
        let CacheLookup::Miss {
            generation,
            known: false,
        } = cache.get("h")
        else {
            panic!("empty cache hit");
        };
        cache.invalidate();
        cache.insert("h".into(), key(), generation);
        assert!(matches!(cache.get("h"), CacheLookup::Miss { .. }));
        let CacheLookup::Miss { generation, .. } = cache.get("h") else {
            panic!("hit");
        };
        cache.insert("h".into(), key(), generation);
        assert_eq!(cache.get("h"), CacheLookup::Hit(key()));
        cache.invalidate();
        assert!(matches!(cache.get("h"), CacheLookup::Miss { .. }));
    }

    #[test]
    fn a_stale_entry_is_read_again_by_one_request() {
        let cache = KeyCache::new(Duration::ZERO);
        cache.insert("h".into(), key(), 0);
        assert!(matches!(
            cache.get("h"),
            CacheLookup::Miss { known: true, .. }
        ));
    }
}
