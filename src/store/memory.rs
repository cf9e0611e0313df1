// SPDX-License-Identifier: Apache-2.0
//! The in-process store: expiring entries in one map, lost on restart.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Entries by key; expired ones are dropped on the next access.
#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    value: Vec<u8>,
    expires: Option<Instant>,
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

    fn with_entries<T>(&self, f: impl FnOnce(&mut HashMap<String, Entry>) -> T) -> T {
        // A panic while holding the lock cannot leave a half-written entry, so a poisoned lock
        // is still consistent.
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        entries.retain(|_, e| e.expires.is_none_or(|at| at > now));
        f(&mut entries)
    }

    /// Stores `value` under `key` for `ttl` (forever when `None`).
    pub fn put(&self, key: &str, value: &[u8], ttl: Option<Duration>) {
        let expires = ttl.map(|ttl| Instant::now() + ttl);
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
    pub fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> bool {
        let expires = Some(Instant::now() + ttl);
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
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.with_entries(|entries| entries.get(key).map(|e| e.value.clone()))
    }

    /// Removes and returns the value under `key`: of concurrent takers, only one gets it.
    pub fn take(&self, key: &str) -> Option<Vec<u8>> {
        self.with_entries(|entries| entries.remove(key).map(|e| e.value))
    }

    /// Removes `key` if it holds `value`.
    pub fn delete_if(&self, key: &str, value: &[u8]) {
        self.with_entries(|entries| {
            if entries.get(key).is_some_and(|e| e.value == value) {
                entries.remove(key);
            }
        });
    }
}
