// SPDX-License-Identifier: Apache-2.0
//! Stage 4 of the Check pipeline: the answer. A [`Decision`] is an allow with header mutations,
//! or a [`Denial`] built from the error by the one mapping in [`denial`].

pub mod denial;
pub mod encode;

use std::sync::Arc;

pub use denial::{Challenge, CheckError, Denial, GrpcCode};

use crate::strategy::{Mutations, StrategyKind};

/// The outcome of one Check.
#[derive(Debug)]
pub enum Decision {
    /// Let the request through with these mutations.
    Allow {
        /// Header changes for the backend request.
        mutations: Mutations,
        /// Non-secret facts for access logs.
        facts: Facts,
    },
    /// Stop the request.
    Deny(Denial),
}

/// Non-secret facts about an allowed Check, emitted as Envoy dynamic metadata.
#[derive(Debug, Clone)]
pub struct Facts {
    /// Backend name.
    pub backend: Arc<str>,
    /// Strategy type.
    pub strategy: StrategyKind,
    /// Caller's `sub`, when identified.
    pub subject: Option<Arc<str>>,
    /// Whether the caller's JWT came from the verified-token cache.
    pub identity_cache_hit: bool,
}
