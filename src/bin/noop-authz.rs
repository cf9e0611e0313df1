// SPDX-License-Identifier: Apache-2.0
//! `noop-authz`: an ext_authz Check server on the same stack as mcp-authz (tonic, tokio with one
//! worker per available core) that allows everything at once. The baseline of the benchmarks:
//! what a Check costs before any authorization work.
//!
//! `noop-authz ADDR [ANSWER] [no-metadata] [es256=KEY]`:
//! - alone, it answers an empty allow;
//! - `ANSWER` is a file holding the CheckResponse to answer (written by `loadgen --emit-answer`
//!   from mcp-authz): the same headers, removals and dynamic metadata, built afresh for every
//!   Check as mcp-authz builds its own;
//! - `no-metadata` leaves out the answer's dynamic metadata, to measure what it costs Envoy;
//! - `es256=KEY` (a PKCS#8 PEM P-256 key) also checks each request's bearer JWT signature with
//!   the library mcp-authz uses, and nothing else (no claims, no cache): the baseline for a fresh
//!   token, "no-op + one ES256 verify".

use std::net::SocketAddr;
use std::path::Path;

use jsonwebtoken::{Algorithm, DecodingKey};
use mcp_authz::authserver::SigningKey;

use mcp_authz::wire::pb::auth::authorization_server::{Authorization, AuthorizationServer};
use mcp_authz::wire::pb::auth::{check_response, CheckRequest, CheckResponse, OkHttpResponse};
use mcp_authz::wire::pb::google::rpc::Status;
use tonic::{Request, Response};

struct Noop {
    answer: CheckResponse,
    es256: Option<DecodingKey>,
}

#[tonic::async_trait]
impl Authorization for Noop {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, tonic::Status> {
        if let Some(key) = &self.es256 {
            let valid = request
                .get_ref()
                .attributes
                .as_ref()
                .and_then(|a| a.request.as_ref())
                .and_then(|r| r.http.as_ref())
                .and_then(|h| h.headers.get("authorization"))
                .and_then(|v| v.strip_prefix("Bearer "))
                .and_then(|jwt| jwt.rsplit_once('.'))
                .is_some_and(|(message, signature)| {
                    jsonwebtoken::crypto::verify(
                        signature,
                        message.as_bytes(),
                        key,
                        Algorithm::ES256,
                    )
                    .unwrap_or(false)
                });
            if !valid {
                return Err(tonic::Status::permission_denied("bad signature"));
            }
        }
        Ok(Response::new(self.answer.clone()))
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
    let (mut path, mut metadata, mut es256) = (None, true, None);
    for arg in args {
        if arg == "no-metadata" {
            metadata = false;
        } else if let Some(key) = arg.strip_prefix("es256=") {
            let key = SigningKey::from_pem_file(Path::new(key))?.key_set()?;
            es256 = key.find(None).map(|k| k.key.clone());
        } else {
            path = Some(arg);
        }
    }
    let answer = answer(path, metadata)?;
    let noop = Noop { answer, es256 };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            tonic::transport::Server::builder()
                .add_service(AuthorizationServer::new(noop))
                .serve_with_incoming(mcp_authz::app::nodelay(listener))
                .await?;
            Ok(())
        })
}
