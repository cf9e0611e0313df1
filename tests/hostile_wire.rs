// SPDX-License-Identifier: Apache-2.0
//! Hostile requests on the gRPC listener, spoken in raw HTTP/2 so nothing a gRPC client would
//! fix up for us gets in the way.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{logs, mode_b_config, TestKey, TestServer};

const CHECK: &str = "/envoy.service.auth.v3.Authorization/Check";

/// POSTs `body` to `path` with `content_type`; the HTTP status and the `grpc-status`, if any
/// (from the headers or the trailers).
async fn post(
    server: &TestServer,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, Option<String>) {
    let tcp = tokio::net::TcpStream::connect(server.grpc).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut client = client.ready().await.unwrap();
    let request = http::Request::post(format!("http://{}{path}", server.grpc))
        .header("content-type", content_type)
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (response, mut stream) = client.send_request(request, false).unwrap();
    stream
        .send_data(bytes::Bytes::copy_from_slice(body), true)
        .unwrap();
    let response = response.await.unwrap();
    let status = response.status().as_u16();
    let mut grpc_status = response
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap().to_owned());
    let mut body = response.into_body();
    while let Some(chunk) = body.data().await {
        let _ = chunk.unwrap();
    }
    if let Some(trailers) = body.trailers().await.unwrap() {
        grpc_status = grpc_status.or(trailers
            .get("grpc-status")
            .map(|v| v.to_str().unwrap().to_owned()));
    }
    (status, grpc_status)
}

#[tokio::test]
async fn a_check_that_is_not_grpc_is_refused_with_415() {
    logs();
    let key = TestKey::new();
    let server = TestServer::start(&mode_b_config(&key.path, "{ type: memory }")).await;
    // An empty CheckRequest in one gRPC frame: flag 0, length 0.
    let frame = [0u8, 0, 0, 0, 0];
    // The control: the same bytes as gRPC are answered (a denial, in gRPC's status 0 + body).
    assert_eq!(
        post(&server, CHECK, "application/grpc", &frame).await,
        (200, Some("0".to_owned()))
    );
    for content_type in [
        "application/json",
        "text/plain",
        "application/grpc-web",
        "application/grpcx",
        "",
    ] {
        let (status, grpc_status) = post(&server, CHECK, content_type, &frame).await;
        assert_eq!((status, grpc_status), (415, None), "{content_type:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_token_in_the_query_is_never_verified_and_never_passed_on() {
    logs();
    let key = TestKey::new();
    let server = TestServer::start(&mode_b_config(&key.path, "{ type: memory }")).await;
    let jwt = key.token("alice", None, serde_json::json!({}));
    let mut request = common::check_request(None, Some("public"));
    let http = common::http_of(&mut request);
    http.path = format!("/mcp?access_token={jwt}");
    http.headers.insert(":path".to_owned(), http.path.clone());
    // Only the query carries a token: no bearer token was presented.
    let response = common::send(&server, request.clone()).await;
    let denied = common::denied(&response, 16, 401);
    let challenge = common::header(denied, "www-authenticate").unwrap();
    assert!(!challenge.contains("error="), "{challenge}");
    // With the token in the header too, the allow removes the one in the query.
    let http = common::http_of(&mut request);
    http.headers
        .insert("authorization".to_owned(), format!("Bearer {jwt}"));
    let response = common::send(&server, request).await;
    assert_eq!(
        common::ok(&response).query_parameters_to_remove,
        vec!["access_token"]
    );
    server.stop().await;
}
