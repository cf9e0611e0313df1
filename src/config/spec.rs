// SPDX-License-Identifier: Apache-2.0
//! The typed result of validation: what a configuration means once every rule holds. Secrets
//! are resolved (inline or from the environment) into [`Token`]s, URLs are parsed and the
//! strategy and upstream kinds are enums, so building the runtime from a [`Spec`] cannot fail on
//! anything a rule checks.

use std::sync::Arc;
use std::time::Duration;

use super::Config;
use crate::secret::Token;
use crate::tools::ToolRules;

/// A configuration that passed every §5 rule.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The file as written: sections the runtime reads as they are (listeners, incoming auth,
    /// storage, lifetimes, cache settings), and what a reload compares.
    pub raw: Arc<Config>,
    /// `outgoingAuth.default`, if set.
    pub default: Option<BackendSpec>,
    /// `outgoingAuth.backends`, in name order.
    pub backends: Vec<(String, BackendSpec)>,
    /// The scopes advertised and granted: `authServer.scopesSupported`, or else every scope a
    /// backend or tool rule requires (sorted, each once).
    pub scopes_supported: Vec<String>,
    /// `authServer.scopeGrants`, in scope order.
    pub scope_grants: Vec<(String, ScopeGrant)>,
    /// `authServer.upstreams`, in login order (empty without an authorization server).
    pub upstreams: Vec<UpstreamSpec>,
    /// `authServer.storage.redis`, its password resolved, when the store is Redis.
    pub redis: Option<RedisSpec>,
}

/// `authServer.storage.redis`, validated.
#[derive(Debug, Clone)]
pub struct RedisSpec {
    /// `redis://` or `rediss://` URL (a password in it is the file's).
    pub url: String,
    /// ACL user.
    pub username: Option<String>,
    /// The password from `passwordEnv` or `passwordFile`.
    pub password: Option<Token>,
    /// TLS for every connection (also set for `rediss://` without a `tls` section).
    pub tls: Option<RedisTlsSpec>,
}

/// TLS files of a Redis connection, read when the store is built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisTlsSpec {
    /// CA bundle replacing the system roots.
    pub ca_file: Option<String>,
    /// Client certificate and key, for mutual TLS.
    pub client: Option<(String, String)>,
}

/// Who may be granted a scope, by the first upstream's verified ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeGrant {
    /// Its `sub` is one of these.
    Subjects(Vec<String>),
    /// Claim `name` is, or (an array) holds, one of `values`.
    Claim {
        /// The claim.
        name: String,
        /// The values that pass.
        values: Vec<String>,
    },
}

/// One backend: what it receives and what a caller's token needs for it.
#[derive(Debug, Clone)]
pub struct BackendSpec {
    /// Its outgoing-auth strategy.
    pub strategy: StrategySpec,
    /// `requiredScopes`: valid scope tokens, each once, in the order written.
    pub required_scopes: Vec<String>,
    /// `tools`: valid patterns, each with at least one scope.
    pub tools: ToolRules,
}

/// One backend's outgoing-auth strategy.
#[derive(Debug, Clone)]
pub enum StrategySpec {
    /// Nothing is added.
    Unauthenticated,
    /// A static header.
    HeaderInjection {
        /// Header name as configured (a valid, settable HTTP header name).
        name: String,
        /// The resolved value (printable header text).
        value: Token,
    },
    /// The caller's upstream token for `provider` (a configured upstream).
    UpstreamInject {
        /// Name of an `authServer.upstreams[]` entry.
        provider: String,
    },
    /// RFC 8693 token exchange.
    TokenExchange(TokenExchangeSpec),
}

/// A `token_exchange` backend.
#[derive(Debug, Clone)]
pub struct TokenExchangeSpec {
    /// Token endpoint (absolute https, or http on loopback).
    pub token_url: url::Url,
    /// Our client id, if any.
    pub client_id: Option<String>,
    /// The resolved client secret, if any.
    pub client_secret: Option<Token>,
    /// `audience`.
    pub audience: Option<String>,
    /// Scopes.
    pub scopes: Vec<String>,
    /// The `subject_token_type` URN (short forms normalised; `access_token` by default).
    pub subject_token_type: &'static str,
    /// The upstream whose token is the subject, instead of the caller's JWT.
    pub subject_provider: Option<String>,
    /// Longest wait for the endpoint (`timeoutMs`, 2 s by default).
    pub timeout: Duration,
}

/// One upstream identity provider.
#[derive(Debug, Clone)]
pub struct UpstreamSpec {
    /// Provider name (a DNS label, unique).
    pub name: String,
    /// Our client id at the provider.
    pub client_id: String,
    /// The resolved client secret, if any.
    pub client_secret: Option<Token>,
    /// How the secret is sent to the token endpoint.
    pub client_auth: crate::config::TokenEndpointAuthMethod,
    /// Scopes requested at login, as configured.
    pub scopes: Vec<String>,
    /// Whether a first login walks it (§11).
    pub required: bool,
    /// Extra authorization-request parameters, none of ours.
    pub authorization_params: Vec<(String, String)>,
    /// Where its endpoints come from.
    pub endpoints: UpstreamEndpoints,
}

/// An upstream's protocol and endpoints.
#[derive(Debug, Clone)]
pub enum UpstreamEndpoints {
    /// Plain OAuth 2.0 with configured endpoints.
    OAuth2 {
        /// Authorization endpoint.
        authorization: url::Url,
        /// Token endpoint.
        token: url::Url,
        /// Where the user's subject is read, if anywhere.
        user_info: Option<Box<UserInfoSpec>>,
    },
    /// OpenID Connect: endpoints and keys by discovery from the issuer.
    Oidc {
        /// Issuer URL as configured.
        issuer: String,
        /// The ID-token claim that names the user.
        subject_claim: String,
    },
}

/// `oauth2.userInfo`, validated.
#[derive(Debug, Clone)]
pub struct UserInfoSpec {
    /// The endpoint.
    pub url: url::Url,
    /// The subject's path in the answer, one member name per step.
    pub subject_field: Vec<String>,
}
