// SPDX-License-Identifier: Apache-2.0
//! The configuration file, as written by an operator.
//!
//! These are the raw serde types: camelCase field names (ToolHive vMCP vocabulary), unknown fields
//! and keys given twice rejected; the `authServer` section is in [`auth_server`]. [`load`] reads a
//! file into them, and [`validate::check`] checks every rule of DESIGN.md §5, collecting all
//! violations at once, and returns the typed [`Spec`] the runtime is built from.

pub mod auth_server;
mod files;
pub mod load;
pub mod spec;
pub mod validate;

use std::collections::BTreeMap;

use serde::Deserialize;

/// A secret written inline in the config file (`clientSecret`, `headerValue`); never printed.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct InlineSecret(String);

impl InlineSecret {
    /// The secret value.
    ///
    /// # Security
    /// Only for building the runtime credential; never log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for InlineSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InlineSecret([redacted])")
    }
}

pub use auth_server::{
    AuthServerConfig, ClaimRuleConfig, OAuth2UpstreamConfig, OidcUpstreamConfig, RedisConfig,
    RedisTlsConfig, ScopeGrantConfig, StorageConfig, StorageType, TokenEndpointAuthMethod,
    UpstreamConfig, UpstreamType, UserInfoConfig,
};
pub use load::{load_file, parse_str, ConfigError, Environment, ProcessEnv};
pub use spec::Spec;
pub use validate::{check, validate, Severity, Violation};

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// Listeners and the protected resource.
    pub server: ServerConfig,
    /// How callers authenticate to us.
    #[serde(default)]
    pub incoming_auth: IncomingAuthConfig,
    /// The embedded authorization server ("Mode B"); absent in Mode A.
    #[serde(default)]
    pub auth_server: Option<AuthServerConfig>,
    /// Per-backend outgoing-auth strategies.
    pub outgoing_auth: OutgoingAuthConfig,
    /// Every outbound HTTPS call (discovery, JWKS, token endpoints, client metadata).
    #[serde(default)]
    pub outbound: OutboundConfig,
}

/// `outbound:` settings of every outbound HTTPS call.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OutboundConfig {
    /// A PEM bundle of CA certificates trusted besides the system roots.
    #[serde(default)]
    pub ca_file: Option<String>,
}

/// `server:` listeners and the protected resource.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServerConfig {
    /// Address of the gRPC listener (ext_authz, health, reflection).
    #[serde(default = "default_grpc_addr")]
    pub grpc_addr: String,
    /// Address of the HTTP listener (metadata, metrics, health).
    #[serde(default = "default_http_addr")]
    pub http_addr: String,
    /// The protected resource's URL; the RFC 9728 metadata URL derives from it.
    pub resource_url: String,
    /// Log format: `text` (default) or `json`.
    #[serde(default)]
    pub log_format: LogFormat,
    /// Largest CheckRequest accepted, in bytes (default 131072); larger ones are refused with
    /// gRPC `OUT_OF_RANGE`, which Envoy (with `failure_mode_allow: false`) turns into a denial.
    #[serde(default = "default_max_check_request_bytes")]
    pub max_check_request_bytes: usize,
    /// Seconds between reporting NOT_SERVING and closing the listeners at shutdown (default 0),
    /// so load balancers stop sending first.
    #[serde(default)]
    pub shutdown_delay_seconds: u64,
    /// Seconds in-flight requests get to finish once the listeners close (default 10).
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace_seconds: u64,
    /// Decision audit events.
    #[serde(default)]
    pub audit: AuditConfig,
    /// Allow outbound URLs (JWKS, token and discovery endpoints) on link-local addresses and
    /// cloud metadata services, which V-15 refuses otherwise (default false).
    #[serde(default)]
    pub allow_link_local_targets: bool,
}

fn default_max_check_request_bytes() -> usize {
    128 * 1024
}

fn default_shutdown_grace() -> u64 {
    10
}

/// `server.audit:` one JSON event per Check.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuditConfig {
    /// Whether events are written (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// File to append to; absent = stdout.
    #[serde(default)]
    pub file: Option<String>,
    /// Share of allowed Checks written, 0.0–1.0 (default 1.0); denials are always written.
    #[serde(default = "default_sample_rate")]
    pub allow_sample_rate: f64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            file: None,
            allow_sample_rate: 1.0,
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_sample_rate() -> f64 {
    1.0
}

fn default_grpc_addr() -> String {
    "127.0.0.1:9191".to_owned()
}

fn default_http_addr() -> String {
    "127.0.0.1:9090".to_owned()
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `incomingAuth:` how a caller proves who it is.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IncomingAuthConfig {
    /// `oidc` (default) or `anonymous`.
    #[serde(default, rename = "type")]
    pub kind: IncomingAuthType,
    /// JWT verification settings, for `oidc`.
    #[serde(default)]
    pub oidc: Option<OidcConfig>,
}

/// Incoming authentication type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncomingAuthType {
    /// Verify a bearer JWT.
    #[default]
    Oidc,
    /// No identity; only strategies that need none may be used.
    Anonymous,
}

/// `incomingAuth.oidc:` JWT verification.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OidcConfig {
    /// Expected `iss`, compared exactly.
    pub issuer: String,
    /// Audience that `aud` must contain (the RFC 8707 resource).
    pub audience: String,
    /// JWKS URL, when there is no embedded authorization server.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// JWKS file, when there is no embedded authorization server.
    #[serde(default)]
    pub jwks_file: Option<String>,
    /// Clock leeway for `exp` and `nbf`, in seconds (default 30).
    #[serde(default)]
    pub leeway_seconds: Option<u64>,
    /// Largest accepted token, in bytes (default 8192).
    #[serde(default)]
    pub max_token_bytes: Option<usize>,
    /// The header `typ` an external issuer's tokens must carry (e.g. `at+jwt`); none by
    /// default. Our own tokens (with `authServer`) must always be `at+jwt`.
    #[serde(default)]
    pub require_typ: Option<String>,
}

/// `outgoingAuth:` what each backend receives.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OutgoingAuthConfig {
    /// The `context_extensions` key that names the backend (default `backend`).
    #[serde(default = "default_backend_key")]
    pub backend_context_key: String,
    /// Strategy for requests whose route names no backend.
    #[serde(default)]
    pub default: Option<StrategyConfig>,
    /// Strategy per backend name (a name given twice is refused).
    #[serde(default, deserialize_with = "load::unique_keys")]
    pub backends: BTreeMap<String, StrategyConfig>,
    /// The exchanged-token cache shared by every `token_exchange` backend.
    #[serde(default)]
    pub token_exchange_cache: TokenExchangeCacheConfig,
}

/// `outgoingAuth.tokenExchangeCache:` tuning of the exchanged-token cache.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TokenExchangeCacheConfig {
    /// Most cached tokens (default 10000).
    #[serde(default = "default_exchange_cache_entries")]
    pub max_entries: u64,
    /// Seconds taken off `expires_in`, at most half of it (default 30).
    #[serde(default = "default_exchange_skew")]
    pub skew_seconds: u64,
    /// Seconds a definite rejection is remembered (default 5; 0 = never).
    #[serde(default = "default_exchange_negative_ttl")]
    pub negative_ttl_seconds: u64,
    /// Percentage of a token's cached life after which it is re-exchanged in the background
    /// (default 80; 0 = never).
    #[serde(default = "default_exchange_refresh_percent")]
    pub refresh_ahead_percent: u8,
    /// Lifetime assumed when the token endpoint gives no `expires_in` (default 60).
    #[serde(default = "default_exchange_lifetime")]
    pub default_lifetime_seconds: u64,
}

impl Default for TokenExchangeCacheConfig {
    fn default() -> Self {
        Self {
            max_entries: default_exchange_cache_entries(),
            skew_seconds: default_exchange_skew(),
            negative_ttl_seconds: default_exchange_negative_ttl(),
            refresh_ahead_percent: default_exchange_refresh_percent(),
            default_lifetime_seconds: default_exchange_lifetime(),
        }
    }
}

fn default_exchange_cache_entries() -> u64 {
    10_000
}
fn default_exchange_skew() -> u64 {
    30
}
fn default_exchange_negative_ttl() -> u64 {
    5
}
fn default_exchange_refresh_percent() -> u8 {
    80
}
fn default_exchange_lifetime() -> u64 {
    60
}

fn default_backend_key() -> String {
    "backend".to_owned()
}

/// One backend's outgoing-auth strategy: `type` plus the sub-object of that type.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StrategyConfig {
    /// `unauthenticated`, `header_injection`, `upstream_inject` or `token_exchange`.
    #[serde(rename = "type")]
    pub kind: String,
    /// For `header_injection`.
    #[serde(default)]
    pub header_injection: Option<HeaderInjectionConfig>,
    /// For `upstream_inject`.
    #[serde(default)]
    pub upstream_inject: Option<UpstreamInjectConfig>,
    /// For `token_exchange`.
    #[serde(default)]
    pub token_exchange: Option<TokenExchangeConfig>,
    /// Scopes the caller's token must hold for this backend (DESIGN.md §10).
    #[serde(default)]
    pub required_scopes: Vec<String>,
    /// Scopes a call of some tools needs on top (DESIGN.md §10).
    #[serde(default)]
    pub tools: Vec<ToolRuleConfig>,
}

/// `tools[]:` one per-tool rule.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ToolRuleConfig {
    /// A tool name, or a pattern where `*` is any run of characters.
    #[serde(default)]
    pub name: String,
    /// What a call of a matching tool needs.
    #[serde(default)]
    pub required_scopes: Vec<String>,
}

/// `headerInjection:` a static header.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HeaderInjectionConfig {
    /// Header to set.
    #[serde(default)]
    pub header_name: String,
    /// Value, inline.
    #[serde(default)]
    pub header_value: Option<InlineSecret>,
    /// Environment variable holding the value.
    #[serde(default)]
    pub header_value_env: Option<String>,
    /// File holding the value (one trailing newline trimmed).
    #[serde(default)]
    pub header_value_file: Option<String>,
}

/// `upstreamInject:` inject the caller's upstream token for one provider.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpstreamInjectConfig {
    /// Name of an `authServer.upstreams[]` entry.
    #[serde(default)]
    pub provider_name: String,
}

/// `tokenExchange:` RFC 8693 token exchange.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TokenExchangeConfig {
    /// Token endpoint (absolute https; http only on loopback).
    #[serde(default)]
    pub token_url: String,
    /// Our client id at the token endpoint.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Client secret, inline (prefer `clientSecretEnv`).
    #[serde(default)]
    pub client_secret: Option<InlineSecret>,
    /// Environment variable holding the client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// File holding the client secret (one trailing newline trimmed).
    #[serde(default)]
    pub client_secret_file: Option<String>,
    /// `audience` form parameter.
    #[serde(default)]
    pub audience: Option<String>,
    /// Scopes, sent space-joined.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// `subject_token_type`: a URN or `access_token` / `id_token` / `jwt`.
    #[serde(default)]
    pub subject_token_type: Option<String>,
    /// Use this upstream provider's access token as the subject instead of the caller's JWT.
    #[serde(default)]
    pub subject_provider_name: Option<String>,
    /// Longest wait for the token endpoint, in milliseconds (default 2000). A Check waits at
    /// most its own remaining deadline, whichever is shorter.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}
