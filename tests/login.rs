// SPDX-License-Identifier: Apache-2.0
//! The embedded authorization server, end to end: an MCP client registers, a user logs in
//! through real upstream OIDC providers (npm `oidc-provider`, its devInteractions login form
//! driven by a cookie-keeping client), the client redeems its code, and Check injects the
//! upstream token, refreshed when it expires. Every bad input of the issue has its test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use base64::Engine;
use common::browser::{query, Browser};
use common::envoy::{echo_backend, get, start_envoy};
use common::login_setup::{
    bearer, claims, config, injected, pkce, redirect_error, Setup, CLIENT_REDIRECT,
};
use common::{check, denied, logs, ok, TestServer, AUDIENCE};
use serde_json::Value;

// ---------------------------------------------------------------- the login ----

#[tokio::test(flavor = "multi_thread")]
async fn a_user_logs_in_through_a_real_oidc_provider_and_envoy_injects_its_token() {
    let setup = Setup::start(&["github"], 3600, "{ type: memory }", "").await;
    let base = setup.issuer.clone();

    // Discovery, as an MCP client does it.
    let metadata: Value = reqwest::get(format!("{base}/.well-known/oauth-authorization-server"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], base);
    assert_eq!(
        metadata["authorization_endpoint"],
        format!("{base}/oauth/authorize")
    );
    assert_eq!(
        metadata["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    let jwks: Value = reqwest::get(metadata["jwks_uri"].as_str().unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kid"], setup.key.key.kid());

    let (_, tokens) = setup.full_login("alice").await;
    let jwt = tokens["access_token"].as_str().unwrap().to_owned();
    let c = claims(&jwt);
    assert_eq!(c["iss"], base);
    assert_eq!(c["aud"], AUDIENCE);
    assert_eq!(c["sub"], "alice", "our sub is the upstream ID token's sub");
    for claim in ["exp", "iat", "jti", "client_id", "tsid"] {
        assert!(c.get(claim).is_some(), "{claim} missing: {c}");
    }
    assert_eq!(c["tsid"].as_str().unwrap().len(), 22, "128-bit tsid");
    assert_eq!(tokens["token_type"], "Bearer");

    // Check injects the provider's own access token, which the provider confirms is alice's.
    let upstream = injected(&check(&setup.server, Some(&bearer(&tokens)), Some("github")).await);
    let upstream = upstream.strip_prefix("Bearer ").unwrap().to_owned();
    let introspection = setup.idp("github").introspect(&upstream).await;
    assert_eq!(introspection["active"], true);
    assert_eq!(introspection["sub"], "alice");

    // And through real Envoy (deploy/envoy routes /github/ to backend `github`): the backend
    // receives that token, never our JWT.
    let echo = echo_backend().await;
    let (_envoy, port) = start_envoy(&setup.server, echo).await;
    let echoed = get(port, "/github/mcp", Some(&bearer(&tokens)))
        .await
        .echoed();
    assert_eq!(echoed["authorization"], vec![format!("Bearer {upstream}")]);
    // The discovery and registration routes pass Envoy without a Check and reach our listener.
    let through_envoy: Value = reqwest::get(format!(
        "http://127.0.0.1:{port}/.well-known/oauth-authorization-server"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(through_envoy["issuer"], base);
    let registered = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/oauth/register"))
        .json(&serde_json::json!({ "redirect_uris": [CLIENT_REDIRECT] }))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let tsid = c["tsid"].as_str().unwrap().to_owned();
    logs().assert_never_logged(&[
        &jwt,
        &upstream,
        &tsid,
        tokens["refresh_token"].as_str().unwrap(),
    ]);
    setup.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_login_walks_two_upstreams_and_each_backend_gets_its_own_token() {
    let setup = Setup::start(&["okta", "github"], 3600, "{ type: memory }", "").await;
    let (_, tokens) = setup.full_login("bob").await;
    assert_eq!(setup.memory_records(), 2);
    let auth = bearer(&tokens);
    let okta = injected(&check(&setup.server, Some(&auth), Some("okta")).await);
    let github = injected(&check(&setup.server, Some(&auth), Some("github")).await);
    assert_ne!(okta, github);
    for (name, token) in [("okta", &okta), ("github", &github)] {
        let introspection = setup
            .idp(name)
            .introspect(token.strip_prefix("Bearer ").unwrap())
            .await;
        assert_eq!(introspection["active"], true, "{name}");
        assert_eq!(introspection["client_id"], "mcp-authz", "{name}");
    }
    // Each provider saw exactly one code redemption.
    for (name, idp) in &setup.idps {
        let grants = idp.grants().await;
        assert_eq!(grants.len(), 1, "{name}: {grants:?}");
        assert_eq!(grants[0]["grant_type"], "authorization_code");
    }
    setup.server.stop().await;
}

// ---------------------------------------------------------------- refresh in the Check path ----

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_upstream_token_is_refreshed_before_injection() {
    let setup = Setup::start(&["okta"], 2, "{ type: memory }", "").await;
    let (_, tokens) = setup.full_login("carol").await;
    let auth = bearer(&tokens);
    let first = injected(&check(&setup.server, Some(&auth), Some("okta")).await);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let second = injected(&check(&setup.server, Some(&auth), Some("okta")).await);
    assert_ne!(first, second, "a new upstream token after expiry");
    let third = injected(&check(&setup.server, Some(&auth), Some("okta")).await);
    assert_eq!(second, third, "stored back: no second refresh");
    let refreshes: Vec<_> = setup
        .idp("okta")
        .grants()
        .await
        .into_iter()
        .filter(|g| g["grant_type"] == "refresh_token")
        .collect();
    assert_eq!(refreshes.len(), 1, "{refreshes:?}");
    assert_eq!(refreshes[0]["outcome"], "ok");
    let introspection = setup
        .idp("okta")
        .introspect(second.strip_prefix("Bearer ").unwrap())
        .await;
    assert_eq!(introspection["active"], true);
    let metrics = setup.server.metrics().await;
    assert!(
        metrics.contains("mcp_authz_upstream_refresh_total{provider=\"okta\",result=\"ok\"} 1"),
        "{metrics}"
    );
    setup.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_refresh_denies_only_the_backends_of_that_provider() {
    let setup = Setup::start(&["okta", "github"], 2, "{ type: memory }", "").await;
    let (_, tokens) = setup.full_login("dana").await;
    let auth = bearer(&tokens);
    tokio::time::sleep(Duration::from_millis(2_500)).await;

    // okta's token endpoint is down: 503 for okta's backend, retry later.
    setup.idp("okta").fail_token_endpoint(503).await;
    denied(
        &check(&setup.server, Some(&auth), Some("okta")).await,
        14,
        503,
    );
    // okta refuses the refresh: log in again, for okta's backend only.
    setup.idp("okta").fail_token_endpoint(400).await;
    let response = check(&setup.server, Some(&auth), Some("okta")).await;
    denied(&response, 16, 401);
    // github refreshes fine, and the static backend never cared.
    injected(&check(&setup.server, Some(&auth), Some("github")).await);
    ok(&check(&setup.server, Some(&auth), Some("static")).await);
    setup.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_sharing_redis_refresh_an_expired_token_exactly_once() {
    let Ok(redis) = std::env::var("REDIS_URL") else {
        panic!("REDIS_URL must name a Redis; run scripts/test.sh");
    };
    let prefix = format!("login-{}:", mcp_authz::random::token(6));
    let storage = format!(
        "{{ type: redis, redis: {{ url: \"{redis}\", keyPrefix: \"{prefix}\", timeoutMs: 500 }} }}"
    );
    let setup = Setup::start(&["okta"], 2, &storage, "").await;
    // A second replica: same config (issuer, key, Redis), its own listeners and caches.
    let idp_base = setup.idp("okta").base.clone();
    let replica = TestServer::start(&config(
        &setup.key,
        &setup.issuer,
        &[("okta", idp_base)],
        &storage,
        "",
    ))
    .await;
    let (_, tokens) = setup.full_login("erin").await;
    let auth = bearer(&tokens);
    let before = injected(&check(&replica, Some(&auth), Some("okta")).await);
    tokio::time::sleep(Duration::from_millis(2_500)).await;

    let mut checks = Vec::new();
    for i in 0..20 {
        let server = if i % 2 == 0 { &setup.server } else { &replica };
        let client = server.client().await;
        let auth = auth.clone();
        checks.push(tokio::spawn(async move {
            let mut client = client;
            client
                .check(common::check_request(Some(&auth), Some("okta")))
                .await
                .unwrap()
                .into_inner()
        }));
    }
    let mut seen = std::collections::BTreeSet::new();
    for c in checks {
        seen.insert(injected(&c.await.unwrap()));
    }
    assert_eq!(
        seen.len(),
        1,
        "every Check on both replicas got the same new token"
    );
    assert!(!seen.contains(&before));
    let refreshes: Vec<_> = setup
        .idp("okta")
        .grants()
        .await
        .into_iter()
        .filter(|g| g["grant_type"] == "refresh_token")
        .collect();
    assert_eq!(
        refreshes.len(),
        1,
        "exactly one refresh at the provider: {refreshes:?}"
    );
    replica.stop().await;
    setup.server.stop().await;
}

// ---------------------------------------------------------------- bad input ----

#[tokio::test(flavor = "multi_thread")]
async fn authorize_refuses_bad_requests_with_their_rfc_errors() {
    let setup = Setup::start(&["okta"], 3600, "{ type: memory }", "").await;
    let client = setup.register().await;
    let (_, challenge) = pkce();
    let mut browser = Browser::new("frank");

    // Unregistered client and unregistered redirect URI: an error page, never a redirect.
    let unknown = setup.authorize_url("no-such-client", &challenge, &[]);
    let hop = browser.get(&unknown).await;
    assert_eq!((hop.status, hop.location.is_none()), (400, true), "{hop:?}");
    let mut mismatch = setup.url("/oauth/authorize");
    mismatch
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client)
        .append_pair("redirect_uri", "http://127.0.0.1:1/elsewhere")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let hop = browser.get(&mismatch).await;
    assert_eq!((hop.status, hop.location.is_none()), (400, true), "{hop:?}");

    // Errors the client can be trusted with go back to it, with its state.
    let cases: [(&[(&str, &str)], &str); 3] = [
        (&[("code_challenge_method", "plain")], "invalid_request"),
        (
            &[("resource", "https://not-allowed.example")],
            "invalid_target",
        ),
        (&[("response_type", "token")], "unsupported_response_type"),
    ];
    for (extra, expected) in cases {
        let mut url = setup.authorize_url(&client, &challenge, &[]);
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.query_pairs_mut()
            .clear()
            .extend_pairs(pairs)
            .extend_pairs(extra.iter().copied());
        let hop = browser.get(&url).await;
        let (error, state) = redirect_error(hop.location.as_ref().unwrap());
        assert_eq!(error, expected, "{extra:?}");
        assert_eq!(state.as_deref(), Some("client-state-1"));
    }
    // A scope that is not RFC 6749 scope tokens, and an oversize state.
    let hop = browser
        .get(&setup.authorize_url(&client, &challenge, &[("scope", "read \"admin\"")]))
        .await;
    assert_eq!(
        redirect_error(hop.location.as_ref().unwrap()).0,
        "invalid_scope"
    );
    let mut long_state = setup.url("/oauth/authorize");
    long_state
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client)
        .append_pair("redirect_uri", CLIENT_REDIRECT)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", &"s".repeat(2000));
    let hop = browser.get(&long_state).await;
    assert_eq!(
        redirect_error(hop.location.as_ref().unwrap()).0,
        "invalid_request"
    );
    // Missing PKCE.
    let mut url = setup.url("/oauth/authorize");
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client)
        .append_pair("redirect_uri", CLIENT_REDIRECT);
    let hop = browser.get(&url).await;
    assert_eq!(
        redirect_error(hop.location.as_ref().unwrap()).0,
        "invalid_request"
    );
    assert_eq!(setup.memory_records(), 0);
    setup.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn callback_failures_tear_the_chain_down_and_store_nothing() {
    let setup = Setup::start(&["okta", "github"], 3600, "{ type: memory }", "").await;
    let client = setup.register().await;
    let (_, challenge) = pkce();

    // A callback with a state we never issued.
    let mut browser = Browser::new("gil");
    let mut bogus = setup.url("/oauth/callback");
    bogus
        .query_pairs_mut()
        .append_pair("state", "forged")
        .append_pair("code", "x");
    let hop = browser.get(&bogus).await;
    assert_eq!((hop.status, hop.location.is_none()), (400, true));

    // The upstream returns an error at the callback.
    let hop = browser
        .get(&setup.authorize_url(&client, &challenge, &[]))
        .await;
    let upstream = hop.location.unwrap();
    let state = query(&upstream, "state").unwrap();
    let mut denied_url = setup.url("/oauth/callback");
    denied_url
        .query_pairs_mut()
        .append_pair("state", &state)
        .append_pair("error", "access_denied");
    let hop = browser.get(&denied_url).await;
    assert_eq!(
        redirect_error(hop.location.as_ref().unwrap()),
        (
            "access_denied".to_owned(),
            Some("client-state-1".to_owned())
        )
    );
    // The same state again: already consumed.
    assert_eq!(browser.get(&denied_url).await.status, 400);

    // The second upstream's token endpoint is down: the first leg succeeded, yet nothing stays.
    setup.idp("github").fail_token_endpoint(503).await;
    let mut browser = Browser::new("gil");
    let err = browser
        .walk(
            setup.authorize_url(&client, &challenge, &[]),
            CLIENT_REDIRECT,
        )
        .await
        .unwrap();
    assert_eq!(redirect_error(&err).0, "temporarily_unavailable");
    // The second upstream refuses the code: access_denied.
    setup.idp("github").fail_token_endpoint(400).await;
    let mut browser = Browser::new("gil");
    let err = browser
        .walk(
            setup.authorize_url(&client, &challenge, &[]),
            CLIENT_REDIRECT,
        )
        .await
        .unwrap();
    assert_eq!(redirect_error(&err).0, "access_denied");
    assert_eq!(setup.memory_records(), 0, "no upstream token was stored");
    assert_eq!(
        setup.idp("okta").grants().await.len(),
        2,
        "the first leg did redeem its codes"
    );
    setup.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_endpoint_refuses_bad_codes_verifiers_and_reuse() {
    let setup = Setup::start(
        &["okta"],
        3600,
        "{ type: memory }",
        "  authorizationCodeLifetimeSeconds: 1",
    )
    .await;
    let client = setup.register().await;
    let (verifier, challenge) = pkce();

    // Wrong verifier: invalid_grant, and the code is spent.
    let code = setup.login(&client, &challenge, "hal").await;
    let (other_verifier, _) = pkce();
    let (status, body) = setup.redeem(&client, &code, &other_verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, body) = setup.redeem(&client, &code, &verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // Reused code: the first redemption works, the second does not.
    let code = setup.login(&client, &challenge, "hal").await;
    let (status, tokens) = setup.redeem(&client, &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let (status, body) = setup.redeem(&client, &code, &verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // ... and the tokens it issued are revoked (RFC 6749 §4.1.2).
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, body) = setup
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client),
            ("refresh_token", refresh),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // Expired code.
    let code = setup.login(&client, &challenge, "hal").await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (status, body) = setup.redeem(&client, &code, &verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // Unknown client at the token endpoint.
    let (status, body) = setup.redeem("no-such-client", "x", &verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    setup.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let setup = Setup::start(&["okta"], 3600, "{ type: memory }", "").await;
    let (client, tokens) = setup.full_login("ivy").await;
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |rt: String| {
        let client = client.clone();
        let setup = &setup;
        async move {
            setup
                .token(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", &client),
                    ("refresh_token", &rt),
                ])
                .await
        }
    };
    let (status, rotated) = refresh(first.clone()).await;
    assert_eq!(status, 200, "{rotated}");
    let second = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    assert_eq!(
        claims(rotated["access_token"].as_str().unwrap())["tsid"],
        claims(tokens["access_token"].as_str().unwrap())["tsid"]
    );
    // Reusing the first: refused, and the family (the second too) is revoked.
    let (status, body) = refresh(first).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, body) = refresh(second).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    logs().assert_never_logged(&[tokens["refresh_token"].as_str().unwrap()]);
    setup.server.stop().await;
}

#[tokio::test]
async fn the_granted_scope_is_what_we_support_of_what_was_asked_and_refresh_never_widens_it() {
    let setup = Setup::start(
        &["okta"],
        3600,
        "{ type: memory }",
        "  scopesSupported: [tools, \"tools:admin\"]",
    )
    .await;
    let client = setup.register().await;
    let (verifier, challenge) = pkce();
    let code = setup
        .login_with(
            &client,
            &challenge,
            "judy",
            &[("scope", "openid tools:admin tools")],
        )
        .await;
    let (status, tokens) = setup.redeem(&client, &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    // RFC 6749 §3.3: the answer says what was granted, in the order asked.
    assert_eq!(tokens["scope"], "tools:admin tools");
    assert_eq!(
        claims(tokens["access_token"].as_str().unwrap())["scope"],
        "tools:admin tools"
    );
    let (status, refreshed) = setup
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("scope", "tools tools:admin openid"),
        ])
        .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(
        claims(refreshed["access_token"].as_str().unwrap())["scope"],
        "tools:admin tools"
    );
    // Nothing we support asked for: no scope at all.
    let (verifier, challenge) = pkce();
    let code = setup
        .login_with(&client, &challenge, "judy", &[("scope", "openid profile")])
        .await;
    let (_, tokens) = setup.redeem(&client, &code, &verifier).await;
    assert!(tokens.get("scope").is_none(), "{tokens}");
    assert!(claims(tokens["access_token"].as_str().unwrap())
        .get("scope")
        .is_none());
    setup.server.stop().await;
}

#[tokio::test]
async fn scope_grants_withhold_a_scope_from_users_their_rule_does_not_name() {
    let setup = Setup::start(
        &["okta"],
        3600,
        "{ type: memory }",
        "  scopesSupported: [tools, \"tools:admin\", \"tools:mail\"]\n  scopeGrants:\n    \"tools:admin\": { subjects: [judy] }\n    \"tools:mail\": { claim: { name: email, values: [\"judy@example.com\", \"kim@example.com\"] } }",
    )
    .await;
    let client = setup.register().await;
    let granted = |user: &'static str| {
        let setup = &setup;
        let client = client.clone();
        async move {
            let (verifier, challenge) = pkce();
            let code = setup
                .login_with(
                    &client,
                    &challenge,
                    user,
                    &[("scope", "tools tools:admin tools:mail")],
                )
                .await;
            let (status, tokens) = setup.redeem(&client, &code, &verifier).await;
            assert_eq!(status, 200, "{tokens}");
            let jwt = claims(tokens["access_token"].as_str().unwrap());
            assert_eq!(jwt["scope"], tokens["scope"]);
            tokens["scope"].as_str().map(str::to_owned)
        }
    };
    assert_eq!(
        granted("judy").await.as_deref(),
        Some("tools tools:admin tools:mail")
    );
    // kim's email passes the claim rule; she is not among the admin subjects.
    assert_eq!(granted("kim").await.as_deref(), Some("tools tools:mail"));
    // Asking is not enough: a scope without a rule is granted, the others are not.
    assert_eq!(granted("mallory").await.as_deref(), Some("tools"));
    setup.server.stop().await;
}

#[tokio::test]
async fn registration_refuses_unsafe_redirect_uris_and_bad_metadata() {
    let setup = Setup::start(&["okta"], 3600, "{ type: memory }", "").await;
    let register = |body: Value| {
        let url = setup.url("/oauth/register");
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    let (status, body) =
        register(serde_json::json!({ "redirect_uris": ["http://evil.example/cb"] })).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_redirect_uri"))
    );
    let (status, body) = register(serde_json::json!({ "redirect_uris": [] })).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_redirect_uri"))
    );
    let (status, body) = register(serde_json::json!({
        "redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "private_key_jwt"
    }))
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_client_metadata"))
    );
    // A confidential client gets a secret, and must use it.
    let (status, body) = register(serde_json::json!({
        "redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "client_secret_basic"
    }))
    .await;
    assert_eq!(status, 201);
    let id = body["client_id"].as_str().unwrap();
    let secret = body["client_secret"].as_str().unwrap().to_owned();
    let (status, body) = setup
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", id),
            ("code", "x"),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    // RFC 6749 §2.3: the secret in the Authorization header and in the body is two methods.
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let form = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "authorization_code"),
            ("client_secret", secret.as_str()),
            ("code", "x"),
        ])
        .finish();
    let response = reqwest::Client::new()
        .post(setup.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", format!("Basic {basic}"))
        .body(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    setup.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn additional_authorization_params_reach_the_upstream_and_the_login_completes() {
    logs();
    let key = common::TestKey::new();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", http.local_addr().unwrap());
    let idp = common::oauth_server::OAuthServer::identity_provider(
        &format!("{issuer}/oauth/callback"),
        3600,
    );
    let yaml = config(
        &key,
        &issuer,
        &[("okta", idp.base.clone())],
        "{ type: memory }",
        "",
    )
    .replace(
        "required: true, oidc:",
        "required: true, additionalAuthorizationParams: { access_type: offline, audience: \"https://api.example.com\" }, oidc:",
    );
    assert!(yaml.contains("access_type"), "{yaml}");
    let server = TestServer::start_with_http(&yaml, http).await;
    let setup = Setup {
        key,
        issuer,
        idps: vec![("okta", idp)],
        server,
    };
    let client = setup.register().await;
    let (verifier, challenge) = pkce();
    let mut browser = Browser::new("alice");
    let hop = browser
        .get(&setup.authorize_url(&client, &challenge, &[]))
        .await;
    let upstream = hop.location.expect("a redirect to the upstream");
    assert!(upstream.as_str().starts_with(&setup.idp("okta").base));
    assert_eq!(query(&upstream, "access_type").as_deref(), Some("offline"));
    assert_eq!(
        query(&upstream, "audience").as_deref(),
        Some("https://api.example.com")
    );
    // Ours are still ours, once each.
    assert_eq!(
        upstream.query_pairs().filter(|(k, _)| k == "scope").count(),
        1
    );
    let back = browser.walk(upstream, CLIENT_REDIRECT).await.unwrap();
    let code = query(&back, "code").expect("the login completes");
    let (status, tokens) = setup.redeem(&client, &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    injected(&check(&setup.server, Some(&bearer(&tokens)), Some("okta")).await);
    setup.server.stop().await;
}
