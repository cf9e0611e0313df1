// SPDX-License-Identifier: Apache-2.0
//! Extracting the bearer credential from the request's `authorization` header.

use super::IdentityError;
use crate::secret::is_b64token;

/// The credential of `authorization: Bearer <token>` (scheme case-insensitive, RFC 6750 §2.1).
///
/// # Errors
/// [`IdentityError::Missing`] without a header, [`IdentityError::NotBearer`] for another scheme,
/// [`IdentityError::Malformed`] when the credential has characters a `b64token` cannot have
/// (including the comma Envoy uses to join repeated headers).
pub fn bearer_token(header: Option<&str>) -> Result<&str, IdentityError> {
    let header = header.ok_or(IdentityError::Missing)?.trim();
    if header.is_empty() {
        return Err(IdentityError::Missing);
    }
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(IdentityError::NotBearer);
    }
    let token = rest.trim_start_matches(' ');
    if !is_b64token(token) {
        return Err(IdentityError::Malformed);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_bearer_in_any_case() {
        assert_eq!(bearer_token(Some("Bearer abc.def")), Ok("abc.def"));
        assert_eq!(bearer_token(Some("bearer  abc")), Ok("abc"));
        assert_eq!(bearer_token(Some("BEARER abc")), Ok("abc"));
    }

    #[test]
    fn rejects_missing_other_schemes_and_garbage() {
        assert_eq!(bearer_token(None), Err(IdentityError::Missing));
        assert_eq!(bearer_token(Some("")), Err(IdentityError::Missing));
        assert_eq!(
            bearer_token(Some("Basic dXNlcjpwYXNz")),
            Err(IdentityError::NotBearer)
        );
        assert_eq!(bearer_token(Some("Bearer")), Err(IdentityError::Malformed));
        assert_eq!(
            bearer_token(Some("Bearer a b")),
            Err(IdentityError::Malformed)
        );
        assert_eq!(
            bearer_token(Some("Bearer a,Bearer b")),
            Err(IdentityError::Malformed)
        );
        assert_eq!(
            bearer_token(Some("Bearer <script>")),
            Err(IdentityError::Malformed)
        );
    }
}
