// SPDX-License-Identifier: Apache-2.0
//! The exchanged-token cache: one entry per (backend config, subject token), shared by every
//! backend, bounded in size.
//!
//! - An issued token lives min(`expires_in` − skew, the subject token's remaining lifetime); the
//!   skew is at most half of `expires_in`, so short-lived tokens are still cached.
//! - A definite rejection lives `negative_ttl`, so a refused subject does not hammer the endpoint.
//! - An entry whose lifetime was set by `expires_in` (not by the subject's expiry) is due for a
//!   background refresh once `refresh_ratio` of it has passed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::client::{ExchangeError, Issued};
use super::key::CacheKey;
use crate::secret::Token;

/// Tuning of the cache (`outgoingAuth.tokenExchangeCache`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CacheSettings {
    /// Most entries kept.
    pub capacity: u64,
    /// Taken off `expires_in` (at most half of it).
    pub skew: Duration,
    /// How long a definite rejection is remembered.
    pub negative_ttl: Duration,
    /// Share of an entry's lifetime after which it is refreshed in the background; `None` never.
    pub refresh_ratio: Option<f64>,
    /// Lifetime assumed when the endpoint gives no `expires_in`.
    pub default_lifetime: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            skew: Duration::from_secs(30),
            negative_ttl: Duration::from_secs(5),
            refresh_ratio: Some(0.8),
            default_lifetime: Duration::from_secs(60),
        }
    }
}

/// One cached outcome.
#[derive(Debug)]
pub enum Entry {
    /// A token to inject.
    Issued(IssuedEntry),
    /// A definite rejection, remembered briefly.
    Rejected {
        /// What the endpoint said.
        error: ExchangeError,
        /// How long it is remembered.
        ttl: Duration,
    },
}

/// A cached exchanged token.
#[derive(Debug)]
pub struct IssuedEntry {
    /// `Bearer <token>`, ready to be the header value.
    pub header_value: Token,
    ttl: Duration,
    refresh_at: Option<Instant>,
    refreshing: AtomicBool,
}

impl IssuedEntry {
    /// Whether this Check should start the background refresh: the entry is due and no other
    /// Check has started one. Returns `true` to exactly one caller until
    /// [`IssuedEntry::refresh_failed`] resets it.
    pub fn claim_refresh(&self, now: Instant) -> bool {
        self.refresh_at.is_some_and(|at| now >= at)
            && self
                .refreshing
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }

    /// Lets a later Check retry the refresh.
    pub fn refresh_failed(&self) {
        self.refreshing.store(false, Ordering::Release);
    }
}

impl Entry {
    fn ttl(&self) -> Duration {
        match self {
            Self::Issued(issued) => issued.ttl,
            Self::Rejected { ttl, .. } => *ttl,
        }
    }
}

struct EntryLifetime;

impl moka::Expiry<CacheKey, Arc<Entry>> for EntryLifetime {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        value: &Arc<Entry>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl())
    }

    fn expire_after_update(
        &self,
        _key: &CacheKey,
        value: &Arc<Entry>,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl())
    }
}

/// The shared cache.
pub struct ExchangeCache {
    entries: moka::future::Cache<CacheKey, Arc<Entry>>,
    settings: CacheSettings,
}

impl std::fmt::Debug for ExchangeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangeCache")
            .field("settings", &self.settings)
            .field("entries", &self.entries.entry_count())
            .finish()
    }
}

impl ExchangeCache {
    /// An empty cache.
    pub fn new(settings: CacheSettings) -> Self {
        Self {
            entries: moka::future::Cache::builder()
                .max_capacity(settings.capacity)
                .expire_after(EntryLifetime)
                .build(),
            settings,
        }
    }

    /// The live entry for `key`, if any.
    pub async fn get(&self, key: &CacheKey) -> Option<Arc<Entry>> {
        self.entries.get(key).await
    }

    /// The entry for `key`, running `exchange` if there is none. Concurrent callers for one key
    /// share one run (single flight); only the caller whose future ran gets `fresh = true`.
    ///
    /// # Errors
    /// A transient [`ExchangeError`] from the run, shared by every waiter and not cached.
    pub async fn get_or_exchange(
        &self,
        key: CacheKey,
        exchange: impl std::future::Future<Output = Result<Arc<Entry>, ExchangeError>>,
    ) -> Result<(Arc<Entry>, bool), Arc<ExchangeError>> {
        let entry = self.entries.entry(key).or_try_insert_with(exchange).await?;
        let fresh = entry.is_fresh();
        Ok((entry.into_value(), fresh))
    }

    /// Replaces the entry for `key` (after a background refresh).
    pub async fn insert(&self, key: CacheKey, entry: Arc<Entry>) {
        self.entries.insert(key, entry).await;
    }

    /// Drops the entry for `key`.
    pub async fn invalidate(&self, key: &CacheKey) {
        self.entries.invalidate(key).await;
    }

    /// Turns an exchange result into what is cached: an issued token, or a definite rejection.
    ///
    /// # Errors
    /// Transient errors, which are never cached.
    pub fn entry_for(
        &self,
        result: Result<Issued, ExchangeError>,
        subject_expires_at: Option<u64>,
        now_unix: u64,
    ) -> Result<Arc<Entry>, ExchangeError> {
        match result {
            Ok(issued) => Ok(Arc::new(Entry::Issued(self.issued_entry(
                issued,
                subject_expires_at,
                now_unix,
            )))),
            Err(error) if error.is_definite() => Ok(Arc::new(Entry::Rejected {
                error,
                ttl: self.settings.negative_ttl,
            })),
            Err(error) => Err(error),
        }
    }

    fn issued_entry(
        &self,
        issued: Issued,
        subject_expires_at: Option<u64>,
        now_unix: u64,
    ) -> IssuedEntry {
        let lifetime = issued.expires_in.unwrap_or(self.settings.default_lifetime);
        let by_token = lifetime - self.settings.skew.min(lifetime / 2);
        let by_subject =
            subject_expires_at.map(|exp| Duration::from_secs(exp.saturating_sub(now_unix)));
        let (ttl, refreshable) = match by_subject {
            Some(subject) if subject < by_token => (subject, false),
            _ => (by_token, true),
        };
        let refresh_at = self
            .settings
            .refresh_ratio
            .filter(|_| refreshable && !ttl.is_zero())
            .map(|ratio| Instant::now() + ttl.mul_f64(ratio));
        let mut header_value = String::with_capacity(7 + issued.access_token.expose_secret().len());
        header_value.push_str("Bearer ");
        header_value.push_str(issued.access_token.expose_secret());
        IssuedEntry {
            header_value: Token::new(header_value),
            ttl,
            refresh_at,
            refreshing: AtomicBool::new(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued(expires_in: Option<u64>) -> Issued {
        Issued {
            access_token: Token::new("xt"),
            expires_in: expires_in.map(Duration::from_secs),
        }
    }

    fn entry(
        cache: &ExchangeCache,
        expires_in: Option<u64>,
        subject_exp: Option<u64>,
    ) -> IssuedEntry {
        cache.issued_entry(issued(expires_in), subject_exp, 1_000)
    }

    #[test]
    fn lifetime_is_expires_in_minus_skew_capped_by_the_subject() {
        let cache = ExchangeCache::new(CacheSettings::default());
        let e = entry(&cache, Some(300), None);
        assert_eq!(e.ttl, Duration::from_secs(270));
        assert!(e.refresh_at.is_some());
        assert_eq!(e.header_value.expose_secret(), "Bearer xt");

        let e = entry(&cache, Some(300), Some(1_100));
        assert_eq!(e.ttl, Duration::from_secs(100));
        assert!(
            e.refresh_at.is_none(),
            "a subject-bound entry is not refreshed"
        );

        let e = entry(&cache, Some(10), None);
        assert_eq!(e.ttl, Duration::from_secs(5), "skew is at most half");

        let e = entry(&cache, None, None);
        assert_eq!(
            e.ttl,
            Duration::from_secs(30),
            "default lifetime minus skew"
        );

        let e = entry(&cache, Some(300), Some(900));
        assert_eq!(e.ttl, Duration::ZERO, "an expired subject is not cached");
    }

    #[test]
    fn only_definite_rejections_are_cached() {
        let cache = ExchangeCache::new(CacheSettings::default());
        let rejected = ExchangeError::Rejected {
            status: 400,
            code: "invalid_grant",
        };
        assert!(matches!(
            cache.entry_for(Err(rejected), None, 0).as_deref(),
            Ok(Entry::Rejected { ttl, .. }) if *ttl == Duration::from_secs(5)
        ));
        for transient in [
            ExchangeError::Timeout,
            ExchangeError::Unreachable,
            ExchangeError::ServerError(500),
            ExchangeError::InvalidResponse("missing token_type"),
        ] {
            assert!(cache.entry_for(Err(transient), None, 0).is_err());
        }
    }

    #[test]
    fn one_caller_claims_a_due_refresh() {
        let cache = ExchangeCache::new(CacheSettings {
            refresh_ratio: Some(0.5),
            ..CacheSettings::default()
        });
        let e = entry(&cache, Some(300), None);
        let now = Instant::now();
        assert!(!e.claim_refresh(now), "not due yet");
        let later = now + Duration::from_secs(200);
        assert!(e.claim_refresh(later));
        assert!(!e.claim_refresh(later), "already claimed");
        e.refresh_failed();
        assert!(e.claim_refresh(later));
    }
}
