// SPDX-License-Identifier: Apache-2.0
//! The embedded authorization server's keys at each build (DESIGN.md §12): `signingKeyFile`
//! signs, `previousSigningKeyFiles` still verify and stay in the JWKS, and without a key file an
//! ephemeral key is generated once and kept across reloads (or every token would die).

use std::path::Path;
use std::sync::Arc;

use crate::authserver::SigningKey;
use crate::config::{AuthServerConfig, ConfigError};
use crate::identity::KeySet;

/// The signing key and the keys that signed before it.
#[derive(Debug, Clone)]
pub struct Keys {
    /// Signs every new token.
    pub current: Arc<SigningKey>,
    /// Verify only; never the current key's id twice.
    pub previous: Vec<Arc<SigningKey>>,
}

impl Keys {
    /// Every key that verifies, current first.
    pub fn all(&self) -> impl Iterator<Item = &Arc<SigningKey>> {
        std::iter::once(&self.current).chain(&self.previous)
    }

    /// Whether `other` verifies exactly the same keys.
    pub fn same_as(&self, other: &Keys) -> bool {
        self.all().count() == other.all().count()
            && self.all().zip(other.all()).all(|(a, b)| a.kid() == b.kid())
    }

    /// The key set Check verifies our tokens with.
    ///
    /// # Errors
    /// When a public key cannot be used (never for a key that loaded).
    pub fn key_set(&self) -> Result<KeySet, ConfigError> {
        self.all()
            .map(|key| key.verifying_key())
            .collect::<Result<Vec<_>, _>>()
            .map(KeySet::from_keys)
            .map_err(|e| resource("authServer.signingKeyFile", e.to_string()))
    }
}

fn resource(path: &str, message: String) -> ConfigError {
    ConfigError::Resource {
        path: path.to_owned(),
        message,
    }
}

/// The keys `server` names, read now (so a reload picks up a rotated file). `previous` is the
/// running configuration's, whose ephemeral key is kept while no key file is configured.
///
/// # Errors
/// [`ConfigError::Resource`] naming the file that cannot be read or is not a P-256 key.
pub fn load(
    server: &AuthServerConfig,
    previous: Option<(&AuthServerConfig, &Keys)>,
) -> Result<Keys, ConfigError> {
    let current = match (&server.signing_key_file, previous) {
        (Some(path), _) => Arc::new(
            SigningKey::from_pem_file(Path::new(path))
                .map_err(|e| resource("authServer.signingKeyFile", e.to_string()))?,
        ),
        (None, Some((config, keys))) if config.signing_key_file.is_none() => keys.current.clone(),
        (None, _) => {
            tracing::warn!("authServer.signingKeyFile is not set: using an ephemeral signing key; tokens will not survive a restart and replicas will not accept each other's tokens");
            Arc::new(SigningKey::generate())
        }
    };
    let mut keys = Keys {
        current,
        previous: Vec::new(),
    };
    for (i, path) in server.previous_signing_key_files.iter().enumerate() {
        let key = SigningKey::from_pem_file(Path::new(path)).map_err(|e| {
            resource(
                &format!("authServer.previousSigningKeyFiles[{i}]"),
                e.to_string(),
            )
        })?;
        if keys.all().all(|k| k.kid() != key.kid()) {
            keys.previous.push(Arc::new(key));
        }
    }
    Ok(keys)
}
