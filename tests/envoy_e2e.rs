// SPDX-License-Identifier: Apache-2.0
//! End to end with a real Envoy (`ENVOY_BIN`, installed by `scripts/test.sh`):
//! client → Envoy (deploy/envoy/envoy.yaml) → mcp-authz → an echo backend that reports the
//! headers it received.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::envoy::{echo_backend, get, start_envoy};
use common::oauth_server::OAuthServer;
use common::{logs, mode_b_config, TestKey, TestServer};
use mcp_authz::secret::{Token, Tsid};
use mcp_authz::upstream::UpstreamToken;

#[tokio::test(flavor = "multi_thread")]
async fn backends_receive_exactly_their_credential_through_real_envoy() {
    logs();
    let key = TestKey::new();
    let oauth = OAuthServer::trusting(&key);
    let config = mode_b_config(&key.path, "{ type: memory }");
    let placeholder = "tokenUrl: \"http://127.0.0.1:1/token\"";
    assert_eq!(config.matches(placeholder).count(), 1);
    let config = config.replace(
        placeholder,
        &format!(
            "tokenUrl: \"{}\", clientId: exchanger, clientSecret: exchanger-secret, audience: \"https://backend.example\"",
            oauth.token_url()
        ),
    );
    let server = TestServer::start(&config).await;
    let store = server.state.runtime().pipeline.store.clone().unwrap();
    let upstream = UpstreamToken {
        access_token: Token::new("gho_e2e_upstream_token"),
        refresh_token: None,
        id_token: None,
        expires_at: None,
        subject: None,
        client_id: None,
    };
    store
        .put(&Tsid::new("tsid-e2e"), "github", &upstream)
        .await
        .unwrap();
    let okta_token = oauth.upstream_token().await;
    let okta = UpstreamToken {
        access_token: Token::new(okta_token.as_str()),
        ..upstream.clone()
    };
    store
        .put(&Tsid::new("tsid-e2e"), "okta", &okta)
        .await
        .unwrap();
    let backend = echo_backend().await;
    let (_envoy, port) = start_envoy(&server, backend).await;

    let jwt = key.token("alice", Some("tsid-e2e"), serde_json::json!({}));
    let bearer = format!("Bearer {jwt}");

    // upstream_inject: the upstream token replaces the caller's JWT.
    let github = get(port, "/github/mcp", Some(&bearer)).await.echoed();
    assert_eq!(
        github["authorization"],
        vec!["Bearer gho_e2e_upstream_token".to_owned()]
    );

    // A credential in the query (RFC 6750 §2.3) never reaches the backend, in any spelling;
    // the other parameters do.
    let path =
        format!("/public/mcp?x=1&access_token={jwt}&ACCESS_TOKEN={jwt}&access%5Ftoken={jwt}&y=2");
    let echoed = get(port, &path, Some(&bearer)).await.echoed();
    assert_eq!(echoed[":path"], vec!["/public/mcp?x=1&y=2".to_owned()]);

    // unauthenticated and the default: no authorization at all.
    for path in ["/public/mcp", "/mcp"] {
        let echoed = get(port, path, Some(&bearer)).await.echoed();
        assert!(!echoed.contains_key("authorization"), "{path}: {echoed:?}");
    }

    // header_injection: the static header, and no authorization.
    let echoed = get(port, "/static/mcp", Some(&bearer)).await.echoed();
    assert_eq!(echoed["x-api-key"], vec!["static-secret-value".to_owned()]);
    assert!(!echoed.contains_key("authorization"));

    // The caller's JWT reaches no backend, under any header name.
    for path in [
        "/github/mcp",
        "/public/mcp",
        "/static/mcp",
        "/exchange/mcp",
        "/mcp",
    ] {
        let body = get(port, path, Some(&bearer)).await.body;
        assert!(!body.contains(&jwt), "{path} leaked the caller's JWT");
    }

    // A client-sent x-api-key is overwritten, not appended.
    let spoofed = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/static/mcp"))
        .header("authorization", &bearer)
        .header("x-api-key", "client-supplied")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let spoofed: BTreeMap<String, Vec<String>> = serde_json::from_str(&spoofed).unwrap();
    assert_eq!(spoofed["x-api-key"], vec!["static-secret-value".to_owned()]);

    // A caller without a github token: 401 telling the MCP client to log in again.
    let other = key.token("bob", Some("tsid-without-github"), serde_json::json!({}));
    let missing = get(port, "/github/mcp", Some(&format!("Bearer {other}"))).await;
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.www_authenticate.as_deref(),
        Some("Bearer realm=\"http://127.0.0.1:9090\", resource_metadata=\"http://127.0.0.1:10000/.well-known/oauth-protected-resource/mcp\", error=\"invalid_token\", error_description=\"upstream token for provider \\\"github\\\" is unavailable; re-authentication required\"")
    );
    let body: serde_json::Value = serde_json::from_str(&missing.body).unwrap();
    assert_eq!(body["error"], "invalid_token");

    // No token at all: a bare challenge with resource_metadata.
    let anonymous = get(port, "/github/mcp", None).await;
    assert_eq!(anonymous.status, 401);
    assert!(anonymous
        .www_authenticate
        .unwrap()
        .contains("resource_metadata="));

    // token_exchange (subject = the caller's okta token): the backend gets what the real
    // token service issued, neither the JWT nor the okta token; the second request is cached.
    for _ in 0..2 {
        let echoed = get(port, "/exchange/mcp", Some(&bearer)).await.echoed();
        let exchanges = oauth.exchanges().await;
        assert_eq!(exchanges.len(), 1, "{exchanges:?}");
        let issued = exchanges[0]["issued_token"].as_str().unwrap();
        assert_eq!(echoed["authorization"], vec![format!("Bearer {issued}")]);
    }
    let no_okta = get(port, "/exchange/mcp", Some(&format!("Bearer {other}"))).await;
    assert_eq!(no_okta.status, 401);
    assert!(no_okta
        .www_authenticate
        .unwrap()
        .contains("provider \\\"okta\\\""));

    // Misrouting fails closed.
    assert_eq!(get(port, "/misrouted/mcp", Some(&bearer)).await.status, 403);

    // Metadata routes skip ext_authz and reach our HTTP listener.
    let prm = get(port, "/.well-known/oauth-protected-resource/mcp", None).await;
    assert_eq!(
        prm.status, 405,
        "POST is not served, proving the route reached mcp-authz without a Check"
    );

    logs().assert_never_logged(&[&jwt, "gho_e2e_upstream_token", &okta_token, "tsid-e2e"]);
    server.stop().await;
}

/// A POST through Envoy to `path` with `headers` and `body`: (status, WWW-Authenticate, body).
async fn post(
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    body: String,
) -> (u16, Option<String>, String) {
    let mut request = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}{path}"))
        .header("content-type", "application/json")
        .body(body);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, challenge, response.text().await.unwrap())
}

fn call(tool: &str, arguments: serde_json::Value) -> String {
    serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}})
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn tool_rules_through_real_envoy_read_the_body_only_on_their_route() {
    logs();
    let key = TestKey::new();
    let config = mode_b_config(&key.path, "{ type: memory }").replace(
        "    public: { type: unauthenticated }",
        "    public: { type: unauthenticated }\n    tools: { type: unauthenticated, tools: [{ name: \"admin_*\", requiredScopes: [\"tools:admin\"] }] }",
    );
    let server = TestServer::start(&config).await;
    let (_envoy, port) = start_envoy(&server, echo_backend().await).await;
    let plain = format!("Bearer {}", key.token("fay", None, serde_json::json!({})));
    let admin_jwt = key.token("fay", None, serde_json::json!({ "scope": "tools:admin" }));
    let admin = format!("Bearer {admin_jwt}");
    let none = serde_json::json!({});

    // An older client: Envoy sends the body along, and mcp-authz reads the tool from it.
    let old = |auth| {
        [
            ("authorization", auth),
            ("mcp-protocol-version", "2025-06-18"),
        ]
    };
    let (status, _, _) = post(port, "/tools/mcp", &old(&plain), call("echo", none.clone())).await;
    assert_eq!(status, 200);
    let (status, challenge, _) = post(
        port,
        "/tools/mcp",
        &old(&plain),
        call("admin_reset", none.clone()),
    )
    .await;
    assert_eq!(status, 403);
    let challenge = challenge.unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\"")
            && challenge.contains("scope=\"tools:admin\""),
        "{challenge}"
    );
    let (status, _, echoed) = post(
        port,
        "/tools/mcp",
        &old(&admin),
        call("admin_reset", none.clone()),
    )
    .await;
    assert_eq!(status, 200, "{echoed}");
    assert!(!echoed.contains(&admin_jwt), "the JWT reached the backend");
    // A body past the route's 64 KiB arrives cut and is refused, not guessed at.
    let padded = call("echo", serde_json::json!({ "pad": "x".repeat(70_000) }));
    let (status, _, body) = post(port, "/tools/mcp", &old(&admin), padded).await;
    assert_eq!(status, 403);
    assert!(body.contains("tool_unverifiable"), "{body}");

    // A 2026-07-28 client: the mirrored headers decide.
    let new = [
        ("authorization", plain.as_str()),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "admin_reset"),
    ];
    let (status, _, _) = post(port, "/tools/mcp", &new, call("admin_reset", none)).await;
    assert_eq!(status, 403);
    server.stop().await;
}
