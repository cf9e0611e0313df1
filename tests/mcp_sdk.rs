// SPDX-License-Identifier: Apache-2.0
//! The official MCP Python SDK (`MCP_SDK_PYTHON`, installed by `scripts/test.sh`) as the client
//! and as the MCP server, through real Envoy (`deploy/envoy/envoy.yaml`) in front of mcp-authz,
//! with a real oidc-provider as the upstream identity provider (DESIGN.md §10):
//!
//! the SDK logs in with the scopes the 401 names, calls a tool, gets the 403
//! `insufficient_scope` of a tool rule, steps up, and the call succeeds; the MCP server sees only
//! the upstream token, and never a denied call. Both protocol generations: 2026-07-28 (tool from
//! the `Mcp-Method`/`Mcp-Name` headers) and 2025-06-18 (tool from the body Envoy sends).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::envoy::start_envoy_on;
use common::https_documents::{Documents, TestCa};
use common::mcp_sdk::{client, McpServer};
use common::oauth_server::OAuthServer;
use common::{free_port, logs, TestKey, TestServer};
use serde_json::Value;
use tokio::net::TcpListener;

struct Stack {
    _key: TestKey,
    idp: OAuthServer,
    server: TestServer,
    mcp: McpServer,
    url: String,
    _envoy: common::envoy::Envoy,
}

/// mcp-authz (its issuer on its own HTTP listener, its resource the MCP URL through Envoy),
/// one oidc upstream, the SDK server behind Envoy's `/tools/` route; `top_extra` lines at the top
/// of the config and `auth_extra` lines in `authServer`.
async fn stack(top_extra: &str, auth_extra: &str) -> Stack {
    logs();
    let key = TestKey::new();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", http.local_addr().unwrap());
    let idp = OAuthServer::identity_provider(&format!("{issuer}/oauth/callback"), 3600);
    let listen = free_port();
    let url = format!("http://127.0.0.1:{listen}/tools/mcp");
    let yaml = format!(
        r#"
server: {{ grpcAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", resourceUrl: "{url}", audit: {{ enabled: false }} }}
{top_extra}
incomingAuth:
  type: oidc
  oidc: {{ issuer: "{issuer}", audience: "{url}" }}
authServer:
  issuer: "{issuer}"
  allowedAudiences: ["{url}"]
  signingKeyFile: "{key_path}"
  storage: {{ type: memory }}
{auth_extra}
  upstreams:
    - {{ name: okta, type: oidc, oidc: {{ issuerUrl: "{idp}", clientId: mcp-authz, clientSecret: mcp-authz-secret, scopes: [openid, email] }} }}
outgoingAuth:
  backends:
    tools:
      type: upstream_inject
      upstreamInject: {{ providerName: okta }}
      requiredScopes: [tools]
      tools: [{{ name: "admin_*", requiredScopes: ["tools:admin"] }}]
"#,
        key_path = key.path,
        idp = idp.base,
    );
    let server = TestServer::start_with_http(&yaml, http).await;
    let mcp = McpServer::start("/tools/mcp");
    let backend = format!("127.0.0.1:{}", mcp.port).parse().unwrap();
    let (envoy, _) = start_envoy_on(&server, backend, listen).await;
    Stack {
        _key: key,
        idp,
        server,
        mcp,
        url,
        _envoy: envoy,
    }
}

fn calls() -> Value {
    serde_json::json!([{ "name": "whoami" }, { "name": "admin_reset" }])
}

/// The `scope` of each authorization request the SDK sent, in order.
fn authorize_scopes(report: &Value) -> Vec<String> {
    report["authorization_requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["scope"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// What every 401/403 the SDK got from the MCP endpoint challenged with.
fn challenges(report: &Value) -> Vec<(u64, String)> {
    report["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "mcp")
        .filter_map(|e| {
            let challenge = e["www_authenticate"].as_str()?;
            Some((e["status"].as_u64().unwrap(), challenge.to_owned()))
        })
        .collect()
}

async fn the_sdk_steps_up_for_a_guarded_tool(protocol: &str) {
    let stack = stack("", "").await;
    let report = client(
        &stack.url,
        "alice",
        calls(),
        &["--protocol-version", protocol],
    )
    .await;
    assert_eq!(report["ok"], true, "{report:#}");
    if let Ok(path) = std::env::var("MCP_SDK_REPORT_DIR") {
        std::fs::write(format!("{path}/{protocol}.json"), format!("{report:#}")).unwrap();
    }
    let results = report["calls"].as_array().unwrap();
    // whoami: the MCP server saw alice's token from the identity provider, not our JWT.
    let seen = results[0]["text"].as_str().unwrap();
    let upstream = seen.strip_prefix("Bearer ").unwrap();
    assert_eq!(stack.idp.introspect(upstream).await["sub"], "alice");
    assert_eq!(results[1]["text"], "reset done", "{report:#}");

    // The 401 named the backend's scope; the tool call's 403 named the tool's on top.
    let challenges = challenges(&report);
    assert!(
        challenges
            .iter()
            .any(|(s, c)| *s == 401 && c.contains("scope=\"tools\"")),
        "{challenges:?}"
    );
    assert!(
        challenges.iter().any(|(s, c)| *s == 403
            && c.contains("error=\"insufficient_scope\"")
            && c.contains("scope=\"tools tools:admin\"")),
        "{challenges:?}"
    );
    // The SDK asked for what the 401 named, then for the union when it stepped up.
    let scopes = authorize_scopes(&report);
    assert_eq!(scopes.len(), 2, "{report:#}");
    assert_eq!(scopes[0], "tools");
    let stepped: Vec<&str> = scopes[1].split(' ').collect();
    assert!(
        stepped.contains(&"tools") && stepped.contains(&"tools:admin"),
        "{scopes:?}"
    );

    // The MCP server never saw the denied call: one admin_reset. Every credential it saw is
    // alice's token at the identity provider (never a JWT of ours).
    assert_eq!(
        stack.mcp.calls_of("admin_reset").len(),
        1,
        "{:#?}",
        stack.mcp.requests()
    );
    for request in stack.mcp.requests() {
        let auth = request["authorization"].as_str().unwrap();
        let token = auth.strip_prefix("Bearer ").unwrap();
        let introspection = stack.idp.introspect(token).await;
        assert_eq!(
            (&introspection["active"], &introspection["sub"]),
            (&Value::Bool(true), &Value::from("alice")),
            "{request}"
        );
    }
    stack.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_python_sdk_steps_up_with_2026_07_28_headers() {
    the_sdk_steps_up_for_a_guarded_tool("2026-07-28").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_python_sdk_steps_up_with_2025_06_18_and_the_body() {
    the_sdk_steps_up_for_a_guarded_tool("2025-06-18").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scope_the_user_may_not_hold_stops_the_call_before_the_mcp_server() {
    let stack = stack(
        "",
        "  scopeGrants:\n    \"tools:admin\": { subjects: [root] }",
    )
    .await;
    let report = client(
        &stack.url,
        "alice",
        calls(),
        &["--protocol-version", "2026-07-28"],
    )
    .await;
    let results = report["calls"].as_array().unwrap();
    assert!(
        results[0]["text"].as_str().unwrap().starts_with("Bearer "),
        "{report:#}"
    );
    assert_eq!(results[1]["ok"], false, "{report:#}");
    assert!(
        stack.mcp.calls_of("admin_reset").is_empty(),
        "{:#?}",
        stack.mcp.requests()
    );
    stack.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_python_sdk_logs_in_with_a_client_id_metadata_document_and_never_registers() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    let documents = Documents::start(&ca, dir.path());
    let stack = stack(
        &format!("outbound: {{ caFile: \"{}\" }}", ca.ca.display()),
        "  clientMetadata: { allowLoopback: true }",
    )
    .await;
    let client_id = documents.url("/sdk-client.json");
    let redirect = format!("http://127.0.0.1:{}/callback", free_port());
    let document = serde_json::json!({
        "client_id": client_id,
        "client_name": "mcp-authz SDK test client",
        "redirect_uris": [redirect],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    });
    let json =
        serde_json::json!({ "content-type": "application/json", "cache-control": "max-age=600" });
    documents.serve("/sdk-client.json", 200, json, &document.to_string());
    let report = client(
        &stack.url,
        "alice",
        calls(),
        &[
            "--client-metadata-url",
            &client_id,
            "--redirect-uri",
            &redirect,
        ],
    )
    .await;
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(report["registered"], false, "{report:#}");
    let requests = report["authorization_requests"].as_array().unwrap();
    assert!(
        requests
            .iter()
            .all(|r| r["client_id"] == client_id.as_str()),
        "{report:#}"
    );
    assert_eq!(report["calls"][1]["text"], "reset done");
    // Two authorizations (login, step-up) and two token requests: one fetch.
    assert_eq!(documents.fetches("/sdk-client.json"), 1);
    stack.server.stop().await;
}
