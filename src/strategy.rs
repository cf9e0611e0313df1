// SPDX-License-Identifier: Apache-2.0
//! Stage 3 of the Check pipeline: the backend's outgoing-auth strategy decides which credential
//! the backend receives, as header [`Mutations`].
//!
//! A new strategy is a new file, a new [`Strategy`] variant and a new arm in [`Strategy::apply`].

mod header_injection;
mod mutations;
pub mod token_exchange;
mod upstream_inject;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::time::Instant;

pub use header_injection::HeaderInjection;
pub(crate) use mutations::AUTHORIZATION_NAME;
pub use mutations::{Mutations, SetHeader, ACCESS_TOKEN_QUERY, AUTHORIZATION};
pub use token_exchange::{ExchangeError, TokenExchange};
pub use upstream_inject::UpstreamInject;

use crate::identity::Identity;
use crate::scope::Scopes;
use crate::time::unix_now;
use crate::tools::ToolRules;
use crate::upstream::{usable, Refresher, UpstreamError, UpstreamStore, UpstreamToken};

/// Name used for the default strategy in metrics and metadata.
pub const DEFAULT_BACKEND: &str = "default";

/// Backends by name, plus the default.
#[derive(Debug)]
pub struct Backends {
    by_name: HashMap<Box<str>, Backend>,
    default: Backend,
}

impl Backends {
    /// The named backends and the default.
    pub fn new(by_name: HashMap<Box<str>, Backend>, default: Backend) -> Self {
        Self { by_name, default }
    }

    /// The backend a route names; the default when it names none; `None` when the name is not
    /// configured.
    pub fn resolve(&self, name: Option<&str>) -> Option<&Backend> {
        match name {
            None => Some(&self.default),
            Some(name) => self.by_name.get(name),
        }
    }
}

/// A backend named by the route, with its strategy.
#[derive(Debug)]
pub struct Backend {
    /// The name from `context_extensions`, or `default`.
    pub name: Arc<str>,
    /// What the backend receives.
    pub strategy: Strategy,
    /// Scopes the caller's token must hold (§10); empty for most backends.
    pub required_scopes: Scopes,
    /// What calls of some tools need on top (§10); empty for most backends.
    pub tools: ToolRules,
}

/// One outgoing-auth strategy, validated and ready for the hot path.
#[derive(Debug)]
pub enum Strategy {
    /// The backend receives no credential; the caller's `authorization` is removed.
    Unauthenticated,
    /// The backend receives a static header.
    HeaderInjection(HeaderInjection),
    /// The backend receives the caller's upstream token for one provider.
    UpstreamInject(UpstreamInject),
    /// The backend receives a token issued for it by an RFC 8693 token service.
    TokenExchange(TokenExchange),
}

/// The strategy type, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StrategyKind {
    /// `unauthenticated`
    Unauthenticated,
    /// `header_injection`
    HeaderInjection,
    /// `upstream_inject`
    UpstreamInject,
    /// `token_exchange`
    TokenExchange,
}

impl StrategyKind {
    /// The config `type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "unauthenticated",
            Self::HeaderInjection => "header_injection",
            Self::UpstreamInject => "upstream_inject",
            Self::TokenExchange => "token_exchange",
        }
    }
}

/// Everything a strategy may use for one Check.
#[derive(Debug)]
pub struct StrategyContext<'a> {
    /// The verified caller, absent with anonymous incoming auth.
    pub identity: Option<&'a Identity>,
    /// The caller's JWT as it came, present with `identity` (the subject of a token exchange
    /// when no provider is named). The verified-token cache does not keep a copy.
    pub caller_token: Option<&'a str>,
    /// Upstream token store, present when an authorization server is configured.
    pub store: Option<&'a Arc<UpstreamStore>>,
    /// Refreshes expired upstream tokens, present with an authorization server.
    pub refresher: Option<&'a Refresher>,
    /// When the answer is due (from the Check's `grpc-timeout`).
    pub deadline: Instant,
}

impl StrategyContext<'_> {
    /// The caller's usable upstream token for `provider` (one store read), refreshed first when
    /// it has expired and can be refreshed.
    ///
    /// # Errors
    /// [`StrategyError::Upstream`]: [`UpstreamError::NotFound`] when the caller has no `tsid` or
    /// no usable token, another variant when the store or the provider fails.
    pub async fn upstream_token(
        &self,
        provider: &Arc<str>,
        strategy: &'static str,
    ) -> Result<Arc<UpstreamToken>, StrategyError> {
        let identity = self.identity.ok_or(StrategyError::NoIdentity(strategy))?;
        let not_found = || UpstreamError::NotFound(provider.clone());
        let (Some(tsid), Some(store)) = (&identity.tsid, self.store) else {
            return Err(not_found().into());
        };
        let record = store
            .get(tsid, provider, self.deadline)
            .await?
            .ok_or_else(not_found)?;
        let record = match self.refresher {
            Some(refresher)
                if record.is_expired_at(unix_now()) && record.refresh_token.is_some() =>
            {
                refresher
                    .refresh(store, tsid, provider, record, self.deadline)
                    .await?
            }
            _ => record,
        };
        Ok(usable(record, provider)?)
    }
}

/// Why a strategy could not produce a credential.
#[derive(Debug, thiserror::Error)]
pub enum StrategyError {
    /// The caller's upstream token for the provider cannot be used.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The strategy needs a caller identity and there is none (anonymous incoming auth).
    #[error("{0} requires a caller identity")]
    NoIdentity(&'static str),
    /// The token exchange produced no token.
    #[error("token exchange failed")]
    Exchange(#[source] ExchangeError),
}

impl Strategy {
    /// The strategy type.
    pub fn kind(&self) -> StrategyKind {
        match self {
            Self::Unauthenticated => StrategyKind::Unauthenticated,
            Self::HeaderInjection(_) => StrategyKind::HeaderInjection,
            Self::UpstreamInject(_) => StrategyKind::UpstreamInject,
            Self::TokenExchange(_) => StrategyKind::TokenExchange,
        }
    }

    /// Computes the header mutations for one Check.
    ///
    /// # Errors
    /// [`StrategyError`]; every error is a denial, never an allow.
    pub async fn apply(&self, ctx: &StrategyContext<'_>) -> Result<Mutations, StrategyError> {
        match self {
            Self::Unauthenticated => Ok(Mutations::remove_authorization()),
            Self::HeaderInjection(h) => Ok(h.apply()),
            Self::UpstreamInject(u) => u.apply(ctx).await,
            Self::TokenExchange(t) => t.apply(ctx).await,
        }
    }
}
