// SPDX-License-Identifier: Apache-2.0
//! The tonic `envoy.service.auth.v3.Authorization` service: decode → check → encode.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tonic::{Request, Response, Status};

use super::State;
use crate::response::encode::encode;
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
        let decision = crate::check::check(pipeline, self.state.record(), &input, deadline).await;
        Ok(Response::new(encode(decision)))
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
