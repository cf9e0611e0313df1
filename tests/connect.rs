// SPDX-License-Identifier: Apache-2.0
//! Providers connected one at a time (DESIGN.md §11), with real upstream providers (npm
//! `oidc-provider`) and a cookie-keeping browser: a first login walks only the required
//! upstream; a Check that misses the optional one marks it wanted and the next login (the same
//! browser, its login session) walks only that leg; a 2026-07-28 client that shows URLs is sent
//! to a single-use connect page instead. Grants are counted at each provider.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::browser::{query, Browser};
use common::login_setup::{bearer, claims, config, injected, pkce, Setup, CLIENT_REDIRECT};
use common::oauth_server::OAuthServer;
use common::redis_server::Redis;
use common::{check, check_request, denied, http_of, logs, send, TestServer};
use serde_json::Value;

const SESSION_COOKIE: &str = "mcp_authz_session";

/// Code grants (`authorization_code`) and refreshes each provider has seen.
async fn grants(idp: &OAuthServer) -> (usize, usize) {
    let grants = idp.grants().await;
    let count = |t: &str| grants.iter().filter(|g| g["grant_type"] == t).count();
    (count("authorization_code"), count("refresh_token"))
}

/// A logged-in user: their browser (with its session) and MCP client.
struct User {
    browser: Browser,
    client: String,
}

impl User {
    async fn new(setup: &Setup, login: &str) -> Self {
        Self {
            browser: Browser::new(login),
            client: setup.register().await,
        }
    }

    /// Authorize (walking whatever the server asks), redeem: our token response.
    async fn authorize(&mut self, setup: &Setup) -> Value {
        let (verifier, challenge) = pkce();
        let code = setup
            .login_in(&mut self.browser, &self.client, &challenge, &[])
            .await;
        let (status, tokens) = setup.redeem(&self.client, &code, &verifier).await;
        assert_eq!(status, 200, "{tokens}");
        tokens
    }
}

/// A `tools/call` as a 2026-07-28 client sends it through Envoy with its body; `url_mode`:
/// whether its capabilities declare URL-mode elicitation.
async fn call_tool(server: &TestServer, auth: &str, backend: &str, url_mode: bool) -> Value {
    let mut request = check_request(Some(auth), Some(backend));
    let elicitation = if url_mode {
        r#"{"url":{}}"#
    } else {
        r#"{"form":{}}"#
    };
    let http = http_of(&mut request);
    for (name, value) in [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "whoami"),
    ] {
        http.headers.insert(name.to_owned(), value.to_owned());
    }
    http.body = format!(
        r#"{{"jsonrpc":"2.0","id":"call-7","method":"tools/call","params":{{"name":"whoami","arguments":{{}},"_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{{"elicitation":{elicitation}}}}}}}}}"#
    );
    let response = send(server, request).await;
    let code = response.status.as_ref().unwrap().code;
    let denial = match code {
        7 => denied(&response, 7, 200),
        16 => return serde_json::json!({"status": 401}),
        _ => panic!("unexpected {response:?}"),
    };
    serde_json::from_str(&denial.body).unwrap()
}

/// The connect page URL of an elicitation answer, after checking its shape.
fn connect_url(answer: &Value, setup: &Setup) -> url::Url {
    assert_eq!(answer["jsonrpc"], "2.0");
    assert_eq!(answer["id"], "call-7", "the request id is echoed");
    let result = &answer["result"];
    assert_eq!(result["resultType"], "input_required");
    assert!(result.get("requestState").is_none(), "{result}");
    let requests = result["inputRequests"].as_object().unwrap();
    assert_eq!(requests.len(), 1);
    let request = requests.values().next().unwrap();
    assert_eq!(request["method"], "elicitation/create");
    assert_eq!(request["params"]["mode"], "url");
    assert!(request["params"]["message"]
        .as_str()
        .unwrap()
        .contains("github"));
    let url = request["params"]["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/oauth/connect/", setup.issuer)),
        "{url}"
    );
    url::Url::parse(url).unwrap()
}

/// Opens `url` in `browser` and follows it to its final page: (status, body).
async fn open(browser: &mut Browser, url: url::Url) -> (u16, String) {
    match browser.walk(url, "never:").await {
        Ok(url) => panic!("left for {url}"),
        Err((_, hop)) => (hop.status, hop.body),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_login_walks_only_the_required_upstream_and_the_next_only_what_a_check_asked_for() {
    let setup = Setup::start(&["okta", "github?"], 3600, "{ type: memory }", "").await;
    let mut alice = User::new(&setup, "alice").await;
    let first = alice.authorize(&setup).await;
    assert_eq!(grants(setup.idp("okta")).await, (1, 0));
    assert_eq!(
        grants(setup.idp("github")).await,
        (0, 0),
        "optional: not walked"
    );

    // The session cookie: opaque, HttpOnly, Lax, Path=/, not Secure on http loopback.
    let cookie = alice
        .browser
        .set_cookies
        .iter()
        .find(|c| c.starts_with(&format!("{SESSION_COOKIE}=")))
        .expect("a session cookie")
        .clone();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=2592000"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "{cookie}");
    let tsid = claims(first["access_token"].as_str().unwrap())["tsid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !cookie.contains(&tsid) && !cookie.contains("alice"),
        "{cookie}"
    );

    let auth = bearer(&first);
    let okta = injected(&check(&setup.server, Some(&auth), Some("okta")).await);
    denied(
        &check(&setup.server, Some(&auth), Some("github")).await,
        16,
        401,
    );

    // The client re-authorizes: only github's leg runs, for the same user and tsid.
    let second = alice.authorize(&setup).await;
    assert_eq!(grants(setup.idp("okta")).await, (1, 0));
    assert_eq!(grants(setup.idp("github")).await, (1, 0));
    let (c1, c2) = (
        claims(first["access_token"].as_str().unwrap()),
        claims(second["access_token"].as_str().unwrap()),
    );
    assert_eq!(c2["sub"], c1["sub"]);
    assert_eq!(c2["tsid"], c1["tsid"]);
    let auth2 = bearer(&second);
    assert_eq!(
        injected(&check(&setup.server, Some(&auth2), Some("okta")).await),
        okta
    );
    let github = injected(&check(&setup.server, Some(&auth2), Some("github")).await);
    let introspection = setup
        .idp("github")
        .introspect(github.strip_prefix("Bearer ").unwrap())
        .await;
    assert_eq!(introspection["sub"], "alice");
    // The first token names the same tsid, so it reaches github now too.
    assert_eq!(
        injected(&check(&setup.server, Some(&auth), Some("github")).await),
        github
    );

    // Nothing missing, nothing wanted: the code is issued at once, no provider sees anyone.
    let (_, challenge) = pkce();
    let hop = alice
        .browser
        .get(&setup.authorize_url(&alice.client, &challenge, &[]))
        .await;
    let location = hop.location.expect("a redirect");
    assert!(location.as_str().starts_with(CLIENT_REDIRECT), "{location}");
    assert!(location.query().unwrap().contains("code="), "{location}");
    assert_eq!(grants(setup.idp("okta")).await, (1, 0));
    assert_eq!(grants(setup.idp("github")).await, (1, 0));
    let metrics = setup.server.metrics().await;
    for line in [
        "mcp_authz_logins_total{flow=\"first\",result=\"completed\"} 1",
        "mcp_authz_logins_total{flow=\"incremental\",result=\"completed\"} 2",
        "mcp_authz_login_legs_total{provider=\"okta\",flow=\"first\"} 1",
        "mcp_authz_login_legs_total{provider=\"github\",flow=\"incremental\"} 1",
        "mcp_authz_login_sessions_created_total 1",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    logs().assert_never_logged(&[&tsid, alice.browser.cookie(SESSION_COOKIE).unwrap()]);
    setup.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_refresh_affects_only_its_provider_and_the_next_login_walks_only_its_leg() {
    let setup = Setup::start(&["okta", "github?"], 2, "{ type: memory }", "").await;
    let mut alice = User::new(&setup, "alice").await;
    let tokens = alice.authorize(&setup).await;
    let auth = bearer(&tokens);
    denied(
        &check(&setup.server, Some(&auth), Some("github")).await,
        16,
        401,
    );
    alice.authorize(&setup).await;
    injected(&check(&setup.server, Some(&auth), Some("github")).await);
    tokio::time::sleep(Duration::from_millis(2_500)).await;

    setup.idp("github").fail_token_endpoint(400).await;
    denied(
        &check(&setup.server, Some(&auth), Some("github")).await,
        16,
        401,
    );
    injected(&check(&setup.server, Some(&auth), Some("okta")).await);
    setup.idp("github").fail_token_endpoint(0).await;
    let okta_before = grants(setup.idp("okta")).await;
    assert_eq!(okta_before, (1, 1), "okta refreshed, not logged in again");

    alice.authorize(&setup).await;
    assert_eq!(
        grants(setup.idp("okta")).await,
        okta_before,
        "okta untouched"
    );
    assert_eq!(grants(setup.idp("github")).await.0, 2, "github's leg again");
    injected(&check(&setup.server, Some(&auth), Some("github")).await);
    setup.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn url_elicitation_sends_the_user_to_a_single_use_connect_page_and_the_retry_succeeds() {
    let setup = Setup::start(&["okta", "github?"], 3600, "{ type: memory }", "").await;
    let mut alice = User::new(&setup, "alice").await;
    let tokens = alice.authorize(&setup).await;
    let auth = bearer(&tokens);
    let records = setup.memory_records();

    // A client that cannot show a URL gets the 401; one that can gets the elicitation.
    assert_eq!(
        call_tool(&setup.server, &auth, "github", false).await["status"],
        401
    );
    let answer = call_tool(&setup.server, &auth, "github", true).await;
    let url = connect_url(&answer, &setup);
    assert!(!url.as_str().contains("alice"));
    assert_eq!(setup.memory_records(), records, "nothing stored yet");

    let (status, body) = open(&mut alice.browser, url.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("github is connected"), "{body}");
    assert_eq!(grants(setup.idp("github")).await, (1, 0));
    assert_eq!(
        grants(setup.idp("okta")).await,
        (1, 0),
        "the session said who alice is"
    );
    injected(&check(&setup.server, Some(&auth), Some("github")).await);

    // Single use: the second open finds nothing.
    let (status, body) = open(&mut alice.browser, url).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("expired or was already used"), "{body}");
    let metrics = setup.server.metrics().await;
    assert!(
        metrics.contains("outcome=\"connect_provider\""),
        "{metrics}"
    );
    setup.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_pages_refuse_other_users_and_forged_sessions_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let setup = Setup::start_audited(
        &["okta", "github?"],
        3600,
        "{ type: memory }",
        "",
        Some(&audit),
    )
    .await;
    let mut alice = User::new(&setup, "alice").await;
    let mut bob = User::new(&setup, "bob").await;
    let auth = bearer(&alice.authorize(&setup).await);
    let bob_auth = bearer(&bob.authorize(&setup).await);
    let records = setup.memory_records();

    // Bob opens alice's link: refused, and the link is spent.
    let url = connect_url(
        &call_tool(&setup.server, &auth, "github", true).await,
        &setup,
    );
    let (status, body) = open(&mut bob.browser, url.clone()).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("another user"), "{body}");
    let (status, _) = open(&mut alice.browser, url).await;
    assert_eq!(status, 400);

    // A forged session cookie is no session: the browser must sign in, and mallory is refused
    // after okta's leg, before github's.
    let url = connect_url(
        &call_tool(&setup.server, &auth, "github", true).await,
        &setup,
    );
    let mut mallory = Browser::new("mallory");
    mallory.set_cookie(SESSION_COOKIE, &mcp_authz::random::token(32));
    let (status, body) = open(&mut mallory, url).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(grants(setup.idp("github")).await, (0, 0));
    assert_eq!(setup.memory_records(), records, "nothing stored");
    let metrics = setup.server.metrics().await;
    assert!(
        metrics.contains("mcp_authz_logins_total{flow=\"connect\",result=\"refused\"} 2"),
        "{metrics}"
    );

    // Without a session, alice herself signs in first, then connects.
    let url = connect_url(
        &call_tool(&setup.server, &auth, "github", true).await,
        &setup,
    );
    let mut fresh = Browser::new("alice");
    let (status, body) = open(&mut fresh, url).await;
    assert_eq!(status, 200, "{body}");
    injected(&check(&setup.server, Some(&auth), Some("github")).await);

    // Bob signs in at github with alice's github account, which is linked to alice: refused.
    denied(
        &check(&setup.server, Some(&bob_auth), Some("github")).await,
        16,
        401,
    );
    bob.browser.login = "alice".to_owned();
    let (_, challenge) = pkce();
    let back = bob
        .browser
        .walk(
            setup.authorize_url(&bob.client, &challenge, &[]),
            CLIENT_REDIRECT,
        )
        .await
        .unwrap();
    assert_eq!(
        query(&back, "error").as_deref(),
        Some("access_denied"),
        "{back}"
    );
    assert_eq!(query(&back, "code"), None);
    denied(
        &check(&setup.server, Some(&bob_auth), Some("github")).await,
        16,
        401,
    );
    setup.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_share_sessions_links_and_sessions_expire_and_a_store_outage_is_503() {
    let mut redis = Redis::start();
    let storage = format!(
        "{{ type: redis, redis: {{ url: \"redis://127.0.0.1:{}\", timeoutMs: 300 }} }}",
        redis.port
    );
    let extra = "  loginTimeoutSeconds: 3\n  refreshTokenLifetimeSeconds: 8";
    let setup = Setup::start(&["okta", "github?"], 3600, &storage, extra).await;
    // A second replica: same config and Redis, its own listeners.
    let bases = [
        ("okta", setup.idp("okta").base.clone()),
        ("github?", setup.idp("github").base.clone()),
    ];
    let replica =
        TestServer::start(&config(&setup.key, &setup.issuer, &bases, &storage, extra)).await;
    let on_replica = |mut url: url::Url| {
        url.set_port(Some(replica.http.port())).unwrap();
        url
    };
    let mut alice = User::new(&setup, "alice").await;
    let first = alice.authorize(&setup).await;
    let auth = bearer(&first);

    // The replica knows the session the first one created: a code at once, no upstream.
    let (_, challenge) = pkce();
    let hop = alice
        .browser
        .get(&on_replica(setup.authorize_url(
            &alice.client,
            &challenge,
            &[],
        )))
        .await;
    assert!(hop.location.unwrap().as_str().starts_with(CLIENT_REDIRECT));
    assert_eq!(grants(setup.idp("okta")).await, (1, 0));

    // A connect link lives loginTimeoutSeconds.
    let url = connect_url(&call_tool(&replica, &auth, "github", true).await, &setup);
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let (status, body) = open(&mut alice.browser, url).await;
    assert_eq!(status, 400, "{body}");

    // The session lives refreshTokenLifetimeSeconds: after it, a login is a first login again,
    // with a new tsid.
    tokio::time::sleep(Duration::from_millis(5_000)).await;
    let again = alice.authorize(&setup).await;
    assert_eq!(grants(setup.idp("okta")).await, (2, 0), "okta's leg again");
    let tsid = |t: &Value| claims(t["access_token"].as_str().unwrap())["tsid"].clone();
    assert_ne!(tsid(&again), tsid(&first));

    // Redis is gone: the session cannot be read, so the browser gets a 503 page, not a login.
    redis.kill();
    let (_, challenge) = pkce();
    let hop = alice
        .browser
        .get(&on_replica(setup.authorize_url(
            &alice.client,
            &challenge,
            &[],
        )))
        .await;
    assert_eq!(hop.status, 503, "{hop:?}");
    assert!(hop.location.is_none());
    assert_eq!(grants(setup.idp("okta")).await, (2, 0));
    denied(&check(&replica, Some(&auth), Some("github")).await, 14, 503);
    replica.stop().await;
    setup.server.stop().await;
}

/// Authorizes `client` in `browser`, which must get the consent page: its token.
async fn ask_consent(setup: &Setup, browser: &mut Browser, client: &str) -> String {
    let (_, challenge) = pkce();
    let hop = browser
        .get(&setup.authorize_url(client, &challenge, &[]))
        .await;
    assert_eq!(hop.status, 200, "{hop:?}");
    assert!(hop.location.is_none(), "no code without consent");
    assert!(hop.body.contains("<b>test MCP client</b>"), "{}", hop.body);
    consent_token(&hop.body)
}

/// The single-use token of a consent page.
fn consent_token(page: &str) -> String {
    let start = page
        .find("name=\"token\" value=\"")
        .expect("a consent form")
        + 20;
    page[start..start + 43].to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn through_a_session_a_new_client_gets_a_code_only_once_the_user_allows_it() {
    let setup = Setup::start(&["okta"], 3600, "{ type: memory }", "").await;
    let mut alice = User::new(&setup, "alice").await;
    alice.authorize(&setup).await;
    let consent_url = setup.url("/oauth/consent");
    // Anyone can register a client and send alice's browser to /oauth/authorize with it.
    let other = setup.register().await;
    let token = ask_consent(&setup, &mut alice.browser, &other).await;
    let denied_hop = alice
        .browser
        .post_form(&consent_url, &format!("token={token}&decision=deny"))
        .await;
    let back = denied_hop.location.unwrap();
    assert_eq!(query(&back, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&back, "code"), None);
    let again = alice
        .browser
        .post_form(&consent_url, &format!("token={token}&decision=allow"))
        .await;
    assert_eq!(again.status, 400, "a token answers once");

    // The answer must come from the browser that was asked.
    let token = ask_consent(&setup, &mut alice.browser, &other).await;
    let mut elsewhere = Browser::new("mallory");
    let forged = elsewhere
        .post_form(&consent_url, &format!("token={token}&decision=allow"))
        .await;
    assert_eq!(forged.status, 403, "{forged:?}");

    let token = ask_consent(&setup, &mut alice.browser, &other).await;
    let allowed = alice
        .browser
        .post_form(&consent_url, &format!("token={token}&decision=allow"))
        .await;
    let back = allowed.location.unwrap();
    assert!(back.as_str().starts_with(CLIENT_REDIRECT), "{back}");
    assert!(query(&back, "code").is_some(), "{back}");
    // Remembered: the next authorization of that client is silent.
    let (_, challenge) = pkce();
    let hop = alice
        .browser
        .get(&setup.authorize_url(&other, &challenge, &[]))
        .await;
    assert!(hop.location.unwrap().as_str().starts_with(CLIENT_REDIRECT));
    assert_eq!(
        grants(setup.idp("okta")).await,
        (1, 0),
        "okta saw alice once"
    );
    setup.server.stop().await;
}
