// SPDX-License-Identifier: Apache-2.0
//! Operations: hot reload under load, graceful shutdown of the real binary, Redis and token
//! endpoint outages with recovery, decision audit events, and a redaction audit over every log
//! line, metric and audit event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fake_sts::{FakeSts, Reply};
use common::process::{connect, health, signal, Process};
use common::redis_server::Redis;
use common::{
    check, check_request, denied, logs, metric_value, ok, store_token, TestKey, TestServer,
};
use envoy_types::pb::envoy::service::auth::v3::CheckResponse;
use mcp_authz::reload::reload_file;

const ISSUER: &str = common::ISSUER;
const AUDIENCE: &str = common::AUDIENCE;

/// A Mode B config; `server_extra` and `backends` are YAML lines (indented by two and four).
fn config(key: Option<&TestKey>, server_extra: &str, storage: &str, backends: &str) -> String {
    let key_line = key.map_or(String::new(), |k| {
        format!("  signingKeyFile: \"{}\"", k.path)
    });
    format!(
        r#"
server:
  grpcAddr: "127.0.0.1:0"
  httpAddr: "127.0.0.1:0"
  resourceUrl: "{AUDIENCE}"
{server_extra}
incomingAuth:
  type: oidc
  oidc: {{ issuer: "{ISSUER}", audience: "{AUDIENCE}" }}
authServer:
  issuer: "{ISSUER}"
  allowedAudiences: ["{AUDIENCE}"]
{key_line}
  storage: {storage}
  upstreams:
    - name: github
      type: oauth2
      oauth2: {{ authorizationEndpoint: "https://github.example/a", tokenEndpoint: "https://github.example/t", clientId: gh }}
outgoingAuth:
  backends:
    github: {{ type: upstream_inject, upstreamInject: {{ providerName: github }} }}
{backends}
"#
    )
}

fn header_value(response: &CheckResponse, name: &str) -> Option<String> {
    ok(response)
        .headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .find(|h| h.key == name)
        .map(|h| h.value.clone())
}

/// A token minted with the key the server itself uses (works with an ephemeral key too).
fn token_from_runtime(server: &TestServer, sub: &str, tsid: &str) -> String {
    let runtime = server.state.runtime();
    let key = runtime.signing_key.as_ref().unwrap();
    let now = common::now();
    let claims = serde_json::json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 300, "tsid": tsid,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(key.kid().to_owned());
    jsonwebtoken::encode(&header, &claims, &key.encoding_key().unwrap()).unwrap()
}

// ---------------------------------------------------------------- reload ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_under_a_steady_stream_of_checks_fails_none_and_keeps_logins() {
    logs();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    let env: HashMap<String, String> = HashMap::new();
    // No signingKeyFile: an ephemeral key that the reload must keep, or every token dies.
    let old = config(
        None,
        "  audit: { enabled: false }",
        "{ type: memory }",
        "    flip: { type: unauthenticated }",
    );
    std::fs::write(&path, &old).unwrap();
    let server = Arc::new(TestServer::start(&old).await);
    let jwt = token_from_runtime(&server, "ann", "tsid-ann");
    store_token(&server, "tsid-ann", "github", "gho_kept", None).await;
    let auth = format!("Bearer {jwt}");

    let stream = {
        let server = server.clone();
        let auth = auth.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let started = Instant::now();
            while started.elapsed() < Duration::from_millis(1_500) {
                let response = check(&server, Some(&auth), Some("flip")).await;
                seen.push(header_value(&response, "x-api-key"));
            }
            seen
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let new = old.replace(
        "    flip: { type: unauthenticated }",
        "    flip: { type: header_injection, headerInjection: { headerName: x-api-key, headerValue: new-value } }",
    );
    std::fs::write(&path, &new).unwrap();
    assert!(reload_file(&server.state, &path, &env).await);
    let seen = stream.await.unwrap();
    assert!(seen.len() > 20, "a steady stream: {} Checks", seen.len());
    let switch = seen
        .iter()
        .position(Option::is_some)
        .expect("the new config took effect");
    assert!(switch > 0, "the old config answered first");
    assert!(
        seen[switch..]
            .iter()
            .all(|v| v.as_deref() == Some("new-value")),
        "after the swap every Check answers per the new config"
    );
    // The login survived: same key (the JWT still verifies), same memory store.
    let response = check(&server, Some(&auth), Some("github")).await;
    assert_eq!(
        header_value(&response, "authorization").as_deref(),
        Some("Bearer gho_kept")
    );

    // An invalid file changes nothing and is counted.
    std::fs::write(&path, new.replace("type: header_injection", "type: magic")).unwrap();
    assert!(!reload_file(&server.state, &path, &env).await);
    // So does a change that needs a restart.
    let moved = new.replace(
        &format!("resourceUrl: \"{AUDIENCE}\""),
        "resourceUrl: \"https://other.example/mcp\"",
    );
    assert_ne!(moved, new);
    std::fs::write(&path, moved).unwrap();
    assert!(!reload_file(&server.state, &path, &env).await);
    // After each refused reload, `flip` still answers per the running config.
    let still_new = || async {
        let response = check(&server, Some(&auth), Some("flip")).await;
        assert_eq!(
            header_value(&response, "x-api-key").as_deref(),
            Some("new-value")
        );
        let text = server.metrics().await;
        metric_value(&text, "mcp_authz_config_reload_failures_total")
    };
    assert_eq!(still_new().await, 2);
    let text = server.metrics().await;
    assert_eq!(metric_value(&text, "mcp_authz_config_reloads_total"), 1);

    // A backend defined a second time below the first is refused, not the later one winning:
    // `flip` keeps its header.
    let twice = new.replace(
        "    flip: { type: header_injection",
        "    flip: { type: unauthenticated }\n    flip: { type: header_injection",
    );
    assert_ne!(twice, new);
    std::fs::write(&path, twice).unwrap();
    assert!(!reload_file(&server.state, &path, &env).await);
    assert_eq!(still_new().await, 3);
}

// ---------------------------------------------------------------- the real binary ----

/// Writes `config(key, server_extra, memory, backends)` with fixed ports and starts the binary.
fn spawn_serve(key: &TestKey, server_extra: &str, backends: &str, extra_args: &[&str]) -> Process {
    Process::spawn(
        &config(Some(key), server_extra, "{ type: memory }", backends),
        extra_args,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_running_binary() {
    let key = TestKey::new();
    // Only SIGHUP triggers a reload here (--watch-interval 0).
    let mut process = spawn_serve(
        &key,
        "  audit: { enabled: false }",
        "    static: { type: header_injection, headerInjection: { headerName: x-api-key, headerValue: before } }",
        &["--watch-interval", "0"],
    );
    let grpc = process.grpc;
    let mut client = connect(grpc).await;
    let auth = format!("Bearer {}", key.token("bea", None, serde_json::json!({})));
    let value = |response: CheckResponse| header_value(&response, "x-api-key");
    let response = client
        .check(check_request(Some(&auth), Some("static")))
        .await
        .unwrap();
    assert_eq!(value(response.into_inner()).as_deref(), Some("before"));

    std::fs::write(
        &process.path,
        process
            .yaml
            .replace("headerValue: before", "headerValue: after"),
    )
    .unwrap();
    signal(&process, "HUP");
    let mut last = None;
    for _ in 0..100 {
        let response = client
            .check(check_request(Some(&auth), Some("static")))
            .await
            .unwrap();
        last = value(response.into_inner());
        if last.as_deref() == Some("after") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(last.as_deref(), Some("after"));
    signal(&process, "TERM");
    assert!(process.child.wait().unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_burst_cuts_no_check_and_exits_zero() {
    let key = TestKey::new();
    let sts = FakeSts::start(Reply::Token { expires_in: 300 }).await;
    // Every Check below misses the exchange cache and waits 700 ms at the endpoint.
    sts.set_delay(Duration::from_millis(700));
    let mut process = spawn_serve(
        &key,
        "  audit: { enabled: false }\n  shutdownDelaySeconds: 1\n  shutdownGraceSeconds: 5",
        &format!(
            "    slow: {{ type: token_exchange, tokenExchange: {{ tokenUrl: \"{}\" }} }}",
            sts.url
        ),
        &[],
    );
    let grpc = process.grpc;
    let client = connect(grpc).await;
    for _ in 0..100 {
        if health(grpc).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(health(grpc).await, 1, "SERVING before shutdown");

    let mut burst = Vec::new();
    for i in 0..20 {
        let mut client = client.clone();
        let auth = format!(
            "Bearer {}",
            key.token(&format!("user-{i}"), None, serde_json::json!({}))
        );
        burst.push(tokio::spawn(async move {
            let mut request = tonic::Request::new(check_request(Some(&auth), Some("slow")));
            request.set_timeout(Duration::from_secs(5));
            client.check(request).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = Instant::now();
    signal(&process, "TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        health(grpc).await,
        2,
        "NOT_SERVING as soon as shutdown starts"
    );
    for call in burst {
        let response = call.await.unwrap().expect("no in-flight Check is cut");
        let value = header_value(&response.into_inner(), "authorization").unwrap();
        assert!(value.starts_with("Bearer xt-"), "{value}");
    }
    let status = process.child.wait().unwrap();
    assert!(status.success(), "exit 0, got {status}");
    assert!(
        sent.elapsed() < Duration::from_secs(6),
        "within the grace period"
    );
    assert_eq!(sts.calls(), 20);
}

// ---------------------------------------------------------------- outages ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_is_503_for_redis_backed_checks_only_and_recovers_without_restart() {
    let key = TestKey::new();
    let mut redis = Redis::start();
    let storage = format!(
        "{{ type: redis, redis: {{ url: \"redis://127.0.0.1:{}/\", timeoutMs: 200 }} }}",
        redis.port
    );
    let server = TestServer::start(&config(
        Some(&key),
        "  audit: { enabled: false }",
        &storage,
        "    static: { type: header_injection, headerInjection: { headerName: x-api-key, headerValue: k } }",
    ))
    .await;
    store_token(&server, "tsid-rob", "github", "gho_rob", None).await;
    let auth = format!(
        "Bearer {}",
        key.token("rob", Some("tsid-rob"), serde_json::json!({}))
    );
    ok(&check(&server, Some(&auth), Some("github")).await);

    for _ in 0..100 {
        if health(server.grpc.port()).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    redis.kill();
    for _ in 0..5 {
        denied(&check(&server, Some(&auth), Some("github")).await, 14, 503);
        ok(&check(&server, Some(&auth), Some("static")).await);
    }
    // Still SERVING: taking the replica out would fail the backends that need no store too.
    assert_eq!(health(server.grpc.port()).await, 1);
    redis.restart();
    let mut recovered = false;
    for _ in 0..100 {
        let response = check(&server, Some(&auth), Some("github")).await;
        if response.status.as_ref().unwrap().code == 0 {
            assert_eq!(
                header_value(&response, "authorization").as_deref(),
                Some("Bearer gho_rob")
            );
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        recovered,
        "Checks recover once Redis is back, without restarting mcp-authz"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_token_endpoint_outage_fails_only_cache_misses_and_recovers() {
    let key = TestKey::new();
    let sts = FakeSts::start(Reply::Token { expires_in: 300 }).await;
    let server = TestServer::start(&config(
        Some(&key),
        "  audit: { enabled: false }",
        "{ type: memory }",
        &format!(
            "    jira: {{ type: token_exchange, tokenExchange: {{ tokenUrl: \"{}\" }} }}",
            sts.url
        ),
    ))
    .await;
    let warm = format!("Bearer {}", key.token("warm", None, serde_json::json!({})));
    let cold = format!("Bearer {}", key.token("cold", None, serde_json::json!({})));
    ok(&check(&server, Some(&warm), Some("jira")).await);
    sts.set_reply(Reply::Raw(503, "{}".to_owned()));
    // During the outage: cached tokens keep flowing, new exchanges are 503 (never OK).
    ok(&check(&server, Some(&warm), Some("jira")).await);
    denied(&check(&server, Some(&cold), Some("jira")).await, 14, 503);
    sts.set_reply(Reply::Token { expires_in: 300 });
    ok(&check(&server, Some(&cold), Some("jira")).await);
    server.stop().await;
}

// ---------------------------------------------------------------- audit and redaction ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_events_and_logs_and_metrics_never_hold_a_token_secret_or_tsid() {
    logs();
    let key = TestKey::new();
    let sts = FakeSts::start(Reply::Token { expires_in: 300 }).await;
    let dir = tempfile::tempdir().unwrap();
    let audit_path = dir.path().join("audit.jsonl");
    let server = TestServer::start(&config(
        Some(&key),
        &format!("  audit: {{ file: \"{}\" }}", audit_path.display()),
        "{ type: memory }",
        &format!(
            "    static: {{ type: header_injection, headerInjection: {{ headerName: x-api-key, headerValue: planted-static-secret }} }}\n    jira: {{ type: token_exchange, tokenExchange: {{ tokenUrl: \"{}\", clientId: c, clientSecret: planted-client-secret }} }}",
            sts.url
        ),
    ))
    .await;
    let tsid = "planted-tsid-value-0123";
    store_token(&server, tsid, "github", "gho_planted_upstream", None).await;
    let jwt = key.token("audited-user", Some(tsid), serde_json::json!({}));
    let auth = format!("Bearer {jwt}");
    let mut expected = 0;
    for backend in ["github", "static", "jira", "nope"] {
        check(&server, Some(&auth), Some(backend)).await;
        expected += 1;
    }
    check(&server, None, Some("github")).await;
    check(&server, Some("Bearer not.a.jwt"), Some("github")).await;
    let other = key.token(
        "no-token-user",
        Some("tsid-without-records"),
        serde_json::json!({}),
    );
    check(&server, Some(&format!("Bearer {other}")), Some("github")).await;
    expected += 3;

    let mut lines = Vec::new();
    for _ in 0..100 {
        let text = std::fs::read_to_string(&audit_path).unwrap_or_default();
        lines = text.lines().map(str::to_owned).collect();
        if lines.len() >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(lines.len(), expected, "one audit event per Check");
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events[0]["decision"], "allow");
    assert_eq!(events[0]["backend"], "github");
    assert_eq!(events[0]["strategy"], "upstream_inject");
    assert_eq!(events[0]["subject"], "audited-user");
    assert_eq!(events[3]["decision"], "deny");
    assert_eq!(events[3]["reason"], "unknown_backend");
    assert_eq!(events[4]["reason"], "missing_token");
    assert_eq!(events[6]["reason"], "upstream_token_unavailable");
    assert_eq!(events[6]["subject"], "no-token-user");
    assert!(events
        .iter()
        .all(|e| e["latency_us"].is_u64() && e["ts_ms"].is_u64()));

    let secrets = [
        jwt.as_str(),
        other.as_str(),
        tsid,
        "tsid-without-records",
        "gho_planted_upstream",
        "planted-static-secret",
        "planted-client-secret",
        "xt-1",
    ];
    let metrics_text = server.metrics().await;
    let audit_text = lines.join("\n");
    for secret in secrets {
        assert!(!audit_text.contains(secret), "audit events hold a secret");
        assert!(!metrics_text.contains(secret), "metrics hold a secret");
    }
    logs().assert_never_logged(&secrets);
    server.stop().await;
}

#[tokio::test]
async fn allows_are_sampled_but_denials_are_always_audited() {
    let key = TestKey::new();
    let dir = tempfile::tempdir().unwrap();
    let audit_path = dir.path().join("audit.jsonl");
    let server = TestServer::start(&config(
        Some(&key),
        &format!(
            "  audit: {{ file: \"{}\", allowSampleRate: 0.0 }}",
            audit_path.display()
        ),
        "{ type: memory }",
        "    public: { type: unauthenticated }",
    ))
    .await;
    let auth = format!("Bearer {}", key.token("sam", None, serde_json::json!({})));
    for _ in 0..10 {
        ok(&check(&server, Some(&auth), Some("public")).await);
    }
    for _ in 0..3 {
        check(&server, None, Some("public")).await;
    }
    let mut count = 0;
    for _ in 0..100 {
        count = std::fs::read_to_string(&audit_path)
            .unwrap_or_default()
            .lines()
            .count();
        if count >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let text = std::fs::read_to_string(&audit_path).unwrap();
    assert_eq!((count, text.lines().count()), (3, 3), "{text}");
    assert!(text.lines().all(|l| l.contains("\"decision\":\"deny\"")));
    server.stop().await;
}
