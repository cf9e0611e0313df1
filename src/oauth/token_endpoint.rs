// SPDX-License-Identifier: Apache-2.0
//! One POST to an RFC 6749 token endpoint, shared by every grant we send (code redemption,
//! refresh, token exchange): the request, the capped body read (JSON, or form-encoded when the
//! endpoint says so), the status class and the recognised error code. Each caller turns the
//! [`Answer`] into its own error type.

use std::time::Duration;

use serde::de::DeserializeOwned;

use super::{read_capped, recognised_error_code, BodyError, MAX_BODY_BYTES};
use crate::secret::Token;

/// A token response body as a caller reads it: its own fields plus RFC 6749 §5.2 `error`.
pub(crate) trait TokenResponse: DeserializeOwned {
    /// The `error` member, if any.
    fn error(&self) -> Option<&str>;
}

/// Why no answer was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// Not within the budget.
    Timeout,
    /// Connection refused, reset, DNS or TLS failure.
    Unreachable,
    /// A body over [`MAX_BODY_BYTES`].
    TooLarge,
}

/// What the status code says about the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// 2xx.
    Success,
    /// 408, 429 or 5xx: the endpoint may recover.
    Transient,
    /// Any other 4xx: a definite refusal.
    Refused,
    /// 1xx or 3xx (redirects are never followed).
    Unexpected,
}

/// One answer: its status and the body parsed as `R` (`None` when it is neither such JSON nor
/// such a form).
#[derive(Debug)]
pub(crate) struct Answer<R> {
    /// HTTP status code.
    pub(crate) status: u16,
    /// The body, when it parses as `R`.
    pub(crate) parsed: Option<R>,
}

impl<R: TokenResponse> Answer<R> {
    /// The class of [`Answer::status`].
    pub(crate) fn class(&self) -> Status {
        match self.status {
            200..=299 => Status::Success,
            408 | 429 | 500..=599 => Status::Transient,
            400..=499 => Status::Refused,
            _ => Status::Unexpected,
        }
    }

    /// The body's `error`, as a registered code or `unrecognized_error` (never the endpoint's
    /// own text).
    pub(crate) fn error_code(&self) -> Option<&'static str> {
        self.parsed
            .as_ref()
            .and_then(TokenResponse::error)
            .map(recognised_error_code)
    }
}

/// A form-encoded answer (GitHub's unless asked for JSON) read as the JSON object of its
/// string members; `None` when a name appears twice or the body is not UTF-8.
fn parse_form<R: TokenResponse>(body: &[u8]) -> Option<R> {
    std::str::from_utf8(body).ok()?;
    let mut members = serde_json::Map::new();
    for (name, value) in url::form_urlencoded::parse(body) {
        let value = serde_json::Value::String(value.into_owned());
        if members.insert(name.into_owned(), value).is_some() {
            return None;
        }
    }
    serde_json::from_value(serde_json::Value::Object(members)).ok()
}

/// Posts `form` (already encoded) to `url` with `authorization` (client authentication, if
/// any), giving up after `budget`.
///
/// # Errors
/// [`Transport`] when no complete answer arrives.
pub(crate) async fn post<R: TokenResponse>(
    http: &reqwest::Client,
    url: &url::Url,
    authorization: Option<&Token>,
    form: String,
    budget: Duration,
) -> Result<Answer<R>, Transport> {
    let mut request = http
        .post(url.clone())
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(http::header::ACCEPT, "application/json")
        .body(form);
    if let Some(auth) = authorization {
        request = request.header(http::header::AUTHORIZATION, auth.expose_secret());
    }
    tokio::time::timeout(budget, async {
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                Transport::Timeout
            } else {
                Transport::Unreachable
            }
        })?;
        let status = response.status().as_u16();
        let form = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';').next().is_some_and(|t| {
                    t.trim()
                        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
                })
            });
        let body = read_capped(response, MAX_BODY_BYTES)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge => Transport::TooLarge,
                BodyError::Timeout => Transport::Timeout,
                BodyError::Failed => Transport::Unreachable,
            })?;
        let parsed = if form {
            parse_form(&body)
        } else {
            serde_json::from_slice(&body).ok()
        };
        Ok(Answer { status, parsed })
    })
    .await
    .unwrap_or(Err(Transport::Timeout))
}
