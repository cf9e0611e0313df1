// SPDX-License-Identifier: Apache-2.0
//! The custom resources: `MCPExternalAuthConfig` (one backend's outgoing auth) and
//! `MCPAuthzServer` (the service: resource, authorization server, backend → auth-config mapping).
//!
//! Secrets only ever appear as [`SecretKeyRef`]s; the schema carries the type enum, required
//! fields, lengths and patterns, and CEL rules for "exactly the sub-object matching the type"
//! (mirrored in Rust by [`super::convert::check_sub_objects`], since no API server runs offline).

// KubeSchema expands into private copies of the structs it derives for; they trip this lint.
#![allow(unreachable_pub)]

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A DNS label: upstream provider and backend names.
pub const DNS_LABEL: &str = "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$";
/// `subjectTokenType`: the short forms or their RFC 8693 URNs.
pub const SUBJECT_TOKEN_TYPE: &str =
    "^(access_token|id_token|jwt|urn:ietf:params:oauth:token-type:(access_token|id_token|jwt))$";

/// A key of a Secret in the resource's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct SecretKeyRef {
    /// Secret name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Key within the Secret.
    #[schemars(length(min = 1))]
    pub key: String,
}

/// A reference to another resource in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct LocalRef {
    /// Resource name.
    #[schemars(length(min = 1))]
    pub name: String,
}

/// The outgoing-auth types.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AuthType {
    /// No credential reaches the backend.
    Unauthenticated,
    /// A static header from a Secret.
    HeaderInjection,
    /// RFC 8693 token exchange.
    TokenExchange,
    /// The caller's upstream token for one provider.
    UpstreamInject,
}

impl AuthType {
    /// The `spec.type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "unauthenticated",
            Self::HeaderInjection => "headerInjection",
            Self::TokenExchange => "tokenExchange",
            Self::UpstreamInject => "upstreamInject",
        }
    }
}

/// `spec.upstreamInject`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamInjectSpec {
    /// An `MCPAuthzServer` upstream name.
    #[schemars(length(min = 1), regex(pattern = DNS_LABEL))]
    pub provider_name: String,
}

/// `spec.headerInjection`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeaderInjectionSpec {
    /// Header to set.
    #[schemars(length(min = 1))]
    pub header_name: String,
    /// Where its value lives.
    pub value_secret_ref: SecretKeyRef,
}

/// `spec.tokenExchange`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenExchangeSpec {
    /// Token endpoint.
    #[schemars(length(min = 1))]
    pub token_url: String,
    /// Our client id there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Our client secret there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_ref: Option<SecretKeyRef>,
    /// `audience`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Scopes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// `subject_token_type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = SUBJECT_TOKEN_TYPE))]
    pub subject_token_type: Option<String>,
    /// Exchange this upstream provider's token instead of the caller's JWT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1), regex(pattern = DNS_LABEL))]
    pub subject_provider_name: Option<String>,
    /// Longest wait for the endpoint, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 60_000))]
    pub timeout_ms: Option<u32>,
}

/// One backend's outgoing auth.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "mcp-authz.dev",
    version = "v1alpha1",
    kind = "MCPExternalAuthConfig",
    plural = "mcpexternalauthconfigs",
    shortname = "mcpextauth",
    namespaced
)]
#[x_kube(validation = Rule::new("self.type == 'headerInjection' ? has(self.headerInjection) : !has(self.headerInjection)").message("headerInjection configuration must be set if and only if type is 'headerInjection'"))]
#[x_kube(validation = Rule::new("self.type == 'tokenExchange' ? has(self.tokenExchange) : !has(self.tokenExchange)").message("tokenExchange configuration must be set if and only if type is 'tokenExchange'"))]
#[x_kube(validation = Rule::new("self.type == 'upstreamInject' ? has(self.upstreamInject) : !has(self.upstreamInject)").message("upstreamInject configuration must be set if and only if type is 'upstreamInject'"))]
#[x_kube(validation = Rule::new("self.type != 'unauthenticated' || (!has(self.headerInjection) && !has(self.tokenExchange) && !has(self.upstreamInject))").message("no configuration must be set when type is 'unauthenticated'"))]
#[serde(rename_all = "camelCase")]
pub struct MCPExternalAuthConfigSpec {
    /// Which strategy.
    #[serde(rename = "type")]
    pub kind: AuthType,
    /// For `headerInjection`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_injection: Option<HeaderInjectionSpec>,
    /// For `tokenExchange`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_exchange: Option<TokenExchangeSpec>,
    /// For `upstreamInject`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_inject: Option<UpstreamInjectSpec>,
}

/// Upstream provider protocols.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum UpstreamKind {
    /// Plain OAuth 2.0.
    Oauth2,
    /// OpenID Connect with discovery.
    Oidc,
}

/// `upstreams[].oauth2`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OAuth2UpstreamSpec {
    /// Authorization endpoint.
    #[schemars(length(min = 1))]
    pub authorization_endpoint: String,
    /// Token endpoint.
    #[schemars(length(min = 1))]
    pub token_endpoint: String,
    /// Our client id.
    #[schemars(length(min = 1))]
    pub client_id: String,
    /// Our client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_ref: Option<SecretKeyRef>,
    /// How the secret is sent (default `clientSecretBasic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<TokenEndpointAuthMethod>,
    /// Scopes requested at login.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Where the user's stable subject is read (the provider issues no ID token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_info: Option<UserInfoSpec>,
}

/// How an upstream's client secret is sent to its token endpoint.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuthMethod {
    /// HTTP Basic.
    ClientSecretBasic,
    /// In the form body (GitHub).
    ClientSecretPost,
}

/// `upstreams[].oauth2.userInfo`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserInfoSpec {
    /// The endpoint, called with the fresh access token.
    #[schemars(length(min = 1))]
    pub url: String,
    /// Dotted path of the subject in its JSON answer (e.g. `id`).
    #[schemars(length(min = 1))]
    pub subject_field: String,
}

/// `upstreams[].oidc`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OidcUpstreamSpec {
    /// Issuer (discovery base).
    #[schemars(length(min = 1))]
    pub issuer_url: String,
    /// Our client id.
    #[schemars(length(min = 1))]
    pub client_id: String,
    /// Our client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_ref: Option<SecretKeyRef>,
    /// How the secret is sent (default `clientSecretBasic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<TokenEndpointAuthMethod>,
    /// Scopes requested at login.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// The ID-token claim that names the user (default `sub`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_claim: Option<String>,
}

/// One upstream identity provider.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new("self.type == 'oauth2' ? has(self.oauth2) : !has(self.oauth2)").message("oauth2 configuration must be set if and only if type is 'oauth2'"))]
#[x_kube(validation = Rule::new("self.type == 'oidc' ? has(self.oidc) : !has(self.oidc)").message("oidc configuration must be set if and only if type is 'oidc'"))]
#[serde(rename_all = "camelCase")]
pub struct UpstreamSpec {
    /// Provider name (a DNS label).
    #[schemars(length(min = 1), regex(pattern = DNS_LABEL))]
    pub name: String,
    /// Protocol.
    #[serde(rename = "type")]
    pub kind: UpstreamKind,
    /// Whether a first login walks it (default true); an optional one is connected when a
    /// backend needs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    /// Extra query parameters of the authorization request (e.g. Google's `access_type`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub additional_authorization_params: BTreeMap<String, String>,
    /// For `oauth2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2UpstreamSpec>,
    /// For `oidc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OidcUpstreamSpec>,
}

/// Storage backends.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum StorageKind {
    /// In process (one replica).
    Memory,
    /// Redis (shared by replicas).
    Redis,
}

/// `authServer.storage.redis`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RedisSpec {
    /// `redis://` or `rediss://` URL.
    #[schemars(length(min = 1))]
    pub url: String,
    /// Key prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
    /// Per-command timeout in milliseconds (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub timeout_ms: Option<u64>,
    /// Upstream-token records kept decoded in the process (default 100000; 0 = off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub near_cache_entries: Option<u64>,
    /// ACL user (needs `passwordSecretRef`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<SecretKeyRef>,
    /// TLS for every connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<RedisTlsSpec>,
}

/// `authServer.storage.redis.tls`: PEM files from Secrets.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RedisTlsSpec {
    /// CA bundle of the server's certificate (instead of the system roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretKeyRef>,
    /// Client certificate (with `keySecretRef`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<SecretKeyRef>,
    /// The client certificate's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_secret_ref: Option<SecretKeyRef>,
}

/// `authServer.storage`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// Backend.
    #[serde(rename = "type")]
    pub kind: StorageKind,
    /// For `redis`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisSpec>,
}

/// `spec.authServer`: the embedded authorization server.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthServerSpec {
    /// Issuer URL (public).
    #[schemars(length(min = 1))]
    pub issuer: String,
    /// RFC 8707 resources clients may ask tokens for.
    #[schemars(length(min = 1))]
    pub allowed_audiences: Vec<String>,
    /// PKCS#8 PEM P-256 signing key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key_secret_ref: Option<SecretKeyRef>,
    /// Keys that signed before it: still published and verifying (rotation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_signing_key_secret_refs: Vec<SecretKeyRef>,
    /// Upstream providers, in login order.
    #[schemars(length(min = 1))]
    pub upstreams: Vec<UpstreamSpec>,
    /// Where state lives (default memory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,
}

/// `spec.incomingAuth`: verifying callers' JWTs issued elsewhere (Mode A), or overriding the
/// derived settings in Mode B.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IncomingAuthSpec {
    /// Expected `iss`.
    #[schemars(length(min = 1))]
    pub issuer: String,
    /// Audience `aud` must contain.
    #[schemars(length(min = 1))]
    pub audience: String,
    /// JWKS URL (Mode A).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
}

/// One backend name and the auth config it uses.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackendSpec {
    /// The route's `context_extensions` backend name.
    #[schemars(length(min = 1), regex(pattern = DNS_LABEL))]
    pub name: String,
    /// The `MCPExternalAuthConfig` it uses.
    pub external_auth_config_ref: LocalRef,
}

/// The mcp-authz service: everything but the per-backend auth configs.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "mcp-authz.dev",
    version = "v1alpha1",
    kind = "MCPAuthzServer",
    plural = "mcpauthzservers",
    shortname = "mcpauthz",
    namespaced
)]
#[serde(rename_all = "camelCase")]
pub struct MCPAuthzServerSpec {
    /// The protected resource's URL.
    #[schemars(length(min = 1))]
    pub resource_url: String,
    /// The embedded authorization server (absent = Mode A).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_server: Option<AuthServerSpec>,
    /// Incoming JWT verification (required in Mode A).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incoming_auth: Option<IncomingAuthSpec>,
    /// Backends and their auth configs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<BackendSpec>,
    /// Auth config for requests whose route names no backend (default: unauthenticated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_external_auth_config_ref: Option<LocalRef>,
}
