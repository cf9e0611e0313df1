// SPDX-License-Identifier: Apache-2.0
//! What a Check leaves for the authorization server when a caller's token for a provider is
//! missing or cannot be refreshed (DESIGN.md §11): a mark that the provider is *wanted* under
//! the `tsid`, so the next login of that user walks it, and, for a client that can show a URL,
//! a single-use connect id bound to (tsid, sub, provider) that opens the connect page.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::UpstreamStore;
use crate::random;
use crate::secret::Tsid;
use crate::store::StoreError;

/// What the connect page of one id may do: connect `provider` for the user `subject` whose
/// records live under `tsid`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectGrant {
    /// The user's upstream-token records.
    #[serde(with = "crate::secret::exposed")]
    pub tsid: Tsid,
    /// Our `sub` of the user the page was made for.
    pub subject: String,
    /// The provider to connect.
    pub provider: String,
}

impl std::fmt::Debug for ConnectGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectGrant")
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

/// How Checks point users at the connect page.
#[derive(Debug, Clone)]
pub struct ConnectSettings {
    /// `{issuer}/oauth/connect/`: a connect id completes it.
    pub page: String,
    /// How long a connect id can be opened.
    pub id_lifetime: Duration,
    /// How long a provider stays wanted (a refresh token's lifetime).
    pub wanted_lifetime: Duration,
}

fn wanted_key(tsid: &Tsid, provider: &str) -> String {
    format!("wanted:{}:{provider}", random::digest(tsid.expose_secret()))
}

fn connect_key(id: &str) -> String {
    format!("connect:{}", random::digest(id))
}

impl UpstreamStore {
    /// Marks `provider` wanted by the user of `tsid` for `ttl`.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    pub async fn want(&self, tsid: &Tsid, provider: &str, ttl: Duration) -> Result<(), StoreError> {
        self.kv
            .put(&wanted_key(tsid, provider), b"1", Some(ttl))
            .await
    }

    /// Whether a Check has asked for `provider` for the user of `tsid` since it was last
    /// connected.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    pub async fn is_wanted(&self, tsid: &Tsid, provider: &str) -> Result<bool, StoreError> {
        Ok(self
            .kv
            .get(&wanted_key(tsid, provider), None)
            .await?
            .is_some())
    }

    /// `provider` is connected again: no longer wanted.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    pub async fn unwant(&self, tsid: &Tsid, provider: &str) -> Result<(), StoreError> {
        self.kv.delete(&wanted_key(tsid, provider)).await
    }

    /// A new connect id for `grant`, openable once within `ttl`.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    pub async fn mint_connect(
        &self,
        grant: &ConnectGrant,
        ttl: Duration,
    ) -> Result<String, StoreError> {
        let id = random::token(32);
        let json = serde_json::to_vec(grant).map_err(|_| StoreError("cannot encode"))?;
        self.kv.put(&connect_key(&id), &json, Some(ttl)).await?;
        Ok(id)
    }

    /// The grant of connect id `id`, consumed: a second call finds nothing.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or holds something else under the id.
    pub async fn take_connect(&self, id: &str) -> Result<Option<ConnectGrant>, StoreError> {
        self.kv
            .take(&connect_key(id))
            .await?
            .map(|b| serde_json::from_slice(&b).map_err(|_| StoreError("corrupt connect id")))
            .transpose()
    }
}
