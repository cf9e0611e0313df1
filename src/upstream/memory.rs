// SPDX-License-Identifier: Apache-2.0
//! In-process upstream token store: the same records as Redis, lost on restart.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use super::UpstreamToken;
use crate::secret::Tsid;

/// One login session's records, by provider.
type Session = HashMap<Arc<str>, Arc<UpstreamToken>>;

/// Records per tsid, then per provider; shared so a read clones no string.
#[derive(Default)]
pub struct MemoryStore {
    sessions: RwLock<HashMap<Tsid, Session>>,
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
}
