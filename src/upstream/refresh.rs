// SPDX-License-Identifier: Apache-2.0
//! Refresh of an expired upstream access token in the Check path (DESIGN.md §7.4).
//!
//! One refresh per (tsid, provider) at a time, inside a process (concurrent Checks share one
//! call) and across replicas (a lock entry in the shared store). The lock owner re-reads the
//! record before redeeming, so a refresh token another replica already rotated is never
//! redeemed twice; replicas that lose the race wait for the record to change.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::idp::{IdpError, UpstreamProvider};
use super::{unix_now, StoreError, UpstreamStore, UpstreamToken, UpstreamTokenNotFound};
use crate::secret::Tsid;
use crate::telemetry::metrics::RefreshMetrics;

/// How long a replica may hold the refresh lock.
const LOCK_TTL: Duration = Duration::from_secs(10);
/// How often a waiting replica re-reads the record.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Kept back from the Check's deadline for answering Envoy.
const RESPONSE_MARGIN: Duration = Duration::from_millis(10);
/// Longest wait for a provider's token endpoint.
const MAX_REFRESH_TIME: Duration = Duration::from_secs(5);

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
    /// [`StoreError::NotFound`] when the token cannot be refreshed (no refresh token, the
    /// provider refused): the user must log in again. [`StoreError::Unavailable`] when the
    /// provider or the store does not answer in time.
    pub async fn refresh(
        &self,
        store: &UpstreamStore,
        tsid: &Tsid,
        provider: &Arc<str>,
        stale: Arc<UpstreamToken>,
        deadline: Instant,
    ) -> Result<Arc<UpstreamToken>, StoreError> {
        let not_found = || {
            StoreError::NotFound(UpstreamTokenNotFound {
                provider: provider.clone(),
            })
        };
        let idp = self.providers.get(provider).ok_or_else(not_found)?;
        let key = lock_key(tsid, provider);
        let run = async {
            let outcome = tokio::time::timeout_at(
                deadline,
                refresh_across_replicas(store, idp, tsid, provider, &stale, &key, deadline),
            )
            .await
            .unwrap_or(Err(StoreError::Unavailable("upstream refresh timed out")));
            let result = match &outcome {
                Ok((_, Refreshed::Here)) => "ok",
                Ok((_, Refreshed::Elsewhere)) => "replaced_elsewhere",
                Err(StoreError::NotFound(_)) => "refused",
                Err(_) => "unavailable",
            };
            self.metrics.record(provider, result);
            outcome.map(|(token, _)| token)
        };
        self.inflight
            .try_get_with(key_digest(&key), run)
            .await
            .map_err(|e| match &*e {
                StoreError::NotFound(missing) => StoreError::NotFound(missing.clone()),
                StoreError::Corrupt { provider, reason } => StoreError::Corrupt {
                    provider: provider.clone(),
                    reason,
                },
                StoreError::Unavailable(why) => StoreError::Unavailable(why),
            })
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

fn key_digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Who produced the fresh record.
enum Refreshed {
    /// This replica, at the provider.
    Here,
    /// Another replica (found in the store).
    Elsewhere,
}

/// Whether `current` replaced `stale` and can be used as is.
fn replaced(current: &UpstreamToken, stale: &UpstreamToken, now: u64) -> bool {
    !current.is_expired_at(now)
        && current.access_token.expose_secret() != stale.access_token.expose_secret()
}

async fn refresh_across_replicas(
    store: &UpstreamStore,
    idp: &UpstreamProvider,
    tsid: &Tsid,
    provider: &Arc<str>,
    stale: &UpstreamToken,
    lock: &str,
    deadline: Instant,
) -> Result<(Arc<UpstreamToken>, Refreshed), StoreError> {
    let owner = crate::authserver::random::token(16);
    loop {
        if store
            .put_entry_if_absent(lock, owner.as_bytes(), LOCK_TTL)
            .await?
        {
            let result = refresh_as_owner(store, idp, tsid, provider, stale, deadline).await;
            // Best effort: the lock expires by itself if this fails.
            let _ = store.delete_entry_if(lock, owner.as_bytes()).await;
            return result;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
        if let Some(current) = store.get(tsid, provider, deadline).await? {
            if replaced(&current, stale, unix_now()) {
                return Ok((current, Refreshed::Elsewhere));
            }
        }
    }
}

async fn refresh_as_owner(
    store: &UpstreamStore,
    idp: &UpstreamProvider,
    tsid: &Tsid,
    provider: &Arc<str>,
    stale: &UpstreamToken,
    deadline: Instant,
) -> Result<(Arc<UpstreamToken>, Refreshed), StoreError> {
    let not_found = || {
        StoreError::NotFound(UpstreamTokenNotFound {
            provider: provider.clone(),
        })
    };
    // Compare before redeeming: another replica may have rotated the refresh token already.
    let current = store
        .get(tsid, provider, deadline)
        .await?
        .ok_or_else(not_found)?;
    if replaced(&current, stale, unix_now()) {
        return Ok((current, Refreshed::Elsewhere));
    }
    let refresh_token = current.refresh_token.clone().ok_or_else(not_found)?;
    let budget = deadline
        .saturating_duration_since(Instant::now())
        .saturating_sub(RESPONSE_MARGIN)
        .min(MAX_REFRESH_TIME);
    let tokens = idp
        .refresh(&refresh_token, budget)
        .await
        .map_err(|e| match e {
            IdpError::Rejected { .. } => {
                tracing::debug!(provider = %provider, error = %e, "upstream refresh refused");
                not_found()
            }
            IdpError::Unavailable { .. } => {
                tracing::warn!(provider = %provider, error = %e, "upstream refresh failed");
                StoreError::Unavailable("upstream token endpoint unavailable")
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
    store.put(tsid, provider, &fresh).await?;
    Ok((Arc::new(fresh), Refreshed::Here))
}
