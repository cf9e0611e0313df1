// SPDX-License-Identifier: Apache-2.0
//! THE mapping from a Check error to its answer (DESIGN.md §2): gRPC code, HTTP status,
//! `WWW-Authenticate` and RFC 6750 JSON body. The match is exhaustive on purpose: a new error
//! kind cannot compile without a row here.

use std::sync::Arc;

use crate::identity::IdentityError;
use crate::strategy::{ExchangeError, StrategyError};
use crate::upstream::UpstreamError;
use crate::wire::elicitation::INPUT_KEY;
use crate::wire::mcp::McpError;

/// Why a Check did not allow the request.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The route names a backend that is not configured (misrouting fails closed).
    #[error("unknown backend")]
    UnknownBackend,
    /// The caller could not be identified.
    #[error("identity: {0}")]
    Identity(#[source] IdentityError),
    /// The backend's strategy could not produce a credential.
    #[error("strategy: {0}")]
    Strategy(#[source] StrategyError),
    /// The caller's token lacks a scope the backend or the called tool requires (§10).
    #[error("insufficient scope")]
    InsufficientScope,
    /// The backend has tool rules and the request's tool cannot be told for sure (§10).
    #[error("tool rules: {0}")]
    Tool(#[source] McpError),
    /// The strategy produced a header value that cannot be sent (never expected; denied rather
    /// than passed on).
    #[error("refusing to emit an invalid header value")]
    InvalidHeaderValue,
    /// §11: the caller has no usable token for `provider` and the client can show a URL: the
    /// answer is a URL-mode elicitation of the connect page, as the request's JSON-RPC result.
    #[error("provider {provider:?} must be connected")]
    ConnectProvider {
        /// The provider to connect.
        provider: Arc<str>,
        /// The connect page, with its single-use id.
        url: String,
        /// The JSON text of the request's id, echoed.
        request_id: String,
    },
}

/// The gRPC status of a denial. Only 16 and 7 are denials to Envoy; 14 is an error, which with
/// `failure_mode_allow: false` still stops the request (and we send the 503 ourselves).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrpcCode {
    /// 16: the caller must (re-)authenticate.
    Unauthenticated,
    /// 7: the request is not allowed.
    PermissionDenied,
    /// 14: a dependency (store, token endpoint) failed; retry later.
    Unavailable,
}

impl GrpcCode {
    /// The numeric gRPC code.
    pub fn code(self) -> i32 {
        match self {
            Self::Unauthenticated => 16,
            Self::PermissionDenied => 7,
            Self::Unavailable => 14,
        }
    }
}

/// A denial, ready to encode. Built only by [`Denial::from_error`], so every answer comes from
/// the one mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub(super) grpc: GrpcCode,
    pub(super) http_status: u16,
    pub(super) www_authenticate: Option<String>,
    pub(super) body: String,
    pub(super) reason: &'static str,
}

impl Denial {
    /// gRPC status.
    pub fn grpc(&self) -> GrpcCode {
        self.grpc
    }

    /// Short reason code for metrics, logs and audit (no secret).
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

/// The fixed part of our `WWW-Authenticate` challenges: realm and RFC 9728 metadata URL.
#[derive(Debug, Clone)]
pub struct Challenge {
    prefix: String,
}

impl Challenge {
    /// A challenge for `realm` (our issuer) pointing at `resource_metadata` (the PRM URL).
    pub fn new(realm: &str, resource_metadata: &str) -> Self {
        Self {
            prefix: format!(
                "Bearer realm=\"{}\", resource_metadata=\"{}\"",
                quote_safe(realm),
                quote_safe(resource_metadata)
            ),
        }
    }

    /// The challenge without an error code (RFC 6750 §3.1: no credentials were sent), naming
    /// `scope` when there is one.
    pub fn bare(&self, scope: Option<&str>) -> String {
        let mut out = self.prefix.clone();
        push_scope(&mut out, scope);
        out
    }

    /// The challenge with `error`, `error_description` and `scope` when there is one.
    pub fn with_error(&self, error: &str, description: &str, scope: Option<&str>) -> String {
        let mut out = format!(
            "{}, error=\"{error}\", error_description=\"{}\"",
            self.prefix,
            quote_safe(description)
        );
        push_scope(&mut out, scope);
        out
    }
}

/// RFC 6750 §3: `scope="…"` (scope tokens never need escaping, but the value is quoted safely
/// all the same).
fn push_scope(out: &mut String, scope: Option<&str>) {
    if let Some(scope) = scope {
        out.push_str(", scope=\"");
        out.push_str(&quote_safe(scope));
        out.push('"');
    }
}

/// Escapes a value for an HTTP quoted-string (RFC 9110 §5.6.4); control characters are dropped.
fn quote_safe(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn json_body(error: &str, description: &str) -> String {
    serde_json::json!({ "error": error, "error_description": description }).to_string()
}

impl Denial {
    fn unauthenticated(
        challenge: &Challenge,
        scope: Option<&str>,
        error: &'static str,
        description: &str,
        reason: &'static str,
    ) -> Self {
        Self {
            grpc: GrpcCode::Unauthenticated,
            http_status: 401,
            www_authenticate: Some(challenge.with_error(error, description, scope)),
            body: json_body(error, description),
            reason,
        }
    }

    /// §10 step-up: 403 with a challenge naming every scope the request needs.
    fn insufficient_scope(challenge: &Challenge, scope: Option<&str>) -> Self {
        let description = "the token lacks a scope this request needs";
        Self {
            grpc: GrpcCode::PermissionDenied,
            http_status: 403,
            www_authenticate: Some(challenge.with_error("insufficient_scope", description, scope)),
            body: json_body("insufficient_scope", description),
            reason: "insufficient_scope",
        }
    }

    fn missing_token(challenge: &Challenge, scope: Option<&str>) -> Self {
        Self {
            grpc: GrpcCode::Unauthenticated,
            http_status: 401,
            www_authenticate: Some(challenge.bare(scope)),
            body: json_body("unauthorized", "bearer token required"),
            reason: "missing_token",
        }
    }

    fn permission_denied(error: &'static str, reason: &'static str) -> Self {
        Self {
            grpc: GrpcCode::PermissionDenied,
            http_status: 403,
            www_authenticate: None,
            body: serde_json::json!({ "error": error }).to_string(),
            reason,
        }
    }

    fn unavailable(reason: &'static str) -> Self {
        Self {
            grpc: GrpcCode::Unavailable,
            http_status: 503,
            www_authenticate: None,
            body: json_body(
                "temporarily_unavailable",
                "authorization service temporarily unavailable",
            ),
            reason,
        }
    }

    /// The spec's `InputRequiredResult` with one URL-mode elicitation (no `requestState`), as
    /// an HTTP 200 JSON-RPC response; Envoy still stops the request (gRPC 7).
    fn elicitation(provider: &str, url: &str, request_id: &str) -> Self {
        let id: serde_json::Value = serde_json::from_str(request_id).unwrap_or_default();
        let message = format!(
            "Connect your {provider} account to continue: open the link, sign in, then return here."
        );
        let request = serde_json::json!({
            "method": "elicitation/create",
            "params": { "mode": "url", "message": message, "url": url },
        });
        let mut requests = serde_json::Map::new();
        requests.insert(INPUT_KEY.to_owned(), request);
        let body = serde_json::json!({
            "jsonrpc": "2.0",
            "id": id,
            "result": { "resultType": "input_required", "inputRequests": requests },
        });
        Self {
            grpc: GrpcCode::PermissionDenied,
            http_status: 200,
            www_authenticate: None,
            body: body.to_string(),
            reason: "connect_provider",
        }
    }

    fn reauthenticate(
        challenge: &Challenge,
        scope: Option<&str>,
        provider: &Arc<str>,
        reason: &'static str,
    ) -> Self {
        let description = UpstreamError::NotFound(provider.clone()).to_string();
        Self::unauthenticated(challenge, scope, "invalid_token", &description, reason)
    }

    /// The answer for `error`; `scope` is what the request needs ∪ what its valid token holds
    /// (`Checked::challenge_scope`), named in every challenge.
    pub fn from_error(error: &CheckError, challenge: &Challenge, scope: Option<&str>) -> Self {
        match error {
            CheckError::UnknownBackend => {
                Self::permission_denied("unknown_backend", "unknown_backend")
            }
            CheckError::Identity(e) => Self::from_identity(e, challenge, scope),
            CheckError::InsufficientScope => Self::insufficient_scope(challenge, scope),
            CheckError::Tool(McpError::Unverifiable(_)) => {
                Self::permission_denied("tool_unverifiable", "tool_unverifiable")
            }
            CheckError::Tool(McpError::HeaderMismatch) => {
                Self::permission_denied("tool_header_mismatch", "tool_header_mismatch")
            }
            CheckError::InvalidHeaderValue => Self::unavailable("invalid_header_value"),
            CheckError::ConnectProvider {
                provider,
                url,
                request_id,
            } => Self::elicitation(provider, url, request_id),
            CheckError::Strategy(e) => match e {
                StrategyError::Upstream(e) => Self::from_upstream(e, challenge, scope),
                StrategyError::NoIdentity(_) => Self::unavailable("no_identity"),
                StrategyError::Exchange(e) => Self::from_exchange(e, challenge, scope),
            },
        }
    }

    fn from_upstream(error: &UpstreamError, challenge: &Challenge, scope: Option<&str>) -> Self {
        match error {
            UpstreamError::NotFound(provider) | UpstreamError::ProviderRefused(provider) => {
                Self::reauthenticate(challenge, scope, provider, "upstream_token_unavailable")
            }
            // Logging in again rewrites the record, so this is the caller's way out.
            UpstreamError::Corrupt { provider, .. } => {
                Self::reauthenticate(challenge, scope, provider, "upstream_record_corrupt")
            }
            UpstreamError::ProviderUnavailable(_) => {
                Self::unavailable("upstream_refresh_unavailable")
            }
            UpstreamError::StoreUnavailable(_) => Self::unavailable("store_unavailable"),
        }
    }

    fn from_exchange(error: &ExchangeError, challenge: &Challenge, scope: Option<&str>) -> Self {
        match error {
            ExchangeError::Rejected {
                code: "invalid_grant",
                ..
            } => Self::unauthenticated(
                challenge,
                scope,
                "invalid_token",
                "the token service rejected the credential for this backend; re-authentication required",
                "exchange_invalid_grant",
            ),
            // The endpoint refuses our client or parameters: a configuration problem, not the
            // caller's; it is cached briefly, so retries are cheap.
            ExchangeError::Rejected { .. } => Self::unavailable("exchange_rejected"),
            ExchangeError::InvalidResponse(_) => Self::unavailable("exchange_invalid_response"),
            ExchangeError::Timeout => Self::unavailable("exchange_timeout"),
            ExchangeError::Unreachable => Self::unavailable("exchange_unreachable"),
            ExchangeError::ServerError(_) => Self::unavailable("exchange_server_error"),
        }
    }

    fn from_identity(error: &IdentityError, challenge: &Challenge, scope: Option<&str>) -> Self {
        let reason = match error {
            IdentityError::Missing => return Self::missing_token(challenge, scope),
            IdentityError::NotBearer => {
                return Self::unauthenticated(
                    challenge,
                    scope,
                    "invalid_request",
                    "authorization scheme must be Bearer",
                    "not_bearer",
                )
            }
            IdentityError::Malformed => "malformed_token",
            IdentityError::TooLarge => "token_too_large",
            IdentityError::AlgorithmNotAllowed => "algorithm_not_allowed",
            IdentityError::UnknownKey => "unknown_key",
            IdentityError::BadSignature => "bad_signature",
            IdentityError::Expired => "token_expired",
            IdentityError::NotYetValid => "token_not_yet_valid",
            IdentityError::WrongIssuer => "wrong_issuer",
            IdentityError::WrongAudience => "wrong_audience",
            IdentityError::BadClaim(_) => "bad_claim",
            IdentityError::WrongType => "wrong_token_type",
        };
        Self::unauthenticated(
            challenge,
            scope,
            "invalid_token",
            &error.to_string(),
            reason,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge() -> Challenge {
        Challenge::new(
            "https://mcp.example.com",
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
        )
    }

    #[test]
    fn a_missing_upstream_token_asks_for_login_again() {
        let err = CheckError::Strategy(StrategyError::Upstream(UpstreamError::NotFound(
            Arc::from("github"),
        )));
        let denial = Denial::from_error(&err, &challenge(), None);
        assert_eq!(denial.grpc, GrpcCode::Unauthenticated);
        assert_eq!(denial.http_status, 401);
        assert_eq!(
            denial.www_authenticate.as_deref(),
            Some(
                "Bearer realm=\"https://mcp.example.com\", resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\", error=\"invalid_token\", error_description=\"upstream token for provider \\\"github\\\" is unavailable; re-authentication required\""
            )
        );
    }

    #[test]
    fn a_refused_refresh_is_answered_like_a_missing_token() {
        let answer = |e: UpstreamError| {
            let d = Denial::from_error(
                &CheckError::Strategy(StrategyError::Upstream(e)),
                &challenge(),
                None,
            );
            (d.grpc, d.http_status, d.www_authenticate, d.body, d.reason)
        };
        let github = || Arc::<str>::from("github");
        assert_eq!(
            answer(UpstreamError::ProviderRefused(github())),
            answer(UpstreamError::NotFound(github()))
        );
    }

    #[test]
    fn missing_token_has_no_error_code() {
        let denial = Denial::from_error(
            &CheckError::Identity(IdentityError::Missing),
            &challenge(),
            None,
        );
        let header = denial.www_authenticate.unwrap();
        assert!(!header.contains("error="), "{header}");
        assert!(header.contains("resource_metadata="), "{header}");
    }

    #[test]
    fn store_unavailable_is_503_not_a_denial() {
        let err = CheckError::Strategy(StrategyError::Upstream(UpstreamError::StoreUnavailable(
            "down",
        )));
        let denial = Denial::from_error(&err, &challenge(), None);
        assert_eq!(
            (denial.grpc, denial.http_status),
            (GrpcCode::Unavailable, 503)
        );
        assert!(!denial.body.contains("down"));
    }

    #[test]
    fn unknown_backend_is_403() {
        let denial = Denial::from_error(&CheckError::UnknownBackend, &challenge(), None);
        assert_eq!((denial.grpc.code(), denial.http_status), (7, 403));
        assert_eq!(denial.body, r#"{"error":"unknown_backend"}"#);
    }
}
