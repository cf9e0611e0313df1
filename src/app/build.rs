// SPDX-License-Identifier: Apache-2.0
//! Assembly: builds every subsystem from a valid config, once at load and again on reload
//! (keeping what the new config does not change). Backend names are shared `Arc<str>`s and
//! header names are lower-cased here, so the hot path only clones.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use crate::authserver::{AuthServer, SigningKey};
use crate::check::Pipeline;
use crate::config::validate::normalize_subject_token_type;
use crate::config::{
    validate, Config, ConfigError, Environment, IncomingAuthType, StorageType, StrategyConfig,
    TokenExchangeCacheConfig, TokenExchangeConfig, UpstreamConfig, Violation,
};
use crate::identity::{KeySet, KeySource, RemoteJwks, Verifier, VerifierSettings};
use crate::oauth::http_client;
use crate::oauth::provider::UpstreamProvider;
use crate::response::Challenge;
use crate::secret::Token;
use crate::strategy::token_exchange::{
    CacheSettings, ExchangeBackend, ExchangeRequest, ExchangeShared, KeyParts, KeyPrefix,
    RequestParams,
};
use crate::strategy::{
    Backend, Backends, HeaderInjection, Strategy, TokenExchange, UpstreamInject, DEFAULT_BACKEND,
};
use crate::telemetry::metrics::{ExchangeMetrics, Metrics};
use crate::upstream::{MemoryStore, RedisStore, Refresher, UpstreamStore};

/// One configuration's subsystems, built from a valid config and swapped whole on reload.
#[derive(Debug)]
pub struct Runtime {
    /// What a Check runs.
    pub pipeline: Pipeline,
    /// The embedded authorization server's signing key.
    pub signing_key: Option<Arc<SigningKey>>,
    /// The embedded authorization server.
    pub auth_server: Option<Arc<AuthServer>>,
    /// RFC 9728 protected-resource metadata document.
    pub resource_metadata: serde_json::Value,
    /// Where the metadata document is served (its path on our HTTP listener).
    pub resource_metadata_path: String,
    /// The configuration this was built from (to see what a reload changes).
    pub config: Arc<Config>,
    /// The exchanged-token cache, kept across reloads that do not change it.
    pub exchange_shared: Option<Arc<ExchangeShared>>,
    /// The one outbound HTTP client (token endpoints, discovery, JWKS), built at boot and kept
    /// across reloads with its connection pool.
    pub http: reqwest::Client,
}

/// Validates `config` and builds the runtime. Warnings are returned for the caller to log.
///
/// # Errors
/// [`ConfigError::Invalid`] with every violation, or [`ConfigError::Resource`] when a key file
/// cannot be used.
pub async fn build(
    config: &Config,
    env: &dyn Environment,
    metrics: &Metrics,
    previous: Option<&Runtime>,
) -> Result<(Runtime, Vec<Violation>), ConfigError> {
    let violations = validate(config, env);
    if violations.iter().any(Violation::is_error) {
        return Err(ConfigError::Invalid(violations));
    }
    let resource = url::Url::parse(&config.server.resource_url)
        .map_err(|e| resource_error("server.resourceUrl", e.to_string()))?;
    let (prm_url, prm_path) = protected_resource_metadata_url(&resource);
    let http = match previous {
        Some(p) => p.http.clone(),
        None => http_client()
            .map_err(|e| resource_error("server", format!("outbound HTTP client: {e}")))?,
    };

    // On a reload, what did not change is kept: an ephemeral key (or every token dies), the
    // store (or every login in a memory store is lost), the verifier and its cache, and the
    // exchanged-token cache.
    let previous_key = previous.and_then(|p| p.signing_key.clone());
    let signing_key = match &config.auth_server {
        Some(server) => Some(match (&server.signing_key_file, previous_key) {
            (Some(path), _) => Arc::new(
                SigningKey::from_pem_file(std::path::Path::new(path))
                    .map_err(|e| resource_error("authServer.signingKeyFile", e.to_string()))?,
            ),
            (None, Some(key))
                if previous.is_some_and(|p| {
                    p.config
                        .auth_server
                        .as_ref()
                        .is_some_and(|s| s.signing_key_file.is_none())
                }) =>
            {
                key
            }
            (None, _) => {
                tracing::warn!("authServer.signingKeyFile is not set: using an ephemeral signing key; tokens will not survive a restart and replicas will not accept each other's tokens");
                Arc::new(SigningKey::generate())
            }
        }),
        None => None,
    };

    let same_key = match (&signing_key, previous.and_then(|p| p.signing_key.as_ref())) {
        (Some(new), Some(old)) => Arc::ptr_eq(new, old) || new.kid() == old.kid(),
        (None, None) => true,
        _ => false,
    };
    // A JWKS file is read again on every reload (its keys may have rotated); a JWKS URL refetches
    // by itself, and our own key is compared by id.
    let jwks_file = config
        .incoming_auth
        .oidc
        .as_ref()
        .is_some_and(|o| o.jwks_file.is_some());
    let reusable_verifier = previous
        .filter(|p| same_key && !jwks_file && p.config.incoming_auth == config.incoming_auth)
        .map(|p| p.pipeline.verifier.clone());
    let verifier = if let Some(verifier) = reusable_verifier {
        verifier
    } else {
        match (config.incoming_auth.kind, &config.incoming_auth.oidc) {
            (IncomingAuthType::Oidc, Some(oidc)) => {
                let keys =
                    match (&signing_key, &oidc.jwks_file, &oidc.jwks_url) {
                        (Some(key), _, _) => KeySource::Static(key.key_set().map_err(|e| {
                            resource_error("authServer.signingKeyFile", e.to_string())
                        })?),
                        (None, Some(file), _) => {
                            let bytes = std::fs::read(file).map_err(|e| {
                                resource_error("incomingAuth.oidc.jwksFile", e.to_string())
                            })?;
                            let (set, notes) = KeySet::from_jwks(&bytes)
                                .map_err(|e| resource_error("incomingAuth.oidc.jwksFile", e))?;
                            for note in notes {
                                tracing::warn!(file = %file, "{note}");
                            }
                            KeySource::Static(set)
                        }
                        (None, None, Some(url)) => {
                            let remote =
                                RemoteJwks::new(url.clone(), Duration::from_secs(10), http.clone());
                            if let Err(e) = remote.refresh().await {
                                tracing::warn!("{e}; will retry when a token arrives");
                            }
                            KeySource::Remote(remote)
                        }
                        (None, None, None) => {
                            return Err(resource_error(
                                "incomingAuth.oidc",
                                "no key source".to_owned(),
                            ))
                        }
                    };
                Some(Arc::new(Verifier::new(
                    keys,
                    VerifierSettings {
                        issuer: oidc.issuer.clone(),
                        audience: oidc.audience.clone(),
                        leeway: Duration::from_secs(oidc.leeway_seconds.unwrap_or(30)),
                        max_token_bytes: oidc.max_token_bytes.unwrap_or(8192),
                        cache_capacity: 100_000,
                    },
                )))
            }
            _ => None,
        }
    };

    let previous_store = previous
        .filter(|p| {
            p.config.auth_server.as_ref().map(|s| &s.storage)
                == config.auth_server.as_ref().map(|s| &s.storage)
        })
        .and_then(|p| p.pipeline.store.clone());
    let store = match (&config.auth_server, previous_store) {
        (Some(_), Some(store)) => Some(store),
        (Some(server), None) => Some(Arc::new(
            match (server.storage.kind, &server.storage.redis) {
                (StorageType::Redis, Some(redis)) => UpstreamStore::Redis(
                    RedisStore::new(
                        &redis.url,
                        &redis.key_prefix,
                        Duration::from_millis(redis.timeout_ms.unwrap_or(100)),
                    )
                    .map_err(|e| resource_error("authServer.storage.redis.url", e.to_string()))?,
                ),
                _ => UpstreamStore::Memory(MemoryStore::new()),
            },
        )),
        (None, _) => None,
    };

    let (auth_server, refresher) = match (&config.auth_server, &signing_key) {
        (Some(server), Some(key)) => {
            let mut providers = Vec::new();
            for (i, upstream) in server.upstreams.iter().enumerate() {
                let path = format!("authServer.upstreams[{i}]");
                let secret =
                    upstream_secret(upstream, env).map_err(|m| resource_error(&path, m))?;
                providers.push(Arc::new(
                    UpstreamProvider::new(upstream, secret.as_deref(), http.clone())
                        .map_err(|m| resource_error(&path, m))?,
                ));
            }
            let refresher = Refresher::new(providers.iter().cloned(), metrics.refresh());
            let auth_server = AuthServer::new(server, key.clone(), providers)
                .map_err(|m| resource_error("authServer", m))?;
            (Some(Arc::new(auth_server)), Some(refresher))
        }
        _ => (None, None),
    };

    let mut builder = BackendBuilder {
        env,
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
    let mut by_name = HashMap::new();
    for (name, strategy) in &config.outgoing_auth.backends {
        let path = format!("outgoingAuth.backends.{name}");
        by_name.insert(
            name.as_str().into(),
            builder
                .backend(name, strategy)
                .map_err(|m| resource_error(&path, m))?,
        );
    }
    let default = match &config.outgoing_auth.default {
        Some(strategy) => builder
            .backend(DEFAULT_BACKEND, strategy)
            .map_err(|m| resource_error("outgoingAuth.default", m))?,
        None => Backend {
            name: Arc::from(DEFAULT_BACKEND),
            strategy: Strategy::Unauthenticated,
        },
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
    let resource_metadata = serde_json::json!({
        "resource": config.server.resource_url,
        "authorization_servers": authorization_servers,
        "bearer_methods_supported": ["header"],
    });

    let warnings = violations;
    Ok((
        Runtime {
            pipeline: Pipeline {
                backend_key: config.outgoing_auth.backend_context_key.as_str().into(),
                backends: Backends::new(by_name, default),
                verifier,
                store,
                challenge: Challenge::new(realm, &prm_url),
                refresher,
            },
            config: Arc::new(config.clone()),
            exchange_shared: builder.exchange_shared,
            http,
            signing_key,
            auth_server,
            resource_metadata,
            resource_metadata_path: prm_path,
        },
        warnings,
    ))
}

fn resource_error(path: &str, message: String) -> ConfigError {
    ConfigError::Resource {
        path: path.to_owned(),
        message,
    }
}

/// The resolved client secret of an upstream (inline or from its environment variable).
fn upstream_secret(
    upstream: &UpstreamConfig,
    env: &dyn Environment,
) -> Result<Option<String>, String> {
    let (inline, var) = match (&upstream.oauth2, &upstream.oidc) {
        (Some(o), _) => (&o.client_secret, &o.client_secret_env),
        (None, Some(o)) => (&o.client_secret, &o.client_secret_env),
        (None, None) => return Ok(None),
    };
    match (inline, var) {
        (Some(secret), _) => Ok(Some(secret.expose_secret().to_owned())),
        (None, Some(var)) => env
            .var(var)
            .map(Some)
            .ok_or_else(|| format!("environment variable {var} is not set")),
        (None, None) => Ok(None),
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
struct BackendBuilder<'a> {
    env: &'a dyn Environment,
    exchange_settings: CacheSettings,
    exchange_metrics: ExchangeMetrics,
    exchange_shared: Option<Arc<ExchangeShared>>,
    http: reqwest::Client,
}

impl BackendBuilder<'_> {
    fn backend(&mut self, name: &str, config: &StrategyConfig) -> Result<Backend, String> {
        let strategy = match config.kind.as_str() {
            "unauthenticated" => Strategy::Unauthenticated,
            "header_injection" => {
                let h = config
                    .header_injection
                    .as_ref()
                    .ok_or("headerInjection missing")?;
                let value = match (&h.header_value, &h.header_value_env) {
                    (Some(v), None) => v.expose_secret().to_owned(),
                    (None, Some(var)) => self
                        .env
                        .var(var)
                        .ok_or("header value environment variable unset")?,
                    _ => return Err("exactly one of headerValue and headerValueEnv".to_owned()),
                };
                Strategy::HeaderInjection(HeaderInjection {
                    name: Arc::from(h.header_name.to_ascii_lowercase()),
                    value: Token::new(value),
                })
            }
            "upstream_inject" => Strategy::UpstreamInject(UpstreamInject {
                provider: Arc::from(
                    config
                        .upstream_inject
                        .as_ref()
                        .ok_or("upstreamInject missing")?
                        .provider_name
                        .as_str(),
                ),
            }),
            "token_exchange" => Strategy::TokenExchange(
                self.token_exchange(
                    name,
                    config
                        .token_exchange
                        .as_ref()
                        .ok_or("tokenExchange missing")?,
                )?,
            ),
            other => return Err(format!("unknown strategy type {other:?}")),
        };
        Ok(Backend {
            name: Arc::from(name),
            strategy,
        })
    }

    fn token_exchange(
        &mut self,
        backend: &str,
        t: &TokenExchangeConfig,
    ) -> Result<TokenExchange, String> {
        let token_url = url::Url::parse(&t.token_url).map_err(|e| format!("tokenUrl: {e}"))?;
        let subject_token_type =
            normalize_subject_token_type(t.subject_token_type.as_deref().unwrap_or("access_token"))
                .ok_or("invalid subjectTokenType")?;
        let secret = match (&t.client_secret, &t.client_secret_env) {
            (Some(inline), _) => Some(inline.expose_secret().to_owned()),
            (None, Some(var)) => Some(
                self.env
                    .var(var)
                    .ok_or("client secret environment variable unset")?,
            ),
            (None, None) => None,
        };
        let request = ExchangeRequest::new(RequestParams {
            token_url: &token_url,
            client_id: t.client_id.as_deref(),
            client_secret: secret.as_deref(),
            audience: t.audience.as_deref(),
            scopes: &t.scopes,
            subject_token_type,
        });
        let key_prefix = KeyPrefix::new(KeyParts {
            backend,
            token_url: token_url.as_str(),
            client_id: t.client_id.as_deref(),
            audience: t.audience.as_deref(),
            scopes: &t.scopes,
            subject_token_type,
            subject_provider: t.subject_provider_name.as_deref(),
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
        Ok(TokenExchange::new(ExchangeBackend {
            backend: Arc::from(backend),
            request,
            key_prefix,
            subject_provider: t.subject_provider_name.as_deref().map(Arc::from),
            timeout: Duration::from_millis(t.timeout_ms.unwrap_or(2_000)),
            shared,
            last_warned: AtomicU64::new(0),
        }))
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
