// SPDX-License-Identifier: Apache-2.0
//! `header_injection`: the backend receives a static header (an API key, a service token).

use std::sync::Arc;

use super::Mutations;
use crate::secret::Token;

/// A static header, validated at config load.
#[derive(Debug)]
pub struct HeaderInjection {
    /// Lower-case header name.
    pub name: Arc<str>,
    /// The value, usually a credential.
    pub value: Token,
}

impl HeaderInjection {
    /// Sets the header; removes the caller's `authorization` unless that is the header set.
    pub fn apply(&self) -> Mutations {
        Mutations::set(self.name.clone(), self.value.expose_secret().to_owned())
    }
}
