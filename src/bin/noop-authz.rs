// SPDX-License-Identifier: Apache-2.0
//! `noop-authz`: an ext_authz Check server on the same stack as mcp-authz (tonic, tokio with one
//! worker per available core) that allows everything at once. The baseline of the benchmarks:
//! what a Check costs before any authorization work.
//!
//! `noop-authz ADDR` answers an empty allow; `noop-authz ADDR ANSWER [no-metadata]` answers the
//! CheckResponse in the file ANSWER (written by `loadgen --emit-answer` from mcp-authz), the same
//! headers, removals and dynamic metadata, built afresh for every Check as mcp-authz builds
//! its own; `no-metadata` leaves out the dynamic metadata, to measure what it costs Envoy.

use std::net::SocketAddr;

use mcp_authz::wire::pb::auth::authorization_server::{Authorization, AuthorizationServer};
use mcp_authz::wire::pb::auth::{check_response, CheckRequest, CheckResponse, OkHttpResponse};
use mcp_authz::wire::pb::google::rpc::Status;
use tonic::{Request, Response};

struct Noop(CheckResponse);

#[tonic::async_trait]
impl Authorization for Noop {
    async fn check(
        &self,
        _request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, tonic::Status> {
        Ok(Response::new(self.0.clone()))
    }
}

/// The answer to give: the empty allow, or the one in `path`.
fn answer(path: Option<String>, metadata: bool) -> anyhow::Result<CheckResponse> {
    use prost::Message;
    let Some(path) = path else {
        return Ok(CheckResponse {
            status: Some(Status {
                code: 0,
                message: String::new(),
            }),
            http_response: Some(check_response::HttpResponse::OkResponse(
                OkHttpResponse::default(),
            )),
            dynamic_metadata: None,
        });
    };
    let mut answer = CheckResponse::decode(std::fs::read(&path)?.as_slice())?;
    if !metadata {
        answer.dynamic_metadata = None;
    }
    Ok(answer)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:9292".to_owned())
        .parse()?;
    let path = args.next();
    let answer = answer(path, args.next().as_deref() != Some("no-metadata"))?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            tonic::transport::Server::builder()
                .add_service(AuthorizationServer::new(Noop(answer)))
                .serve_with_incoming(mcp_authz::app::nodelay(listener))
                .await?;
            Ok(())
        })
}
