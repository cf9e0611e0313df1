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
}

impl Mutations {
    /// Only removes the caller's credential.
    pub fn remove_authorization() -> Self {
        Self {
            set: None,
            remove_authorization: true,
        }
    }

    /// Sets one header; removes the caller's `authorization` unless that is the header set.
    pub fn set(name: Arc<str>, value: String) -> Self {
        let remove_authorization = &*name != AUTHORIZATION;
        Self {
            set: Some(SetHeader { name, value }),
            remove_authorization,
        }
    }
}

/// [`AUTHORIZATION`] as a shared name, so setting it on the hot path does not allocate.
pub(crate) static AUTHORIZATION_NAME: std::sync::LazyLock<Arc<str>> =
    std::sync::LazyLock::new(|| Arc::from(AUTHORIZATION));
