// SPDX-License-Identifier: Apache-2.0
//! Upstream tokens kept decoded in the process, for the memory store: the same records as in
//! Redis, lost on restart.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use super::UpstreamToken;
use crate::secret::Tsid;

/// One login session's records, by provider.
type Session = HashMap<Arc<str>, Arc<UpstreamToken>>;

/// Records per tsid, then per provider; shared so a read clones no string.
#[derive(Default)]
pub(super) struct Sessions(RwLock<HashMap<Tsid, Session>>);

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

impl Sessions {
    /// One provider's record, if stored.
    pub(super) fn get(&self, tsid: &Tsid, provider: &str) -> Option<Arc<UpstreamToken>> {
        // A panic while holding the lock cannot leave a half-written map entry, so a poisoned
        // lock is still consistent.
        let sessions = self.0.read().unwrap_or_else(PoisonError::into_inner);
        sessions.get(tsid)?.get(provider).cloned()
    }

    /// Stores one provider's record.
    pub(super) fn put(&self, tsid: &Tsid, provider: &str, token: Arc<UpstreamToken>) {
        let mut sessions = self.0.write().unwrap_or_else(PoisonError::into_inner);
        sessions
            .entry(tsid.clone())
            .or_default()
            .insert(Arc::from(provider), token);
    }

    /// Deletes one provider's record.
    pub(super) fn delete(&self, tsid: &Tsid, provider: &str) {
        let mut sessions = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(session) = sessions.get_mut(tsid) {
            session.remove(provider);
            if session.is_empty() {
                sessions.remove(tsid);
            }
        }
    }

    /// Number of records.
    pub(super) fn count(&self) -> usize {
        let sessions = self.0.read().unwrap_or_else(PoisonError::into_inner);
        sessions.values().map(HashMap::len).sum()
    }
}
