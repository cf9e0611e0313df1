// SPDX-License-Identifier: Apache-2.0
//! The verified-token cache: keyed by the token's SHA-256 digest (never the token), an entry lives
//! no longer than the token's `exp`. (A token inside the verifier's leeway past `exp` is simply
//! verified again.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::sync::Cache;
use moka::Expiry;

use super::Identity;
use crate::secret::{DigestHash, TokenDigest};
use crate::time::unix_now;

/// Verified identities by token digest.
pub(crate) struct VerifiedCache {
    cache: Cache<TokenDigest, Arc<Identity>, DigestHash>,
}

impl std::fmt::Debug for VerifiedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedCache")
            .field("entries", &self.cache.entry_count())
            .finish()
    }
}

struct UntilExpiry;

impl Expiry<TokenDigest, Arc<Identity>> for UntilExpiry {
    fn expire_after_create(
        &self,
        _key: &TokenDigest,
        identity: &Arc<Identity>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(Duration::from_secs(
            identity.expires_at.saturating_sub(unix_now()),
        ))
    }
}

impl VerifiedCache {
    pub(crate) fn new(capacity: u64) -> Self {
        let cache = Cache::builder()
            .max_capacity(capacity)
            .expire_after(UntilExpiry)
            .build_with_hasher(DigestHash);
        Self { cache }
    }

    /// A cached identity whose token has not expired.
    pub(crate) fn get(&self, digest: &TokenDigest) -> Option<Arc<Identity>> {
        // The cache evicts lazily; the exact check keeps an expired token from slipping through
        // in the last second of an entry's life.
        self.cache
            .get(digest)
            .filter(|id| id.expires_at > unix_now())
    }

    pub(crate) fn insert(&self, digest: TokenDigest, identity: Arc<Identity>) {
        self.cache.insert(digest, identity);
    }
}
