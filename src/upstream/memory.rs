// SPDX-License-Identifier: Apache-2.0
//! In-process upstream token store: the same records as Redis, lost on restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use super::UpstreamToken;
use crate::secret::Tsid;

/// One login session's records, by provider.
type Session = HashMap<Arc<str>, Arc<UpstreamToken>>;

/// Records per tsid, then per provider; shared so a read clones no string. Authorization-server
/// state lives beside them as expiring key/value entries.
#[derive(Default)]
pub struct MemoryStore {
    sessions: RwLock<HashMap<Tsid, Session>>,
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    value: Vec<u8>,
    expires: Instant,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// One provider's record, if stored.
    pub fn get(&self, tsid: &Tsid, provider: &str) -> Option<Arc<UpstreamToken>> {
        // A panic while holding the lock cannot leave a half-written map entry, so a poisoned
        // lock is still consistent.
        let sessions = self.sessions.read().unwrap_or_else(PoisonError::into_inner);
        sessions.get(tsid)?.get(provider).cloned()
    }

    /// Stores one provider's record.
    pub fn put(&self, tsid: &Tsid, provider: &str, token: Arc<UpstreamToken>) {
        let mut sessions = self
            .sessions
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        sessions
            .entry(tsid.clone())
            .or_default()
            .insert(Arc::from(provider), token);
    }

    /// Deletes one provider's record.
    pub fn delete(&self, tsid: &Tsid, provider: &str) {
        let mut sessions = self
            .sessions
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(session) = sessions.get_mut(tsid) {
            session.remove(provider);
            if session.is_empty() {
                sessions.remove(tsid);
            }
        }
    }

    /// Number of upstream records (for tests and diagnostics).
    pub fn record_count(&self) -> usize {
        let sessions = self.sessions.read().unwrap_or_else(PoisonError::into_inner);
        sessions.values().map(HashMap::len).sum()
    }

    fn with_entries<T>(&self, f: impl FnOnce(&mut HashMap<String, Entry>) -> T) -> T {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        entries.retain(|_, e| e.expires > now);
        f(&mut entries)
    }

    /// Stores `value` under `key` for `ttl`.
    pub fn put_entry(&self, key: &str, value: &[u8], ttl: Duration) {
        let expires = Instant::now() + ttl;
        self.with_entries(|entries| {
            entries.insert(
                key.to_owned(),
                Entry {
                    value: value.to_vec(),
                    expires,
                },
            )
        });
    }

    /// Stores `value` under `key` for `ttl` unless the key exists; whether it was stored.
    pub fn put_entry_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> bool {
        let expires = Instant::now() + ttl;
        self.with_entries(|entries| {
            if entries.contains_key(key) {
                return false;
            }
            entries.insert(
                key.to_owned(),
                Entry {
                    value: value.to_vec(),
                    expires,
                },
            );
            true
        })
    }

    /// The value under `key`.
    pub fn get_entry(&self, key: &str) -> Option<Vec<u8>> {
        self.with_entries(|entries| entries.get(key).map(|e| e.value.clone()))
    }

    /// Removes and returns the value under `key`: of concurrent takers, only one gets it.
    pub fn take_entry(&self, key: &str) -> Option<Vec<u8>> {
        self.with_entries(|entries| entries.remove(key).map(|e| e.value))
    }

    /// Removes `key` if it holds `value`.
    pub fn delete_entry_if(&self, key: &str, value: &[u8]) {
        self.with_entries(|entries| {
            if entries.get(key).is_some_and(|e| e.value == value) {
                entries.remove(key);
            }
        });
    }
}
