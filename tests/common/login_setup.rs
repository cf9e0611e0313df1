// SPDX-License-Identifier: Apache-2.0
//! The embedded authorization server in front of real upstream providers (npm `oidc-provider`),
//! and an MCP client's side of a login: registration, the browser walk, code redemption.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use envoy_types::pb::envoy::service::auth::v3::CheckResponse;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

use super::browser::{query, Browser};
use super::oauth_server::OAuthServer;
use super::{logs, ok, TestKey, TestServer, AUDIENCE};

pub const CLIENT_REDIRECT: &str = "http://127.0.0.1:1/client/callback";

/// mcp-authz as authorization server in front of one or more real upstream providers.
pub struct Setup {
    pub key: TestKey,
    pub issuer: String,
    pub idps: Vec<(&'static str, OAuthServer)>,
    pub server: TestServer,
}

/// The config: upstreams `names` (oidc, at `idps`; a name ending in `?` is optional),
/// `storage`, extra `authServer` lines, and one `upstream_inject` backend per upstream plus a
/// `static` header backend.
pub fn config(
    key: &TestKey,
    issuer: &str,
    idps: &[(&str, String)],
    storage: &str,
    extra: &str,
) -> String {
    let upstreams: String = idps
        .iter()
        .map(|(name, base)| {
            let (name, required) = match name.strip_suffix('?') {
                Some(name) => (name, false),
                None => (*name, true),
            };
            format!(
                "    - {{ name: {name}, type: oidc, required: {required}, oidc: {{ issuerUrl: \"{base}\", clientId: mcp-authz, clientSecret: mcp-authz-secret, scopes: [openid, email] }} }}\n"
            )
        })
        .collect();
    let backends: String = idps
        .iter()
        .map(|(name, _)| {
            let name = name.trim_end_matches('?');
            format!("    {name}: {{ type: upstream_inject, upstreamInject: {{ providerName: {name} }} }}\n")
        })
        .collect();
    format!(
        r#"
server: {{ grpcAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", resourceUrl: "{AUDIENCE}", audit: {{ enabled: false }} }}
incomingAuth:
  type: oidc
  oidc: {{ issuer: "{issuer}", audience: "{AUDIENCE}" }}
authServer:
  issuer: "{issuer}"
  allowedAudiences: ["{AUDIENCE}"]
  signingKeyFile: "{key_path}"
  storage: {storage}
{extra}
  upstreams:
{upstreams}
outgoingAuth:
  backends:
{backends}
    static: {{ type: header_injection, headerInjection: {{ headerName: x-api-key, headerValue: k }} }}
"#,
        key_path = key.path
    )
}

impl Setup {
    /// Upstreams `names` (`?` at the end: optional), each a real provider whose access tokens
    /// live `access_ttl` seconds.
    pub async fn start(
        names: &[&'static str],
        access_ttl: u64,
        storage: &str,
        extra: &str,
    ) -> Self {
        Self::start_audited(names, access_ttl, storage, extra, None).await
    }

    /// [`Setup::start`] writing audit events to `audit_file`, when given.
    pub async fn start_audited(
        names: &[&'static str],
        access_ttl: u64,
        storage: &str,
        extra: &str,
        audit_file: Option<&std::path::Path>,
    ) -> Self {
        Self::start_edited(names, access_ttl, storage, extra, audit_file, |yaml| yaml).await
    }

    /// [`Setup::start_audited`] with the config passed through `edit` first.
    pub async fn start_edited(
        names: &[&'static str],
        access_ttl: u64,
        storage: &str,
        extra: &str,
        audit_file: Option<&std::path::Path>,
        edit: impl FnOnce(String) -> String,
    ) -> Self {
        logs();
        let key = TestKey::new();
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", http.local_addr().unwrap());
        let callback = format!("{issuer}/oauth/callback");
        let idps: Vec<_> = names
            .iter()
            .map(|n| (*n, OAuthServer::identity_provider(&callback, access_ttl)))
            .collect();
        let bases: Vec<_> = idps.iter().map(|(n, s)| (*n, s.base.clone())).collect();
        let mut yaml = config(&key, &issuer, &bases, storage, extra);
        if let Some(file) = audit_file {
            yaml = yaml.replace(
                "audit: { enabled: false }",
                &format!("audit: {{ enabled: true, file: \"{}\" }}", file.display()),
            );
        }
        let idps = idps
            .into_iter()
            .map(|(n, s)| (n.trim_end_matches('?'), s))
            .collect();
        let server = TestServer::start_with_http(&edit(yaml), http).await;
        Self {
            key,
            issuer,
            idps,
            server,
        }
    }

    pub fn idp(&self, name: &str) -> &OAuthServer {
        &self.idps.iter().find(|(n, _)| *n == name).unwrap().1
    }

    pub fn url(&self, path: &str) -> url::Url {
        url::Url::parse(&format!("{}{path}", self.issuer)).unwrap()
    }

    pub fn memory_records(&self) -> usize {
        let runtime = self.server.state.runtime();
        let store = runtime.pipeline.store.as_ref().unwrap();
        store.memory_record_count().expect("memory store expected")
    }

    /// Registers a public client (RFC 7591) and returns its id.
    pub async fn register(&self) -> String {
        let response = reqwest::Client::new()
            .post(self.url("/oauth/register"))
            .json(&serde_json::json!({
                "redirect_uris": [CLIENT_REDIRECT],
                "client_name": "test MCP client",
                "token_endpoint_auth_method": "none",
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        assert!(body.get("client_secret").is_none(), "public client");
        body["client_id"].as_str().unwrap().to_owned()
    }

    /// `/oauth/authorize` for `client` with PKCE `challenge` and `extra` query pairs.
    pub fn authorize_url(&self, client: &str, challenge: &str, extra: &[(&str, &str)]) -> url::Url {
        let mut url = self.url("/oauth/authorize");
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client)
            .append_pair("redirect_uri", CLIENT_REDIRECT)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", "client-state-1")
            .append_pair("resource", AUDIENCE)
            .extend_pairs(extra.iter().copied());
        url
    }

    /// A full login as `user`: returns the client's code.
    pub async fn login(&self, client: &str, challenge: &str, user: &str) -> String {
        self.login_with(client, challenge, user, &[]).await
    }

    /// [`Setup::login`] with `extra` authorize parameters.
    pub async fn login_with(
        &self,
        client: &str,
        challenge: &str,
        user: &str,
        extra: &[(&str, &str)],
    ) -> String {
        self.login_in(&mut Browser::new(user), client, challenge, extra)
            .await
    }

    /// A login in `browser` (which keeps its cookies, and so its login session): the code.
    pub async fn login_in(
        &self,
        browser: &mut Browser,
        client: &str,
        challenge: &str,
        extra: &[(&str, &str)],
    ) -> String {
        let back = browser
            .walk(
                self.authorize_url(client, challenge, extra),
                CLIENT_REDIRECT,
            )
            .await
            .unwrap_or_else(|(url, hop)| panic!("login stopped at {url}: {hop:?}"));
        assert_eq!(query(&back, "state").as_deref(), Some("client-state-1"));
        assert_eq!(query(&back, "iss").as_deref(), Some(self.issuer.as_str()));
        query(&back, "code").unwrap_or_else(|| panic!("no code in {back}"))
    }

    pub async fn token(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter().copied())
            .finish();
        let response = reqwest::Client::new()
            .post(self.url("/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    pub async fn redeem(&self, client: &str, code: &str, verifier: &str) -> (u16, Value) {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("client_id", client),
            ("code", code),
            ("redirect_uri", CLIENT_REDIRECT),
            ("code_verifier", verifier),
        ])
        .await
    }

    /// Register, log in as `user`, redeem: our token response.
    pub async fn full_login(&self, user: &str) -> (String, Value) {
        let client = self.register().await;
        let (verifier, challenge) = pkce();
        let code = self.login(&client, &challenge, user).await;
        let (status, tokens) = self.redeem(&client, &code, &verifier).await;
        assert_eq!(status, 200, "{tokens}");
        (client, tokens)
    }
}

pub fn pkce() -> (String, String) {
    let verifier = mcp_authz::random::token(32);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

pub fn injected(response: &CheckResponse) -> String {
    let ok = ok(response);
    ok.headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .find(|h| h.key == "authorization")
        .map(|h| h.value.clone())
        .unwrap_or_else(|| panic!("no authorization set: {ok:?}"))
}

pub fn bearer(tokens: &Value) -> String {
    format!("Bearer {}", tokens["access_token"].as_str().unwrap())
}

pub fn redirect_error(hop_location: &url::Url) -> (String, Option<String>) {
    assert!(
        hop_location.as_str().starts_with(CLIENT_REDIRECT),
        "{hop_location}"
    );
    (
        query(hop_location, "error").unwrap_or_default(),
        query(hop_location, "state"),
    )
}
