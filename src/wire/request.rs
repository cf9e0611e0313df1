// SPDX-License-Identifier: Apache-2.0
//! `CheckRequest` → [`CheckInput`]: the two facts the pipeline needs, borrowed from the request.

use super::pb::auth::CheckRequest;

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
}

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
        input.query = http.path.split_once('?').map(|(_, query)| query);
        input.authorization = http.headers.get("authorization").map(String::as_str);
        if input.authorization.is_none() {
            if let Some(map) = &http.header_map {
                let mut values = map
                    .headers
                    .iter()
                    .filter(|h| h.key.eq_ignore_ascii_case("authorization"))
                    .map(|h| {
                        if h.value.is_empty() {
                            std::str::from_utf8(&h.raw_value).ok()
                        } else {
                            Some(h.value.as_str())
                        }
                    });
                match (values.next(), values.next()) {
                    (Some(Some(value)), None) => input.authorization = Some(value),
                    (None, _) => {}
                    _ => input.ambiguous_authorization = true,
                }
            }
        }
        input
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
