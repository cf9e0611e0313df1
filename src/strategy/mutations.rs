// SPDX-License-Identifier: Apache-2.0
//! Header mutations a strategy asks Envoy to make, free of any protocol type.

use std::sync::Arc;

/// The caller's credential header, removed or overwritten on every allow.
pub const AUTHORIZATION: &str = "authorization";

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
}

impl Mutations {
    /// Only removes the caller's credential.
    pub fn remove_authorization() -> Self {
        Self {
            set: None,
            remove_authorization: true,
            remove_spoofed: Vec::new(),
        }
    }

    /// Sets one header; removes the caller's `authorization` unless that is the header set.
    pub fn set(name: Arc<str>, value: String) -> Self {
        let remove_authorization = &*name != AUTHORIZATION;
        Self {
            set: Some(SetHeader { name, value }),
            remove_authorization,
            remove_spoofed: Vec::new(),
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
