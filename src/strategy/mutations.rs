// SPDX-License-Identifier: Apache-2.0
//! Header mutations a strategy asks Envoy to make, free of any protocol type.

use std::sync::Arc;

/// The caller's credential header, removed or overwritten on every allow.
pub const AUTHORIZATION: &str = "authorization";

/// The RFC 6750 §2.3 query parameter that may carry the caller's credential.
pub const ACCESS_TOKEN_QUERY: &str = "access_token";

/// One header to set (overwriting any value the client sent).
#[derive(Clone)]
pub struct SetHeader {
    /// Lower-case header name.
    pub name: Arc<str>,
    /// The value; may be a credential, so it is never printed.
    pub value: String,
}

impl std::fmt::Debug for SetHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetHeader")
            .field("name", &self.name)
            .field("value", &"[redacted]")
            .finish()
    }
}

/// What Envoy changes on the request before it reaches the backend.
#[derive(Debug, Clone, Default)]
pub struct Mutations {
    /// Header to set, if any (every strategy sets at most one).
    pub set: Option<SetHeader>,
    /// Whether the caller's `authorization` header must be removed (when it is not overwritten).
    pub remove_authorization: bool,
    /// Client-sent spellings of the header we set (`x_api_key` for `x-api-key`), removed so a
    /// backend that folds `_` into `-` cannot read the client's value instead of ours. Empty
    /// (no allocation) on almost every Check.
    pub remove_spoofed: Vec<String>,
    /// Query parameters to remove because they may carry the caller's credential (RFC 6750
    /// §2.3): `access_token` and every spelling of it the query uses. Empty (no allocation)
    /// when the query has none.
    pub remove_query: Vec<String>,
}

impl Mutations {
    /// Only removes the caller's credential.
    pub fn remove_authorization() -> Self {
        Self {
            set: None,
            remove_authorization: true,
            remove_spoofed: Vec::new(),
            remove_query: Vec::new(),
        }
    }

    /// Sets one header; removes the caller's `authorization` unless that is the header set.
    pub fn set(name: Arc<str>, value: String) -> Self {
        let remove_authorization = &*name != AUTHORIZATION;
        Self {
            set: Some(SetHeader { name, value }),
            remove_authorization,
            remove_spoofed: Vec::new(),
            remove_query: Vec::new(),
        }
    }

    /// Lists every request header in `names` that is another spelling of the header we set
    /// (same name once `_` reads as `-` and case is ignored).
    pub fn remove_spellings_of_set_header<'a>(&mut self, names: impl Iterator<Item = &'a str>) {
        let Some(set) = &self.set else {
            return;
        };
        for name in names {
            if name != &*set.name && same_header(name, &set.name) {
                self.remove_spoofed.push(name.to_owned());
            }
        }
    }
}

impl Mutations {
    /// Lists `access_token`, and each spelling of it in `query` (any case, percent-encoded), for
    /// removal, when the query carries one.
    pub fn remove_credential_query_parameters(&mut self, query: &str) {
        // Cheap test first: no `access` in any case and no `%` means no such parameter.
        let bytes = query.as_bytes();
        if !bytes.contains(&b'%') && !bytes.windows(6).any(|w| w.eq_ignore_ascii_case(b"access")) {
            return;
        }
        for raw in query.split('&') {
            let name = raw.split_once('=').map_or(raw, |(name, _)| name);
            let decoded = url::form_urlencoded::parse(name.as_bytes())
                .next()
                .map(|(decoded, _)| decoded);
            if decoded.is_some_and(|d| d.eq_ignore_ascii_case(ACCESS_TOKEN_QUERY)) {
                if self.remove_query.is_empty() {
                    self.remove_query.push(ACCESS_TOKEN_QUERY.to_owned());
                }
                if !self.remove_query.iter().any(|n| n == name) {
                    self.remove_query.push(name.to_owned());
                }
            }
        }
    }
}

/// Whether two header names are the same once `_` reads as `-` and case is ignored.
fn same_header(a: &str, b: &str) -> bool {
    let fold = |c: u8| {
        if c == b'_' {
            b'-'
        } else {
            c.to_ascii_lowercase()
        }
    };
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| fold(x) == fold(y))
}

/// [`AUTHORIZATION`] as a shared name, so setting it on the hot path does not allocate.
pub(crate) static AUTHORIZATION_NAME: std::sync::LazyLock<Arc<str>> =
    std::sync::LazyLock::new(|| Arc::from(AUTHORIZATION));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_access_token_in_the_query_is_removed() {
        let removed = |query: &str| {
            let mut m = Mutations::remove_authorization();
            m.remove_credential_query_parameters(query);
            m.remove_query
        };
        assert!(removed("x=1&tool=search").is_empty());
        assert!(removed("accessible=1").is_empty());
        assert_eq!(removed("access_token=jwt"), vec!["access_token"]);
        assert_eq!(
            removed("a=1&ACCESS_TOKEN=jwt&access%5Ftoken=jwt&access_token"),
            vec!["access_token", "ACCESS_TOKEN", "access%5Ftoken"]
        );
    }

    #[test]
    fn underscore_and_case_spellings_of_the_set_header_are_removed() {
        let mut m = Mutations::set(Arc::from("x-api-key"), "v".to_owned());
        m.remove_spellings_of_set_header(
            ["x-api-key", "x_api_key", "X_Api-KEY", "x-api-keys", "host"].into_iter(),
        );
        assert_eq!(m.remove_spoofed, vec!["x_api_key", "X_Api-KEY"]);
        let mut none = Mutations::remove_authorization();
        none.remove_spellings_of_set_header(["x_api_key"].into_iter());
        assert!(none.remove_spoofed.is_empty());
    }
}
