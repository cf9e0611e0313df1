// SPDX-License-Identifier: Apache-2.0
//! Verification keys: the embedded authorization server's own key (in process), a JWKS file, or
//! a JWKS URL fetched at boot and again on an unknown `kid` (at most once per interval).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Algorithms we ever accept (DESIGN.md §3): never `none`, never HMAC.
pub const ALLOWED_ALGORITHMS: [Algorithm; 4] = [
    Algorithm::ES256,
    Algorithm::RS256,
    Algorithm::PS256,
    Algorithm::EdDSA,
];

/// One verification key and the algorithms it may verify.
#[derive(Clone)]
pub struct VerifyingKey {
    /// The key.
    pub key: DecodingKey,
    /// Algorithms this key verifies (a subset of [`ALLOWED_ALGORITHMS`]).
    pub algorithms: Vec<Algorithm>,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

/// A set of keys by `kid`.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    by_kid: HashMap<String, VerifyingKey>,
    without_kid: Vec<VerifyingKey>,
}

impl KeySet {
    /// A set holding one key under `kid`.
    pub fn single(kid: String, key: VerifyingKey) -> Self {
        Self {
            by_kid: HashMap::from([(kid, key)]),
            without_kid: Vec::new(),
        }
    }

    /// A set of keys by their ids.
    pub fn from_keys(keys: impl IntoIterator<Item = (String, VerifyingKey)>) -> Self {
        Self {
            by_kid: keys.into_iter().collect(),
            without_kid: Vec::new(),
        }
    }

    /// Parses a JWKS document. Keys we cannot use (HMAC, unsupported curves) are skipped and
    /// named in the returned notes, so the caller can log them.
    ///
    /// # Errors
    /// A message when the document is not a JWKS or holds no usable key.
    pub fn from_jwks(json: &[u8]) -> Result<(Self, Vec<String>), String> {
        #[derive(serde::Deserialize)]
        struct RawSet {
            keys: Vec<serde_json::Value>,
        }
        let raw: RawSet =
            serde_json::from_slice(json).map_err(|e| format!("not a JWKS document: {e}"))?;
        let mut set = Self::default();
        let mut notes = Vec::new();
        for (i, value) in raw.keys.into_iter().enumerate() {
            let jwk: Jwk = match serde_json::from_value(value) {
                Ok(jwk) => jwk,
                Err(e) => {
                    notes.push(format!("key {i} skipped: {e}"));
                    continue;
                }
            };
            match verifying_key(&jwk) {
                Ok(key) => match jwk.common.key_id {
                    Some(kid) => {
                        set.by_kid.insert(kid, key);
                    }
                    None => set.without_kid.push(key),
                },
                Err(why) => notes.push(format!("key {i} skipped: {why}")),
            }
        }
        if set.is_empty() {
            return Err("JWKS holds no usable verification key".to_owned());
        }
        Ok((set, notes))
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.by_kid.len() + self.without_kid.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The key for `kid`; a token without `kid` is accepted only while exactly one key exists.
    pub fn find(&self, kid: Option<&str>) -> Option<&VerifyingKey> {
        match kid {
            Some(kid) => self.by_kid.get(kid),
            None if self.len() == 1 => self.by_kid.values().chain(&self.without_kid).next(),
            None => None,
        }
    }
}

fn verifying_key(jwk: &Jwk) -> Result<VerifyingKey, String> {
    let by_type = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            vec![Algorithm::ES256]
        }
        AlgorithmParameters::EllipticCurve(_) => return Err("unsupported curve".to_owned()),
        AlgorithmParameters::RSA(_) => vec![Algorithm::RS256, Algorithm::PS256],
        AlgorithmParameters::OctetKeyPair(_) => vec![Algorithm::EdDSA],
        AlgorithmParameters::OctetKey(_) => {
            return Err("symmetric (HMAC) keys are never accepted".to_owned())
        }
        _ => return Err("unsupported key type".to_owned()),
    };
    let algorithms = match jwk.common.key_algorithm.map(|a| a.to_string()) {
        Some(alg) => by_type
            .into_iter()
            .filter(|a| format!("{a:?}") == alg)
            .collect(),
        None => by_type,
    };
    if algorithms.is_empty() {
        return Err("key algorithm not allowed".to_owned());
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("invalid key: {e}"))?;
    Ok(VerifyingKey { key, algorithms })
}

/// Where keys come from.
#[derive(Debug)]
pub enum KeySource {
    /// A fixed set: the embedded server's key or a JWKS file.
    Static(KeySet),
    /// A JWKS URL.
    Remote(RemoteJwks),
}

impl KeySource {
    /// The key for `kid`, refetching a remote JWKS once per interval when `kid` is unknown.
    pub async fn find(&self, kid: Option<&str>) -> Option<VerifyingKey> {
        match self {
            Self::Static(set) => set.find(kid).cloned(),
            Self::Remote(remote) => remote.find(kid).await,
        }
    }
}

/// How long one JWKS fetch may take, connection to last byte.
const FETCH_TIMEOUT: Duration = Duration::from_secs(2);

/// A JWKS fetched over HTTP(S).
pub struct RemoteJwks {
    url: String,
    client: reqwest::Client,
    current: ArcSwap<KeySet>,
    last_fetch: Mutex<Option<Instant>>,
    min_interval: Duration,
}

impl std::fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteJwks")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl RemoteJwks {
    /// A source for `url` fetched with `client` (which must not follow redirects); call
    /// [`RemoteJwks::refresh`] once at boot.
    pub fn new(url: String, min_interval: Duration, client: reqwest::Client) -> Self {
        Self {
            url,
            client,
            current: ArcSwap::from_pointee(KeySet::default()),
            last_fetch: Mutex::new(None),
            min_interval,
        }
    }

    /// Fetches the JWKS now.
    ///
    /// # Errors
    /// A message naming the URL and what failed; the previous keys stay.
    pub async fn refresh(&self) -> Result<usize, String> {
        let fetch = async {
            let response = self
                .client
                .get(&self.url)
                .timeout(FETCH_TIMEOUT)
                .send()
                .await
                .map_err(|e| format!("fetch failed: {e}"))?;
            if !response.status().is_success() {
                return Err(format!("HTTP {}", response.status()));
            }
            let body = response
                .bytes()
                .await
                .map_err(|e| format!("read failed: {e}"))?;
            KeySet::from_jwks(&body)
        };
        let (set, notes) = fetch.await.map_err(|e| format!("JWKS {}: {e}", self.url))?;
        for note in notes {
            tracing::warn!(url = %self.url, "{note}");
        }
        let count = set.len();
        self.current.store(Arc::new(set));
        Ok(count)
    }

    /// The key for `kid`, refetching the JWKS (at most once per interval) when it is unknown.
    pub async fn find(&self, kid: Option<&str>) -> Option<VerifyingKey> {
        if let Some(key) = self.current.load().find(kid) {
            return Some(key.clone());
        }
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < self.min_interval) {
            // Another Check refetched recently (perhaps while we waited for the lock).
            return self.current.load().find(kid).cloned();
        }
        *last = Some(Instant::now());
        if let Err(e) = self.refresh().await {
            tracing::warn!("{e}");
        }
        self.current.load().find(kid).cloned()
    }
}
