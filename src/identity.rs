// SPDX-License-Identifier: Apache-2.0
//! Stage 1 of the Check pipeline: who is calling.
//!
//! The caller's bearer JWT is verified (algorithm allow-list, `kid`, `iss`, `aud`, `exp`/`nbf`
//! with leeway, size cap) against keys from the embedded authorization server, a JWKS file or a
//! JWKS URL. Verified tokens are cached by digest until they expire.

mod bearer;
mod cache;
mod jwt;
mod keys;

use std::sync::Arc;

pub use bearer::bearer_token;
pub use jwt::{Verifier, VerifierSettings};
pub use keys::{KeySet, KeySource, RemoteJwks, VerifyingKey, ALLOWED_ALGORITHMS};

use crate::scope::Scopes;
use crate::secret::Tsid;

/// A verified caller.
#[derive(Debug)]
pub struct Identity {
    /// The JWT `sub`.
    pub subject: Arc<str>,
    /// The `tsid` claim linking to stored upstream tokens; `None` when absent, empty or not a
    /// string (then no upstream token can be found).
    pub tsid: Option<Tsid>,
    /// The JWT `exp`, unix seconds.
    pub expires_at: u64,
    /// The JWT `scope` claim (empty when absent).
    pub scopes: Scopes,
}

/// Why a caller was not identified. Each variant maps to a 401 of DESIGN.md §2 in
/// `response::denial`; messages never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// No `authorization` header.
    #[error("no bearer token")]
    Missing,
    /// `authorization` uses another scheme (`Basic`…).
    #[error("authorization scheme is not Bearer")]
    NotBearer,
    /// Not a JWT (bad shape, base64, JSON, or characters a bearer token cannot have).
    #[error("malformed token")]
    Malformed,
    /// Larger than the configured maximum.
    #[error("token too large")]
    TooLarge,
    /// `alg` is not in the allow-list (`none`, HMAC…) or does not fit the key.
    #[error("token algorithm not allowed")]
    AlgorithmNotAllowed,
    /// No key with the token's `kid` (or no `kid` while several keys exist).
    #[error("unknown signing key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("invalid signature")]
    BadSignature,
    /// `exp` has passed (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not contain the configured audience.
    #[error("wrong audience")]
    WrongAudience,
    /// A required claim (`exp`, `iss`, `aud`, `sub`) is missing or of the wrong type, or a
    /// `scope`, `nbf` or `iat` is malformed.
    #[error("missing or invalid claim {0}")]
    BadClaim(&'static str),
    /// The header's `typ` is not the one required (RFC 8725 §3.11 explicit typing; `at+jwt`,
    /// RFC 9068, for our own tokens).
    #[error("wrong token type")]
    WrongType,
}
