// SPDX-License-Identifier: Apache-2.0
//! The RFC 8693 request and the checks on its response (DESIGN.md §4).
//!
//! Nothing the token endpoint says is ever echoed: errors carry fixed texts and, for OAuth error
//! responses, only a recognised RFC error code.

use std::time::Duration;

use url::form_urlencoded;

use crate::oauth::basic_auth;
use crate::oauth::token_endpoint::{self, Answer, Status, Transport};
use crate::secret::{is_b64token, Token};

/// `grant_type` of RFC 8693.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The only token type we request and accept as a bearer.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Largest issued token we put in a header.
pub(super) const MAX_ISSUED_TOKEN_BYTES: usize = 16 * 1024;

/// Why an exchange produced no token. Cheap to clone: one result is shared by every Check that
/// waited for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    /// The token endpoint refused: a 4xx (not 408 or 429), or a 2xx carrying `error`. Definite,
    /// so it is cached briefly.
    #[error("token endpoint rejected the exchange (HTTP {status}, error {code})")]
    Rejected {
        /// HTTP status of the answer.
        status: u16,
        /// A recognised RFC error code, or `unrecognized_error`.
        code: &'static str,
    },
    /// A 2xx answer we cannot use.
    #[error("token endpoint response unusable: {0}")]
    InvalidResponse(&'static str),
    /// No answer within the budget (the Check's remaining deadline or `timeoutMs`).
    #[error("token endpoint did not answer in time")]
    Timeout,
    /// Connection refused, reset, DNS or TLS failure.
    #[error("token endpoint unreachable")]
    Unreachable,
    /// A 5xx, 408 or 429: the endpoint may recover.
    #[error("token endpoint failed with HTTP {0}")]
    ServerError(u16),
}

impl ExchangeError {
    /// Whether the endpoint said no for good (then the answer is cached briefly).
    pub fn is_definite(&self) -> bool {
        matches!(self, Self::Rejected { .. })
    }
}

/// The fixed part of one backend's exchange request, built once from config.
pub struct ExchangeRequest {
    token_url: url::Url,
    /// `Basic …` when both client id and secret are configured.
    basic_auth: Option<Token>,
    /// Every form parameter except `subject_token`, already encoded.
    form_prefix: String,
}

impl std::fmt::Debug for ExchangeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangeRequest")
            .field("token_url", &self.token_url.as_str())
            .field("client_auth", &self.basic_auth.is_some())
            .finish_non_exhaustive()
    }
}

/// What the token endpoint issued.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The issued access token (a `b64token`, at most [`MAX_ISSUED_TOKEN_BYTES`]).
    pub access_token: Token,
    /// `expires_in`, when the endpoint gave one.
    pub expires_in: Option<Duration>,
}

/// The parameters of one backend's exchange.
#[derive(Debug, Clone, Copy)]
pub struct RequestParams<'a> {
    /// Absolute token endpoint URL.
    pub token_url: &'a url::Url,
    /// Client id, if any.
    pub client_id: Option<&'a str>,
    /// Client secret, if any; Basic auth is used only when both are set.
    pub client_secret: Option<&'a str>,
    /// `audience`.
    pub audience: Option<&'a str>,
    /// Scopes, sent space-joined.
    pub scopes: &'a [String],
    /// Normalised `subject_token_type` URN.
    pub subject_token_type: &'a str,
}

impl ExchangeRequest {
    /// Builds the fixed part of the request.
    pub fn new(params: RequestParams<'_>) -> Self {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", GRANT_TYPE)
            .append_pair("subject_token_type", params.subject_token_type)
            .append_pair("requested_token_type", ACCESS_TOKEN_TYPE);
        if let Some(audience) = params.audience.filter(|a| !a.is_empty()) {
            form.append_pair("audience", audience);
        }
        if !params.scopes.is_empty() {
            form.append_pair("scope", &params.scopes.join(" "));
        }
        let form_prefix = form.finish();
        let basic_auth = match (params.client_id, params.client_secret) {
            (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => {
                Some(basic_auth(id, secret))
            }
            _ => None,
        };
        Self {
            token_url: params.token_url.clone(),
            basic_auth,
            form_prefix,
        }
    }

    /// The form body for one subject token.
    fn body(&self, subject_token: &Token) -> String {
        form_urlencoded::Serializer::for_suffix(self.form_prefix.clone(), 0)
            .append_pair("subject_token", subject_token.expose_secret())
            .finish()
    }

    /// Exchanges `subject_token`, giving up after `budget`.
    ///
    /// # Errors
    /// [`ExchangeError`]; never the endpoint's own text.
    pub async fn send(
        &self,
        http: &reqwest::Client,
        subject_token: &Token,
        budget: Duration,
    ) -> Result<Issued, ExchangeError> {
        let answer = token_endpoint::post(
            http,
            &self.token_url,
            self.basic_auth.as_ref(),
            self.body(subject_token),
            budget,
        )
        .await
        .map_err(|e| match e {
            Transport::TooLarge => ExchangeError::InvalidResponse("response body over 1 MiB"),
            Transport::Timeout => ExchangeError::Timeout,
            Transport::Unreachable => ExchangeError::Unreachable,
        })?;
        check_answer(answer)
    }
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    token_type: Option<String>,
    issued_token_type: Option<String>,
    expires_in: Option<serde_json::Value>,
    error: Option<String>,
}

impl token_endpoint::TokenResponse for TokenResponse {
    fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
}

/// Checks one token-endpoint answer against RFC 8693 §2.2.
///
/// # Errors
/// [`ExchangeError`] for every answer that does not give a usable bearer token.
fn check_answer(answer: Answer<TokenResponse>) -> Result<Issued, ExchangeError> {
    let status = answer.status;
    let code = answer.error_code();
    match answer.class() {
        Status::Success => {}
        Status::Transient | Status::Unexpected => return Err(ExchangeError::ServerError(status)),
        Status::Refused => {
            return Err(ExchangeError::Rejected {
                status,
                code: code.unwrap_or("none"),
            })
        }
    }
    let Some(response) = answer.parsed.as_ref() else {
        return Err(ExchangeError::InvalidResponse(
            "body is not a JSON token response",
        ));
    };
    if let Some(code) = code {
        return Err(ExchangeError::Rejected { status, code });
    }
    let access_token = match response.access_token.as_deref() {
        None | Some("") => return Err(ExchangeError::InvalidResponse("missing access_token")),
        Some(t) if t.len() > MAX_ISSUED_TOKEN_BYTES => {
            return Err(ExchangeError::InvalidResponse("access_token over 16 KiB"))
        }
        Some(t) if !is_b64token(t) => {
            return Err(ExchangeError::InvalidResponse(
                "access_token is not a valid bearer credential",
            ))
        }
        Some(t) => t,
    };
    match response.token_type.as_deref() {
        None | Some("") => return Err(ExchangeError::InvalidResponse("missing token_type")),
        Some(t) if !t.eq_ignore_ascii_case("bearer") => {
            return Err(ExchangeError::InvalidResponse("token_type is not Bearer"))
        }
        Some(_) => {}
    }
    if response
        .issued_token_type
        .as_deref()
        .is_none_or(str::is_empty)
    {
        return Err(ExchangeError::InvalidResponse("missing issued_token_type"));
    }
    let expires_in = match &response.expires_in {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => Some(n.as_f64().unwrap_or(0.0)),
        Some(serde_json::Value::String(s)) => Some(
            s.trim()
                .parse::<f64>()
                .map_err(|_| ExchangeError::InvalidResponse("expires_in is not a number"))?,
        ),
        Some(_) => return Err(ExchangeError::InvalidResponse("expires_in is not a number")),
    };
    Ok(Issued {
        access_token: Token::new(access_token),
        expires_in: expires_in.map(|secs| Duration::from_secs(secs.max(0.0) as u64)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_response(status: u16, body: &[u8]) -> Result<Issued, ExchangeError> {
        check_answer(Answer {
            status,
            parsed: serde_json::from_slice(body).ok(),
        })
    }

    const OK: &str = r#"{"access_token":"xt-1","token_type":"Bearer","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","expires_in":300}"#;

    #[test]
    fn a_complete_answer_is_accepted() {
        let issued = parse_response(200, OK.as_bytes()).unwrap();
        assert_eq!(issued.access_token.expose_secret(), "xt-1");
        assert_eq!(issued.expires_in, Some(Duration::from_secs(300)));
    }

    #[test]
    fn expires_in_may_be_a_string_and_never_negative() {
        let body = OK.replace("300", "\"60\"");
        assert_eq!(
            parse_response(200, body.as_bytes()).unwrap().expires_in,
            Some(Duration::from_secs(60))
        );
        let body = OK.replace("300", "-5");
        assert_eq!(
            parse_response(200, body.as_bytes()).unwrap().expires_in,
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn every_required_field_is_required() {
        for (field, why) in [
            ("access_token", "missing access_token"),
            ("token_type", "missing token_type"),
            ("issued_token_type", "missing issued_token_type"),
        ] {
            let mut body: serde_json::Value = serde_json::from_str(OK).unwrap();
            body.as_object_mut().unwrap().remove(field);
            assert_eq!(
                parse_response(200, body.to_string().as_bytes()).unwrap_err(),
                ExchangeError::InvalidResponse(why),
                "{field}"
            );
        }
    }

    #[test]
    fn a_success_status_with_error_is_a_rejection() {
        let body = r#"{"error":"invalid_grant","access_token":"x","token_type":"Bearer","issued_token_type":"t"}"#;
        assert_eq!(
            parse_response(200, body.as_bytes()).unwrap_err(),
            ExchangeError::Rejected {
                status: 200,
                code: "invalid_grant"
            }
        );
    }

    #[test]
    fn statuses_are_classified_and_nothing_is_echoed() {
        let body = br#"{"error":"secret-leak-code","error_description":"subject eyJleak"}"#;
        let err = parse_response(400, body).unwrap_err();
        assert_eq!(
            err,
            ExchangeError::Rejected {
                status: 400,
                code: "unrecognized_error"
            }
        );
        assert!(!err.to_string().contains("leak"));
        assert_eq!(
            parse_response(503, b"down").unwrap_err(),
            ExchangeError::ServerError(503)
        );
        assert_eq!(
            parse_response(429, b"").unwrap_err(),
            ExchangeError::ServerError(429)
        );
        assert!(parse_response(401, br#"{"error":"invalid_client"}"#)
            .unwrap_err()
            .is_definite());
    }

    #[test]
    fn issued_tokens_that_cannot_be_a_header_are_refused() {
        for token in [
            "a b",
            "x\r\nx-evil: 1",
            &"a".repeat(MAX_ISSUED_TOKEN_BYTES + 1),
        ] {
            let mut body: serde_json::Value = serde_json::from_str(OK).unwrap();
            body["access_token"] = token.into();
            assert!(matches!(
                parse_response(200, body.to_string().as_bytes()),
                Err(ExchangeError::InvalidResponse(_))
            ));
        }
        let body = OK.replace("Bearer", "DPoP");
        assert_eq!(
            parse_response(200, body.as_bytes()).unwrap_err(),
            ExchangeError::InvalidResponse("token_type is not Bearer")
        );
    }

    #[test]
    fn the_form_carries_every_parameter_and_basic_auth_needs_both_halves() {
        let url = url::Url::parse("https://sts.example.com/token").unwrap();
        let scopes = ["b".to_owned(), "a c".to_owned()];
        let params = RequestParams {
            token_url: &url,
            client_id: Some("id:1"),
            client_secret: Some("s&2"),
            audience: Some("https://jira"),
            scopes: &scopes,
            subject_token_type: ACCESS_TOKEN_TYPE,
        };
        let request = ExchangeRequest::new(params);
        let body = request.body(&Token::new("sub+ject"));
        let pairs: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("grant_type"), Some(GRANT_TYPE));
        assert_eq!(get("subject_token"), Some("sub+ject"));
        assert_eq!(get("subject_token_type"), Some(ACCESS_TOKEN_TYPE));
        assert_eq!(get("requested_token_type"), Some(ACCESS_TOKEN_TYPE));
        assert_eq!(get("audience"), Some("https://jira"));
        assert_eq!(get("scope"), Some("b a c"));
        use base64::Engine as _;
        let basic = request.basic_auth.as_ref().unwrap().expose_secret();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(decoded, b"id%3A1:s%262");
        assert!(!format!("{request:?}").contains("Basic"));

        let id_only = ExchangeRequest::new(RequestParams {
            client_secret: None,
            ..params
        });
        assert!(id_only.basic_auth.is_none());
        assert!(!id_only.body(&Token::new("t")).contains("client_id"));
    }
}
