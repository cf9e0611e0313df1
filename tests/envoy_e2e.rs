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
