// SPDX-License-Identifier: Apache-2.0
//! THE Check pipeline: backend → identity → strategy (which reads upstream tokens lazily) →
//! decision. This is the only place that knows the order of the stages.

use std::sync::Arc;

use tokio::time::Instant;

use crate::config::validate::is_header_text;
use crate::identity::{bearer_token, IdentityError, Verifier};
pub use crate::response::CheckError;
use crate::response::{Challenge, Decision, Denial, Facts};
use crate::strategy::{Backend, Backends, Mutations, StrategyContext};
use crate::telemetry::audit::{now_ms, Audit, AuditEvent};
use crate::telemetry::metrics::Metrics;
use crate::upstream::{Refresher, UpstreamStore};
use crate::wire::CheckInput;

/// Longest header value we ever emit (a bearer token of 16 KiB plus its scheme).
const MAX_EMITTED_HEADER_BYTES: usize = 16 * 1024 + 16;

/// Everything one Check reads, built from a valid config (one snapshot per Check, so a Check
/// never sees half of a reload).
#[derive(Debug)]
pub struct Pipeline {
    /// `context_extensions` key naming the backend.
    pub backend_key: Box<str>,
    /// Strategies per backend.
    pub backends: Backends,
    /// JWT verifier (with its cache); `None` with anonymous incoming auth.
    pub verifier: Option<Arc<Verifier>>,
    /// Upstream token store; present with an authorization server.
    pub store: Option<Arc<UpstreamStore>>,
    /// Realm and metadata URL of our 401 challenges.
    pub challenge: Challenge,
    /// Refreshes expired upstream tokens in the Check path.
    pub refresher: Option<Refresher>,
}

/// Where a Check records its metrics and, when enabled, its audit event.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Metric handles.
    pub metrics: &'a Metrics,
    /// Decision audit events, when enabled.
    pub audit: Option<&'a Audit>,
}

/// Runs one Check through `pipeline`, and records its metrics and audit event.
pub async fn check(
    pipeline: &Pipeline,
    record: Record<'_>,
    input: &CheckInput<'_>,
    deadline: Instant,
) -> Decision {
    let started = Instant::now();
    let backend = pipeline.backends.resolve(input.backend);
    let mut subject = None;
    let mut identity_cache_hit = false;
    let result = match backend {
        Some(backend) => {
            allow(
                record.metrics,
                pipeline,
                backend,
                input,
                deadline,
                (&mut subject, &mut identity_cache_hit),
            )
            .await
        }
        None => Err(CheckError::UnknownBackend),
    };
    let decision = match result {
        Ok(decision) => decision,
        Err(error) => {
            let denial = Denial::from_error(&error, &pipeline.challenge);
            tracing::debug!(
                backend = backend.map_or("<unknown>", |b| &*b.name),
                reason = denial.reason(),
                error = %error,
                "check denied"
            );
            Decision::Deny(denial)
        }
    };
    let elapsed = started.elapsed();
    let outcome = match &decision {
        Decision::Allow { .. } => "allow",
        Decision::Deny(denial) => denial.reason(),
    };
    record.metrics.record(
        backend.map(|b| (&b.name, b.strategy.kind().as_str())),
        outcome,
        elapsed,
    );
    if let Some(audit) = record.audit {
        let (allowed, reason, grpc_status) = match &decision {
            Decision::Allow { .. } => (true, None, 0),
            Decision::Deny(d) => (false, Some(d.reason()), d.grpc().code()),
        };
        if !allowed || audit.sample_allow() {
            audit.record(&AuditEvent {
                ts_ms: now_ms(),
                decision: if allowed { "allow" } else { "deny" },
                backend: backend.map_or("<unknown>", |b| &b.name),
                strategy: backend.map_or("none", |b| b.strategy.kind().as_str()),
                subject: subject.as_deref(),
                reason,
                grpc_status,
                identity_cache_hit,
                latency_us: elapsed.as_micros(),
            });
        }
    }
    decision
}

async fn allow(
    metrics: &Metrics,
    pipeline: &Pipeline,
    backend: &Backend,
    input: &CheckInput<'_>,
    deadline: Instant,
    (subject, cache_hit): (&mut Option<Arc<str>>, &mut bool),
) -> Result<Decision, CheckError> {
    let identity = match &pipeline.verifier {
        Some(verifier) => {
            if input.ambiguous_authorization {
                return Err(CheckError::Identity(IdentityError::Malformed));
            }
            let token = bearer_token(input.authorization).map_err(CheckError::Identity)?;
            let (identity, hit) = verifier.verify(token).await.map_err(CheckError::Identity)?;
            metrics.identity_cache(hit);
            *subject = Some(identity.subject.clone());
            *cache_hit = hit;
            Some(identity)
        }
        None => None,
    };
    let ctx = StrategyContext {
        identity: identity.as_deref(),
        store: pipeline.store.as_ref(),
        refresher: pipeline.refresher.as_ref(),
        deadline,
    };
    let mut mutations = backend
        .strategy
        .apply(&ctx)
        .await
        .map_err(CheckError::Strategy)?;
    check_emitted(&mutations)?;
    if let Some(headers) = input.headers {
        mutations.remove_spellings_of_set_header(headers.keys().map(String::as_str));
    }
    Ok(Decision::Allow {
        mutations,
        facts: Facts {
            backend: backend.name.clone(),
            strategy: backend.strategy.kind(),
            subject: subject.clone(),
            identity_cache_hit: *cache_hit,
        },
    })
}

/// The last guard before a value reaches Envoy: printable, no CR/LF/NUL, bounded.
fn check_emitted(mutations: &Mutations) -> Result<(), CheckError> {
    match &mutations.set {
        Some(set) if set.value.len() > MAX_EMITTED_HEADER_BYTES || !is_header_text(&set.value) => {
            Err(CheckError::InvalidHeaderValue)
        }
        _ => Ok(()),
    }
}
