// SPDX-License-Identifier: Apache-2.0
//! The Redis near cache against a real redis-server of the test's own: a warm record is served
//! with no round trip (counted with `INFO commandstats`), another replica's write or delete
//! reaches this replica's next Checks, and across a Redis kill and restart no stale token is
//! ever served.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::redis_server::Redis;
use common::{check, logs, mode_b_config, store_token, TestKey, TestServer};
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::CheckResponse;
use mcp_authz::secret::Tsid;

fn storage(redis: &Redis) -> String {
    format!(
        "{{ type: redis, redis: {{ url: \"redis://127.0.0.1:{}/\", keyPrefix: \"nc:\" }} }}",
        redis.port
    )
}

/// The token a Check injected, or `None` for a denial.
fn injected(response: &CheckResponse) -> Option<String> {
    match &response.http_response {
        Some(HttpResponse::OkResponse(ok)) => Some(ok.headers[0].header.as_ref()?.value.clone()),
        _ => None,
    }
}

/// A connection of the test's own, as another client (or replica) would have.
async fn raw(redis: &Redis) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{}/", redis.port))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// How many GETs Redis has answered.
async fn gets(redis: &Redis) -> u64 {
    let mut conn = raw(redis).await;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("cmdstat_get:calls="))
        .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
}

/// Checks until one injects `want` (a few seconds at most); every answer before it must be
/// `allowed_before` (or a denial when that is `None`).
async fn until_injected(
    server: &TestServer,
    bearer: &str,
    want: &str,
    allowed_before: Option<&str>,
) {
    for _ in 0..250 {
        let response = check(server, Some(bearer), Some("github")).await;
        match injected(&response).as_deref() {
            Some(got) if got == want => return,
            got => assert!(
                got.is_none() || got == allowed_before,
                "served {got:?} while waiting for {want}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{want} was never injected");
}

/// Checks until `server`'s near cache holds the record (tracking may still be starting).
async fn until_cached(server: &TestServer, bearer: &str) {
    let store = server.state.runtime().pipeline.store.clone().unwrap();
    for _ in 0..250 {
        check(server, Some(bearer), Some("github")).await;
        if store.near_cache_len() == Some(1) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the record never reached the near cache");
}

#[tokio::test]
async fn a_warm_record_costs_no_round_trip_and_another_replicas_writes_reach_it() {
    logs();
    let redis = Redis::start();
    let key = TestKey::new();
    let a = TestServer::start(&mode_b_config(&key.path, &storage(&redis))).await;
    let b = TestServer::start(&mode_b_config(&key.path, &storage(&redis))).await;
    let bearer = format!(
        "Bearer {}",
        key.token("alice", Some("tsid-near"), serde_json::json!({}))
    );
    store_token(&b, "tsid-near", "github", "gho_first", None).await;
    until_cached(&a, &bearer).await;

    let before = gets(&redis).await;
    for _ in 0..20 {
        let response = check(&a, Some(&bearer), Some("github")).await;
        assert_eq!(injected(&response).as_deref(), Some("Bearer gho_first"));
    }
    assert_eq!(
        gets(&redis).await,
        before,
        "a near-cache hit reads nothing from Redis"
    );

    // Replica B refreshes the token: A's next Checks inject the new one.
    store_token(&b, "tsid-near", "github", "gho_second", None).await;
    until_injected(&a, &bearer, "Bearer gho_second", Some("Bearer gho_first")).await;

    // Replica B deletes it (logout): A denies.
    let store = b.state.runtime().pipeline.store.clone().unwrap();
    store
        .delete(&Tsid::new("tsid-near"), "github")
        .await
        .unwrap();
    for attempt in 0.. {
        let response = check(&a, Some(&bearer), Some("github")).await;
        match injected(&response) {
            None => break,
            Some(got) => assert_eq!(got, "Bearer gho_second"),
        }
        assert!(attempt < 250, "a deleted record was still served");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn across_a_redis_kill_and_restart_no_stale_token_is_served() {
    logs();
    let mut redis = Redis::start();
    let key = TestKey::new();
    let a = TestServer::start(&mode_b_config(&key.path, &storage(&redis))).await;
    let bearer = format!(
        "Bearer {}",
        key.token("bob", Some("tsid-restart"), serde_json::json!({}))
    );
    store_token(&a, "tsid-restart", "github", "gho_before", None).await;
    until_cached(&a, &bearer).await;

    redis.kill();
    redis.restart();
    // Written behind A's back, straight into the restarted Redis.
    let mut conn = raw(&redis).await;
    let _: () = redis::cmd("SET")
        .arg("nc:upstream:tsid-restart:github")
        .arg(r#"{"accessToken":"gho_after"}"#)
        .query_async(&mut conn)
        .await
        .unwrap();
    until_injected(&a, &bearer, "Bearer gho_after", None).await;
    a.stop().await;
}
