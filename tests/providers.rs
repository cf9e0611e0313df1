// SPDX-License-Identifier: Apache-2.0
//! Real identity providers' ways (DESIGN.md §12): a stable subject from a userinfo endpoint
//! (`oauth2.userInfo`) or an ID-token claim (`oidc.subjectClaim`), and the token-endpoint quirks
//! of a GitHub-like provider (form-encoded answers, HTTP 200 with `error`, unusable access
//! tokens), each of which ends in a clean refusal with nothing stored.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::browser::{query, Browser};
use common::fake_github::{FakeGitHub, Quirk, UserEndpoint};
use common::login_setup::{
    bearer, claims, config, injected, pkce, redirect_error, Setup, CLIENT_REDIRECT,
};
use common::{check, logs, TestKey, TestServer};

/// mcp-authz whose only (required) upstream is the GitHub-like fake, with `userInfo` when
/// `user_info`.
async fn github(user_info: bool) -> (Setup, FakeGitHub) {
    github_edited(user_info, |yaml| yaml).await
}

/// [`github`] with the config passed through `edit`.
async fn github_edited(
    user_info: bool,
    edit: impl FnOnce(String) -> String,
) -> (Setup, FakeGitHub) {
    logs();
    let key = TestKey::new();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", http.local_addr().unwrap());
    let fake = FakeGitHub::start().await;
    let yaml = config(&key, &issuer, &[], "{ type: memory }", "")
        .replace(
            "  upstreams:\n",
            &format!("  upstreams:\n{}", fake.upstream_yaml(user_info)),
        )
        .replace(
            "  backends:\n",
            "  backends:\n    github: { type: upstream_inject, upstreamInject: { providerName: github } }\n",
        );
    let server = TestServer::start_with_http(&edit(yaml), http).await;
    let setup = Setup {
        key,
        issuer,
        idps: Vec::new(),
        server,
    };
    (setup, fake)
}

/// A login as `user` in a fresh browser; the client's redirect back (a code or an error).
async fn attempt(setup: &Setup, user: &str) -> (String, String, url::Url) {
    let client = setup.register().await;
    let (verifier, challenge) = pkce();
    let back = Browser::new(user)
        .walk(
            setup.authorize_url(&client, &challenge, &[]),
            CLIENT_REDIRECT,
        )
        .await
        .unwrap_or_else(|(url, hop)| panic!("login stopped at {url}: {hop:?}"));
    (client, verifier, back)
}

/// A login as `user` that succeeds: our token response.
async fn login(setup: &Setup, user: &str) -> serde_json::Value {
    let (client, verifier, back) = attempt(setup, user).await;
    let code = query(&back, "code").unwrap_or_else(|| panic!("no code in {back}"));
    let (status, tokens) = setup.redeem(&client, &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

#[tokio::test]
async fn a_github_user_is_named_by_their_numeric_id_so_two_logins_give_the_same_sub() {
    let (setup, fake) = github(true).await;
    let first = login(&setup, "alice").await;
    let second = login(&setup, "alice").await;
    let bob = login(&setup, "bob").await;
    let sub = |tokens: &serde_json::Value| {
        claims(tokens["access_token"].as_str().unwrap())["sub"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let alice_id = FakeGitHub::id_of("alice").to_string();
    assert_eq!(sub(&first), alice_id, "the id, a JSON number, in decimal");
    assert_eq!(sub(&second), alice_id);
    assert_eq!(sub(&bob), FakeGitHub::id_of("bob").to_string());
    let tsid = |tokens: &serde_json::Value| {
        claims(tokens["access_token"].as_str().unwrap())["tsid"].clone()
    };
    assert_ne!(
        tsid(&first),
        tsid(&second),
        "separate logins, separate sessions"
    );
    // Each backend call carries that login's own GitHub token.
    for (tokens, user) in [(&first, "alice"), (&second, "alice"), (&bob, "bob")] {
        let header = injected(&check(&setup.server, Some(&bearer(tokens)), Some("github")).await);
        let token = header.strip_prefix("Bearer ").unwrap();
        assert_eq!(fake.owner(token).as_deref(), Some(user));
    }
    assert!(fake
        .token_requests()
        .iter()
        .all(|accept| accept == "application/json"));
    // Debug logs are on in tests: neither the GitHub tokens nor the client secret appear.
    let mut secrets = fake.issued_tokens();
    secrets.push("gh-secret".to_owned());
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    logs().assert_never_logged(&secrets);
    setup.server.stop().await;
}

#[tokio::test]
async fn a_form_encoded_token_answer_is_read() {
    let (setup, fake) = github(true).await;
    fake.set_quirk(Quirk::AlwaysForm);
    let tokens = login(&setup, "alice").await;
    let header = injected(&check(&setup.server, Some(&bearer(&tokens)), Some("github")).await);
    let token = header.strip_prefix("Bearer ").unwrap();
    assert_eq!(fake.owner(token).as_deref(), Some("alice"));
    setup.server.stop().await;
}

#[tokio::test]
async fn token_endpoint_and_userinfo_failures_send_the_client_an_error_and_store_nothing() {
    let (setup, fake) = github(true).await;
    let cases = [
        (Some(Quirk::BadCode), None, "access_denied"),
        (Some(Quirk::NoAccessToken), None, "access_denied"),
        (Some(Quirk::BadAccessToken), None, "access_denied"),
        (None, Some(UserEndpoint::NoId), "access_denied"),
        (None, Some(UserEndpoint::Down), "temporarily_unavailable"),
    ];
    for (quirk, user_endpoint, expected) in cases {
        fake.set_quirk(quirk.unwrap_or(Quirk::None));
        fake.set_user_endpoint(user_endpoint.unwrap_or(UserEndpoint::Normal));
        // The client's registration is a record of its own; count after it.
        let client = setup.register().await;
        let (_, challenge) = pkce();
        let before = setup.memory_records();
        let back = Browser::new("alice")
            .walk(
                setup.authorize_url(&client, &challenge, &[]),
                CLIENT_REDIRECT,
            )
            .await
            .unwrap_or_else(|(url, hop)| panic!("login stopped at {url}: {hop:?}"));
        let (error, state) = redirect_error(&back);
        assert_eq!(error, expected, "{quirk:?} {user_endpoint:?}: {back}");
        assert_eq!(state.as_deref(), Some("client-state-1"));
        assert!(query(&back, "code").is_none());
        assert_eq!(
            setup.memory_records(),
            before,
            "{quirk:?} {user_endpoint:?}: nothing stored (the pending login is gone too)"
        );
    }
    // The provider recovered: the next login works.
    fake.set_quirk(Quirk::None);
    fake.set_user_endpoint(UserEndpoint::Normal);
    login(&setup, "alice").await;
    setup.server.stop().await;
}

#[tokio::test]
async fn without_user_info_an_oauth2_login_names_nobody_so_every_login_gets_a_new_sub() {
    let (setup, _fake) = github(false).await;
    let sub =
        |tokens: serde_json::Value| claims(tokens["access_token"].as_str().unwrap())["sub"].clone();
    let first = sub(login(&setup, "alice").await);
    let second = sub(login(&setup, "alice").await);
    assert_ne!(first, second, "what V-20 warns about");
    setup.server.stop().await;
}

#[tokio::test]
async fn subject_claim_names_the_user_by_an_id_token_claim_and_a_missing_one_is_refused() {
    let setup = Setup::start_edited(&["okta"], 3600, "{ type: memory }", "", None, |yaml| {
        yaml.replace(
            "scopes: [openid, email] }",
            "scopes: [openid, email], subjectClaim: employee_id }",
        )
    })
    .await;
    let (_, tokens) = setup.full_login("alice").await;
    let ours = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(ours["sub"], "E-alice", "the server's employee_id claim");
    injected(&check(&setup.server, Some(&bearer(&tokens)), Some("okta")).await);
    setup.server.stop().await;

    let setup = Setup::start_edited(&["okta"], 3600, "{ type: memory }", "", None, |yaml| {
        yaml.replace(
            "scopes: [openid, email] }",
            "scopes: [openid, email], subjectClaim: no_such_claim }",
        )
    })
    .await;
    let (_, _, back) = attempt(&setup, "alice").await;
    assert_eq!(redirect_error(&back).0, "access_denied");
    setup.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_upstream_refresh_token_is_the_one_the_next_refresh_sends() {
    // The real server rotates refresh tokens on every use and refuses a spent one, so a second
    // refresh only succeeds if the first one's new refresh token was stored.
    let setup = Setup::start(&["okta"], 2, "{ type: memory }", "").await;
    let (_, tokens) = setup.full_login("carol").await;
    let auth = bearer(&tokens);
    let mut seen = vec![injected(
        &check(&setup.server, Some(&auth), Some("okta")).await,
    )];
    for _ in 0..2 {
        tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
        seen.push(injected(
            &check(&setup.server, Some(&auth), Some("okta")).await,
        ));
    }
    assert!(seen[0] != seen[1] && seen[1] != seen[2], "{seen:?}");
    let outcomes: Vec<_> = setup
        .idp("okta")
        .grants()
        .await
        .into_iter()
        .filter(|g| g["grant_type"] == "refresh_token")
        .map(|g| g["outcome"].clone())
        .collect();
    assert_eq!(outcomes, ["ok", "ok"]);
    setup.server.stop().await;
}

#[tokio::test]
async fn the_client_secret_goes_in_the_form_when_the_provider_wants_it_there() {
    // The fake refuses HTTP Basic as GitHub's documentation implies it may: with the default
    // client_secret_basic the login is refused, with client_secret_post it works.
    let (setup, fake) = github_edited(true, |yaml| {
        yaml.replace("tokenEndpointAuthMethod: client_secret_post, ", "")
    })
    .await;
    let (_, _, back) = attempt(&setup, "alice").await;
    assert_eq!(redirect_error(&back).0, "access_denied");
    assert_eq!(fake.token_requests().len(), 1);
    setup.server.stop().await;
    let (setup, _fake) = github(true).await;
    login(&setup, "alice").await;
    setup.server.stop().await;
}
