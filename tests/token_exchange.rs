// SPDX-License-Identifier: Apache-2.0
//! `token_exchange` (RFC 8693) against a real OAuth server (npm `oidc-provider` with a
//! token-exchange grant), and its faults and cache against a controllable fake endpoint.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::fake_sts::{refused_url, FakeSts, Reply};
use common::oauth_server::OAuthServer;
use common::{
    check, check_request, denied, header, logs, ok, store_token, TestKey, TestServer, AUDIENCE,
    ISSUER,
};
use envoy_types::pb::envoy::service::auth::v3::CheckResponse;

const BACKEND_AUDIENCE: &str = "https://backend.example";

/// A Mode B config with one `okta` upstream, the given backends (YAML lines indented by four)
/// and `outgoingAuth.tokenExchangeCache` (a YAML flow mapping).
fn config(key: &TestKey, backends: &str, cache: &str) -> String {
    format!(
        r#"
server: {{ grpcAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", resourceUrl: "{AUDIENCE}", audit: {{ enabled: false }} }}
incomingAuth:
  type: oidc
  oidc: {{ issuer: "{ISSUER}", audience: "{AUDIENCE}" }}
authServer:
  issuer: "{ISSUER}"
  allowedAudiences: ["{AUDIENCE}"]
  signingKeyFile: "{path}"
  upstreams:
    - name: okta
      type: oauth2
      oauth2: {{ authorizationEndpoint: "https://okta.example/authorize", tokenEndpoint: "https://okta.example/token", clientId: ok }}
outgoingAuth:
  tokenExchangeCache: {cache}
  backends:
{backends}
"#,
        path = key.path
    )
}

/// A backend exchanging the caller's JWT at `url` (no client credentials).
fn jwt_backend(name: &str, url: &str) -> String {
    format!("    {name}: {{ type: token_exchange, tokenExchange: {{ tokenUrl: \"{url}\" }} }}")
}

/// The injected `authorization` value of an allow.
fn injected(response: &CheckResponse) -> String {
    let ok = ok(response);
    let set: Vec<_> = ok
        .headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .filter(|h| h.key == "authorization")
        .collect();
    assert_eq!(set.len(), 1, "{ok:?}");
    set[0].value.clone()
}

async fn check_with_timeout(
    server: &TestServer,
    authorization: &str,
    backend: &str,
    timeout: Duration,
) -> CheckResponse {
    let mut request = tonic::Request::new(check_request(Some(authorization), Some(backend)));
    request.set_timeout(timeout);
    server
        .client()
        .await
        .check(request)
        .await
        .expect("Check answers with a CheckResponse")
        .into_inner()
}

fn metric(text: &str, backend: &str, result: &str) -> u64 {
    let prefix =
        format!("mcp_authz_token_exchange_total{{backend=\"{backend}\",result=\"{result}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.trim().parse().unwrap())
}

// ---------------------------------------------------------------- real OAuth server ----

/// The real OAuth server (trusting `key`'s JWTs as subjects) and mcp-authz with backend `jira`
/// exchanging as client `exchanger` with the extra `tokenExchange` fields `fields`.
async fn real(fields: &str) -> (TestKey, OAuthServer, TestServer) {
    logs();
    let key = TestKey::new();
    let oauth = OAuthServer::trusting(&key);
    let backend = format!(
        "    jira: {{ type: token_exchange, tokenExchange: {{ tokenUrl: \"{}\", clientId: exchanger, clientSecret: exchanger-secret, {fields} }} }}",
        oauth.token_url()
    );
    let server = TestServer::start(&config(&key, &backend, "{}")).await;
    (key, oauth, server)
}

#[tokio::test(flavor = "multi_thread")]
async fn real_server_exchanges_the_callers_jwt_and_the_cache_answers_the_next_check() {
    let (key, oauth, server) =
        real("audience: \"https://backend.example\", scopes: [\"tools:call\"]").await;
    let jwt = key.token("alice", Some("tsid-alice"), serde_json::json!({}));
    let auth = format!("Bearer {jwt}");

    let first = injected(&check(&server, Some(&auth), Some("jira")).await);
    let exchanged = first.strip_prefix("Bearer ").unwrap();
    assert_ne!(exchanged, jwt, "the caller's JWT never reaches the backend");

    let seen = oauth.exchanges().await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    let record = &seen[0];
    assert_eq!(record["outcome"], "ok");
    assert_eq!(record["auth_scheme"], "Basic");
    assert_eq!(record["client_id"], "exchanger");
    assert_eq!(record["subject_kind"], "jwt");
    assert_eq!(record["subject"], "alice");
    assert_eq!(
        record["subject_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert_eq!(
        record["requested_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert_eq!(record["audience"], BACKEND_AUDIENCE);
    assert_eq!(record["scope"], "tools:call");
    assert_eq!(record["issued_token"], exchanged);

    let introspection = oauth.introspect(exchanged).await;
    assert_eq!(introspection["active"], true);
    assert_eq!(introspection["aud"], BACKEND_AUDIENCE);
    assert_eq!(introspection["scope"], "tools:call");
    assert_eq!(introspection["sub"], "alice");

    let second = injected(&check(&server, Some(&auth), Some("jira")).await);
    assert_eq!(second, first);
    assert_eq!(
        oauth.exchanges().await.len(),
        1,
        "the second Check is a cache hit"
    );

    let text = server.metrics().await;
    assert_eq!(metric(&text, "jira", "miss"), 1);
    assert_eq!(metric(&text, "jira", "hit"), 1);
    logs().assert_never_logged(&[&jwt, exchanged, "exchanger-secret", "tsid-alice"]);
    assert!(!text.contains(exchanged) && !text.contains(&jwt));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn real_server_exchanges_the_upstream_token_named_by_subject_provider_name() {
    let (key, oauth, server) = real("audience: \"https://backend.example\", scopes: [read, \"tools:call\"], subjectProviderName: okta").await;
    let upstream = oauth.upstream_token().await;
    store_token(
        &server,
        "tsid-bob",
        "okta",
        &upstream,
        Some(common::now() + 600),
    )
    .await;
    let jwt = key.token("bob", Some("tsid-bob"), serde_json::json!({}));

    let value = injected(&check(&server, Some(&format!("Bearer {jwt}")), Some("jira")).await);
    let exchanged = value.strip_prefix("Bearer ").unwrap();
    assert_ne!(exchanged, upstream);
    let seen = oauth.exchanges().await;
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0]["subject_kind"], "upstream",
        "subject = the stored okta token"
    );
    assert_eq!(seen[0]["subject"], "upstream-app");
    assert_eq!(seen[0]["scope"], "read tools:call");
    let introspection = oauth.introspect(exchanged).await;
    assert_eq!(introspection["aud"], BACKEND_AUDIENCE);
    assert_eq!(introspection["scope"], "read tools:call");

    // A user without an okta token must log in again; the JWT is never exchanged instead.
    let carol = key.token("carol", Some("tsid-carol"), serde_json::json!({}));
    let response = check(&server, Some(&format!("Bearer {carol}")), Some("jira")).await;
    let d = denied(&response, 16, 401);
    assert!(header(d, "www-authenticate")
        .unwrap()
        .contains("upstream token for provider \\\"okta\\\" is unavailable"));
    assert_eq!(oauth.exchanges().await.len(), 1);
    logs().assert_never_logged(&[&upstream, exchanged, "tsid-bob"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn real_server_rejecting_the_subject_is_401_and_cached_briefly() {
    let (key, oauth, server) = real("subjectProviderName: okta").await;
    store_token(
        &server,
        "tsid-dan",
        "okta",
        "revoked-or-forged-okta-token",
        None,
    )
    .await;
    let jwt = key.token("dan", Some("tsid-dan"), serde_json::json!({}));
    let auth = format!("Bearer {jwt}");
    for _ in 0..3 {
        let response = check(&server, Some(&auth), Some("jira")).await;
        let d = denied(&response, 16, 401);
        let challenge = header(d, "www-authenticate").unwrap();
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        assert!(
            challenge.contains("re-authentication required"),
            "{challenge}"
        );
        assert!(
            !d.body.contains("subject_token"),
            "no upstream text is echoed"
        );
    }
    let seen = oauth.exchanges().await;
    assert_eq!(seen.len(), 1, "the rejection is cached: {seen:?}");
    assert_eq!(seen[0]["outcome"], "invalid_grant");
    server.stop().await;
}

// ---------------------------------------------------------------- faults ----

/// mcp-authz whose backend `x` exchanges the caller's JWT at a fake endpoint.
struct Fake {
    key: TestKey,
    sts: FakeSts,
    server: TestServer,
}

impl Fake {
    /// `cache` is the `tokenExchangeCache` flow mapping.
    async fn start(reply: Reply, cache: &str) -> Self {
        let key = TestKey::new();
        let sts = FakeSts::start(reply).await;
        let server = TestServer::start(&config(&key, &jwt_backend("x", &sts.url), cache)).await;
        Self { key, sts, server }
    }

    fn bearer(&self, sub: &str) -> String {
        format!(
            "Bearer {}",
            self.key.token(sub, None, serde_json::json!({}))
        )
    }

    async fn check(&self, authorization: &str) -> CheckResponse {
        check(&self.server, Some(authorization), Some("x")).await
    }

    /// The token injected for `authorization`.
    async fn token(&self, authorization: &str) -> String {
        injected(&self.check(authorization).await)
    }
}

#[tokio::test]
async fn faults_at_the_token_endpoint_are_503_never_ok() {
    logs();
    let ok_body = |drop: &str| {
        let mut body = serde_json::json!({
            "access_token": "leaky-token", "token_type": "Bearer",
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token", "expires_in": 60,
        });
        body.as_object_mut().unwrap().remove(drop);
        body.to_string()
    };
    let cases = [
        ("500", Reply::Raw(500, r#"{"error":"server_error","error_description":"db password hunter2"}"#.to_owned())),
        ("missing token_type", Reply::Raw(200, ok_body("token_type"))),
        ("missing issued_token_type", Reply::Raw(200, ok_body("issued_token_type"))),
        ("missing access_token", Reply::Raw(200, ok_body("access_token"))),
        ("2xx with error (not invalid_grant)", Reply::Raw(200, r#"{"error":"invalid_target","access_token":"a","token_type":"Bearer","issued_token_type":"t"}"#.to_owned())),
        ("invalid_client", Reply::Raw(401, r#"{"error":"invalid_client"}"#.to_owned())),
        ("not JSON", Reply::Raw(200, "<html>proxy error</html>".to_owned())),
        ("oversize body", Reply::Oversize),
    ];
    for (name, reply) in cases {
        let fake = Fake::start(reply, "{}").await;
        let response = fake.check(&fake.bearer("erin")).await;
        let d = denied(&response, 14, 503);
        assert_eq!(header(d, "retry-after"), Some("1"), "{name}");
        assert!(
            !d.body.contains("hunter2") && !d.body.contains("leaky"),
            "{name}"
        );
        assert_eq!(fake.sts.calls(), 1, "{name}");
        fake.server.stop().await;
    }
    logs().assert_never_logged(&["hunter2", "leaky-token"]);
}

#[tokio::test]
async fn a_2xx_with_invalid_grant_is_a_rejection_401() {
    let fake = Fake::start(
        Reply::Raw(
            200,
            r#"{"error":"invalid_grant","access_token":"a","token_type":"Bearer","issued_token_type":"t"}"#.to_owned(),
        ),
        "{}",
    )
    .await;
    denied(&fake.check(&fake.bearer("finn")).await, 16, 401);
}

#[tokio::test]
async fn connection_refused_is_503() {
    let key = TestKey::new();
    let server = TestServer::start(&config(&key, &jwt_backend("x", &refused_url()), "{}")).await;
    let jwt = key.token("finn", None, serde_json::json!({}));
    let response = check(&server, Some(&format!("Bearer {jwt}")), Some("x")).await;
    denied(&response, 14, 503);
    server.stop().await;
}

#[tokio::test]
async fn an_endpoint_slower_than_the_check_deadline_is_503_within_the_deadline() {
    let fake = Fake::start(Reply::Token { expires_in: 300 }, "{}").await;
    fake.sts.set_delay(Duration::from_secs(3));
    let started = Instant::now();
    let response = check_with_timeout(
        &fake.server,
        &fake.bearer("gus"),
        "x",
        Duration::from_millis(200),
    )
    .await;
    denied(&response, 14, 503);
    // The answer came from our deadline budget, not from the endpoint finishing.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fake.sts.calls(), 1);
}

#[tokio::test]
async fn transient_failures_are_not_cached() {
    let fake = Fake::start(Reply::Raw(503, "{}".to_owned()), "{}").await;
    let auth = fake.bearer("oli");
    denied(&fake.check(&auth).await, 14, 503);
    fake.sts.set_reply(Reply::Token { expires_in: 300 });
    assert_eq!(fake.token(&auth).await, "Bearer xt-2");
}

// ---------------------------------------------------------------- cache ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_checks_for_one_cold_key_cause_one_exchange() {
    let fake = Fake::start(Reply::Token { expires_in: 300 }, "{}").await;
    fake.sts.set_delay(Duration::from_millis(300));
    let auth = fake.bearer("hana");
    let client = fake.server.client().await;
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let mut client = client.clone();
        let auth = auth.clone();
        tasks.push(tokio::spawn(async move {
            let mut request = tonic::Request::new(check_request(Some(&auth), Some("x")));
            request.set_timeout(Duration::from_secs(5));
            client.check(request).await.unwrap().into_inner()
        }));
    }
    for task in tasks {
        assert_eq!(injected(&task.await.unwrap()), "Bearer xt-1");
    }
    assert_eq!(
        fake.sts.calls(),
        1,
        "single flight: exactly one request at the endpoint"
    );
    let text = fake.server.metrics().await;
    assert_eq!(metric(&text, "x", "miss"), 1);
    assert_eq!(
        metric(&text, "x", "coalesced") + metric(&text, "x", "hit"),
        199
    );
}

#[tokio::test]
async fn different_subjects_never_share_an_entry() {
    let fake = Fake::start(Reply::Token { expires_in: 300 }, "{}").await;
    let (ivy, jon) = (fake.bearer("ivy"), fake.bearer("jon"));
    let a = fake.token(&ivy).await;
    let b = fake.token(&jon).await;
    assert_ne!(a, b);
    assert_eq!(fake.token(&ivy).await, a);
    assert_eq!(fake.token(&jon).await, b);
    assert_eq!(fake.sts.calls(), 2);
    let bodies = fake.sts.bodies();
    assert!(bodies[0].contains(&ivy["Bearer ".len()..]));
    assert!(bodies[1].contains(&jon["Bearer ".len()..]));
}

#[tokio::test]
async fn one_subject_at_two_backends_gets_two_entries() {
    let key = TestKey::new();
    let sts = FakeSts::start(Reply::Token { expires_in: 300 }).await;
    let backends = format!(
        "{}\n{}",
        jwt_backend("x", &sts.url),
        jwt_backend("y", &sts.url)
    );
    let server = TestServer::start(&config(&key, &backends, "{}")).await;
    let auth = format!("Bearer {}", key.token("kai", None, serde_json::json!({})));
    let x = injected(&check(&server, Some(&auth), Some("x")).await);
    let y = injected(&check(&server, Some(&auth), Some("y")).await);
    assert_ne!(x, y);
    assert_eq!(sts.calls(), 2);
    server.stop().await;
}

#[tokio::test]
async fn an_expired_entry_is_exchanged_again() {
    // expires_in 2 s, skew clamped to half: cached for 1 s; no refresh ahead.
    let fake = Fake::start(Reply::Token { expires_in: 2 }, "{ refreshAheadPercent: 0 }").await;
    let auth = fake.bearer("lea");
    assert_eq!(fake.token(&auth).await, "Bearer xt-1");
    assert_eq!(fake.token(&auth).await, "Bearer xt-1");
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    assert_eq!(fake.token(&auth).await, "Bearer xt-2");
    assert_eq!(fake.sts.calls(), 2);
}

#[tokio::test]
async fn the_subject_tokens_expiry_caps_the_entry() {
    let fake = Fake::start(
        Reply::Token { expires_in: 3600 },
        "{ refreshAheadPercent: 0 }",
    )
    .await;
    // The caller's JWT (the subject) expires in 2 s: the exchanged token is cached 2 s at most,
    // although the endpoint says 3600.
    let jwt = fake
        .key
        .token("max", None, serde_json::json!({ "exp": common::now() + 2 }));
    let auth = format!("Bearer {jwt}");
    assert_eq!(fake.token(&auth).await, "Bearer xt-1");
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    // Within the verifier's leeway the JWT is still accepted, but its exchanged token is gone.
    assert_eq!(fake.token(&auth).await, "Bearer xt-2");
}

#[tokio::test]
async fn a_token_near_its_end_is_refreshed_in_the_background() {
    // expires_in 4 s → cached 2 s (skew clamped to half); refresh due after 50 % = 1 s.
    let fake = Fake::start(
        Reply::Token { expires_in: 4 },
        "{ refreshAheadPercent: 50 }",
    )
    .await;
    let auth = fake.bearer("nia");
    assert_eq!(fake.token(&auth).await, "Bearer xt-1");
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    // Due: this Check is still answered from the cache while the refresh runs behind it.
    fake.sts.set_delay(Duration::from_millis(300));
    assert_eq!(fake.token(&auth).await, "Bearer xt-1");
    for _ in 0..50 {
        if metric(&fake.server.metrics().await, "x", "refresh") == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(fake.sts.calls(), 2, "one background refresh");
    assert_eq!(fake.token(&auth).await, "Bearer xt-2");
    let text = fake.server.metrics().await;
    assert_eq!(metric(&text, "x", "refresh"), 1);
    assert_eq!(
        metric(&text, "x", "miss"),
        1,
        "no Check waited for the endpoint again"
    );
}
