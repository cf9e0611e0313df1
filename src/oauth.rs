// SPDX-License-Identifier: Apache-2.0
//! Outbound OAuth: the one HTTP client every outbound call uses, the token-endpoint call that
//! code redemption, refresh and token exchange share, and the upstream identity providers.
//! Nothing an endpoint says is echoed: errors carry fixed texts and recognised RFC codes only.

pub(crate) mod guard;
pub mod provider;
pub(crate) mod strict_json;
pub(crate) mod token_endpoint;

use std::time::Duration;

use base64::Engine as _;
use url::form_urlencoded;

use crate::secret::Token;

/// Largest response body read from a token, discovery or JWKS endpoint (1 MiB).
pub(crate) const MAX_BODY_BYTES: usize = 1 << 20;

/// The outbound HTTP client, built once and shared by token endpoints, OIDC discovery and JWKS
/// fetches: redirects are never followed (an endpoint that redirects is refused), connections
/// time out after 2 s, and TLS is rustls with the platform's verifier. Each call sets its own
/// overall timeout.
///
/// # Errors
/// When the TLS stack cannot be initialised; `serve` stops with this error.
pub fn http_client(roots: &[reqwest::Certificate]) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .tls_certs_merge(roots.to_vec())
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(2))
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .user_agent(concat!("mcp-authz/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The CA certificates of `outbound.caFile` (a PEM bundle, at least one certificate).
///
/// # Errors
/// A line naming the problem, never the file's contents.
pub fn load_roots(path: &str) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let roots = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|_| format!("{path} is not a PEM certificate bundle"))?;
    if roots.is_empty() {
        return Err(format!("{path} holds no certificate"));
    }
    Ok(roots)
}

/// Why a response body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Larger than the cap.
    TooLarge,
    /// The read timed out.
    Timeout,
    /// The connection failed while reading.
    Failed,
}

/// Reads at most `cap` bytes of body.
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|len| len > cap as u64)
    {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > cap {
                    return Err(BodyError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) if e.is_timeout() => return Err(BodyError::Timeout),
            Err(_) => return Err(BodyError::Failed),
        }
    }
}

/// OAuth error codes a token endpoint may answer with (RFC 6749 §5.2, RFC 8693 §2.2.2).
const KNOWN_ERROR_CODES: [&str; 8] = [
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "invalid_target",
    "access_denied",
];

/// `code` if it is a registered OAuth error code, else `unrecognized_error`: only fixed strings
/// from our own list ever reach a log line or an error.
pub(crate) fn recognised_error_code(code: &str) -> &'static str {
    KNOWN_ERROR_CODES
        .into_iter()
        .find(|known| *known == code)
        .unwrap_or("unrecognized_error")
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub(crate) fn form_encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The `Authorization: Basic …` value of RFC 6749 §2.3.1 (id and secret form-encoded first).
pub(crate) fn basic_auth(client_id: &str, client_secret: &str) -> Token {
    let pair = format!("{}:{}", form_encode(client_id), form_encode(client_secret));
    Token::new(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    ))
}
