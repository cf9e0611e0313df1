// SPDX-License-Identifier: Apache-2.0
//! Stage 2 of the Check pipeline: the caller's upstream IdP tokens, linked to our JWT by its
//! `tsid` claim and stored per (tsid, provider) in storage schema v1 (DESIGN.md §7.1).
//!
//! Reads are lazy: a Check reads only the one provider its backend needs.

pub mod connect;
mod memory;
mod near;
pub mod refresh;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use self::memory::Sessions;
use self::near::NearCache;
use crate::secret::{is_b64token, Token, Tsid};
use crate::store::{Store, StoreError};
use crate::time::unix_now;
pub use refresh::Refresher;

/// Why the caller's upstream token for a provider cannot be used: the one error of the lookup
/// (store read, refresh, usability). Names the provider, never the token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// No usable token: no `tsid`, no record, or empty or expired with no way to refresh. The
    /// MCP client must send the user through login again.
    #[error("upstream token for provider {0:?} is unavailable; re-authentication required")]
    NotFound(Arc<str>),
    /// The stored record cannot be used (not schema v1 JSON, or a value that cannot be a header).
    #[error("stored upstream record for provider {provider:?} is corrupt: {reason}")]
    Corrupt {
        /// The provider of the record.
        provider: Arc<str>,
        /// What is wrong, never the record's content.
        reason: &'static str,
    },
    /// The store did not answer in time or at all.
    #[error("upstream token store unavailable: {0}")]
    StoreUnavailable(&'static str),
    /// The provider did not answer a refresh (unreachable, 5xx, or not within the Check's
    /// deadline); the refresh may still complete in the background.
    #[error("upstream provider {0:?} unavailable for refresh")]
    ProviderUnavailable(Arc<str>),
    /// The provider refused the refresh token: like [`Self::NotFound`], the user logs in again.
    #[error("upstream token for provider {0:?} is unavailable; re-authentication required")]
    ProviderRefused(Arc<str>),
}

impl From<StoreError> for UpstreamError {
    fn from(err: StoreError) -> Self {
        Self::StoreUnavailable(err.0)
    }
}

/// One provider's tokens for one login session: storage schema v1 (its JSON form, camelCase,
/// absent fields omitted).
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamToken {
    /// The upstream access token, injected or exchanged.
    #[serde(with = "crate::secret::exposed")]
    pub access_token: Token,
    /// Refresh token, if the provider issued one.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::secret::exposed_option"
    )]
    pub refresh_token: Option<Token>,
    /// OIDC ID token, if any.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::secret::exposed_option"
    )]
    pub id_token: Option<Token>,
    /// Access-token expiry, unix seconds; `None` = never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Upstream subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// OAuth client that started the login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

impl std::fmt::Debug for UpstreamToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamToken")
            .field("expires_at", &self.expires_at)
            .field("subject", &self.subject)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl UpstreamToken {
    /// Serialises to the schema v1 JSON record.
    pub fn to_json(&self) -> Vec<u8> {
        // Strings and integers always serialise.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses a schema v1 JSON record.
    ///
    /// # Errors
    /// [`UpstreamError::Corrupt`] when it is not one; the content is never echoed.
    pub fn from_json(bytes: &[u8], provider: &Arc<str>) -> Result<Self, UpstreamError> {
        let corrupt = || UpstreamError::Corrupt {
            provider: provider.clone(),
            reason: "not a schema v1 JSON record",
        };
        // An object only: serde would also read a struct from an array (`["gho_…"]`).
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return Err(corrupt());
        }
        serde_json::from_slice(bytes).map_err(|_| corrupt())
    }

    /// Whether the access token has expired at `now` (unix seconds).
    pub fn is_expired_at(&self, now: u64) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// How long the stored record should live: access-token expiry plus the refresh lifetime,
    /// so an expired access token can still be refreshed; `None` when it never expires.
    pub fn storage_ttl(&self, now: u64, refresh_lifetime: Duration) -> Option<Duration> {
        self.expires_at
            .map(|at| Duration::from_secs(at.saturating_sub(now)).saturating_add(refresh_lifetime))
    }
}

/// `record` if its access token can be injected now.
///
/// # Errors
/// [`UpstreamError::NotFound`] when it is empty or expired; [`UpstreamError::Corrupt`] when it
/// is not usable as a header value.
pub fn usable(
    record: Arc<UpstreamToken>,
    provider: &Arc<str>,
) -> Result<Arc<UpstreamToken>, UpstreamError> {
    if record.access_token.is_empty() || record.is_expired_at(unix_now()) {
        return Err(UpstreamError::NotFound(provider.clone()));
    }
    if !is_b64token(record.access_token.expose_secret()) {
        return Err(UpstreamError::Corrupt {
            provider: provider.clone(),
            reason: "access token is not a valid bearer credential",
        });
    }
    Ok(record)
}

/// How long a stored record outlives its access token, so it can still be refreshed.
pub const DEFAULT_REFRESH_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// Where upstream tokens live: a typed layer over the [`Store`]. In Redis each record is its
/// schema v1 JSON under `upstream:{tsid}:{provider}` (after the key prefix), living as long as
/// [`UpstreamToken::storage_ttl`]; in memory records stay decoded, so a read is a map lookup and
/// a reference-count increment.
#[derive(Debug)]
pub struct UpstreamStore {
    kv: Store,
    /// Present exactly when `kv` is the memory store.
    decoded: Option<Sessions>,
    /// Decoded Redis records, kept correct by Redis's invalidation pushes.
    near: Option<Arc<NearCache>>,
}

impl UpstreamStore {
    /// The token store over `kv`.
    pub fn new(kv: Store) -> Self {
        let decoded = matches!(kv, Store::Memory(_)).then(Sessions::default);
        Self {
            kv,
            decoded,
            near: None,
        }
    }

    /// The token store over `kv` with a near cache of up to `entries` decoded records in front
    /// of Redis (none for the memory store, or when `entries` is 0). Needs a Tokio runtime: it
    /// starts the store's tracking connection.
    pub fn with_near_cache(kv: Store, entries: u64) -> Self {
        let mut store = Self::new(kv);
        if store.decoded.is_none() && entries > 0 {
            let near = Arc::new(NearCache::new(entries));
            let listener: Arc<dyn crate::store::Invalidate> = near.clone();
            store.kv.track("upstream:", Arc::downgrade(&listener));
            store.near = Some(near);
        }
        store
    }

    /// The key/value store beneath, for the authorization server's records and refresh locks.
    pub fn kv(&self) -> &Store {
        &self.kv
    }

    /// Reads one provider's record, giving up at `deadline`; the near cache answers when it can.
    ///
    /// # Errors
    /// [`UpstreamError::Corrupt`] or [`UpstreamError::StoreUnavailable`]; `Ok(None)` when there
    /// is none.
    pub async fn get(
        &self,
        tsid: &Tsid,
        provider: &Arc<str>,
        deadline: Instant,
    ) -> Result<Option<Arc<UpstreamToken>>, UpstreamError> {
        self.read(tsid, provider, deadline, true).await
    }

    /// Like [`Self::get`], but past the near cache: sees every write Redis has acknowledged,
    /// even one whose invalidation has not reached this replica yet. For the read before
    /// redeeming a refresh token, where a copy a few microseconds old could redeem a rotated one.
    ///
    /// # Errors
    /// As [`Self::get`].
    pub async fn get_latest(
        &self,
        tsid: &Tsid,
        provider: &Arc<str>,
        deadline: Instant,
    ) -> Result<Option<Arc<UpstreamToken>>, UpstreamError> {
        self.read(tsid, provider, deadline, false).await
    }

    async fn read(
        &self,
        tsid: &Tsid,
        provider: &Arc<str>,
        deadline: Instant,
        cached: bool,
    ) -> Result<Option<Arc<UpstreamToken>>, UpstreamError> {
        if let Some(sessions) = &self.decoded {
            return Ok(sessions.get(tsid, provider));
        }
        let key = key(tsid, provider);
        let near = self.near.as_deref();
        if let Some(hit) = near.filter(|_| cached).and_then(|near| near.get(&key)) {
            return Ok(Some(hit));
        }
        let ticket = near.map(NearCache::ticket);
        let bytes = self.kv.get(&key, Some(deadline)).await?;
        let record = bytes
            .map(|bytes| UpstreamToken::from_json(&bytes, provider).map(Arc::new))
            .transpose()?;
        if let (Some(near), Some(ticket), Some(record)) = (near, ticket, &record) {
            near.insert(ticket, &key, record.clone());
        }
        Ok(record)
    }

    /// Writes one provider's record, replacing any previous one.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn put(
        &self,
        tsid: &Tsid,
        provider: &str,
        token: &UpstreamToken,
    ) -> Result<(), StoreError> {
        if let Some(sessions) = &self.decoded {
            sessions.put(tsid, provider, Arc::new(token.clone()));
            return Ok(());
        }
        // Whole seconds, at least one, as schema v1 has always written them.
        let ttl = token
            .storage_ttl(unix_now(), DEFAULT_REFRESH_LIFETIME)
            .map(|ttl| Duration::from_secs(ttl.as_secs().max(1)));
        let key = key(tsid, provider);
        let written = self.kv.put(&key, &token.to_json(), ttl).await;
        self.forget(&key);
        written
    }

    /// Deletes one provider's record.
    ///
    /// # Errors
    /// [`StoreError`] when Redis fails.
    pub async fn delete(&self, tsid: &Tsid, provider: &str) -> Result<(), StoreError> {
        if let Some(sessions) = &self.decoded {
            sessions.delete(tsid, provider);
            return Ok(());
        }
        let key = key(tsid, provider);
        let deleted = self.kv.delete(&key).await;
        self.forget(&key);
        deleted
    }

    /// Drops our own cached copy after we wrote `key` (Redis reports the write too, a moment
    /// later; a Check in between must not see the old record).
    fn forget(&self, key: &str) {
        if let Some(near) = &self.near {
            crate::store::Invalidate::key(&**near, key.as_bytes());
        }
    }

    /// How many records the near cache holds (`None` without one); for tests and diagnostics.
    pub fn near_cache_len(&self) -> Option<u64> {
        self.near.as_deref().map(NearCache::len)
    }

    /// How many records the memory store holds (`None` for Redis); for tests and diagnostics.
    pub fn memory_record_count(&self) -> Option<usize> {
        self.decoded.as_ref().map(Sessions::count)
    }
}

/// The record's key, before the store's prefix.
fn key(tsid: &Tsid, provider: &str) -> String {
    format!("upstream:{}:{provider}", tsid.expose_secret())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> Arc<str> {
        Arc::from("github")
    }

    #[test]
    fn schema_v1_round_trips_with_camel_case_fields() {
        let json = br#"{"accessToken":"gho_a","refreshToken":"r","expiresAt":42,"subject":"u1","clientId":"c"}"#;
        let token = UpstreamToken::from_json(json, &provider()).unwrap();
        assert_eq!(token.access_token.expose_secret(), "gho_a");
        assert_eq!(token.expires_at, Some(42));
        let back: serde_json::Value = serde_json::from_slice(&token.to_json()).unwrap();
        assert_eq!(back["accessToken"], "gho_a");
        assert_eq!(back["refreshToken"], "r");
        assert_eq!(back["clientId"], "c");
        assert!(back.get("idToken").is_none());
    }

    #[test]
    fn a_record_must_be_a_json_object() {
        for bad in [&br#"["gho_in_array"]"#[..], b"\"gho\"", b"null", b""] {
            assert!(
                matches!(
                    UpstreamToken::from_json(bad, &provider()),
                    Err(UpstreamError::Corrupt { .. })
                ),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(UpstreamToken::from_json(b" {\"accessToken\":\"a\"}", &provider()).is_ok());
    }

    #[test]
    fn corrupt_record_error_never_echoes_content() {
        let err = UpstreamToken::from_json(b"{\"accessToken\": gho_leak", &provider()).unwrap_err();
        assert!(matches!(err, UpstreamError::Corrupt { .. }));
        assert!(!err.to_string().contains("gho_leak"));
    }

    #[test]
    fn ttl_is_expiry_plus_refresh_lifetime() {
        let mut token = UpstreamToken::from_json(br#"{"accessToken":"a"}"#, &provider()).unwrap();
        assert_eq!(token.storage_ttl(100, Duration::from_secs(10)), None);
        token.expires_at = Some(160);
        assert_eq!(
            token.storage_ttl(100, Duration::from_secs(10)),
            Some(Duration::from_secs(70))
        );
    }

    #[test]
    fn b64token_rejects_header_injection() {
        assert!(is_b64token("gho_abc.DEF-123~+/="));
        assert!(!is_b64token("abc\r\nx-evil: 1"));
        assert!(!is_b64token("a b"));
        assert!(!is_b64token(""));
    }
}
