// SPDX-License-Identifier: Apache-2.0
//! Poisoned upstream-token records, written straight into a real Redis (`REDIS_URL`) as a buggy
//! replica or an attacker with store access would: none is ever injected, each gets its precise
//! denial, and no value is echoed or logged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{check, logs, mode_b_config, TestKey, TestServer};
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use redis::AsyncCommands;

#[tokio::test]
async fn poisoned_records_are_never_injected() {
    logs();
    let url = std::env::var("REDIS_URL").expect("REDIS_URL: run scripts/test.sh");
    let storage = format!("{{ type: redis, redis: {{ url: \"{url}\", keyPrefix: \"poison:\" }} }}");
    let key = TestKey::new();
    let server = TestServer::start(&mode_b_config(&key.path, &storage)).await;
    let mut redis = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let past = common::now() - 60;
    let huge = format!("gho_{}", "a".repeat(100_000));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not JSON", b"gho_plain".to_vec(), "upstream_record_corrupt"),
        (
            "a JSON array",
            br#"["gho_in_array"]"#.to_vec(),
            "upstream_record_corrupt",
        ),
        (
            "accessToken a number",
            br#"{"accessToken": 12345}"#.to_vec(),
            "upstream_record_corrupt",
        ),
        (
            "accessToken twice",
            br#"{"accessToken": "gho_first", "accessToken": "gho_second"}"#.to_vec(),
            "upstream_record_corrupt",
        ),
        (
            "CRLF header injection",
            br#"{"accessToken": "gho_x\r\nx-admin: true"}"#.to_vec(),
            "upstream_record_corrupt",
        ),
        (
            "a space",
            br#"{"accessToken": "gho_a b"}"#.to_vec(),
            "upstream_record_corrupt",
        ),
        (
            "a comma",
            br#"{"accessToken": "gho_a,Bearer b"}"#.to_vec(),
            "upstream_record_corrupt",
        ),
        (
            "empty",
            br#"{"accessToken": ""}"#.to_vec(),
            "upstream_token_unavailable",
        ),
        (
            "expired, nothing to refresh with",
            format!(r#"{{"accessToken": "gho_expired", "expiresAt": {past}}}"#).into_bytes(),
            "upstream_token_unavailable",
        ),
        (
            "expiresAt a string",
            br#"{"accessToken": "gho_s", "expiresAt": "4102444800"}"#.to_vec(),
            "upstream_record_corrupt",
        ),
        (
            "invalid UTF-8",
            b"{\"accessToken\": \"gho_\xff\xfe\"}".to_vec(),
            "upstream_record_corrupt",
        ),
        (
            "100 KB token",
            format!(r#"{{"accessToken": "{huge}"}}"#).into_bytes(),
            "invalid_header_value",
        ),
    ];
    for (i, (case, value, reason)) in cases.iter().enumerate() {
        let tsid = format!("tsid-poison-{i}");
        let _: () = redis
            .set(format!("poison:upstream:{tsid}:github"), value.as_slice())
            .await
            .unwrap();
        let jwt = key.token("mallory", Some(&tsid), serde_json::json!({}));
        let response = check(&server, Some(&format!("Bearer {jwt}")), Some("github")).await;
        let status = response.status.as_ref().unwrap();
        assert_eq!(status.message, *reason, "{case}");
        assert!(
            !matches!(response.http_response, Some(HttpResponse::OkResponse(_))),
            "{case}: allowed"
        );
        let printed = format!("{response:?}");
        assert!(!printed.contains("gho_"), "{case}: record echoed");
    }
    logs().assert_never_logged(&[
        "gho_plain",
        "gho_in_array",
        "gho_first",
        "gho_second",
        "gho_x",
        "gho_expired",
        &huge[..40],
    ]);
    server.stop().await;
}
