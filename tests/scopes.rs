// SPDX-License-Identifier: Apache-2.0
//! DESIGN.md §10 at the Check: a backend's `requiredScopes` are a 403 `insufficient_scope`
//! whose challenge names every scope the request needs plus those the token holds; every 401
//! of a routed backend names the scopes it needs; both metadata documents advertise
//! `scopes_supported`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{check, denied, header, logs, mode_b_config, ok, store_token, TestKey, TestServer};
use envoy_types::pb::envoy::service::auth::v3::CheckResponse;

const PRM: &str = "http://127.0.0.1:10000/.well-known/oauth-protected-resource/mcp";

async fn server(key: &TestKey) -> TestServer {
    logs();
    let config = mode_b_config(&key.path, "{ type: memory }")
        .replace(
            "    public: { type: unauthenticated }",
            "    public: { type: unauthenticated }\n    admin: { type: unauthenticated, requiredScopes: [\"tools:admin\"] }",
        )
        .replace(
            "upstreamInject: { providerName: github } }",
            "upstreamInject: { providerName: github }, requiredScopes: [tools] }",
        );
    TestServer::start(&config).await
}

/// The `WWW-Authenticate` of a denial, after checking its codes.
fn challenge(response: &CheckResponse, grpc: i32, http: i32) -> String {
    let d = denied(response, grpc, http);
    header(d, "www-authenticate").unwrap().to_owned()
}

fn scope_of(challenge: &str) -> Option<&str> {
    let start = challenge.find("scope=\"")? + 7;
    let len = challenge[start..].find('"')?;
    Some(&challenge[start..start + len])
}

#[tokio::test]
async fn a_token_without_the_required_scope_is_403_insufficient_scope_naming_all_it_needs() {
    let key = TestKey::new();
    let server = server(&key).await;
    let jwt = key.token("alice", None, serde_json::json!({ "scope": "read" }));
    let response = check(&server, Some(&format!("Bearer {jwt}")), Some("admin")).await;
    let c = challenge(&response, 7, 403);
    assert!(
        c.starts_with(&format!(
            "Bearer realm=\"{}\", resource_metadata=\"{PRM}\"",
            common::ISSUER
        )),
        "{c}"
    );
    assert!(c.contains("error=\"insufficient_scope\""), "{c}");
    // What the backend needs, then what the token already holds: a client that replaces its
    // scopes with these keeps `read`.
    assert_eq!(scope_of(&c), Some("tools:admin read"));
    let body: serde_json::Value = serde_json::from_str(&denied(&response, 7, 403).body).unwrap();
    assert_eq!(body["error"], "insufficient_scope");

    let stepped_up = key.token(
        "alice",
        None,
        serde_json::json!({ "scope": "read tools:admin" }),
    );
    ok(&check(
        &server,
        Some(&format!("Bearer {stepped_up}")),
        Some("admin"),
    )
    .await);
    // A backend without required scopes does not care.
    ok(&check(&server, Some(&format!("Bearer {jwt}")), Some("public")).await);
    server.stop().await;
}

#[tokio::test]
async fn every_401_of_a_backend_with_required_scopes_names_them() {
    let key = TestKey::new();
    let server = server(&key).await;
    // No token at all: the bare challenge names the scope.
    let c = challenge(&check(&server, None, Some("admin")).await, 16, 401);
    assert!(!c.contains("error="), "{c}");
    assert_eq!(scope_of(&c), Some("tools:admin"));
    // An expired token holds nothing we can trust.
    let expired = key.token(
        "bob",
        None,
        serde_json::json!({ "scope": "read", "exp": common::now() - 600 }),
    );
    let c = challenge(
        &check(&server, Some(&format!("Bearer {expired}")), Some("admin")).await,
        16,
        401,
    );
    assert_eq!(scope_of(&c), Some("tools:admin"));
    // A valid token with the scope but no upstream token: log in again, keeping both scopes.
    let jwt = key.token(
        "bob",
        Some("tsid-none"),
        serde_json::json!({ "scope": "tools extra" }),
    );
    let c = challenge(
        &check(&server, Some(&format!("Bearer {jwt}")), Some("github")).await,
        16,
        401,
    );
    assert!(c.contains("error=\"invalid_token\""), "{c}");
    assert_eq!(scope_of(&c), Some("tools extra"));
    // And with the upstream token there, the same token is allowed.
    store_token(&server, "tsid-none", "github", "gho_scoped", None).await;
    ok(&check(&server, Some(&format!("Bearer {jwt}")), Some("github")).await);
    // A backend that requires nothing names nothing.
    let c = challenge(&check(&server, None, Some("public")).await, 16, 401);
    assert_eq!(scope_of(&c), None, "{c}");
    server.stop().await;
}

#[tokio::test]
async fn a_scope_claim_that_is_not_a_scope_string_is_a_bad_claim() {
    let key = TestKey::new();
    let server = server(&key).await;
    for bad in [
        serde_json::json!(["tools:admin"]),
        serde_json::json!("tools:admin  read"),
        serde_json::json!("tools\"admin"),
        serde_json::json!(7),
    ] {
        let jwt = key.token("carol", None, serde_json::json!({ "scope": bad }));
        let c = challenge(
            &check(&server, Some(&format!("Bearer {jwt}")), Some("admin")).await,
            16,
            401,
        );
        assert!(c.contains("error=\"invalid_token\""), "{bad}: {c}");
        assert!(c.contains("scope"), "{bad}: {c}");
    }
    // An empty `scope` is no scope, not an error.
    let empty = key.token("carol", None, serde_json::json!({ "scope": "" }));
    ok(&check(&server, Some(&format!("Bearer {empty}")), Some("public")).await);
    server.stop().await;
}

#[tokio::test]
async fn both_metadata_documents_advertise_the_scopes_backends_require() {
    let key = TestKey::new();
    let server = server(&key).await;
    let base = format!("http://{}", server.http);
    let get = |path: &str| {
        let url = format!("{base}{path}");
        async move {
            reqwest::get(url)
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let expected = serde_json::json!(["tools", "tools:admin"]);
    let prm = get("/.well-known/oauth-protected-resource/mcp").await;
    assert_eq!(prm["scopes_supported"], expected);
    let rfc8414 = get("/.well-known/oauth-authorization-server").await;
    assert_eq!(rfc8414["scopes_supported"], expected);
    server.stop().await;
}
