// SPDX-License-Identifier: Apache-2.0
//! The JWT verifier at each build: our own keys (current and previous) with the embedded
//! authorization server, else a JWKS file or URL; the running one, with its verified-token cache,
//! when nothing it depends on changed.

use std::sync::Arc;
use std::time::Duration;

use super::build::Runtime;
use super::keys::Keys;
use crate::authserver::TOKEN_TYPE as OUR_TOKEN_TYPE;
use crate::config::{Config, ConfigError, IncomingAuthType};
use crate::identity::{KeySet, KeySource, RemoteJwks, Verifier, VerifierSettings};

fn resource(path: &str, message: String) -> ConfigError {
    ConfigError::Resource {
        path: path.to_owned(),
        message,
    }
}

/// The verifier for `config` (none when incoming auth is not `oidc`).
///
/// # Errors
/// [`ConfigError::Resource`] when the JWKS file cannot be read or used.
pub(super) async fn build(
    config: &Config,
    keys: Option<&Keys>,
    previous: Option<&Runtime>,
    http: &reqwest::Client,
) -> Result<Option<Arc<Verifier>>, ConfigError> {
    let same_key = match (keys, previous.and_then(|p| p.keys.as_ref())) {
        (Some(new), Some(old)) => new.same_as(old),
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
    if let Some(verifier) = reusable_verifier {
        return Ok(verifier);
    }
    match (config.incoming_auth.kind, &config.incoming_auth.oidc) {
        (IncomingAuthType::Oidc, Some(oidc)) => {
            let source = match (keys, &oidc.jwks_file, &oidc.jwks_url) {
                (Some(keys), _, _) => KeySource::Static(keys.key_set()?),
                (None, Some(file), _) => {
                    let bytes = std::fs::read(file)
                        .map_err(|e| resource("incomingAuth.oidc.jwksFile", e.to_string()))?;
                    let (set, notes) = KeySet::from_jwks(&bytes)
                        .map_err(|e| resource("incomingAuth.oidc.jwksFile", e))?;
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
                    return Err(resource("incomingAuth.oidc", "no key source".to_owned()))
                }
            };
            Ok(Some(Arc::new(Verifier::new(
                source,
                VerifierSettings {
                    issuer: oidc.issuer.clone(),
                    audience: oidc.audience.clone(),
                    leeway: Duration::from_secs(oidc.leeway_seconds.unwrap_or(30)),
                    max_token_bytes: oidc.max_token_bytes.unwrap_or(8192),
                    cache_capacity: 100_000,
                    // Our own tokens are typed (RFC 9068); an external issuer's as configured.
                    required_typ: match keys {
                        Some(_) => Some(OUR_TOKEN_TYPE.to_owned()),
                        None => oidc.require_typ.clone(),
                    },
                },
            ))))
        }
        _ => Ok(None),
    }
}
