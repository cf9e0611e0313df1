// SPDX-License-Identifier: Apache-2.0
//! The ES256 signing key: loaded from a PKCS#8 PEM file, or generated at boot (ephemeral). Its key
//! id is the RFC 7638 JWK thumbprint.

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use sha2::{Digest, Sha256};

use crate::identity::{KeySet, VerifyingKey};

/// Why a signing key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read.
    #[error("cannot read signing key: {0}")]
    Read(#[source] std::io::Error),
    /// The file is not a PKCS#8 PEM P-256 private key.
    #[error("signing key is not a PKCS#8 PEM P-256 private key")]
    Format,
}

/// Our ES256 signing key.
pub struct SigningKey {
    secret: p256::SecretKey,
    kid: String,
    x: String,
    y: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Loads a PKCS#8 PEM P-256 key.
    ///
    /// # Errors
    /// [`KeyError`]; the key material never appears in it.
    pub fn from_pem_file(path: &Path) -> Result<Self, KeyError> {
        let pem = std::fs::read_to_string(path).map_err(KeyError::Read)?;
        Self::from_pem(&pem)
    }

    /// Parses a PKCS#8 PEM P-256 key.
    ///
    /// # Errors
    /// [`KeyError::Format`].
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let secret = p256::SecretKey::from_pkcs8_pem(pem).map_err(|_| KeyError::Format)?;
        Ok(Self::from_secret(secret))
    }

    /// A fresh random key (lost on restart; tokens signed with it die with the process).
    pub fn generate() -> Self {
        Self::from_secret(p256::SecretKey::random(&mut rand_core::OsRng))
    }

    fn from_secret(secret: p256::SecretKey) -> Self {
        let point = secret.public_key().to_encoded_point(false);
        // An uncompressed point on a valid key always has both coordinates.
        let coord =
            |c: Option<&p256::FieldBytes>| c.map(|b| URL_SAFE_NO_PAD.encode(b)).unwrap_or_default();
        let x = coord(point.x());
        let y = coord(point.y());
        // RFC 7638: the required members in lexicographic order, no whitespace.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        Self { secret, kid, x, y }
    }

    /// The key id (RFC 7638 thumbprint).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK (for the JWKS document).
    pub fn public_jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "EC", "crv": "P-256", "x": self.x, "y": self.y,
            "kid": self.kid, "alg": "ES256", "use": "sig",
        })
    }

    /// The key set Check verifies our tokens with.
    ///
    /// # Errors
    /// [`KeyError::Format`] if the public key cannot be used (never for a valid key).
    pub fn key_set(&self) -> Result<KeySet, KeyError> {
        let (kid, key) = self.verifying_key()?;
        Ok(KeySet::single(kid, key))
    }

    /// The public key, by its id, for verifying.
    ///
    /// # Errors
    /// [`KeyError::Format`] if the public key cannot be used (never for a valid key).
    pub fn verifying_key(&self) -> Result<(String, VerifyingKey), KeyError> {
        let key =
            DecodingKey::from_ec_components(&self.x, &self.y).map_err(|_| KeyError::Format)?;
        Ok((
            self.kid.clone(),
            VerifyingKey {
                key,
                algorithms: vec![Algorithm::ES256],
            },
        ))
    }

    /// The key for signing JWTs.
    ///
    /// # Errors
    /// [`KeyError::Format`] if the key cannot be encoded (never for a valid key).
    pub fn encoding_key(&self) -> Result<EncodingKey, KeyError> {
        let der = self.secret.to_pkcs8_der().map_err(|_| KeyError::Format)?;
        Ok(EncodingKey::from_ec_der(der.as_bytes()))
    }

    /// The private key as PKCS#8 PEM, for writing a key file.
    ///
    /// # Security
    /// The result is the private key.
    ///
    /// # Errors
    /// [`KeyError::Format`] if encoding fails.
    pub fn to_pkcs8_pem(&self) -> Result<String, KeyError> {
        self.secret
            .to_pkcs8_pem(LineEnding::LF)
            .map(|pem| pem.to_string())
            .map_err(|_| KeyError::Format)
    }
}
