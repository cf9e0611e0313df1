// SPDX-License-Identifier: Apache-2.0
//! DESIGN.md §10 at the Check: a backend's `requiredScopes` are a 403 `insufficient_scope`
//! whose challenge names every scope the request needs plus those the token holds; every 401
//! of a routed backend names the scopes it needs; both metadata documents advertise
//! `scopes_supported`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    check, check_request, denied, header, http_of, logs, mode_b_config, ok, send, store_token,
    TestKey, TestServer,
};
use envoy_types::pb::envoy::service::auth::v3::CheckResponse;

const PRM: &str = "http://127.0.0.1:10000/.well-known/oauth-protected-resource/mcp";

async fn server(key: &TestKey) -> TestServer {
    logs();
    let config = mode_b_config(&key.path, "{ type: memory }")
        .replace(
            "    public: { type: unauthenticated }",
            "    public: { type: unauthenticated }\n    admin: { type: unauthenticated, requiredScopes: [\"tools:admin\"] }\n    tooled: { type: unauthenticated, requiredScopes: [tools], tools: [{ name: \"admin_*\", requiredScopes: [\"tools:admin\"] }, { name: admin_reset, requiredScopes: [\"tools:danger\"] }] }",
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
    let expected = serde_json::json!(["tools", "tools:admin", "tools:danger"]);
    let prm = get("/.well-known/oauth-protected-resource/mcp").await;
    assert_eq!(prm["scopes_supported"], expected);
    let rfc8414 = get("/.well-known/oauth-authorization-server").await;
    assert_eq!(rfc8414["scopes_supported"], expected);
    server.stop().await;
}

/// A Check for the `tooled` backend: `token`, HTTP `method`, extra headers and a body.
async fn tool_check(
    server: &TestServer,
    token: &str,
    method: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> CheckResponse {
    let auth = format!("Bearer {token}");
    let mut request = check_request(Some(&auth), Some("tooled"));
    let http = http_of(&mut request);
    http.method = method.to_owned();
    for (k, v) in headers {
        http.headers.insert((*k).to_owned(), (*v).to_owned());
    }
    http.body = body.to_owned();
    send(server, request).await
}

fn call(tool: &str) -> String {
    serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": {}}}).to_string()
}

const NEW: [(&str, &str); 1] = [("mcp-protocol-version", "2026-07-28")];

fn new_call(tool: &str) -> Vec<(&str, &str)> {
    vec![NEW[0], ("mcp-method", "tools/call"), ("mcp-name", tool)]
}

#[tokio::test]
async fn a_tool_rule_adds_its_scopes_to_calls_of_that_tool_only() {
    let key = TestKey::new();
    let server = server(&key).await;
    let basic = key.token("dora", None, serde_json::json!({ "scope": "tools" }));
    // Protocol 2026-07-28: the headers say which tool, no body needed.
    ok(&tool_check(&server, &basic, "POST", &new_call("echo"), "").await);
    let c = challenge(
        &tool_check(&server, &basic, "POST", &new_call("admin_reset"), "").await,
        7,
        403,
    );
    assert!(c.contains("error=\"insufficient_scope\""), "{c}");
    // Every matching rule: admin_* and admin_reset.
    assert_eq!(scope_of(&c), Some("tools tools:admin tools:danger"));
    let admin = key.token(
        "dora",
        None,
        serde_json::json!({ "scope": "tools tools:admin tools:danger" }),
    );
    ok(&tool_check(&server, &admin, "POST", &new_call("admin_reset"), "").await);
    // Not a tool call: only the backend's own scope.
    let list = [NEW[0], ("mcp-method", "tools/list")];
    ok(&tool_check(&server, &basic, "POST", &list, "").await);
    ok(&tool_check(&server, &basic, "GET", &[], "").await);
    // A missing token's 401 already names what the call needs.
    let mut request = check_request(None, Some("tooled"));
    let http = http_of(&mut request);
    for (k, v) in new_call("admin_x") {
        http.headers.insert(k.to_owned(), v.to_owned());
    }
    let c = challenge(&send(&server, request).await, 16, 401);
    assert_eq!(scope_of(&c), Some("tools tools:admin"));
    server.stop().await;
}

#[tokio::test]
async fn an_older_protocol_is_judged_by_its_body_and_never_by_its_headers() {
    let key = TestKey::new();
    let server = server(&key).await;
    let basic = key.token("erin", None, serde_json::json!({ "scope": "tools" }));
    let old = [("mcp-protocol-version", "2025-06-18")];
    ok(&tool_check(&server, &basic, "POST", &old, &call("echo")).await);
    challenge(
        &tool_check(&server, &basic, "POST", &old, &call("admin_reset")).await,
        7,
        403,
    );
    // Headers claiming a harmless tool over a body calling a guarded one.
    let lying = [old[0], ("mcp-method", "tools/call"), ("mcp-name", "echo")];
    let d = tool_check(&server, &basic, "POST", &lying, &call("admin_reset")).await;
    let body: serde_json::Value = serde_json::from_str(&denied(&d, 7, 403).body).unwrap();
    assert_eq!(body["error"], "tool_header_mismatch");
    // A batch hiding one guarded call among harmless ones.
    let batch = format!("[{},{}]", call("echo"), call("admin_wipe"));
    let c = challenge(
        &tool_check(&server, &basic, "POST", &old, &batch).await,
        7,
        403,
    );
    assert_eq!(scope_of(&c), Some("tools tools:admin"));
    // No body, a cut body, or one that is not JSON-RPC: the tool cannot be told.
    for (headers, body) in [
        (vec![old[0]], String::new()),
        (
            vec![old[0], ("x-envoy-auth-partial-body", "true")],
            call("echo"),
        ),
        (
            vec![],
            "{\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"name\":\"admin_reset\"}}"
                .to_owned(),
        ),
    ] {
        let d = tool_check(&server, &basic, "POST", &headers, &body).await;
        let answer: serde_json::Value = serde_json::from_str(&denied(&d, 7, 403).body).unwrap();
        assert_eq!(answer["error"], "tool_unverifiable", "{headers:?} {body}");
    }
    // An invalid token still gets its 401 first.
    let d = tool_check(&server, "not-a-jwt", "POST", &old, "").await;
    denied(&d, 16, 401);
    server.stop().await;
}
