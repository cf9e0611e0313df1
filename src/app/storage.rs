// SPDX-License-Identifier: Apache-2.0
//! The store at each build: memory, or Redis with its ACL user and TLS material (read now, so
//! a reload picks up a rotated password or certificate). The running store is kept when neither
//! the `storage` section nor what its files hold changed, so logins in a memory store and a
//! Redis connection survive a reload.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::build::Runtime;
use crate::config::spec::{RedisSpec, Spec};
use crate::config::{ConfigError, StorageType};
use crate::store::{MemoryStore, RedisStore, RedisTarget, Store};
use crate::upstream::UpstreamStore;

/// Largest TLS file read.
const MAX_PEM_BYTES: u64 = 1 << 20;

fn resource(path: &str, message: String) -> ConfigError {
    ConfigError::Resource {
        path: path.to_owned(),
        message,
    }
}

fn read_pem(field: &str, path: &str) -> Result<Vec<u8>, ConfigError> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_PEM_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| resource(field, format!("cannot read {path:?}: {e}")))?;
    if bytes.len() as u64 > MAX_PEM_BYTES || !bytes.starts_with(b"-----BEGIN") {
        return Err(resource(field, format!("{path:?} is not a PEM file")));
    }
    Ok(bytes)
}

/// The TLS certificates `redis.tls` names, and a digest of the connection's credentials (each
/// part length-prefixed, so different parts can never digest alike).
fn material(redis: &RedisSpec) -> Result<(Option<redis::TlsCertificates>, [u8; 32]), ConfigError> {
    const TLS: &str = "authServer.storage.redis.tls";
    let read = |field: &str, path: &Option<String>| match path {
        Some(path) => read_pem(&format!("{TLS}.{field}"), path).map(Some),
        None => Ok(None),
    };
    let tls = match &redis.tls {
        Some(tls) => Some((
            read("caFile", &tls.ca_file)?,
            read("certFile", &tls.client.as_ref().map(|c| c.0.clone()))?,
            read("keyFile", &tls.client.as_ref().map(|c| c.1.clone()))?,
        )),
        None => None,
    };
    let mut digest = Sha256::new();
    let password = redis
        .password
        .as_ref()
        .map(|p| p.expose_secret().as_bytes());
    let (ca, cert, key) = tls.as_ref().map_or((None, None, None), |(a, b, c)| {
        (a.as_deref(), b.as_deref(), c.as_deref())
    });
    for part in [password, ca, cert, key] {
        let bytes = part.unwrap_or_default();
        digest.update((bytes.len() as u64).to_le_bytes());
        digest.update(bytes);
    }
    let certificates = tls.map(|(root_cert, cert, key)| redis::TlsCertificates {
        client_tls: cert
            .zip(key)
            .map(|(client_cert, client_key)| redis::ClientTlsConfig {
                client_cert,
                client_key,
            }),
        root_cert,
    });
    Ok((certificates, digest.finalize().into()))
}

/// A store and the fingerprint of what its connection was made with.
pub(super) type Built = (Option<Arc<UpstreamStore>>, Option<[u8; 32]>);

/// The store for `spec` (none without an authorization server) and its fingerprint.
///
/// # Errors
/// [`ConfigError::Resource`] when a TLS file cannot be read or the URL cannot be used.
pub(super) fn build(spec: &Spec, previous: Option<&Runtime>) -> Result<Built, ConfigError> {
    let Some(server) = &spec.raw.auth_server else {
        return Ok((None, None));
    };
    let (redis, fingerprint) = match (server.storage.kind, &spec.redis) {
        (StorageType::Redis, Some(redis)) => {
            let (tls, fingerprint) = material(redis)?;
            (Some((redis, tls)), Some(fingerprint))
        }
        _ => (None, None),
    };
    let kept = previous
        .filter(|p| {
            p.config.auth_server.as_ref().map(|s| &s.storage) == Some(&server.storage)
                && p.storage_fingerprint == fingerprint
        })
        .and_then(|p| p.pipeline.store.clone());
    if let Some(store) = kept {
        return Ok((Some(store), fingerprint));
    }
    let store = match (redis, &server.storage.redis) {
        (Some((redis, tls)), Some(raw)) => {
            let target = RedisTarget {
                url: &redis.url,
                username: redis.username.as_deref(),
                password: redis.password.as_ref(),
                tls,
            };
            let timeout = Duration::from_millis(raw.timeout_ms.unwrap_or(100));
            let store = RedisStore::new(&target, &raw.key_prefix, timeout)
                .map_err(|e| resource("authServer.storage.redis", e.to_string()))?;
            UpstreamStore::with_near_cache(Store::Redis(store), raw.near_cache_entries)
        }
        _ => UpstreamStore::new(Store::Memory(MemoryStore::new())),
    };
    Ok((Some(Arc::new(store)), fingerprint))
}
