// SPDX-License-Identifier: Apache-2.0
//! Refresh of an expired upstream access token in the Check path (DESIGN.md §7.4).
//!
//! One refresh per (tsid, provider) at a time, inside a process (concurrent Checks share one
//! call) and across replicas (a lock entry in the shared store). The lock owner re-reads the
//! record before redeeming, so a refresh token another replica already rotated is never
//! redeemed twice; replicas that lose the race wait for the record to change.
//!
//! The refresh runs as its own task: a Check whose deadline passes answers 503, but the refresh
//! goes on and stores its result, so a rotated refresh token is never lost half-way.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::{UpstreamError, UpstreamStore, UpstreamToken};
use crate::oauth::provider::{IdpError, UpstreamProvider};
use crate::secret::Tsid;
use crate::telemetry::metrics::RefreshMetrics;
use crate::time::unix_now;

/// How long a replica may hold the refresh lock (longer than one refresh can take).
const LOCK_TTL: Duration = Duration::from_secs(15);
/// How often a waiting replica re-reads the record.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Longest wait for a provider's token endpoint.
const MAX_REFRESH_TIME: Duration = Duration::from_secs(5);
/// Longest a refresh task lives, waiting for another replica included.
const MAX_TASK_TIME: Duration = Duration::from_secs(12);

/// Refreshes expired upstream tokens.
pub struct Refresher {
    providers: HashMap<Arc<str>, Arc<UpstreamProvider>>,
    inflight: moka::future::Cache<[u8; 32], Arc<UpstreamToken>>,
    metrics: RefreshMetrics,
}

impl std::fmt::Debug for Refresher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refresher")
            .field("providers", &self.providers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// One refresh: everything the task needs, owned.
struct Job {
    store: Arc<UpstreamStore>,
    idp: Arc<UpstreamProvider>,
    tsid: Tsid,
    provider: Arc<str>,
    stale: Arc<UpstreamToken>,
    lock: String,
    metrics: RefreshMetrics,
}

/// Who produced the fresh record.
enum Refreshed {
    /// This replica, at the provider.
    Here,
    /// Another replica (found in the store).
    Elsewhere,
}

impl Refresher {
    /// A refresher for these providers.
    pub fn new(
        providers: impl IntoIterator<Item = Arc<UpstreamProvider>>,
        metrics: RefreshMetrics,
    ) -> Self {
        Self {
            providers: providers
                .into_iter()
                .map(|p| (p.name().clone(), p))
                .collect(),
            // Only coalesces concurrent refreshes: results live a moment, then the store rules.
            inflight: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(1))
                .build(),
            metrics,
        }
    }

    /// A fresh record for (tsid, provider) whose stored access token has expired.
    ///
    /// # Errors
    /// [`UpstreamError::NotFound`] when there is nothing to refresh with and
    /// [`UpstreamError::ProviderRefused`] when the provider says no: the user must log in again.
    /// [`UpstreamError::ProviderUnavailable`] when the provider does not answer within the
    /// Check's deadline, [`UpstreamError::StoreUnavailable`] when the store fails.
    pub async fn refresh(
        &self,
        store: &Arc<UpstreamStore>,
        tsid: &Tsid,
        provider: &Arc<str>,
        stale: Arc<UpstreamToken>,
        deadline: Instant,
    ) -> Result<Arc<UpstreamToken>, UpstreamError> {
        let idp = self
            .providers
            .get(provider)
            .ok_or_else(|| UpstreamError::NotFound(provider.clone()))?;
        let lock = lock_key(tsid, provider);
        let digest: [u8; 32] = Sha256::digest(lock.as_bytes()).into();
        let job = Job {
            store: store.clone(),
            idp: idp.clone(),
            tsid: tsid.clone(),
            provider: provider.clone(),
            stale,
            lock,
            metrics: self.metrics.clone(),
        };
        let run = async {
            let task = tokio::spawn(job.run());
            match tokio::time::timeout_at(deadline, task).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(_)) => Err(UpstreamError::ProviderUnavailable(provider.clone())),
                Err(_) => Err(UpstreamError::ProviderUnavailable(provider.clone())),
            }
        };
        self.inflight
            .try_get_with(digest, run)
            .await
            .map_err(|e| (*e).clone())
    }
}

fn lock_key(tsid: &Tsid, provider: &str) -> String {
    let digest = Sha256::new()
        .chain_update(tsid.expose_secret().as_bytes())
        .chain_update([0])
        .chain_update(provider.as_bytes())
        .finalize();
    format!("lock:refresh:{}", hex::encode(digest))
}

/// Whether `current` replaced `stale` and can be used as is.
fn replaced(current: &UpstreamToken, stale: &UpstreamToken, now: u64) -> bool {
    !current.is_expired_at(now)
        && current.access_token.expose_secret() != stale.access_token.expose_secret()
}

impl Job {
    fn not_found(&self) -> UpstreamError {
        UpstreamError::NotFound(self.provider.clone())
    }

    async fn run(self) -> Result<Arc<UpstreamToken>, UpstreamError> {
        let deadline = Instant::now() + MAX_TASK_TIME;
        let outcome = tokio::time::timeout_at(deadline, self.across_replicas(deadline))
            .await
            .unwrap_or_else(|_| Err(UpstreamError::ProviderUnavailable(self.provider.clone())));
        let result = match &outcome {
            Ok((_, Refreshed::Here)) => "ok",
            Ok((_, Refreshed::Elsewhere)) => "replaced_elsewhere",
            Err(UpstreamError::NotFound(_) | UpstreamError::ProviderRefused(_)) => "refused",
            Err(_) => "unavailable",
        };
        self.metrics.record(&self.provider, result);
        outcome.map(|(token, _)| token)
    }

    async fn across_replicas(
        &self,
        deadline: Instant,
    ) -> Result<(Arc<UpstreamToken>, Refreshed), UpstreamError> {
        let owner = crate::random::token(16);
        loop {
            if self
                .store
                .kv()
                .put_if_absent(&self.lock, owner.as_bytes(), LOCK_TTL)
                .await?
            {
                let result = self.as_owner(deadline).await;
                // Best effort: the lock expires by itself if this fails.
                let _ = self
                    .store
                    .kv()
                    .delete_if(&self.lock, owner.as_bytes())
                    .await;
                return result;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
            if let Some(current) = self.store.get(&self.tsid, &self.provider, deadline).await? {
                if replaced(&current, &self.stale, unix_now()) {
                    return Ok((current, Refreshed::Elsewhere));
                }
            }
        }
    }

    async fn as_owner(
        &self,
        deadline: Instant,
    ) -> Result<(Arc<UpstreamToken>, Refreshed), UpstreamError> {
        // Compare before redeeming: another replica may have rotated the refresh token already.
        let current = self
            .store
            .get_latest(&self.tsid, &self.provider, deadline)
            .await?
            .ok_or_else(|| self.not_found())?;
        if replaced(&current, &self.stale, unix_now()) {
            return Ok((current, Refreshed::Elsewhere));
        }
        let refresh_token = current
            .refresh_token
            .clone()
            .ok_or_else(|| self.not_found())?;
        let tokens = self
            .idp
            .refresh(&refresh_token, MAX_REFRESH_TIME)
            .await
            .map_err(|e| match e {
                IdpError::Rejected { .. } => {
                    tracing::debug!(provider = %self.provider, error = %e, "upstream refresh refused");
                    UpstreamError::ProviderRefused(self.provider.clone())
                }
                IdpError::Unavailable { .. } => {
                    tracing::warn!(provider = %self.provider, error = %e, "upstream refresh failed");
                    UpstreamError::ProviderUnavailable(self.provider.clone())
                }
            })?;
        let now = unix_now();
        let fresh = UpstreamToken {
            access_token: tokens.access_token,
            // A provider that does not rotate keeps the old refresh token valid.
            refresh_token: tokens.refresh_token.or(Some(refresh_token)),
            id_token: tokens.id_token.or_else(|| current.id_token.clone()),
            expires_at: tokens.expires_in.map(|d| now + d.as_secs()),
            subject: current.subject.clone(),
            client_id: current.client_id.clone(),
        };
        self.store.put(&self.tsid, &self.provider, &fresh).await?;
        Ok((Arc::new(fresh), Refreshed::Here))
    }
}
