// SPDX-License-Identifier: Apache-2.0
//! The raw `authServer:` section: the embedded authorization server, its upstream identity
//! providers and its storage.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::InlineSecret;

/// `authServer:` the embedded OAuth authorization server.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthServerConfig {
    /// Issuer URL of our own tokens.
    #[serde(default)]
    pub issuer: String,
    /// Audiences (RFC 8707 resources) a client may ask tokens for.
    #[serde(default)]
    pub allowed_audiences: Vec<String>,
    /// PKCS#8 PEM P-256 signing key; absent = an ephemeral key (with a warning).
    #[serde(default)]
    pub signing_key_file: Option<String>,
    /// Keys that signed earlier: published in the JWKS and still accepted, never used to sign
    /// (rotation, DESIGN.md §12).
    #[serde(default)]
    pub previous_signing_key_files: Vec<String>,
    /// Scopes we advertise and grant (DESIGN.md §10); absent = every scope a backend requires.
    #[serde(default)]
    pub scopes_supported: Option<Vec<String>>,
    /// Scopes only some users are granted (DESIGN.md §10), by scope (a scope given twice is
    /// refused).
    #[serde(default, deserialize_with = "super::load::unique_keys")]
    pub scope_grants: BTreeMap<String, ScopeGrantConfig>,
    /// Client ID Metadata Document settings (DESIGN.md §13).
    #[serde(default)]
    pub client_metadata: ClientMetadataConfig,
    /// Upstream identity providers, walked in order at login.
    #[serde(default)]
    pub upstreams: Vec<UpstreamConfig>,
    /// Where upstream tokens and server state live.
    #[serde(default)]
    pub storage: StorageConfig,
    /// Lifetime of our access tokens, in seconds (default 3600).
    #[serde(default = "default_access_token_lifetime")]
    pub access_token_lifetime_seconds: u64,
    /// Lifetime of our refresh tokens, in seconds (default 30 days).
    #[serde(default = "default_refresh_token_lifetime")]
    pub refresh_token_lifetime_seconds: u64,
    /// Lifetime of an authorization code, in seconds (default 60).
    #[serde(default = "default_code_lifetime")]
    pub authorization_code_lifetime_seconds: u64,
    /// How long a user may take to walk the upstream logins, in seconds (default 600).
    #[serde(default = "default_login_timeout")]
    pub login_timeout_seconds: u64,
}

fn default_required() -> bool {
    true
}
fn default_access_token_lifetime() -> u64 {
    3600
}
fn default_refresh_token_lifetime() -> u64 {
    30 * 24 * 3600
}
fn default_code_lifetime() -> u64 {
    60
}
fn default_login_timeout() -> u64 {
    600
}

/// `clientMetadata:` how client metadata documents are fetched.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClientMetadataConfig {
    /// Fetch documents from loopback hosts too (for tests; never in production).
    #[serde(default)]
    pub allow_loopback: bool,
}

/// `scopeGrants.<scope>:` who may be granted the scope, judged by the first upstream's ID
/// token: exactly one of `subjects` and `claim`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScopeGrantConfig {
    /// The ID token `sub` values that may hold the scope.
    #[serde(default)]
    pub subjects: Option<Vec<String>>,
    /// A claim that must hold one of some values.
    #[serde(default)]
    pub claim: Option<ClaimRuleConfig>,
}

/// `claim:` an ID-token claim (a string, or an array of strings) and the values that pass.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClaimRuleConfig {
    /// The claim's name.
    #[serde(default)]
    pub name: String,
    /// Values of which the claim must hold one.
    #[serde(default)]
    pub values: Vec<String>,
}

/// One upstream identity provider.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpstreamConfig {
    /// Provider name used by `providerName` references and storage keys (a DNS label).
    #[serde(default)]
    pub name: String,
    /// `oauth2` or `oidc`.
    #[serde(rename = "type")]
    pub kind: UpstreamType,
    /// Whether a first login walks it (default `true`); an optional one is connected when a
    /// backend needs it (DESIGN.md §11).
    #[serde(default = "default_required")]
    pub required: bool,
    /// Extra query parameters of the authorization request (e.g. Google's `access_type`,
    /// Auth0's `audience`); a name given twice is refused.
    #[serde(default, deserialize_with = "super::load::unique_keys")]
    pub additional_authorization_params: BTreeMap<String, String>,
    /// Endpoints for `oauth2`.
    #[serde(default)]
    pub oauth2: Option<OAuth2UpstreamConfig>,
    /// Discovery settings for `oidc`.
    #[serde(default)]
    pub oidc: Option<OidcUpstreamConfig>,
}

/// Upstream provider protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamType {
    /// Plain OAuth 2.0 endpoints.
    Oauth2,
    /// OpenID Connect with discovery.
    Oidc,
}

/// `upstreams[].oauth2:`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OAuth2UpstreamConfig {
    /// Authorization endpoint URL.
    pub authorization_endpoint: String,
    /// Token endpoint URL.
    pub token_endpoint: String,
    /// Our client id at the provider.
    pub client_id: String,
    /// Client secret, inline (prefer `clientSecretEnv`).
    #[serde(default)]
    pub client_secret: Option<InlineSecret>,
    /// Environment variable holding the client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// File holding the client secret (one trailing newline trimmed).
    #[serde(default)]
    pub client_secret_file: Option<String>,
    /// How the client secret is sent to the token endpoint (default `client_secret_basic`).
    #[serde(default)]
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    /// Scopes requested at login.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Where the user's stable subject comes from (the provider issues no ID token).
    #[serde(default)]
    pub user_info: Option<UserInfoConfig>,
}

/// RFC 8414 `token_endpoint_auth_method` values we can send.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuthMethod {
    /// HTTP Basic with the form-encoded id and secret (RFC 6749 §2.3.1).
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body (GitHub documents this).
    ClientSecretPost,
}

/// `oauth2.userInfo:` a GET with the fresh access token whose JSON answer names the user.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UserInfoConfig {
    /// The endpoint (e.g. `https://api.github.com/user`).
    #[serde(default)]
    pub url: String,
    /// Dotted path of the subject in the answer (e.g. `id`); a number is used in decimal.
    #[serde(default)]
    pub subject_field: String,
}

/// `upstreams[].oidc:`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OidcUpstreamConfig {
    /// Issuer URL (discovery at `/.well-known/openid-configuration`).
    pub issuer_url: String,
    /// Our client id at the provider.
    pub client_id: String,
    /// Client secret, inline (prefer `clientSecretEnv`).
    #[serde(default)]
    pub client_secret: Option<InlineSecret>,
    /// Environment variable holding the client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// File holding the client secret (one trailing newline trimmed).
    #[serde(default)]
    pub client_secret_file: Option<String>,
    /// How the client secret is sent to the token endpoint (default `client_secret_basic`).
    #[serde(default)]
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    /// Scopes requested at login (`openid` is implied).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The ID-token claim that names the user (default `sub`).
    #[serde(default)]
    pub subject_claim: Option<String>,
}

/// `authServer.storage:`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StorageConfig {
    /// `memory` (default) or `redis`.
    #[serde(default, rename = "type")]
    pub kind: StorageType,
    /// Redis settings, for `redis`.
    #[serde(default)]
    pub redis: Option<RedisConfig>,
}

/// Storage backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageType {
    /// In-process; lost on restart, not shared between replicas.
    #[default]
    Memory,
    /// Redis, shared between replicas.
    Redis,
}

/// `authServer.storage.redis:`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RedisConfig {
    /// `redis://host:port[/db]`.
    pub url: String,
    /// Prefix of every key (default `mcp-authz:`).
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// Per-command timeout in milliseconds (default 100).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Upstream-token records kept decoded in the process, kept correct by Redis's
    /// invalidation pushes (default 100000; 0 turns the near cache off).
    #[serde(default = "default_near_cache_entries")]
    pub near_cache_entries: u64,
    /// ACL user (needs a password).
    #[serde(default)]
    pub username: Option<String>,
    /// Environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// File holding the password (one trailing newline trimmed).
    #[serde(default)]
    pub password_file: Option<String>,
    /// TLS settings; set, every connection uses TLS (as `rediss://` does).
    #[serde(default)]
    pub tls: Option<RedisTlsConfig>,
}

/// `authServer.storage.redis.tls:`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RedisTlsConfig {
    /// PEM bundle of the CAs that sign the server's certificate (instead of the system roots).
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Client certificate (PEM), for servers that require one.
    #[serde(default)]
    pub cert_file: Option<String>,
    /// The client certificate's private key (PEM).
    #[serde(default)]
    pub key_file: Option<String>,
}

fn default_near_cache_entries() -> u64 {
    100_000
}

fn default_key_prefix() -> String {
    "mcp-authz:".to_owned()
}
