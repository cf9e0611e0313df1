// SPDX-License-Identifier: Apache-2.0
//! Providers connected one at a time (DESIGN.md §11) with the official MCP Python SDK as client
//! and server, through real Envoy: the user's first login walks only the required provider
//! (okta); the MCP server behind `/tools/` needs the optional one (github). A client without
//! URL elicitation gets the 401 and logs in again, walking only github's leg; a 2026-07-28 client
//! that declares it gets a URL-mode elicitation, opens the connect page in the browser that
//! logged in, and its retried call succeeds. Grants are counted at each provider.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::envoy::start_envoy_on;
use common::mcp_sdk::{client, McpServer};
use common::oauth_server::OAuthServer;
use common::{free_port, logs, TestKey, TestServer};
use serde_json::Value;
use tokio::net::TcpListener;

struct Stack {
    _key: TestKey,
    okta: OAuthServer,
    github: OAuthServer,
    server: TestServer,
    mcp: McpServer,
    url: String,
    _envoy: common::envoy::Envoy,
}

/// mcp-authz with okta (required) and github (optional) as upstreams; the SDK's MCP server
/// behind Envoy's `/tools/` route (whose body Envoy sends) receives the user's github token.
/// With `expiring`, github's access and refresh tokens live that many seconds.
async fn stack(expiring: Option<u64>) -> Stack {
    logs();
    let key = TestKey::new();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", http.local_addr().unwrap());
    let callback = format!("{issuer}/oauth/callback");
    let okta = OAuthServer::identity_provider(&callback, 3600);
    let github = match expiring {
        Some(ttl) => OAuthServer::identity_provider_expiring(&callback, ttl, ttl),
        None => OAuthServer::identity_provider(&callback, 3600),
    };
    let listen = free_port();
    let url = format!("http://127.0.0.1:{listen}/tools/mcp");
    let upstream = |name: &str, base: &str, required: bool| {
        format!("    - {{ name: {name}, type: oidc, required: {required}, oidc: {{ issuerUrl: \"{base}\", clientId: mcp-authz, clientSecret: mcp-authz-secret, scopes: [openid, email] }} }}")
    };
    let yaml = format!(
        r#"
server: {{ grpcAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", resourceUrl: "{url}", audit: {{ enabled: false }} }}
incomingAuth:
  type: oidc
  oidc: {{ issuer: "{issuer}", audience: "{url}" }}
authServer:
  issuer: "{issuer}"
  allowedAudiences: ["{url}"]
  signingKeyFile: "{key_path}"
  storage: {{ type: memory }}
  upstreams:
{okta_line}
{github_line}
outgoingAuth:
  backends:
    tools: {{ type: upstream_inject, upstreamInject: {{ providerName: github }} }}
"#,
        key_path = key.path,
        okta_line = upstream("okta", &okta.base, true),
        github_line = upstream("github", &github.base, false),
    );
    let server = TestServer::start_with_http(&yaml, http).await;
    let mcp = McpServer::start("/tools/mcp");
    let backend = format!("127.0.0.1:{}", mcp.port).parse().unwrap();
    let (envoy, _) = start_envoy_on(&server, backend, listen).await;
    Stack {
        _key: key,
        okta,
        github,
        server,
        mcp,
        url,
        _envoy: envoy,
    }
}

/// Code grants each provider has seen.
async fn code_grants(idp: &OAuthServer) -> usize {
    idp.grants()
        .await
        .iter()
        .filter(|g| g["grant_type"] == "authorization_code")
        .count()
}

/// The `whoami` text (the Authorization header the MCP server saw) is alice's github token.
async fn assert_sees_alices_github_token(stack: &Stack, report: &Value) {
    let whoami = report["calls"][0]["text"].as_str().unwrap();
    let token = whoami.strip_prefix("Bearer ").unwrap();
    let introspection = stack.github.introspect(token).await;
    assert_eq!(introspection["active"], true, "{report}");
    assert_eq!(introspection["sub"], "alice");
}

/// The same user and login session in every token the SDK stored.
fn assert_one_identity(report: &Value) {
    let tokens = report["tokens"].as_array().unwrap();
    assert!(!tokens.is_empty());
    for t in tokens {
        assert_eq!(t["sub"], "alice", "{report}");
        assert_eq!(t["tsid_sha256_16"], tokens[0]["tsid_sha256_16"], "{report}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_url_elicitation_the_sdk_logs_in_again_and_walks_only_the_missing_provider() {
    let stack = stack(None).await;
    let calls = serde_json::json!([{ "name": "whoami" }, { "name": "whoami" }]);
    let mut report = client(
        &stack.url,
        "alice",
        calls,
        &["--protocol-version", "2026-07-28"],
    )
    .await;
    // The SDK (mcp 2.3.0) runs its OAuth flow once per request: the first call logs in (okta)
    // and its retry meets github's 401, which it returns; the next call's 401 logs in again.
    assert_eq!(report["calls"][0]["ok"], false, "{report}");
    assert_eq!(report["calls"][1]["ok"], true, "{report}");
    report["calls"].as_array_mut().unwrap().remove(0);
    // Two authorizations in one browser: okta's leg, then (after the 401) github's alone.
    assert_eq!(
        report["authorization_requests"].as_array().unwrap().len(),
        2,
        "{report}"
    );
    assert_eq!(code_grants(&stack.okta).await, 1);
    assert_eq!(code_grants(&stack.github).await, 1);
    let unauthorized_with_token = report["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "mcp" && e["status"] == 401 && e["bearer"] == true)
        .count();
    assert_eq!(unauthorized_with_token, 2, "{report}");
    assert_one_identity(&report);
    assert_sees_alices_github_token(&stack, &report).await;
    assert_eq!(stack.mcp.calls_of("whoami").len(), 1, "one call reached it");
    assert!(report["elicitations"].as_array().unwrap().is_empty());
    stack.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_url_elicitation_the_sdk_opens_the_connect_page_and_its_retry_succeeds() {
    let stack = stack(None).await;
    let calls = serde_json::json!([{ "name": "whoami" }]);
    let report = client(
        &stack.url,
        "alice",
        calls,
        &["--protocol-version", "2026-07-28", "--elicitation", "url"],
    )
    .await;
    assert_eq!(report["ok"], true, "{report}");
    // One authorization (okta's leg); github's leg ran from the connect page.
    assert_eq!(
        report["authorization_requests"].as_array().unwrap().len(),
        1,
        "{report}"
    );
    let elicitations = report["elicitations"].as_array().unwrap();
    assert_eq!(elicitations.len(), 1, "{report}");
    let elicitation = &elicitations[0];
    assert_eq!(elicitation["mode"], "url");
    let connect = format!("{}/oauth/connect/", stack.server_issuer());
    assert_eq!(elicitation["url"], connect.as_str(), "{report}");
    assert_eq!(elicitation["page_status"], 200);
    assert!(elicitation["page"]
        .as_str()
        .unwrap()
        .contains("github is connected"));
    assert!(elicitation["message"].as_str().unwrap().contains("github"));
    assert_eq!(code_grants(&stack.okta).await, 1);
    assert_eq!(code_grants(&stack.github).await, 1);
    // The elicitation came back as a 200 JSON-RPC answer, not a 401.
    let mcp: Vec<_> = report["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "mcp" && e["bearer"] == true)
        .map(|e| e["status"].as_u64().unwrap())
        .collect();
    assert!(!mcp.contains(&401), "{report}");
    assert_one_identity(&report);
    assert_sees_alices_github_token(&stack, &report).await;
    assert_eq!(stack.mcp.calls_of("whoami").len(), 1, "one call reached it");
    stack.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn when_the_optional_provider_refuses_a_refresh_the_sdk_walks_only_its_leg_again() {
    // github's tokens (access and refresh) live 2 s; the third call comes after they died.
    let stack = stack(Some(2)).await;
    let calls = serde_json::json!([
        { "name": "whoami" },
        { "name": "whoami" },
        { "sleep": 3 },
        { "name": "whoami" },
    ]);
    let report = client(
        &stack.url,
        "alice",
        calls,
        &["--protocol-version", "2026-07-28"],
    )
    .await;
    assert_eq!(report["calls"][1]["ok"], true, "{report}");
    assert_eq!(report["calls"][3]["ok"], true, "{report}");
    let grants = stack.github.grants().await;
    let refreshes: Vec<_> = grants
        .iter()
        .filter(|g| g["grant_type"] == "refresh_token")
        .collect();
    assert_eq!(refreshes.len(), 1, "{grants:?}");
    assert_ne!(
        refreshes[0]["outcome"], "ok",
        "the refresh was refused: {grants:?}"
    );
    assert_eq!(code_grants(&stack.github).await, 2, "github's leg, twice");
    assert_eq!(code_grants(&stack.okta).await, 1, "okta's leg once");
    assert_eq!(
        report["authorization_requests"].as_array().unwrap().len(),
        3
    );
    assert_one_identity(&report);
    let texts: Vec<_> = [1, 3]
        .iter()
        .map(|i| report["calls"][i]["text"].as_str().unwrap().to_owned())
        .collect();
    assert_ne!(texts[0], texts[1], "a new github token after the new leg");
    report["calls"].as_array().unwrap();
    let mut last = report.clone();
    last["calls"] = serde_json::json!([report["calls"][3].clone()]);
    assert_sees_alices_github_token(&stack, &last).await;
    stack.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connect_link_opened_by_someone_else_connects_nothing_and_the_user_falls_back_to_login() {
    let stack = stack(None).await;
    let calls = serde_json::json!([{ "name": "whoami" }]);
    let report = client(
        &stack.url,
        "alice",
        calls,
        &[
            "--protocol-version",
            "2026-07-28",
            "--elicitation",
            "url",
            "--elicitation-user",
            "bob",
        ],
    )
    .await;
    // Bob's browser opens alice's link: he signs in at okta, is refused before github's leg,
    // and the client declines; the retry is not asked again but gets the 401, and the SDK
    // logs alice in again in her own browser, walking only github.
    let elicitations = report["elicitations"].as_array().unwrap();
    assert_eq!(elicitations.len(), 1, "{report}");
    assert_eq!(elicitations[0]["page_status"], 403, "{report}");
    assert!(elicitations[0]["page"]
        .as_str()
        .unwrap()
        .contains("another user"));
    assert_eq!(report["calls"][0]["ok"], true, "{report}");
    assert_eq!(
        code_grants(&stack.okta).await,
        2,
        "alice's leg and bob's refused one"
    );
    assert_eq!(code_grants(&stack.github).await, 1, "only alice's");
    assert_one_identity(&report);
    assert_sees_alices_github_token(&stack, &report).await;
    assert_eq!(stack.mcp.calls_of("whoami").len(), 1, "one call reached it");
    stack.server.stop().await;
}

impl Stack {
    /// Our issuer (the PRM's authorization server).
    fn server_issuer(&self) -> String {
        format!("http://{}", self.server.http)
    }
}
