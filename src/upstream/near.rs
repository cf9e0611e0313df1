// SPDX-License-Identifier: Apache-2.0
//! The near cache: decoded upstream-token records kept in the process in front of Redis, so a
//! warm Check makes no round trip. Redis keeps it correct: the store's tracking connection
//! reports every change to an `upstream:` key by any replica, and everything is forgotten (and
//! nothing cached) whenever that connection is down, since changes may have been missed.
//!
//! A read that races an invalidation must not cache the old value. Every invalidation bumps an
//! epoch; a reader takes the epoch before its GET, inserts only if it is unchanged, and removes
//! its entry again if the epoch moved while it inserted.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::UpstreamToken;
use crate::store::Invalidate;

/// Longest an entry is trusted without Redis having said anything about it: a bound on
/// staleness should an invalidation ever be lost on a live connection.
pub(super) const MAX_AGE: Duration = Duration::from_secs(300);

/// Decoded records by store key (`upstream:{tsid}:{provider}`, before the key prefix).
pub(super) struct NearCache {
    entries: moka::sync::Cache<Box<[u8]>, Arc<UpstreamToken>>,
    epoch: AtomicU64,
    tracking: AtomicBool,
}

impl std::fmt::Debug for NearCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NearCache")
            .field("entries", &self.entries.entry_count())
            .field("tracking", &self.tracking.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl NearCache {
    /// An empty cache of at most `capacity` records; it caches nothing until tracking starts.
    pub(super) fn new(capacity: u64) -> Self {
        Self {
            entries: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(MAX_AGE)
                .build(),
            epoch: AtomicU64::new(0),
            tracking: AtomicBool::new(false),
        }
    }

    /// The cached record under `key`.
    pub(super) fn get(&self, key: &str) -> Option<Arc<UpstreamToken>> {
        if !self.tracking.load(Ordering::SeqCst) {
            return None;
        }
        self.entries.get(key.as_bytes())
    }

    /// Taken before reading `key` from Redis, handed back to [`Self::insert`].
    pub(super) fn ticket(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Caches what a read that started at `ticket` returned, unless anything was invalidated
    /// since.
    pub(super) fn insert(&self, ticket: u64, key: &str, record: Arc<UpstreamToken>) {
        if !self.tracking.load(Ordering::SeqCst) || self.ticket() != ticket {
            return;
        }
        let key: Box<[u8]> = key.as_bytes().into();
        self.entries.insert(key.clone(), record);
        if self.ticket() != ticket {
            self.entries.invalidate(&key);
        }
    }

    /// Records cached now (for tests and diagnostics).
    pub(super) fn len(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }
}

impl Invalidate for NearCache {
    fn key(&self, key: &[u8]) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.entries.invalidate(key);
    }

    fn all(&self) {
        self.tracking.store(false, Ordering::SeqCst);
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.entries.invalidate_all();
    }

    fn tracking(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.entries.invalidate_all();
        self.tracking.store(true, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Token;

    fn record(token: &str) -> Arc<UpstreamToken> {
        Arc::new(UpstreamToken {
            access_token: Token::new(token),
            refresh_token: None,
            id_token: None,
            expires_at: None,
            subject: None,
            client_id: None,
        })
    }

    #[test]
    fn nothing_is_cached_until_tracking_and_everything_is_forgotten_when_it_stops() {
        let cache = NearCache::new(10);
        cache.insert(cache.ticket(), "k", record("a"));
        assert!(cache.get("k").is_none(), "not tracking yet");
        cache.tracking();
        cache.insert(cache.ticket(), "k", record("a"));
        assert_eq!(cache.get("k").unwrap().access_token.expose_secret(), "a");
        cache.all();
        assert!(cache.get("k").is_none());
        cache.tracking();
        assert!(
            cache.get("k").is_none(),
            "a new tracking session starts empty"
        );
    }

    #[test]
    fn a_read_that_raced_an_invalidation_is_not_cached() {
        let cache = NearCache::new(10);
        cache.tracking();
        let ticket = cache.ticket();
        // Another replica's write is reported while our GET is in flight.
        cache.key(b"k");
        cache.insert(ticket, "k", record("old"));
        assert!(cache.get("k").is_none());
        cache.insert(cache.ticket(), "k", record("new"));
        cache.key(b"k");
        assert!(
            cache.get("k").is_none(),
            "an invalidation removes the entry"
        );
    }
}
