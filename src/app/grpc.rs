// SPDX-License-Identifier: Apache-2.0
//! The tonic `envoy.service.auth.v3.Authorization` service: decode → check → record → encode.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tonic::codegen::Service;
use tonic::server::NamedService;
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
    // Only a denial names scopes, so only a denial pays for the string.
    let scope = checked
        .result
        .is_err()
        .then(|| checked.challenge_scope())
        .flatten();
    let decision = match checked.result {
        Ok(allow) => Decision::from(allow),
        Err(error) => {
            let denial = Denial::from_error(&error, &pipeline.challenge, scope.as_deref());
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
            audit.record(AuditEvent {
                ts_ms: now_ms(),
                decision: if allowed { "allow" } else { "deny" },
                backend: backend.map(|b| b.name.clone()),
                strategy: backend.map_or("none", |b| b.strategy.kind().as_str()),
                subject: checked.subject,
                reason,
                grpc_status,
                identity_cache_hit: checked.identity_cache_hit.unwrap_or(false),
                latency_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            });
        }
    }
    decision
}

/// The Check service, refusing a request whose `content-type` is not gRPC's with HTTP 415 before
/// anything decodes it (gRPC over HTTP/2: a non-gRPC client must not read a gRPC answer as a
/// success).
#[derive(Debug, Clone)]
pub struct GrpcOnly<S>(pub S);

impl<S: NamedService> NamedService for GrpcOnly<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for GrpcOnly<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>, Error = Infallible>,
    S::Future: Unpin,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = GrpcOnlyFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let grpc = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_grpc_content_type);
        if grpc {
            GrpcOnlyFuture::Served(self.0.call(request))
        } else {
            let mut refused = http::Response::new(tonic::body::Body::default());
            *refused.status_mut() = http::StatusCode::UNSUPPORTED_MEDIA_TYPE;
            GrpcOnlyFuture::Refused(Some(refused))
        }
    }
}

/// `application/grpc`, alone or followed by `+format` or `;parameters`.
fn is_grpc_content_type(value: &str) -> bool {
    value
        .strip_prefix("application/grpc")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['+', ';']))
}

/// The answer of [`GrpcOnly`]: the service's, or the refusal.
#[derive(Debug)]
pub enum GrpcOnlyFuture<F> {
    /// The request went to the service.
    Served(F),
    /// The request was refused (taken on the first poll).
    Refused(Option<http::Response<tonic::body::Body>>),
}

impl<F> Future for GrpcOnlyFuture<F>
where
    F: Future<Output = Result<http::Response<tonic::body::Body>, Infallible>> + Unpin,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Self::Served(future) => Pin::new(future).poll(cx),
            Self::Refused(response) => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => Poll::Pending,
            },
        }
    }
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
    fn only_grpc_content_types_pass() {
        for ok in [
            "application/grpc",
            "application/grpc+proto",
            "application/grpc;charset=utf-8",
        ] {
            assert!(is_grpc_content_type(ok), "{ok}");
        }
        for bad in [
            "application/json",
            "application/grpc-web",
            "application/grpcx",
            "text/plain",
            "",
        ] {
            assert!(!is_grpc_content_type(bad), "{bad}");
        }
    }

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
