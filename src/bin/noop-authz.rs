// SPDX-License-Identifier: Apache-2.0
//! `noop-authz`: an ext_authz Check server on the same stack as mcp-authz (tonic, tokio with one
//! worker per available core) that allows everything at once. The baseline of the benchmarks:
//! what a Check costs before any authorization work.

use std::net::SocketAddr;

use mcp_authz::wire::pb::auth::authorization_server::{Authorization, AuthorizationServer};
use mcp_authz::wire::pb::auth::{check_response, CheckRequest, CheckResponse, OkHttpResponse};
use mcp_authz::wire::pb::google::rpc::Status;
use tonic::{Request, Response};

struct Noop;

#[tonic::async_trait]
impl Authorization for Noop {
    async fn check(
        &self,
        _request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, tonic::Status> {
        Ok(Response::new(CheckResponse {
            status: Some(Status {
                code: 0,
                message: String::new(),
            }),
            http_response: Some(check_response::HttpResponse::OkResponse(
                OkHttpResponse::default(),
            )),
            dynamic_metadata: None,
        }))
    }
}

fn main() -> anyhow::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9292".to_owned())
        .parse()?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            tonic::transport::Server::builder()
                .add_service(AuthorizationServer::new(Noop))
                .serve_with_incoming(mcp_authz::app::nodelay(listener))
                .await?;
            Ok(())
        })
}
