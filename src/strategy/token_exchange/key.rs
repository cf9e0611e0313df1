// SPDX-License-Identifier: Apache-2.0
//! Keys of the exchanged-token cache: SHA-256 over length-prefixed parts, so no two distinct
//! inputs share a key and the subject token itself is never kept as a key.

use sha2::{Digest, Sha256};

/// A cache key: the digest of one (backend config, subject token) pair.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey([u8; 32]);

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheKey([redacted])")
    }
}

/// The parts of a backend's exchange that change what the endpoint issues.
#[derive(Debug, Clone, Copy)]
pub struct KeyParts<'a> {
    /// Backend name.
    pub backend: &'a str,
    /// Token endpoint URL.
    pub token_url: &'a str,
    /// Client id.
    pub client_id: Option<&'a str>,
    /// `audience`.
    pub audience: Option<&'a str>,
    /// Scopes, in any order (sorted here).
    pub scopes: &'a [String],
    /// Normalised subject token type.
    pub subject_token_type: &'a str,
    /// Provider whose token is the subject, if any.
    pub subject_provider: Option<&'a str>,
}

/// The digest state after a backend's fixed parts; each Check adds only its subject token.
#[derive(Clone)]
pub struct KeyPrefix(Sha256);

impl std::fmt::Debug for KeyPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyPrefix")
    }
}

fn part(hasher: &mut Sha256, value: &[u8]) {
    hasher.update((value.len() as u64).to_be_bytes());
    hasher.update(value);
}

fn optional(hasher: &mut Sha256, value: Option<&str>) {
    match value {
        None => hasher.update([0u8]),
        Some(v) => {
            hasher.update([1u8]);
            part(hasher, v.as_bytes());
        }
    }
}

impl KeyPrefix {
    /// Hashes a backend's fixed parts.
    pub fn new(parts: KeyParts<'_>) -> Self {
        let mut hasher = Sha256::new();
        part(&mut hasher, b"mcp-authz token_exchange cache v1");
        part(&mut hasher, parts.backend.as_bytes());
        part(&mut hasher, parts.token_url.as_bytes());
        optional(&mut hasher, parts.client_id);
        optional(&mut hasher, parts.audience);
        let mut scopes: Vec<&str> = parts.scopes.iter().map(String::as_str).collect();
        scopes.sort_unstable();
        scopes.dedup();
        hasher.update((scopes.len() as u64).to_be_bytes());
        for scope in scopes {
            part(&mut hasher, scope.as_bytes());
        }
        part(&mut hasher, parts.subject_token_type.as_bytes());
        optional(&mut hasher, parts.subject_provider);
        Self(hasher)
    }

    /// The key for one subject token.
    pub fn key(&self, subject_token: &str) -> CacheKey {
        let mut hasher = self.0.clone();
        part(&mut hasher, subject_token.as_bytes());
        CacheKey(hasher.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts<'a>(scopes: &'a [String]) -> KeyParts<'a> {
        KeyParts {
            backend: "jira",
            token_url: "https://sts/token",
            client_id: Some("c"),
            audience: Some("jira"),
            scopes,
            subject_token_type: "urn:ietf:params:oauth:token-type:access_token",
            subject_provider: None,
        }
    }

    #[test]
    fn scope_order_does_not_matter_but_everything_else_does() {
        let ab = ["a".to_owned(), "b".to_owned()];
        let ba = ["b".to_owned(), "a".to_owned()];
        let subject = "s";
        let base = KeyPrefix::new(parts(&ab)).key(subject);
        assert_eq!(base, KeyPrefix::new(parts(&ba)).key(subject));
        let variants = [
            KeyParts {
                backend: "jira2",
                ..parts(&ab)
            },
            KeyParts {
                client_id: None,
                ..parts(&ab)
            },
            KeyParts {
                client_id: Some(""),
                ..parts(&ab)
            },
            KeyParts {
                audience: None,
                ..parts(&ab)
            },
            KeyParts {
                subject_provider: Some("okta"),
                ..parts(&ab)
            },
            KeyParts {
                subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
                ..parts(&ab)
            },
            parts(&[]),
        ];
        for variant in variants {
            assert_ne!(base, KeyPrefix::new(variant).key(subject), "{variant:?}");
        }
        assert_ne!(base, KeyPrefix::new(parts(&ab)).key("t"));
    }

    #[test]
    fn length_prefixes_keep_boundaries_apart() {
        let none: [String; 0] = [];
        let one = KeyPrefix::new(KeyParts {
            backend: "ab",
            token_url: "c",
            ..parts(&none)
        });
        let two = KeyPrefix::new(KeyParts {
            backend: "a",
            token_url: "bc",
            ..parts(&none)
        });
        let subject = "s";
        assert_ne!(one.key(subject), two.key(subject));
        let joined = ["a b".to_owned()];
        let split = ["a".to_owned(), "b".to_owned()];
        assert_ne!(
            KeyPrefix::new(parts(&joined)).key(subject),
            KeyPrefix::new(parts(&split)).key(subject)
        );
    }
}
