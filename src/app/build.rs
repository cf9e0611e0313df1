// SPDX-License-Identifier: Apache-2.0
//! Assembly: builds every subsystem from a valid config, once at load and again on reload
//! (keeping what the new config does not change). Backend names are shared `Arc<str>`s and
//! header names are lower-cased here, so the hot path only clones.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use crate::authserver::cimd::ClientDocuments;
use crate::authserver::{AuthServer, SigningKey};
use crate::check::Pipeline;
use crate::config::spec::{BackendSpec, Spec, StrategySpec, TokenExchangeSpec};
use crate::config::{check, Config, ConfigError, Environment, TokenExchangeCacheConfig, Violation};
use crate::oauth::provider::UpstreamProvider;
use crate::oauth::{http_client, load_roots};
use crate::response::Challenge;
use crate::scope::Scopes;
use crate::secret::Token;
use crate::strategy::token_exchange::{
    CacheSettings, ExchangeBackend, ExchangeRequest, ExchangeShared, KeyParts, KeyPrefix,
    RequestParams,
};
use crate::strategy::{
    Backend, Backends, HeaderInjection, Strategy, TokenExchange, UpstreamInject, DEFAULT_BACKEND,
};
use crate::telemetry::audit::AuditHandle;
use crate::telemetry::metrics::{ExchangeMetrics, Metrics};
use crate::tools::ToolRules;
use crate::upstream::Refresher;

/// One configuration's subsystems, built from a valid config and swapped whole on reload.
#[derive(Debug)]
pub struct Runtime {
    /// What a Check runs.
    pub pipeline: Pipeline,
    /// The embedded authorization server's signing key.
    pub signing_key: Option<Arc<SigningKey>>,
    /// It and the keys that signed before it (all verify).
    pub keys: Option<super::keys::Keys>,
    /// The embedded authorization server.
    pub auth_server: Option<Arc<AuthServer>>,
    /// RFC 9728 protected-resource metadata document.
    pub resource_metadata: serde_json::Value,
    /// Where the metadata document is served (its path on our HTTP listener).
    pub resource_metadata_path: String,
    /// The configuration this was built from (to see what a reload changes).
    pub config: Arc<Config>,
    /// What the store's connection was made with (password, TLS files), to see whether a
    /// reload may keep it.
    pub storage_fingerprint: Option<[u8; 32]>,
    /// The exchanged-token cache, kept across reloads that do not change it.
    pub exchange_shared: Option<Arc<ExchangeShared>>,
    /// The one outbound HTTP client (token endpoints, discovery, JWKS), built at boot and kept
    /// across reloads with its connection pool.
    pub http: reqwest::Client,
}

/// Validates `config` into its [`Spec`](crate::config::Spec) and builds the runtime from it.
/// Warnings are returned for the caller to log. The rules and the backends (the part that grows
/// with the file) run on a blocking thread, never on a runtime worker that serves Checks.
///
/// # Errors
/// [`ConfigError::Invalid`] with every violation, or [`ConfigError::Resource`] when a key file
/// cannot be used.
pub async fn build(
    config: Config,
    env: &dyn Environment,
    metrics: &Metrics,
    audit: Option<AuditHandle>,
    previous: Option<&Runtime>,
) -> Result<(Runtime, Vec<Violation>), ConfigError> {
    // The CA file is read at every build, so a reload picks up a renewed bundle; only without
    // one is the client (and its connection pool) kept across reloads.
    let roots = match &config.outbound.ca_file {
        Some(path) => load_roots(path).map_err(|m| resource_error("outbound.caFile", m))?,
        None => Vec::new(),
    };
    let http = match previous {
        Some(p) if roots.is_empty() && p.config.outbound.ca_file.is_none() => p.http.clone(),
        _ => http_client(&roots)
            .map_err(|e| resource_error("outbound", format!("outbound HTTP client: {e}")))?,
    };
    let builder = BackendBuilder {
        exchange_settings: exchange_settings(&config.outgoing_auth.token_exchange_cache),
        exchange_metrics: metrics.exchange(),
        http: http.clone(),
        exchange_shared: previous
            .filter(|p| {
                p.config.outgoing_auth.token_exchange_cache
                    == config.outgoing_auth.token_exchange_cache
            })
            .and_then(|p| p.exchange_shared.clone()),
    };
    let env = env.snapshot();
    let Prepared {
        spec,
        warnings,
        backends,
        exchange_shared,
    } = tokio::task::spawn_blocking(move || checked_backends(&config, &env, builder))
        .await
        .map_err(|_| resource_error("config", "validation did not complete".to_owned()))?
        .map_err(ConfigError::Invalid)?;
    let config: &Config = &spec.raw;
    let resource = url::Url::parse(&config.server.resource_url)
        .map_err(|e| resource_error("server.resourceUrl", e.to_string()))?;
    let (prm_url, prm_path) = protected_resource_metadata_url(&resource);

    // On a reload, what did not change is kept: an ephemeral key (or every token dies), the
    // store (or every login in a memory store is lost), the verifier and its cache, and the
    // exchanged-token cache.
    let keys = match &config.auth_server {
        Some(server) => {
            let running =
                previous.and_then(|p| Some((p.config.auth_server.as_ref()?, p.keys.as_ref()?)));
            Some(super::keys::load(server, running)?)
        }
        None => None,
    };
    let signing_key = keys.as_ref().map(|k| k.current.clone());
    let verifier = super::verifier::build(config, keys.as_ref(), previous, &http).await?;

    let (store, storage_fingerprint) = super::storage::build(&spec, previous)?;

    let (auth_server, refresher) = match (&config.auth_server, &signing_key, &store) {
        (Some(server), Some(key), Some(store)) => {
            let providers: Vec<_> = spec
                .upstreams
                .iter()
                .map(|upstream| {
                    let allow = config.server.allow_link_local_targets;
                    Arc::new(UpstreamProvider::new(upstream, http.clone(), allow))
                })
                .collect();
            let refresher = Refresher::new(providers.iter().cloned(), metrics.refresh());
            let supported = spec.scopes_supported.iter().map(String::as_str).collect();
            let grants = spec.scope_grants.clone();
            let documents = ClientDocuments::new(&roots, server.client_metadata.allow_loopback)
                .map_err(|m| resource_error("authServer.clientMetadata", m))?;
            let auth_server = AuthServer::new(
                server,
                key.clone(),
                providers,
                supported,
                grants,
                documents,
                store.clone(),
            )
            .map_err(|m| resource_error("authServer", m))?
            .with_metrics(metrics.login(), audit)
            .with_published_keys(
                keys.iter()
                    .flat_map(|k| k.all())
                    .map(|k| k.public_jwk())
                    .collect(),
            );
            (Some(Arc::new(auth_server)), Some(refresher))
        }
        _ => (None, None),
    };

    let realm = config
        .incoming_auth
        .oidc
        .as_ref()
        .map_or(config.server.resource_url.as_str(), |o| o.issuer.as_str());
    let authorization_servers: Vec<&str> = config
        .auth_server
        .as_ref()
        .map(|s| s.issuer.as_str())
        .or(config
            .incoming_auth
            .oidc
            .as_ref()
            .map(|o| o.issuer.as_str()))
        .into_iter()
        .collect();
    let mut resource_metadata = serde_json::json!({
        "resource": config.server.resource_url,
        "authorization_servers": authorization_servers,
        "bearer_methods_supported": ["header"],
    });
    if !spec.scopes_supported.is_empty() {
        resource_metadata["scopes_supported"] = spec.scopes_supported.clone().into();
    }

    let connect = auth_server.as_ref().map(|server| server.connect_settings());

    Ok((
        Runtime {
            pipeline: Pipeline {
                backend_key: config.outgoing_auth.backend_context_key.as_str().into(),
                backends,
                verifier,
                store,
                challenge: Challenge::new(realm, &prm_url),
                refresher,
                connect,
            },
            config: spec.raw.clone(),
            storage_fingerprint,
            exchange_shared,
            http,
            signing_key,
            keys,
            auth_server,
            resource_metadata,
            resource_metadata_path: prm_path,
        },
        warnings,
    ))
}

/// What the blocking part of a build hands back.
struct Prepared {
    spec: Spec,
    warnings: Vec<Violation>,
    backends: Backends,
    exchange_shared: Option<Arc<ExchangeShared>>,
}

/// The rules, then every backend: the work that grows with the file, for a blocking thread.
/// The typed backends are dropped here too, once built.
fn checked_backends(
    config: &Config,
    env: &HashMap<String, String>,
    mut builder: BackendBuilder,
) -> Result<Prepared, Vec<Violation>> {
    let (mut spec, warnings) = check(config, env)?;
    let typed = std::mem::take(&mut spec.backends);
    let by_name: HashMap<Box<str>, Backend> = typed
        .iter()
        .map(|(name, backend)| (name.as_str().into(), builder.backend(name, backend)))
        .collect();
    let default = match &spec.default {
        Some(backend) => builder.backend(DEFAULT_BACKEND, backend),
        None => Backend {
            name: Arc::from(DEFAULT_BACKEND),
            strategy: Strategy::Unauthenticated,
            required_scopes: Scopes::default(),
            tools: ToolRules::default(),
        },
    };
    Ok(Prepared {
        spec,
        warnings,
        backends: Backends::new(by_name, default),
        exchange_shared: builder.exchange_shared,
    })
}

fn resource_error(path: &str, message: String) -> ConfigError {
    ConfigError::Resource {
        path: path.to_owned(),
        message,
    }
}

fn exchange_settings(c: &TokenExchangeCacheConfig) -> CacheSettings {
    CacheSettings {
        capacity: c.max_entries,
        skew: Duration::from_secs(c.skew_seconds),
        negative_ttl: Duration::from_secs(c.negative_ttl_seconds),
        refresh_ratio: (c.refresh_ahead_percent > 0)
            .then(|| f64::from(c.refresh_ahead_percent) / 100.0),
        default_lifetime: Duration::from_secs(c.default_lifetime_seconds),
    }
}

/// Builds strategies; every `token_exchange` backend shares one cache and the HTTP client.
struct BackendBuilder {
    exchange_settings: CacheSettings,
    exchange_metrics: ExchangeMetrics,
    exchange_shared: Option<Arc<ExchangeShared>>,
    http: reqwest::Client,
}

impl BackendBuilder {
    fn backend(&mut self, name: &str, spec: &BackendSpec) -> Backend {
        let strategy = match &spec.strategy {
            StrategySpec::Unauthenticated => Strategy::Unauthenticated,
            StrategySpec::HeaderInjection { name, value } => {
                Strategy::HeaderInjection(HeaderInjection {
                    name: Arc::from(name.to_ascii_lowercase()),
                    value: value.clone(),
                })
            }
            StrategySpec::UpstreamInject { provider } => Strategy::UpstreamInject(UpstreamInject {
                provider: Arc::from(provider.as_str()),
            }),
            StrategySpec::TokenExchange(t) => Strategy::TokenExchange(self.token_exchange(name, t)),
        };
        Backend {
            name: Arc::from(name),
            strategy,
            required_scopes: spec.required_scopes.iter().map(String::as_str).collect(),
            tools: spec.tools.clone(),
        }
    }

    fn token_exchange(&mut self, backend: &str, t: &TokenExchangeSpec) -> TokenExchange {
        let request = ExchangeRequest::new(RequestParams {
            token_url: &t.token_url,
            client_id: t.client_id.as_deref(),
            client_secret: t.client_secret.as_ref().map(Token::expose_secret),
            audience: t.audience.as_deref(),
            scopes: &t.scopes,
            subject_token_type: t.subject_token_type,
        });
        let key_prefix = KeyPrefix::new(KeyParts {
            backend,
            token_url: t.token_url.as_str(),
            client_id: t.client_id.as_deref(),
            audience: t.audience.as_deref(),
            scopes: &t.scopes,
            subject_token_type: t.subject_token_type,
            subject_provider: t.subject_provider.as_deref(),
        });
        let shared = match &self.exchange_shared {
            Some(shared) => shared.clone(),
            None => {
                let shared = Arc::new(ExchangeShared::new(
                    self.exchange_settings,
                    self.exchange_metrics.clone(),
                    self.http.clone(),
                ));
                self.exchange_shared = Some(shared.clone());
                shared
            }
        };
        TokenExchange::new(ExchangeBackend {
            backend: Arc::from(backend),
            request,
            key_prefix,
            subject_provider: t.subject_provider.as_deref().map(Arc::from),
            timeout: t.timeout,
            shared,
            last_warned: AtomicU64::new(0),
        })
    }
}

/// RFC 9728 §3.1: the metadata URL inserts `/.well-known/oauth-protected-resource` between the
/// resource's host and path. Returns the URL and its path.
pub fn protected_resource_metadata_url(resource: &url::Url) -> (String, String) {
    let path = resource.path().trim_end_matches('/');
    let well_known = format!("/.well-known/oauth-protected-resource{path}");
    let origin = resource.origin().ascii_serialization();
    (format!("{origin}{well_known}"), well_known)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_url_follows_rfc_9728() {
        let url = url::Url::parse("https://mcp.example.com/mcp").unwrap();
        assert_eq!(
            protected_resource_metadata_url(&url).0,
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
        let root = url::Url::parse("http://127.0.0.1:10000/").unwrap();
        assert_eq!(
            protected_resource_metadata_url(&root),
            (
                "http://127.0.0.1:10000/.well-known/oauth-protected-resource".to_owned(),
                "/.well-known/oauth-protected-resource".to_owned()
            )
        );
    }
}
