// SPDX-License-Identifier: Apache-2.0
//! `token_exchange`: the backend receives a token issued for it by an RFC 8693 token service,
//! in exchange for the caller's JWT or, with `subjectProviderName`, the caller's upstream token.
//!
//! Exchanged tokens are cached ([`cache`]) so that a steady-state Check never waits on the token
//! endpoint: a hit answers from memory, concurrent misses share one request, and a token nearing
//! its end is re-exchanged in the background while the old one is still served.

mod cache;
mod client;
mod key;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

pub use cache::{CacheSettings, Entry, ExchangeCache};
pub use client::{ExchangeError, ExchangeRequest, RequestParams, ACCESS_TOKEN_TYPE, GRANT_TYPE};
pub use key::{CacheKey, KeyParts, KeyPrefix};

use super::{Mutations, StrategyContext, StrategyError, AUTHORIZATION_NAME};
use crate::secret::Token;
use crate::telemetry::metrics::{ExchangeMetrics, ExchangeResult};
use crate::time::unix_now;

/// Kept back from the Check's deadline for answering Envoy.
const RESPONSE_MARGIN: Duration = Duration::from_millis(10);
/// Below this, an exchange is not started at all.
const MIN_BUDGET: Duration = Duration::from_millis(5);
/// At most one WARN per backend in this many seconds; the other failures log at DEBUG.
const WARN_INTERVAL_SECS: u64 = 10;
/// Wait before a failed background refresh may be retried.
const REFRESH_RETRY_AFTER: Duration = Duration::from_secs(1);

/// What every `token_exchange` backend shares: the HTTP client, the cache and its metrics.
#[derive(Debug)]
pub struct ExchangeShared {
    http: reqwest::Client,
    cache: ExchangeCache,
    metrics: ExchangeMetrics,
}

impl ExchangeShared {
    /// An empty cache; exchanges go out through `http` (which must not follow redirects: a
    /// token endpoint that redirects is refused).
    pub fn new(settings: CacheSettings, metrics: ExchangeMetrics, http: reqwest::Client) -> Self {
        Self {
            http,
            cache: ExchangeCache::new(settings),
            metrics,
        }
    }
}

/// One backend's token exchange.
#[derive(Debug, Clone)]
pub struct TokenExchange {
    inner: Arc<ExchangeBackend>,
}

/// What one `token_exchange` backend is made of, built from its config.
#[derive(Debug)]
pub struct ExchangeBackend {
    /// Backend name (metrics, logs, cache key).
    pub backend: Arc<str>,
    /// The fixed part of its request.
    pub request: ExchangeRequest,
    /// Its cache-key prefix.
    pub key_prefix: KeyPrefix,
    /// Provider whose upstream token is the subject; `None` = the caller's JWT.
    pub subject_provider: Option<Arc<str>>,
    /// Cap on every call to the token endpoint.
    pub timeout: Duration,
    /// Client, cache and metrics shared with the other backends.
    pub shared: Arc<ExchangeShared>,
    /// When this backend last logged a failure at WARN (unix seconds).
    pub last_warned: AtomicU64,
}

/// A subject token and when it expires (unix seconds), which caps the exchanged token's life.
struct Subject {
    token: Token,
    expires_at: Option<u64>,
}

impl TokenExchange {
    /// A backend's exchange.
    pub fn new(backend: ExchangeBackend) -> Self {
        Self {
            inner: Arc::new(backend),
        }
    }

    /// Sets `authorization: Bearer <exchanged token>`, from the cache when possible.
    ///
    /// # Errors
    /// [`StrategyError::Upstream`] when the named provider's token is missing (no
    /// fallback to the caller's JWT); [`StrategyError::Exchange`] when the endpoint refuses, fails
    /// or does not answer within the Check's deadline.
    pub async fn apply(&self, ctx: &StrategyContext<'_>) -> Result<Mutations, StrategyError> {
        let inner = &*self.inner;
        let record;
        let (subject, expires_at) = match &inner.subject_provider {
            None => {
                let (Some(identity), Some(token)) = (ctx.identity, ctx.caller_token) else {
                    return Err(StrategyError::NoIdentity("token_exchange"));
                };
                (token, Some(identity.expires_at))
            }
            Some(provider) => {
                record = ctx.upstream_token(provider, "token_exchange").await?;
                (record.access_token.expose_secret(), record.expires_at)
            }
        };
        // Owned only when an exchange is due: a cache hit copies nothing.
        let owned = || Subject {
            token: Token::new(subject),
            expires_at,
        };
        let key = inner.key_prefix.key(subject);
        let entry = match inner.shared.cache.get(&key).await {
            Some(entry) => {
                let result = match &*entry {
                    Entry::Issued(_) => ExchangeResult::Hit,
                    Entry::Rejected { .. } => ExchangeResult::NegativeHit,
                };
                inner.shared.metrics.record(&inner.backend, result);
                entry
            }
            None => self.exchange_now(key, &owned(), ctx.deadline).await?,
        };
        match &*entry {
            Entry::Issued(issued) => {
                if issued.claim_refresh(std::time::Instant::now()) {
                    self.spawn_refresh(key, owned(), entry.clone());
                }
                Ok(Mutations::set(
                    AUTHORIZATION_NAME.clone(),
                    issued.header_value.expose_secret().to_owned(),
                ))
            }
            Entry::Rejected { error, .. } => Err(StrategyError::Exchange(error.clone())),
        }
    }

    /// A cache miss: one exchange per key however many Checks wait for it, bounded by the
    /// Check's deadline.
    async fn exchange_now(
        &self,
        key: CacheKey,
        subject: &Subject,
        deadline: Instant,
    ) -> Result<Arc<Entry>, StrategyError> {
        let inner = &*self.inner;
        let budget = deadline
            .saturating_duration_since(Instant::now())
            .saturating_sub(RESPONSE_MARGIN)
            .min(inner.timeout);
        if budget < MIN_BUDGET {
            inner
                .shared
                .metrics
                .record(&inner.backend, ExchangeResult::Failure);
            return Err(StrategyError::Exchange(ExchangeError::Timeout));
        }
        let exchange = async {
            inner
                .shared
                .metrics
                .record(&inner.backend, ExchangeResult::Miss);
            let result = self.send(&subject.token, budget).await;
            inner
                .shared
                .cache
                .entry_for(result, subject.expires_at, unix_now())
        };
        let shared =
            tokio::time::timeout_at(deadline, inner.shared.cache.get_or_exchange(key, exchange))
                .await
                .map_err(|_| StrategyError::Exchange(ExchangeError::Timeout))?;
        match shared {
            Ok((entry, fresh)) => {
                if !fresh {
                    inner
                        .shared
                        .metrics
                        .record(&inner.backend, ExchangeResult::Coalesced);
                }
                Ok(entry)
            }
            Err(error) => Err(StrategyError::Exchange((*error).clone())),
        }
    }

    /// One call to the token endpoint, with its metrics.
    async fn send(
        &self,
        subject: &Token,
        budget: Duration,
    ) -> Result<client::Issued, ExchangeError> {
        let inner = &*self.inner;
        let started = std::time::Instant::now();
        let result = inner
            .request
            .send(&inner.shared.http, subject, budget)
            .await;
        inner.shared.metrics.observe(started.elapsed());
        if let Err(error) = &result {
            inner
                .shared
                .metrics
                .record(&inner.backend, ExchangeResult::Failure);
            let refused_subject = matches!(
                error,
                ExchangeError::Rejected {
                    code: "invalid_grant",
                    ..
                }
            );
            if !refused_subject && self.may_warn() {
                tracing::warn!(backend = %inner.backend, %error, "token exchange failed");
            } else {
                tracing::debug!(backend = %inner.backend, %error, "token exchange failed");
            }
        }
        result
    }

    /// Whether a failure may be logged at WARN now (rate-limited per backend, so an endpoint
    /// outage does not turn into one WARN per Check).
    fn may_warn(&self) -> bool {
        let now = unix_now();
        let last = self.inner.last_warned.load(Ordering::Relaxed);
        now.saturating_sub(last) >= WARN_INTERVAL_SECS
            && self
                .inner
                .last_warned
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Re-exchanges in the background; Checks keep getting the current token meanwhile.
    fn spawn_refresh(&self, key: CacheKey, subject: Subject, current: Arc<Entry>) {
        let this = self.clone();
        tokio::spawn(async move {
            let inner = &*this.inner;
            let result = this.send(&subject.token, inner.timeout).await;
            match inner
                .shared
                .cache
                .entry_for(result, subject.expires_at, unix_now())
            {
                Ok(entry) => {
                    if matches!(*entry, Entry::Issued(_)) {
                        inner
                            .shared
                            .metrics
                            .record(&inner.backend, ExchangeResult::Refresh);
                    }
                    // A definite rejection replaces the token too: the endpoint no longer
                    // accepts this subject.
                    inner.shared.cache.insert(key, entry).await;
                }
                Err(_) => {
                    tokio::time::sleep(REFRESH_RETRY_AFTER).await;
                    if let Entry::Issued(issued) = &*current {
                        issued.refresh_failed();
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::metrics::Metrics;

    #[test]
    fn failures_warn_at_most_once_per_interval_per_backend() {
        let url = url::Url::parse("https://sts.example.com/token").unwrap();
        let params = RequestParams {
            token_url: &url,
            client_id: None,
            client_secret: None,
            audience: None,
            scopes: &[],
            subject_token_type: ACCESS_TOKEN_TYPE,
        };
        let exchange = TokenExchange::new(ExchangeBackend {
            backend: Arc::from("jira"),
            request: ExchangeRequest::new(params),
            key_prefix: KeyPrefix::new(KeyParts {
                backend: "jira",
                token_url: url.as_str(),
                client_id: None,
                audience: None,
                scopes: &[],
                subject_token_type: ACCESS_TOKEN_TYPE,
                subject_provider: None,
            }),
            subject_provider: None,
            timeout: Duration::from_secs(1),
            shared: Arc::new(ExchangeShared::new(
                CacheSettings::default(),
                Metrics::new().exchange(),
                crate::oauth::http_client(&[]).unwrap(),
            )),
            last_warned: AtomicU64::new(0),
        });
        assert!(exchange.may_warn());
        assert!(
            !exchange.may_warn(),
            "a second failure within 10 s logs at DEBUG"
        );
        exchange
            .inner
            .last_warned
            .store(unix_now() - WARN_INTERVAL_SECS, Ordering::Relaxed);
        assert!(exchange.may_warn());
    }
}
