// SPDX-License-Identifier: Apache-2.0
//! `CheckRequest` → [`CheckInput`]: the facts the pipeline needs, borrowed from the request.

use super::pb::auth::CheckRequest;
use super::pb::core::HeaderMap;

/// What the pipeline reads from a Check.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckInput<'a> {
    /// The `authorization` header value, if one was sent.
    pub authorization: Option<&'a str>,
    /// Whether the raw header map held several `authorization` headers, or one that is not
    /// UTF-8; such a request is rejected rather than guessing which credential counts.
    pub ambiguous_authorization: bool,
    /// The backend named by the route's `context_extensions`, if any.
    pub backend: Option<&'a str>,
    /// Every request header, to find client-sent spellings of a header we set.
    pub headers: Option<&'a std::collections::HashMap<String, String>>,
    /// The request's query string (after `?`), if any: a credential there is never read, only
    /// removed.
    pub query: Option<&'a str>,
    /// The HTTP method (`POST`, …), empty when Envoy sent none.
    pub method: &'a str,
    /// The raw header map (`encode_raw_headers: true`), read when `headers` lacks a header.
    pub raw_headers: Option<&'a HeaderMap>,
    /// The request body Envoy buffered (`with_request_body`), empty when none was sent.
    pub body: &'a [u8],
}

/// A header that is there more than once, or not as text: never guessed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmbiguousHeader;

impl<'a> CheckInput<'a> {
    /// Reads a CheckRequest. `backend_key` is the `context_extensions` key naming the backend.
    ///
    /// Envoy sends headers either in the lower-cased `headers` map or, with
    /// `encode_raw_headers: true`, in `header_map`; both are read.
    pub fn from_request(request: &'a CheckRequest, backend_key: &str) -> Self {
        let Some(attributes) = &request.attributes else {
            return Self::default();
        };
        let backend = attributes
            .context_extensions
            .get(backend_key)
            .map(String::as_str);
        let http = attributes.request.as_ref().and_then(|r| r.http.as_ref());
        let mut input = Self {
            backend,
            ..Self::default()
        };
        let Some(http) = http else {
            return input;
        };
        input.headers = Some(&http.headers);
        input.raw_headers = http.header_map.as_ref();
        input.method = &http.method;
        input.body = if http.raw_body.is_empty() {
            http.body.as_bytes()
        } else {
            &http.raw_body
        };
        input.query = http.path.split_once('?').map(|(_, query)| query);
        match input.header("authorization") {
            Ok(value) => input.authorization = value,
            Err(AmbiguousHeader) => input.ambiguous_authorization = true,
        }
        input
    }

    /// The value of header `name` (lower case): from `headers`, or else from the raw header
    /// map, where it must appear once and as UTF-8.
    ///
    /// # Errors
    /// [`AmbiguousHeader`] when the raw map has it more than once or not as text.
    pub fn header(&self, name: &str) -> Result<Option<&'a str>, AmbiguousHeader> {
        if let Some(value) = self.headers.and_then(|h| h.get(name)) {
            return Ok(Some(value.as_str()));
        }
        let Some(map) = self.raw_headers else {
            return Ok(None);
        };
        let mut values = map
            .headers
            .iter()
            .filter(|h| h.key.eq_ignore_ascii_case(name))
            .map(|h| {
                if h.value.is_empty() {
                    std::str::from_utf8(&h.raw_value).ok()
                } else {
                    Some(h.value.as_str())
                }
            });
        match (values.next(), values.next()) {
            (None, _) => Ok(None),
            (Some(Some(value)), None) => Ok(Some(value)),
            _ => Err(AmbiguousHeader),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::pb::auth::{attribute_context, AttributeContext};
    use super::super::pb::core::{HeaderMap, HeaderValue};
    use super::*;

    fn request(
        headers: &[(&str, &str)],
        raw: &[(&str, &[u8])],
        backend: Option<&str>,
    ) -> CheckRequest {
        CheckRequest {
            attributes: Some(AttributeContext {
                request: Some(attribute_context::Request {
                    http: Some(attribute_context::HttpRequest {
                        headers: headers
                            .iter()
                            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                            .collect(),
                        header_map: (!raw.is_empty()).then(|| HeaderMap {
                            headers: raw
                                .iter()
                                .map(|(k, v)| HeaderValue {
                                    key: (*k).to_owned(),
                                    value: String::new(),
                                    raw_value: v.to_vec(),
                                })
                                .collect(),
                        }),
                        ..Default::default()
                    }),
                }),
                context_extensions: backend
                    .map(|b| [("backend".to_owned(), b.to_owned())].into())
                    .unwrap_or_default(),
            }),
        }
    }

    #[test]
    fn reads_authorization_and_backend() {
        let req = request(&[("authorization", "Bearer x")], &[], Some("github"));
        let input = CheckInput::from_request(&req, "backend");
        assert_eq!(input.authorization, Some("Bearer x"));
        assert_eq!(input.backend, Some("github"));
        assert_eq!(CheckInput::from_request(&req, "other").backend, None);
    }

    #[test]
    fn reads_raw_header_map_and_flags_repeats() {
        let req = request(
            &[],
            &[
                ("Authorization", b"Bearer a"),
                ("authorization", b"Bearer b"),
            ],
            None,
        );
        let input = CheckInput::from_request(&req, "backend");
        assert!(input.ambiguous_authorization);
    }

    #[test]
    fn the_query_is_read_from_the_path() {
        for (path, query) in [
            ("/mcp", None),
            ("/mcp?x=1", Some("x=1")),
            ("/mcp?access_token=a?b", Some("access_token=a?b")),
        ] {
            let mut req = request(&[], &[], None);
            let attributes = req.attributes.as_mut().unwrap();
            let http = attributes.request.as_mut().unwrap().http.as_mut().unwrap();
            http.path = path.to_owned();
            assert_eq!(
                CheckInput::from_request(&req, "backend").query,
                query,
                "{path}"
            );
        }
    }

    #[test]
    fn empty_request_has_nothing() {
        let request = CheckRequest::default();
        let input = CheckInput::from_request(&request, "backend");
        assert!(input.authorization.is_none() && input.backend.is_none());
    }
}
