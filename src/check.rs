// SPDX-License-Identifier: Apache-2.0
//! THE Check pipeline: backend → identity → strategy (which reads upstream tokens lazily) →
//! decision. This is the only place that knows the order of the stages.

use tokio::time::Instant;

use crate::app::State;
use crate::identity::{bearer_token, IdentityError};
use crate::response::{Decision, Denial, Facts};
use crate::strategy::{Backend, StrategyContext, StrategyError};
use crate::wire::CheckInput;

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
}

/// Runs one Check and records its metrics.
pub async fn check(state: &State, input: &CheckInput<'_>, deadline: Instant) -> Decision {
    let started = Instant::now();
    let runtime = &state.runtime;
    let backend = runtime.backends.resolve(input.backend);
    let result = match backend {
        Some(backend) => allow(state, backend, input, deadline).await,
        None => Err(CheckError::UnknownBackend),
    };
    let decision = match result {
        Ok(decision) => decision,
        Err(error) => {
            let denial = Denial::from_error(&error, &runtime.challenge);
            tracing::debug!(
                backend = backend.map_or("<unknown>", |b| &*b.name),
                reason = denial.reason,
                error = %error,
                "check denied"
            );
            Decision::Deny(denial)
        }
    };
    state.metrics.record(backend, &decision, started.elapsed());
    decision
}

async fn allow(
    state: &State,
    backend: &Backend,
    input: &CheckInput<'_>,
    deadline: Instant,
) -> Result<Decision, CheckError> {
    let runtime = &state.runtime;
    let (identity, identity_cache_hit) = match &runtime.verifier {
        Some(verifier) => {
            if input.ambiguous_authorization {
                return Err(CheckError::Identity(IdentityError::Malformed));
            }
            let token = bearer_token(input.authorization).map_err(CheckError::Identity)?;
            let (identity, hit) = verifier.verify(token).await.map_err(CheckError::Identity)?;
            state.metrics.identity_cache(hit);
            (Some(identity), hit)
        }
        None => (None, false),
    };
    let ctx = StrategyContext {
        identity: identity.as_deref(),
        store: runtime.store.as_ref(),
        refresher: runtime.refresher.as_ref(),
        deadline,
    };
    let mutations = backend
        .strategy
        .apply(&ctx)
        .await
        .map_err(CheckError::Strategy)?;
    Ok(Decision::Allow {
        mutations,
        facts: Facts {
            backend: backend.name.clone(),
            strategy: backend.strategy.kind(),
            subject: identity.map(|i| i.subject.clone()),
            identity_cache_hit,
        },
    })
}
