// SPDX-License-Identifier: Apache-2.0
//! DESIGN.md §13, Client ID Metadata Documents, with documents served over real HTTPS from a
//! test CA (`outbound.caFile`) and a real oidc-provider upstream: a client whose `client_id` is
//! its document's URL logs in without registering, the document is fetched once and cached, and
//! every bad document is refused with a 400 page, no redirect to the client and no request to a
//! host that is not public.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::browser::{query, Browser};
use common::https_documents::{Documents, TestCa};
use common::oauth_server::OAuthServer;
use common::{logs, TestKey, TestServer, AUDIENCE};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

const CLIENT_REDIRECT: &str = "http://127.0.0.1:1/client/callback";

struct Setup {
    _key: TestKey,
    _idp: OAuthServer,
    issuer: String,
    server: TestServer,
}

async fn setup(ca: &TestCa, allow_loopback: bool) -> Setup {
    logs();
    let key = TestKey::new();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", http.local_addr().unwrap());
    let idp = OAuthServer::identity_provider(&format!("{issuer}/oauth/callback"), 3600);
    let yaml = format!(
        r#"
server: {{ grpcAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", resourceUrl: "{AUDIENCE}", audit: {{ enabled: false }} }}
outbound: {{ caFile: "{ca}" }}
incomingAuth:
  type: oidc
  oidc: {{ issuer: "{issuer}", audience: "{AUDIENCE}" }}
authServer:
  issuer: "{issuer}"
  allowedAudiences: ["{AUDIENCE}"]
  signingKeyFile: "{key_path}"
  clientMetadata: {{ allowLoopback: {allow_loopback} }}
  upstreams:
    - {{ name: okta, type: oidc, oidc: {{ issuerUrl: "{idp}", clientId: mcp-authz, clientSecret: mcp-authz-secret }} }}
outgoingAuth:
  backends:
    okta: {{ type: upstream_inject, upstreamInject: {{ providerName: okta }} }}
"#,
        ca = ca.ca.display(),
        key_path = key.path,
        idp = idp.base,
    );
    let server = TestServer::start_with_http(&yaml, http).await;
    Setup {
        _key: key,
        _idp: idp,
        issuer,
        server,
    }
}

fn pkce() -> (String, String) {
    let verifier = mcp_authz::random::token(32);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

impl Setup {
    fn authorize_url(&self, client_id: &str, challenge: &str) -> url::Url {
        let mut url = url::Url::parse(&format!("{}/oauth/authorize", self.issuer)).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", CLIENT_REDIRECT)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", "s1")
            .append_pair("resource", AUDIENCE);
        url
    }

    /// The first answer to an authorization request: (status, Location, body).
    async fn authorize(&self, client_id: &str) -> (u16, Option<String>, String) {
        let (_, challenge) = pkce();
        let response = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(self.authorize_url(client_id, &challenge))
            .send()
            .await
            .unwrap();
        let location = response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        (
            response.status().as_u16(),
            location,
            response.text().await.unwrap(),
        )
    }
}

fn document(client_id: &str, redirect_uris: &[&str]) -> String {
    serde_json::json!({
        "client_id": client_id,
        "client_name": "CIMD test client",
        "redirect_uris": redirect_uris,
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_named_by_its_metadata_document_logs_in_without_registering() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    let documents = Documents::start(&ca, dir.path());
    let setup = setup(&ca, true).await;
    let client_id = documents.url("/clients/good.json");
    let json =
        serde_json::json!({ "content-type": "application/json", "cache-control": "max-age=300" });
    documents.serve(
        "/clients/good.json",
        200,
        json,
        &document(&client_id, &[CLIENT_REDIRECT]),
    );

    let metadata: Value = reqwest::get(format!(
        "{}/.well-known/oauth-authorization-server",
        setup.issuer
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(metadata["client_id_metadata_document_supported"], true);

    let (verifier, challenge) = pkce();
    let back = Browser::new("olga")
        .walk(setup.authorize_url(&client_id, &challenge), CLIENT_REDIRECT)
        .await
        .unwrap_or_else(|(url, hop)| panic!("login stopped at {url}: {hop:?}"));
    let code = query(&back, "code").unwrap();
    let form = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "authorization_code"),
            ("client_id", client_id.as_str()),
            ("code", code.as_str()),
            ("redirect_uri", CLIENT_REDIRECT),
            ("code_verifier", verifier.as_str()),
        ])
        .finish();
    let response = reqwest::Client::new()
        .post(format!("{}/oauth/token", setup.issuer))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    let payload = tokens["access_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["client_id"], client_id.as_str());
    assert_eq!(claims["sub"], "olga");
    // Authorize, then token: one fetch, the second answered from the cache (max-age=300).
    assert_eq!(documents.fetches("/clients/good.json"), 1);
    let (status, location, _) = setup.authorize(&client_id).await;
    assert_eq!(status, 303, "{location:?}");
    assert_eq!(documents.fetches("/clients/good.json"), 1);
    setup.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_documents_are_refused_without_a_redirect_to_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    let documents = Documents::start(&ca, dir.path());
    let setup = setup(&ca, true).await;
    let json = || serde_json::json!({ "content-type": "application/json" });
    let good = documents.url("/good.json");
    documents.serve(
        "/good.json",
        200,
        json(),
        &document(&good, &[CLIENT_REDIRECT]),
    );
    let mismatch = documents.url("/mismatch.json");
    documents.serve(
        "/mismatch.json",
        200,
        json(),
        &document(&good, &[CLIENT_REDIRECT]),
    );
    let elsewhere = documents.url("/elsewhere.json");
    documents.serve(
        "/elsewhere.json",
        200,
        json(),
        &document(&elsewhere, &["http://127.0.0.1:1/other/callback"]),
    );
    let big = documents.url("/big.json");
    let padded = serde_json::json!({ "client_id": big, "redirect_uris": [CLIENT_REDIRECT], "client_name": "x".repeat(6000) });
    documents.serve("/big.json", 200, json(), &padded.to_string());
    let redirecting = documents.url("/redirect.json");
    documents.serve(
        "/redirect.json",
        302,
        serde_json::json!({ "location": "/good.json" }),
        "",
    );

    for (client_id, reason) in [
        (mismatch.as_str(), "client_id is not its URL"),
        (elsewhere.as_str(), "redirect_uri does not match"),
        (big.as_str(), "larger than 5 KiB"),
        (redirecting.as_str(), "redirects are not followed"),
        ("https://10.255.255.1/client.json", "not a public address"),
        ("https://localhost:1/", "must be https with a path"),
    ] {
        let (status, location, body) = setup.authorize(client_id).await;
        assert_eq!(
            (status, location.as_deref()),
            (400, None),
            "{client_id}: {body}"
        );
        assert!(body.contains(reason), "{client_id}: {body}");
    }
    // The redirect was not followed.
    assert_eq!(documents.fetches("/redirect.json"), 1);
    assert_eq!(documents.fetches("/good.json"), 0);
    // http is not a document URL, so it is an unknown registered client, and nothing is
    // fetched: on loopback or anywhere else.
    for http in [
        good.replace("https://", "http://"),
        "http://app.example.com/client.json".to_owned(),
    ] {
        let (status, location, body) = setup.authorize(&http).await;
        assert_eq!((status, location), (400, None), "{http}");
        assert!(body.contains("unknown client_id"), "{body}");
    }
    assert_eq!(documents.fetches("/good.json"), 0);
    setup.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_allow_loopback_a_loopback_document_is_never_requested() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    let documents = Documents::start(&ca, dir.path());
    let setup = setup(&ca, false).await;
    let json = serde_json::json!({ "content-type": "application/json" });
    for path in ["/by-name.json", "/by-address.json"] {
        documents.serve(
            path,
            200,
            json.clone(),
            &document(&documents.url(path), &[CLIENT_REDIRECT]),
        );
    }
    let by_address = format!("https://127.0.0.1:{}/by-address.json", documents.port);
    for client_id in [documents.url("/by-name.json"), by_address] {
        let (status, location, body) = setup.authorize(&client_id).await;
        assert_eq!((status, location.as_deref()), (400, None), "{body}");
        assert!(body.contains("not a public address"), "{body}");
    }
    assert_eq!(documents.fetches("/by-name.json"), 0);
    assert_eq!(documents.fetches("/by-address.json"), 0);
    setup.server.stop().await;
}
