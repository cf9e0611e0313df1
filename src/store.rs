// SPDX-License-Identifier: Apache-2.0
//! Ground floor: the key/value store shared by replicas (Redis) or kept in the process (memory).
//! It knows bytes, keys and lifetimes, nothing of what they mean; the upstream token store
//! ([`crate::upstream::UpstreamStore`]) and the authorization server's records are typed layers
//! over it.
//!
//! Every primitive either user needs is here: write with or without a lifetime, write unless
//! present (a lock), read, read-and-delete (single use), delete, and delete-if-unchanged (lock
//! release).

mod memory;
mod redis;
mod tracking;

use std::time::Duration;

use tokio::time::Instant;

pub use self::memory::MemoryStore;
pub use self::redis::{RedisStore, RedisTarget};
pub use self::tracking::Invalidate;

/// The store did not answer in time or at all. The reason is fixed text, never a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("store unavailable: {0}")]
pub struct StoreError(pub &'static str);

/// Where keys live.
#[derive(Debug)]
pub enum Store {
    /// In-process, lost on restart.
    Memory(MemoryStore),
    /// Redis, shared by replicas. Keys get the configured prefix.
    Redis(RedisStore),
}

impl Store {
    /// Writes `value` under `key`, for `ttl` (forever when `None`).
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn put(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        match self {
            Self::Memory(m) => {
                m.put(key, value, ttl);
                Ok(())
            }
            Self::Redis(r) => r.put(key, value, ttl).await,
        }
    }

    /// Writes `value` under `key` for `ttl` unless the key exists; whether it was written.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn put_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        match self {
            Self::Memory(m) => Ok(m.put_if_absent(key, value, ttl)),
            Self::Redis(r) => r.put_if_absent(key, value, ttl).await,
        }
    }

    /// The value under `key`; with a `deadline`, Redis gives up at whichever comes first, the
    /// deadline or its own timeout.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails or does not answer in time.
    pub async fn get(
        &self,
        key: &str,
        deadline: Option<Instant>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Self::Memory(m) => Ok(m.get(key)),
            Self::Redis(r) => r.get(key, deadline).await,
        }
    }

    /// Removes and returns the value under `key` atomically: of concurrent takers, across
    /// replicas, only one gets it.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Self::Memory(m) => Ok(m.take(key)),
            Self::Redis(r) => r.take(key).await,
        }
    }

    /// Removes `key`.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self {
            Self::Memory(m) => {
                m.take(key);
                Ok(())
            }
            Self::Redis(r) => r.delete(key).await,
        }
    }

    /// Removes `key` only if it still holds `value` (releasing a lock we own).
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn delete_if(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        match self {
            Self::Memory(m) => {
                m.delete_if(key, value);
                Ok(())
            }
            Self::Redis(r) => r.delete_if(key, value).await,
        }
    }

    /// Reports to `listener` every change that any client makes to keys starting with `prefix`,
    /// for as long as `listener` lives. Only Redis has other writers; for memory, nothing.
    pub fn track(&self, prefix: &str, listener: std::sync::Weak<dyn Invalidate>) {
        if let Self::Redis(r) = self {
            r.track(prefix, listener);
        }
    }

    /// Whether the store answers (for readiness).
    pub async fn ping(&self) -> bool {
        match self {
            Self::Memory(_) => true,
            Self::Redis(r) => r.ping().await,
        }
    }
}
