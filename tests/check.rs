// SPDX-License-Identifier: Apache-2.0
//! The DESIGN.md §2 table, row by row, through a client built from Envoy's official protos
//! (`envoy-types`): proves our trimmed protos are wire-compatible and every answer is right.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{
    check, check_request, denied, header, http_of, logs, mode_b_config, ok, store_token, TestKey,
    TestServer,
};
use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
use envoy_types::pb::envoy::service::auth::v3::CheckResponse;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

async fn server(key: &TestKey) -> TestServer {
    logs();
    TestServer::start(&mode_b_config(&key.path, "{ type: memory }")).await
}

/// A 401 `invalid_token` whose description is `description`.
fn assert_invalid_token(response: &CheckResponse, description: &str) {
    let d = denied(response, 16, 401);
    let challenge = header(d, "www-authenticate").unwrap();
    assert!(challenge.starts_with(&format!("Bearer realm=\"{}\", resource_metadata=\"http://127.0.0.1:10000/.well-known/oauth-protected-resource/mcp\"", common::ISSUER)), "{challenge}");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    let quoted = description.replace('"', "\\\"");
    assert!(
        challenge.contains(&format!("error_description=\"{quoted}\"")),
        "{challenge}"
    );
    assert_eq!(header(d, "content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_str(&d.body).unwrap();
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(body["error_description"], description);
}

#[tokio::test]
async fn upstream_inject_sets_the_upstream_token_with_overwrite_semantics() {
    let key = TestKey::new();
    let server = server(&key).await;
    store_token(
        &server,
        "tsid-inject-1",
        "github",
        "gho_injected_token_1",
        None,
    )
    .await;
    let jwt = key.token("alice", Some("tsid-inject-1"), serde_json::json!({}));

    let response = check(&server, Some(&format!("Bearer {jwt}")), Some("github")).await;
    let ok = ok(&response);
    assert_eq!(ok.headers.len(), 1);
    let option = &ok.headers[0];
    let h = option.header.as_ref().unwrap();
    assert_eq!(
        (h.key.as_str(), h.value.as_str()),
        ("authorization", "Bearer gho_injected_token_1")
    );
    #[allow(deprecated)]
    let append = option.append.as_ref().map(|b| b.value);
    assert_eq!(append, Some(false));
    assert_eq!(
        option.append_action,
        HeaderAppendAction::OverwriteIfExistsOrAdd as i32
    );
    // The header is overwritten, so it must not also be removed (Envoy removes after setting).
    assert!(ok.headers_to_remove.is_empty());
    let metadata = response.dynamic_metadata.as_ref().unwrap();
    let text = format!("{metadata:?}");
    assert!(text.contains("alice") && text.contains("upstream_inject"));
    assert!(
        !text.contains("gho_injected_token_1")
            && !text.contains(&jwt)
            && !text.contains("tsid-inject-1")
    );
    logs().assert_never_logged(&["gho_injected_token_1", &jwt, "tsid-inject-1"]);
    server.stop().await;
}

#[tokio::test]
async fn upstream_inject_reads_only_the_provider_the_backend_needs() {
    let key = TestKey::new();
    let server = server(&key).await;
    store_token(&server, "tsid-two", "okta", "okta_token_2", None).await;
    let jwt = key.token("bob", Some("tsid-two"), serde_json::json!({}));
    let auth = format!("Bearer {jwt}");
    let okta = check(&server, Some(&auth), Some("okta")).await;
    assert_eq!(
        ok(&okta).headers[0].header.as_ref().unwrap().value,
        "Bearer okta_token_2"
    );
    // No github token: only the github backend is denied; okta keeps working.
    assert_invalid_token(
        &check(&server, Some(&auth), Some("github")).await,
        "upstream token for provider \"github\" is unavailable; re-authentication required",
    );
    server.stop().await;
}

#[tokio::test]
async fn missing_empty_or_expired_upstream_token_asks_for_reauthentication() {
    let key = TestKey::new();
    let server = server(&key).await;
    store_token(&server, "tsid-empty", "github", "", None).await;
    store_token(
        &server,
        "tsid-expired",
        "github",
        "gho_expired",
        Some(common::now() - 10),
    )
    .await;
    let expected =
        "upstream token for provider \"github\" is unavailable; re-authentication required";
    for tsid in [
        Some("tsid-absent"),
        Some("tsid-empty"),
        Some("tsid-expired"),
        None,
    ] {
        let jwt = key.token("carol", tsid, serde_json::json!({}));
        let response = check(&server, Some(&format!("Bearer {jwt}")), Some("github")).await;
        assert_invalid_token(&response, expected);
    }
    // A tsid that is not a string is no link at all.
    let jwt = key.token("carol", None, serde_json::json!({"tsid": 42}));
    assert_invalid_token(
        &check(&server, Some(&format!("Bearer {jwt}")), Some("github")).await,
        expected,
    );
    server.stop().await;
}

#[tokio::test]
async fn header_injection_sets_the_header_and_removes_the_callers_credential() {
    let key = TestKey::new();
    let server = server(&key).await;
    let jwt = key.token("dave", None, serde_json::json!({}));
    let response = check(&server, Some(&format!("Bearer {jwt}")), Some("static")).await;
    let ok = ok(&response);
    let h = ok.headers[0].header.as_ref().unwrap();
    assert_eq!(
        (h.key.as_str(), h.value.as_str()),
        ("x-api-key", "static-secret-value")
    );
    assert_eq!(
        ok.headers[0].append_action,
        HeaderAppendAction::OverwriteIfExistsOrAdd as i32
    );
    assert_eq!(ok.headers_to_remove, vec!["authorization".to_owned()]);
    server.stop().await;
}

#[tokio::test]
async fn client_sent_spellings_of_a_header_we_set_are_removed() {
    let key = TestKey::new();
    let server = server(&key).await;
    let jwt = key.token("dora", None, serde_json::json!({}));
    let mut request = check_request(Some(&format!("Bearer {jwt}")), Some("static"));
    let http = http_of(&mut request);
    for (name, value) in [
        ("x_api_key", "spoofed"),
        ("x-api-key", "client"),
        ("x-api-keys", "other"),
    ] {
        http.headers.insert(name.to_owned(), value.to_owned());
    }
    let response = server
        .client()
        .await
        .check(request)
        .await
        .unwrap()
        .into_inner();
    let ok = ok(&response);
    let mut removed = ok.headers_to_remove.clone();
    removed.sort();
    // x-api-key itself is overwritten (never removed: Envoy removes after it sets).
    assert_eq!(
        removed,
        vec!["authorization".to_owned(), "x_api_key".to_owned()]
    );
    server.stop().await;
}

#[tokio::test]
async fn an_oversize_check_request_is_refused_not_allowed() {
    let key = TestKey::new();
    let server = server(&key).await;
    let mut request = check_request(Some("Bearer x"), Some("public"));
    http_of(&mut request)
        .headers
        .insert("x-padding".to_owned(), "p".repeat(256 * 1024));
    let status = server
        .client()
        .await
        .check(request)
        .await
        .expect_err("over maxCheckRequestBytes (128 KiB by default)");
    // Envoy treats a gRPC error as a failure: with failure_mode_allow false, the request is denied.
    assert_eq!(status.code(), tonic::Code::OutOfRange);
    server.stop().await;
}

#[tokio::test]
async fn unauthenticated_and_default_remove_the_callers_credential() {
    let key = TestKey::new();
    let server = server(&key).await;
    let jwt = key.token("erin", None, serde_json::json!({}));
    for backend in [Some("public"), None] {
        let response = check(&server, Some(&format!("Bearer {jwt}")), backend).await;
        let ok = ok(&response);
        assert!(ok.headers.is_empty());
        assert_eq!(ok.headers_to_remove, vec!["authorization".to_owned()]);
    }
    server.stop().await;
}

#[tokio::test]
async fn unknown_backend_is_permission_denied() {
    let key = TestKey::new();
    let server = server(&key).await;
    let jwt = key.token("frank", None, serde_json::json!({}));
    let response = check(
        &server,
        Some(&format!("Bearer {jwt}")),
        Some("no-such-backend"),
    )
    .await;
    let d = denied(&response, 7, 403);
    assert_eq!(d.body, r#"{"error":"unknown_backend"}"#);
    server.stop().await;
}

#[tokio::test]
async fn no_bearer_token_gets_a_bare_challenge() {
    let key = TestKey::new();
    let server = server(&key).await;
    let response = check(&server, None, Some("github")).await;
    let d = denied(&response, 16, 401);
    assert_eq!(
        header(d, "www-authenticate"),
        Some("Bearer realm=\"http://127.0.0.1:9090\", resource_metadata=\"http://127.0.0.1:10000/.well-known/oauth-protected-resource/mcp\"")
    );
    server.stop().await;
}

#[tokio::test]
async fn basic_scheme_is_an_invalid_request() {
    let key = TestKey::new();
    let server = server(&key).await;
    let response = check(&server, Some("Basic dXNlcjpwYXNz"), Some("public")).await;
    let d = denied(&response, 16, 401);
    let challenge = header(d, "www-authenticate").unwrap();
    assert!(
        challenge.contains("error=\"invalid_request\""),
        "{challenge}"
    );
    assert!(!challenge.contains("dXNlcjpwYXNz"));
    server.stop().await;
}

fn b64(value: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

#[tokio::test]
async fn every_bad_jwt_is_unauthenticated_with_its_reason() {
    let key = TestKey::new();
    let other = TestKey::new();
    let server = server(&key).await;
    let now = common::now();
    let claims = serde_json::json!({"iss": common::ISSUER, "aud": common::AUDIENCE, "sub": "mallory", "exp": now + 300});

    let alg_none = format!(
        "{}.{}.",
        b64(&serde_json::json!({"alg": "none", "typ": "JWT"})),
        b64(&claims)
    );
    let hs256 = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.key.kid().to_owned());
        let secret = key.key.public_jwk()["x"].as_str().unwrap().to_owned();
        jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let unknown_kid = {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("not-our-key".to_owned());
        jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap()
    };
    let bad_signature = {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(key.key.kid().to_owned());
        jsonwebtoken::encode(&header, &claims, &other.encoding).unwrap()
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("garbage", "not-a-jwt".to_owned(), "malformed token"),
        (
            "garbage characters",
            "abc<>def".to_owned(),
            "malformed token",
        ),
        ("alg none", alg_none, "token algorithm not allowed"),
        (
            "HS256 with public key material",
            hs256,
            "token algorithm not allowed",
        ),
        ("unknown kid", unknown_kid, "unknown signing key"),
        ("bad signature", bad_signature, "invalid signature"),
        (
            "expired",
            key.token("m", None, serde_json::json!({"exp": now - 120})),
            "token expired",
        ),
        (
            "nbf in the future",
            key.token("m", None, serde_json::json!({"nbf": now + 600})),
            "token not yet valid",
        ),
        (
            "wrong iss",
            key.token(
                "m",
                None,
                serde_json::json!({"iss": "https://evil.example"}),
            ),
            "wrong issuer",
        ),
        (
            "wrong aud",
            key.token(
                "m",
                None,
                serde_json::json!({"aud": "https://other.example/mcp"}),
            ),
            "wrong audience",
        ),
        (
            "oversize",
            key.token("m", None, serde_json::json!({"pad": "x".repeat(9000)})),
            "token too large",
        ),
    ];
    for (case, token, description) in &cases {
        let response = check(&server, Some(&format!("Bearer {token}")), Some("public")).await;
        let d = denied(&response, 16, 401);
        let challenge = header(d, "www-authenticate").unwrap();
        assert!(
            challenge.contains(&format!("error_description=\"{description}\"")),
            "{case}: {challenge}"
        );
        assert!(
            !d.body.contains(token.as_str()) && !challenge.contains(token.as_str()),
            "{case}: token echoed"
        );
    }
    let tokens: Vec<&str> = cases
        .iter()
        .map(|(_, t, _)| t.as_str())
        .filter(|t| t.len() > 20)
        .collect();
    logs().assert_never_logged(&tokens);
    server.stop().await;
}

#[tokio::test]
async fn verified_tokens_are_cached_and_expiry_still_applies() {
    let key = TestKey::new();
    let server = server(&key).await;
    let jwt = key.token("gina", None, serde_json::json!({}));
    let auth = format!("Bearer {jwt}");
    let first = check(&server, Some(&auth), Some("public")).await;
    let second = check(&server, Some(&auth), Some("public")).await;
    let cache = |r: &CheckResponse| {
        format!(
            "{:?}",
            r.dynamic_metadata.as_ref().unwrap().fields["identity_cache"]
        )
    };
    assert!(cache(&first).contains("miss"));
    assert!(cache(&second).contains("hit"));
    server.stop().await;
}

#[tokio::test]
async fn token_exchange_never_allows_without_a_token_from_the_endpoint() {
    let key = TestKey::new();
    let server = server(&key).await;
    let jwt = key.token("hank", Some("t-hank"), serde_json::json!({}));
    let auth = format!("Bearer {jwt}");
    // subjectProviderName okta: no okta token means log in again, never the caller's JWT.
    let response = check(&server, Some(&auth), Some("exchange")).await;
    assert_invalid_token(
        &response,
        "upstream token for provider \"okta\" is unavailable; re-authentication required",
    );
    // With one, the endpoint (nothing listens there) decides: unavailable, never OK.
    store_token(&server, "t-hank", "okta", "okta-token", None).await;
    let response = check(&server, Some(&auth), Some("exchange")).await;
    denied(&response, 14, 503);
    server.stop().await;
}

#[tokio::test]
async fn http_listener_serves_health_metrics_and_resource_metadata() {
    let key = TestKey::new();
    let server = server(&key).await;
    let jwt = key.token("ivy", None, serde_json::json!({}));
    check(&server, Some(&format!("Bearer {jwt}")), Some("public")).await;
    let base = format!("http://{}", server.http);
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let prm: serde_json::Value = client
        .get(format!("{base}/.well-known/oauth-protected-resource/mcp"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prm["resource"], common::AUDIENCE);
    assert_eq!(prm["authorization_servers"][0], common::ISSUER);
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"mcp_authz_checks_total{backend="public",strategy="unauthenticated",outcome="allow"} 1"#),
        "{metrics}"
    );
    assert!(!metrics.contains(&jwt));
    // Readiness flips once the (memory) store answers.
    let mut ready = false;
    for _ in 0..50 {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            == 200
        {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(ready);
    let _ = Arc::clone(&server.state);
    server.stop().await;
}
