// SPDX-License-Identifier: Apache-2.0
//! The Redis store against a real redis-server (`REDIS_URL`, started by `scripts/test.sh`):
//! storage schema v1 on the wire, Checks reading records written by another process, a corrupt
//! record, and Redis being down.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{check, logs, mode_b_config, TestKey, TestServer};
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use mcp_authz::secret::{Token, Tsid};
use mcp_authz::upstream::UpstreamToken;
use redis::AsyncCommands;

fn redis_url() -> String {
    std::env::var("REDIS_URL").expect("REDIS_URL must point at a redis-server; run scripts/test.sh")
}

async fn raw() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Writes `value` under `key` directly, as another replica (or a bug) would.
async fn set_raw(key: &str, value: &str) {
    let mut conn = raw().await;
    let _: () = conn.set(key, value).await.unwrap();
}

fn redis_storage(prefix: &str) -> String {
    format!(
        "{{ type: redis, redis: {{ url: \"{}\", keyPrefix: \"{prefix}\" }} }}",
        redis_url()
    )
}

#[tokio::test]
async fn records_follow_storage_schema_v1_with_ttl() {
    logs();
    let key = TestKey::new();
    let server = TestServer::start(&mode_b_config(&key.path, &redis_storage("schema-test:"))).await;
    let store = server.state.runtime().pipeline.store.clone().unwrap();
    let expires_at = common::now() + 3600;
    let token = UpstreamToken {
        access_token: Token::new("gho_schema_v1"),
        refresh_token: Some(Token::new("ghr_refresh")),
        id_token: None,
        expires_at: Some(expires_at),
        subject: Some("12345".to_owned()),
        client_id: Some("client-1".to_owned()),
    };
    store
        .put(&Tsid::new("tsid-schema"), "github", &token)
        .await
        .unwrap();

    let mut conn = raw().await;
    let json: String = conn
        .get("schema-test:upstream:tsid-schema:github")
        .await
        .unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        value,
        serde_json::json!({"accessToken": "gho_schema_v1", "refreshToken": "ghr_refresh", "expiresAt": expires_at, "subject": "12345", "clientId": "client-1"})
    );
    let ttl: i64 = conn
        .ttl("schema-test:upstream:tsid-schema:github")
        .await
        .unwrap();
    let expected = 3600 + 30 * 24 * 3600;
    assert!((expected - 5..=expected).contains(&ttl), "ttl {ttl}");

    // A token that never expires is stored without a TTL.
    let forever = UpstreamToken {
        expires_at: None,
        ..token
    };
    store
        .put(&Tsid::new("tsid-forever"), "github", &forever)
        .await
        .unwrap();
    let ttl: i64 = conn
        .ttl("schema-test:upstream:tsid-forever:github")
        .await
        .unwrap();
    assert_eq!(ttl, -1);
    server.stop().await;
}

#[tokio::test]
async fn check_injects_a_token_written_by_another_process() {
    logs();
    let key = TestKey::new();
    let server = TestServer::start(&mode_b_config(&key.path, &redis_storage("e2e:"))).await;
    set_raw(
        "e2e:upstream:tsid-from-replica:github",
        r#"{"accessToken":"gho_from_replica"}"#,
    )
    .await;
    let jwt = key.token("alice", Some("tsid-from-replica"), serde_json::json!({}));
    let response = check(&server, Some(&format!("Bearer {jwt}")), Some("github")).await;
    assert_eq!(response.status.unwrap().code, 0);
    let Some(HttpResponse::OkResponse(ok)) = response.http_response else {
        panic!("not ok")
    };
    assert_eq!(
        ok.headers[0].header.as_ref().unwrap().value,
        "Bearer gho_from_replica"
    );
    server.stop().await;
}

#[tokio::test]
async fn corrupt_record_denies_with_reauthentication_and_echoes_nothing() {
    logs();
    let key = TestKey::new();
    let server = TestServer::start(&mode_b_config(&key.path, &redis_storage("corrupt:"))).await;
    set_raw(
        "corrupt:upstream:tsid-corrupt:github",
        "{\"accessToken\": gho_half_written",
    )
    .await;
    let jwt = key.token("bob", Some("tsid-corrupt"), serde_json::json!({}));
    let response = check(&server, Some(&format!("Bearer {jwt}")), Some("github")).await;
    assert_eq!(response.status.as_ref().unwrap().code, 16);
    let Some(HttpResponse::DeniedResponse(denied)) = &response.http_response else {
        panic!("not denied")
    };
    assert_eq!(denied.status.as_ref().unwrap().code, 401);
    assert!(
        denied.body.contains("re-authentication required"),
        "{}",
        denied.body
    );
    assert!(!format!("{response:?}").contains("gho_half_written"));
    logs().assert_never_logged(&["gho_half_written", "tsid-corrupt", &jwt]);
    server.stop().await;
}

#[tokio::test]
async fn redis_down_is_unavailable_503_never_ok_and_not_serving() {
    logs();
    let key = TestKey::new();
    // Nothing listens on the discard port of loopback.
    let storage = "{ type: redis, redis: { url: \"redis://127.0.0.1:9/\", timeoutMs: 50 } }";
    let server = TestServer::start(&mode_b_config(&key.path, storage)).await;
    let jwt = key.token("carol", Some("tsid-down"), serde_json::json!({}));
    let response = check(&server, Some(&format!("Bearer {jwt}")), Some("github")).await;
    assert_eq!(response.status.as_ref().unwrap().code, 14);
    let Some(HttpResponse::ErrorResponse(error)) = &response.http_response else {
        panic!("not an error_response: {response:?}")
    };
    assert_eq!(error.status.as_ref().unwrap().code, 503);
    let headers: Vec<_> = error
        .headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .map(|h| (h.key.as_str(), h.value.as_str()))
        .collect();
    assert!(headers.contains(&("retry-after", "1")), "{headers:?}");
    assert!(
        !error.body.contains("redis"),
        "no internal detail: {}",
        error.body
    );

    // A backend that needs no store keeps working.
    let public = check(&server, Some(&format!("Bearer {jwt}")), Some("public")).await;
    assert_eq!(public.status.unwrap().code, 0);

    // gRPC health says NOT_SERVING while the store has never answered.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::NotServing as i32
    );
    server.stop().await;
}
