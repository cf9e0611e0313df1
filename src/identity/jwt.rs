// SPDX-License-Identifier: Apache-2.0
//! JWT verification with an algorithm allow-list and a verified-token cache.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use super::cache::VerifiedCache;
use super::keys::{KeySource, ALLOWED_ALGORITHMS};
use super::{Identity, IdentityError};
use crate::scope::Scopes;
use crate::secret::{TokenDigest, Tsid};

/// What a token must satisfy.
#[derive(Debug, Clone)]
pub struct VerifierSettings {
    /// Expected `iss`.
    pub issuer: String,
    /// Audience `aud` must contain.
    pub audience: String,
    /// Clock leeway for `exp` and `nbf`.
    pub leeway: Duration,
    /// Largest accepted token in bytes.
    pub max_token_bytes: usize,
    /// Verified-token cache capacity (entries).
    pub cache_capacity: u64,
    /// The `typ` a token's header must carry (compared as RFC 7515 §4.1.9 says: case aside, and
    /// with or without `application/`), or `None` to accept any.
    pub required_typ: Option<String>,
}

/// Verifies bearer JWTs; cheap to share.
#[derive(Debug)]
pub struct Verifier {
    keys: KeySource,
    /// One per allow-listed algorithm (a handful: a scan beats hashing).
    validations: Vec<(Algorithm, Validation)>,
    settings: VerifierSettings,
    cache: VerifiedCache,
}

#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    kid: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    typ: Option<std::borrow::Cow<'a, str>>,
    /// RFC 7515 §4.1.11: we understand no extension, so any `crit` (even empty or null) refuses
    /// the token.
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    /// NumericDate claims (RFC 7519 §2) are read as any JSON value so that one of the wrong type
    /// is named (`bad_claim`), not reported as a malformed token.
    exp: serde_json::Value,
    #[serde(default)]
    nbf: Option<serde_json::Value>,
    /// Checked here too: the library also accepts an array holding the issuer.
    #[serde(default)]
    iss: Option<serde_json::Value>,
    #[serde(default)]
    iat: Option<serde_json::Value>,
    #[serde(default)]
    tsid: Option<serde_json::Value>,
    /// RFC 8693 §4.2 / RFC 9068 §2.2.3: a space-separated string.
    #[serde(default)]
    scope: Option<serde_json::Value>,
}

/// `true` for a field that is there, whatever its value.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

impl Verifier {
    /// A verifier for `settings` with keys from `keys`.
    pub fn new(keys: KeySource, settings: VerifierSettings) -> Self {
        let validations = ALLOWED_ALGORITHMS
            .iter()
            .map(|alg| {
                let mut v = Validation::new(*alg);
                v.set_issuer(&[&settings.issuer]);
                v.set_audience(&[&settings.audience]);
                v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
                v.leeway = settings.leeway.as_secs();
                v.validate_nbf = true;
                (*alg, v)
            })
            .collect();
        let cache = VerifiedCache::new(settings.cache_capacity);
        Self {
            keys,
            validations,
            settings,
            cache,
        }
    }

    /// Verifies `token`; the second value tells whether the answer came from the cache.
    ///
    /// # Errors
    /// The [`IdentityError`] naming what is wrong with the token.
    pub async fn verify(&self, token: &str) -> Result<(Arc<Identity>, bool), IdentityError> {
        if token.len() > self.settings.max_token_bytes {
            return Err(IdentityError::TooLarge);
        }
        let digest = TokenDigest::of(token);
        if let Some(identity) = self.cache.get(&digest) {
            return Ok((identity, true));
        }
        let identity = Arc::new(self.verify_uncached(token).await?);
        self.cache.insert(digest, identity.clone());
        Ok((identity, false))
    }

    async fn verify_uncached(&self, token: &str) -> Result<Identity, IdentityError> {
        let encoded_header = token.split('.').next().ok_or(IdentityError::Malformed)?;
        let header_json = URL_SAFE_NO_PAD
            .decode(encoded_header)
            .map_err(|_| IdentityError::Malformed)?;
        let header: Header<'_> =
            serde_json::from_slice(&header_json).map_err(|_| IdentityError::Malformed)?;
        if header.crit {
            return Err(IdentityError::Malformed);
        }
        let alg = allowed_algorithm(&header.alg).ok_or(IdentityError::AlgorithmNotAllowed)?;
        let key = self
            .keys
            .find(header.kid.as_deref())
            .await
            .ok_or(IdentityError::UnknownKey)?;
        if !key.algorithms.contains(&alg) {
            return Err(IdentityError::AlgorithmNotAllowed);
        }
        let (_, validation) = self
            .validations
            .iter()
            .find(|(a, _)| *a == alg)
            .ok_or(IdentityError::AlgorithmNotAllowed)?;
        let data = jsonwebtoken::decode::<Claims>(token, &key.key, validation)
            .map_err(|e| map_error(e.kind()))?;
        // After the signature, so the answer for a forged token does not depend on its header.
        if let Some(required) = &self.settings.required_typ {
            if !header
                .typ
                .as_deref()
                .is_some_and(|typ| same_media_type(typ, required))
            {
                return Err(IdentityError::WrongType);
            }
        }
        let claims = data.claims;
        // §3: `iss` is a string equal to the configured issuer, never a list that contains it.
        if !matches!(&claims.iss, Some(serde_json::Value::String(iss)) if *iss == self.settings.issuer)
        {
            return Err(IdentityError::WrongIssuer);
        }
        let expires_at = numeric_date(&claims.exp).ok_or(IdentityError::BadClaim("exp"))?;
        for (name, value) in [("nbf", &claims.nbf), ("iat", &claims.iat)] {
            if value.as_ref().is_some_and(|v| numeric_date(v).is_none()) {
                return Err(IdentityError::BadClaim(name));
            }
        }
        let tsid = match claims.tsid {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Some(Tsid::new(s)),
            _ => None,
        };
        let scopes = match &claims.scope {
            None => Scopes::default(),
            Some(serde_json::Value::String(s)) if s.is_empty() => Scopes::default(),
            Some(serde_json::Value::String(s)) => {
                Scopes::parse(s).ok_or(IdentityError::BadClaim("scope"))?
            }
            Some(_) => return Err(IdentityError::BadClaim("scope")),
        };
        Ok(Identity {
            subject: Arc::from(claims.sub),
            tsid,
            expires_at,
            scopes,
        })
    }
}

/// Whether two `typ` values name one media type: ASCII case aside, `application/` optional.
fn same_media_type(a: &str, b: &str) -> bool {
    fn short(t: &str) -> &str {
        match t.get(..12) {
            Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &t[12..],
            _ => t,
        }
    }
    short(a).eq_ignore_ascii_case(short(b))
}

/// A NumericDate: a non-negative JSON number of seconds (a fraction is rounded down), never a
/// string.
fn numeric_date(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f as u64)
        }),
        _ => None,
    }
}

/// The allow-listed algorithm named by a JWT header's `alg`.
fn allowed_algorithm(name: &str) -> Option<Algorithm> {
    let alg = match name {
        "ES256" => Algorithm::ES256,
        "RS256" => Algorithm::RS256,
        "PS256" => Algorithm::PS256,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    };
    debug_assert!(ALLOWED_ALGORITHMS.contains(&alg));
    Some(alg)
}

fn map_error(kind: &ErrorKind) -> IdentityError {
    match kind {
        ErrorKind::InvalidSignature => IdentityError::BadSignature,
        ErrorKind::ExpiredSignature => IdentityError::Expired,
        ErrorKind::ImmatureSignature => IdentityError::NotYetValid,
        ErrorKind::InvalidIssuer => IdentityError::WrongIssuer,
        ErrorKind::InvalidAudience => IdentityError::WrongAudience,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            IdentityError::AlgorithmNotAllowed
        }
        ErrorKind::MissingRequiredClaim(claim) => IdentityError::BadClaim(static_claim(claim)),
        ErrorKind::InvalidClaimFormat(claim) => IdentityError::BadClaim(static_claim(claim)),
        _ => IdentityError::Malformed,
    }
}

fn static_claim(claim: &str) -> &'static str {
    ["exp", "iss", "aud", "sub", "nbf", "iat"]
        .into_iter()
        .find(|c| *c == claim)
        .unwrap_or("claims")
}
