// SPDX-License-Identifier: Apache-2.0
//! The tonic `envoy.service.auth.v3.Authorization` service: decode → check → record → encode.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tonic::{Request, Response, Status};

use super::State;
use crate::check::{check, Pipeline};
use crate::response::encode::encode;
use crate::response::{Decision, Denial};
use crate::telemetry::audit::{now_ms, AuditEvent};
use crate::wire::pb::auth::authorization_server::Authorization;
use crate::wire::pb::auth::{CheckRequest, CheckResponse};
use crate::wire::CheckInput;

/// Used when the caller sends no `grpc-timeout` (Envoy always does; grpcurl may not).
const DEFAULT_BUDGET: Duration = Duration::from_millis(500);

/// The Check service.
#[derive(Debug, Clone)]
pub struct AuthorizationService {
    state: Arc<State>,
}

impl AuthorizationService {
    /// A service answering from `state`.
    pub fn new(state: Arc<State>) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl Authorization for AuthorizationService {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let deadline = Instant::now()
            + request
                .metadata()
                .get("grpc-timeout")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_grpc_timeout)
                .unwrap_or(DEFAULT_BUDGET);
        let request = request.into_inner();
        let runtime = self.state.runtime();
        let pipeline = &runtime.pipeline;
        let input = CheckInput::from_request(&request, &pipeline.backend_key);
        let decision = decide(&self.state, pipeline, &input, deadline).await;
        Ok(Response::new(encode(decision)))
    }
}

/// Runs one Check and records it: the denial's DEBUG line, metrics and the audit event
/// (denials always, allows sampled; queued, never awaited).
pub async fn decide(
    state: &State,
    pipeline: &Pipeline,
    input: &CheckInput<'_>,
    deadline: Instant,
) -> Decision {
    let started = Instant::now();
    let checked = check(pipeline, input, deadline).await;
    let backend = checked.backend;
    let decision = match checked.result {
        Ok(allow) => Decision::from(allow),
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
    if let Some(hit) = checked.identity_cache_hit {
        state.metrics.identity_cache(hit);
    }
    let outcome = match &decision {
        Decision::Allow { .. } => "allow",
        Decision::Deny(denial) => denial.reason(),
    };
    state.metrics.record(
        backend.map(|b| (&b.name, b.strategy.kind().as_str())),
        outcome,
        elapsed,
    );
    if let Some(audit) = &state.audit {
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
                subject: checked.subject.as_deref(),
                reason,
                grpc_status,
                identity_cache_hit: checked.identity_cache_hit.unwrap_or(false),
                latency_us: elapsed.as_micros(),
            });
        }
    }
    decision
}

/// Parses a gRPC `grpc-timeout` header (`<digits><unit>`, unit one of H M S m u n).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_grpc_timeouts() {
        assert_eq!(parse_grpc_timeout("200m"), Some(Duration::from_millis(200)));
        assert_eq!(parse_grpc_timeout("1S"), Some(Duration::from_secs(1)));
        assert_eq!(parse_grpc_timeout("5u"), Some(Duration::from_micros(5)));
        assert_eq!(parse_grpc_timeout("m"), None);
        assert_eq!(parse_grpc_timeout("12x"), None);
        assert_eq!(parse_grpc_timeout(""), None);
        assert_eq!(parse_grpc_timeout("123456789S"), None);
    }
}
