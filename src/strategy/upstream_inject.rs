// SPDX-License-Identifier: Apache-2.0
//! `upstream_inject`: the backend receives the caller's own upstream IdP access token (obtained at
//! login through the embedded authorization server) as `authorization: Bearer …`.

use std::sync::Arc;

use super::{Mutations, StrategyContext, StrategyError, AUTHORIZATION_NAME};

/// Inject the upstream token of one provider.
#[derive(Debug)]
pub struct UpstreamInject {
    /// Name of an `authServer.upstreams[]` entry.
    pub provider: Arc<str>,
}

impl UpstreamInject {
    /// Reads the caller's token for this provider (one store read; refreshed when expired) and
    /// sets it as the bearer.
    ///
    /// # Errors
    /// [`StrategyError::Upstream`] when the caller has no `tsid` or no usable token
    /// for the provider; the same error when the store fails.
    pub async fn apply(&self, ctx: &StrategyContext<'_>) -> Result<Mutations, StrategyError> {
        let record = ctx
            .upstream_token(&self.provider, "upstream_inject")
            .await?;
        let token = record.access_token.expose_secret();
        let mut value = String::with_capacity(7 + token.len());
        value.push_str("Bearer ");
        value.push_str(token);
        Ok(Mutations::set(AUTHORIZATION_NAME.clone(), value))
    }
}
