// SPDX-License-Identifier: Apache-2.0
//! The embedded OAuth 2.1 authorization server ("Mode B", DESIGN.md §7).
//!
//! An MCP client follows our 401's `resource_metadata`, discovers this server ([`metadata`]),
//! registers ([`register`]) and sends the user to [`login`], which walks the user through every
//! configured upstream identity provider in order, stores their tokens under a fresh `tsid`, and
//! hands the client a code that [`token`] turns into our ES256 JWT carrying that `tsid`. Check
//! then verifies that JWT in process with the same key.

pub mod cimd;
mod complete;
mod connect;
mod consent;
pub mod error;
pub mod keys;
mod login;
mod metadata;
pub mod records;
mod register;
mod respond;
mod session;
mod token;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

pub use error::OAuthError;
pub use keys::SigningKey;

use self::cimd::ClientDocuments;
use self::records::ClientRecord;
use crate::config::spec::ScopeGrant;
use crate::config::AuthServerConfig;
use crate::oauth::provider::{UpstreamProvider, UpstreamUser};
use crate::scope::Scopes;
use crate::telemetry::audit::{now_ms, AuditHandle, LoginEvent};
use crate::telemetry::metrics::LoginMetrics;
use crate::upstream::connect::ConnectSettings;
use crate::upstream::UpstreamStore;

/// The `typ` of the access tokens we issue (RFC 9068 §2.1), and require back.
pub const TOKEN_TYPE: &str = "at+jwt";

/// Lifetimes of what the server issues.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// Our access tokens.
    pub access_token: Duration,
    /// Our refresh tokens.
    pub refresh_token: Duration,
    /// Authorization codes.
    pub code: Duration,
    /// A login walking the upstream chain.
    pub login: Duration,
}

/// The authorization server: issuer, key, upstream chain, and the store holding its records and
/// the upstream tokens it writes.
pub struct AuthServer {
    issuer: String,
    base_path: String,
    allowed_audiences: Vec<String>,
    /// What the JWKS endpoint lists.
    published_keys: Vec<serde_json::Value>,
    encoding: EncodingKey,
    header: Header,
    providers: Vec<Arc<UpstreamProvider>>,
    scopes_supported: Scopes,
    scope_grants: Vec<(String, ScopeGrant)>,
    documents: ClientDocuments,
    lifetimes: Lifetimes,
    store: Arc<UpstreamStore>,
    /// Whether the session cookie is `Secure` (§11: unless the issuer is http on loopback).
    secure_cookies: bool,
    metrics: LoginMetrics,
    audit: Option<AuditHandle>,
}

impl std::fmt::Debug for AuthServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthServer")
            .field("issuer", &self.issuer)
            .field("providers", &self.providers)
            .finish_non_exhaustive()
    }
}

impl AuthServer {
    /// The server for a validated config.
    ///
    /// # Errors
    /// A message when the issuer is not a URL or the key cannot sign.
    pub fn new(
        config: &AuthServerConfig,
        key: Arc<SigningKey>,
        providers: Vec<Arc<UpstreamProvider>>,
        scopes_supported: Scopes,
        scope_grants: Vec<(String, ScopeGrant)>,
        documents: ClientDocuments,
        store: Arc<UpstreamStore>,
    ) -> Result<Self, String> {
        let issuer_url = url::Url::parse(&config.issuer).map_err(|e| format!("issuer: {e}"))?;
        let encoding = key.encoding_key().map_err(|e| e.to_string())?;
        let key_jwk = key.public_jwk();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(key.kid().to_owned());
        header.typ = Some(TOKEN_TYPE.to_owned());
        Ok(Self {
            issuer: config.issuer.trim_end_matches('/').to_owned(),
            base_path: issuer_url.path().trim_end_matches('/').to_owned(),
            allowed_audiences: config.allowed_audiences.clone(),
            encoding,
            header,
            providers,
            scopes_supported,
            scope_grants,
            documents,
            lifetimes: Lifetimes {
                access_token: Duration::from_secs(config.access_token_lifetime_seconds),
                refresh_token: Duration::from_secs(config.refresh_token_lifetime_seconds),
                code: Duration::from_secs(config.authorization_code_lifetime_seconds),
                login: Duration::from_secs(config.login_timeout_seconds),
            },
            store,
            secure_cookies: session::secure(&config.issuer),
            metrics: LoginMetrics::default(),
            audit: None,
            published_keys: vec![key_jwk],
        })
    }

    /// The server, counting its logins in `metrics` and writing them to `audit`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: LoginMetrics, audit: Option<AuditHandle>) -> Self {
        self.metrics = metrics;
        self.audit = audit;
        self
    }

    /// The server publishing `jwks` (the signing key and the keys that signed before it) at
    /// its JWKS endpoint.
    #[must_use]
    pub fn with_published_keys(mut self, jwks: Vec<serde_json::Value>) -> Self {
        self.published_keys = jwks;
        self
    }

    /// Counts and audits how a walk (or a connect page, `flow` `connect`) ended.
    fn ended(
        &self,
        flow: &'static str,
        result: &'static str,
        pending: Option<&records::PendingLogin>,
        subject: Option<&str>,
        session_created: bool,
    ) {
        self.metrics.login(flow, result);
        if let Some(audit) = &self.audit {
            audit.record_login(LoginEvent {
                ts_ms: now_ms(),
                event: "login",
                flow,
                result,
                providers: pending.map_or_else(Vec::new, |p| {
                    p.done.iter().map(|l| l.provider.clone()).collect()
                }),
                subject: subject.map(str::to_owned),
                session_created,
            });
        }
    }

    /// `{issuer}{path}`: the public URL of one of our endpoints.
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// Where every upstream sends the user back.
    pub fn callback_url(&self) -> String {
        self.url("/oauth/callback")
    }

    /// The scopes we advertise and grant (§10).
    pub fn scopes_supported(&self) -> &Scopes {
        &self.scopes_supported
    }

    /// What a client asking for `requested` is granted: the scopes we support of those (§10),
    /// as the `scope` value our tokens carry.
    fn grantable(&self, requested: &Scopes) -> Option<String> {
        requested.intersection_value(&self.scopes_supported)
    }

    /// §10 `scopeGrants`: `granted` without the scopes whose rule the user of the first
    /// upstream (`None`: it named nobody) does not pass.
    fn withhold(&self, granted: Option<String>, user: Option<&UpstreamUser>) -> Option<String> {
        let granted = granted?;
        let passes = |scope: &str| {
            let Some((_, rule)) = self.scope_grants.iter().find(|(s, _)| s == scope) else {
                return true;
            };
            let Some(user) = user else {
                return false;
            };
            match rule {
                ScopeGrant::Subjects(subjects) => subjects.contains(&user.subject),
                ScopeGrant::Claim { name, values } => match user.claims.get(name) {
                    Some(serde_json::Value::String(v)) => values.contains(v),
                    Some(serde_json::Value::Array(items)) => items
                        .iter()
                        .any(|i| i.as_str().is_some_and(|v| values.iter().any(|x| x == v))),
                    _ => false,
                },
            }
        };
        let kept: Vec<&str> = granted.split(' ').filter(|s| passes(s)).collect();
        (!kept.is_empty()).then(|| kept.join(" "))
    }

    /// The client `client_id` names: its metadata document when it is an https URL (§13),
    /// else a registered client.
    async fn client(
        &self,
        store: &UpstreamStore,
        client_id: &str,
    ) -> Result<ClientRecord, OAuthError> {
        if cimd::is_document_url(client_id) {
            return self.documents.client(client_id).await.map_err(|e| {
                tracing::debug!(error = %e, "client metadata document refused");
                OAuthError::invalid_client_document(&e)
            });
        }
        records::Records(store.kv())
            .get(&records::keys::client(client_id))
            .await?
            .ok_or_else(|| OAuthError::invalid_request("unknown client_id"))
    }

    /// The upstream providers, in login order.
    pub fn providers(&self) -> &[Arc<UpstreamProvider>] {
        &self.providers
    }

    /// The provider called `name`.
    fn provider(&self, name: &str) -> Option<&Arc<UpstreamProvider>> {
        self.providers.iter().find(|p| &**p.name() == name)
    }

    /// What a first login walks (§11): the required upstreams, in order.
    fn required(&self) -> Vec<String> {
        self.providers
            .iter()
            .filter(|p| p.required())
            .map(|p| p.name().to_string())
            .collect()
    }

    /// What a login of a known user walks (§11): the required upstreams without a usable
    /// record under the session's `tsid` (none, or expired with no refresh token), and every
    /// provider a Check has asked for since, in login order.
    ///
    /// # Errors
    /// 503 when the store fails.
    async fn missing(
        &self,
        store: &UpstreamStore,
        session: &records::SessionRecord,
    ) -> Result<Vec<String>, OAuthError> {
        let now = crate::time::unix_now();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        let mut walk = Vec::new();
        for provider in &self.providers {
            let name = provider.name();
            let wanted = store.is_wanted(&session.tsid, name).await?;
            let unusable = provider.required()
                && match store.get_latest(&session.tsid, name, deadline).await {
                    Ok(Some(r)) => {
                        r.access_token.is_empty()
                            || (r.is_expired_at(now) && r.refresh_token.is_none())
                    }
                    Ok(None) | Err(crate::upstream::UpstreamError::Corrupt { .. }) => true,
                    Err(_) => return Err(OAuthError::temporarily_unavailable()),
                };
            if wanted || unusable {
                walk.push(name.to_string());
            }
        }
        Ok(walk)
    }

    /// How Checks point a caller missing a provider's token at the connect page (§11).
    pub fn connect_settings(&self) -> ConnectSettings {
        ConnectSettings {
            page: self.url("/oauth/connect/"),
            id_lifetime: self.lifetimes.login,
            wanted_lifetime: self.lifetimes.refresh_token,
        }
    }
}

/// How the endpoints reach the authorization server of the running configuration, which a
/// reload may replace.
pub trait Current: Send + Sync + 'static {
    /// The authorization server, when one is configured.
    fn auth_server(&self) -> Option<Arc<AuthServer>>;
}

/// What every endpoint handler holds.
pub type Handle = Arc<dyn Current>;

/// The server's endpoints, mounted on the HTTP listener when `authServer` is configured
/// (`server` gives their paths; `handle` the server each request uses).
pub fn router<S: Clone + Send + Sync + 'static>(
    server: Option<&AuthServer>,
    handle: Handle,
) -> Router<S> {
    let Some(server) = server else {
        return Router::new();
    };
    let base = &server.base_path;
    let metadata_path = format!("/.well-known/oauth-authorization-server{base}");
    let oidc_path = format!("{base}/.well-known/openid-configuration");
    Router::new()
        .route(&metadata_path, get(metadata::authorization_server))
        .route(&oidc_path, get(metadata::authorization_server))
        .route(
            &format!("{base}/.well-known/jwks.json"),
            get(metadata::jwks),
        )
        .route(&format!("{base}/oauth/register"), post(register::register))
        .route(&format!("{base}/oauth/authorize"), get(login::authorize))
        .route(&format!("{base}/oauth/callback"), get(login::callback))
        .route(&format!("{base}/oauth/token"), post(token::token))
        .route(
            &format!("{base}/oauth/connect/{{id}}"),
            get(connect::connect),
        )
        .route(&format!("{base}/oauth/consent"), post(consent::answer))
        .with_state(handle)
}

/// The server and its store (of the current runtime), for a handler.
fn parts(handle: &Handle) -> Result<(Arc<AuthServer>, Arc<UpstreamStore>), OAuthError> {
    let server = handle.auth_server().ok_or_else(OAuthError::server_error)?;
    let store = server.store.clone();
    Ok((server, store))
}
