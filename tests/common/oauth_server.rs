// SPDX-License-Identifier: Apache-2.0
//! The real OAuth server of the tests: npm `oidc-provider` with an RFC 8693 grant
//! (`testenv/oauth-server/server.mjs`), started on a free loopback port.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::free_port;

/// A running `server.mjs`; killed on drop.
pub struct OAuthServer {
    child: Child,
    pub base: String,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl OAuthServer {
    /// Starts the server; JWTs verifying under `subject_jwks` with `iss == subject_issuer` are
    /// accepted as subject tokens.
    pub fn start(subject_jwks: &Value, subject_issuer: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let jwks_path = dir.path().join("subject-jwks.json");
        std::fs::write(&jwks_path, subject_jwks.to_string()).unwrap();
        let jwks_path = jwks_path.to_string_lossy().into_owned();
        Self::start_with_env(
            dir,
            &[
                ("SUBJECT_JWKS_FILE", &jwks_path),
                ("SUBJECT_ISSUER", subject_issuer),
            ],
        )
    }

    /// An upstream identity provider for mcp-authz's login: client `mcp-authz` /
    /// `mcp-authz-secret` may redirect to `redirect_uri`; its access tokens live `access_ttl`
    /// seconds.
    pub fn identity_provider(redirect_uri: &str, access_ttl: u64) -> Self {
        Self::start_with_env(
            tempfile::tempdir().unwrap(),
            &[
                ("LOGIN_REDIRECT_URIS", redirect_uri),
                ("ACCESS_TOKEN_TTL", &access_ttl.to_string()),
            ],
        )
    }

    /// [`Self::identity_provider`] whose refresh tokens expire after `refresh_ttl` seconds,
    /// when a refresh is refused (`invalid_grant`).
    pub fn identity_provider_expiring(
        redirect_uri: &str,
        access_ttl: u64,
        refresh_ttl: u64,
    ) -> Self {
        Self::start_with_env(
            tempfile::tempdir().unwrap(),
            &[
                ("LOGIN_REDIRECT_URIS", redirect_uri),
                ("ACCESS_TOKEN_TTL", &access_ttl.to_string()),
                ("REFRESH_TOKEN_TTL", &refresh_ttl.to_string()),
            ],
        )
    }

    fn start_with_env(dir: tempfile::TempDir, env: &[(&str, &str)]) -> Self {
        let script = std::env::var("OAUTH_SERVER_JS").unwrap_or_else(|_| {
            format!(
                "{}/testenv/oauth-server/server.mjs",
                env!("CARGO_MANIFEST_DIR")
            )
        });
        let node = std::env::var("NODE_BIN").unwrap_or_else(|_| "node".to_owned());
        // A port from `free_port` can be taken by another test before node binds it; node then
        // exits at once, so try again on a fresh one.
        let (child, port) = (0..5)
            .find_map(|_| {
                let port = free_port();
                let mut child = Command::new(&node)
                    .arg(&script)
                    .env("PORT", port.to_string())
                    .envs(env.iter().copied())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap_or_else(|e| {
                        panic!("cannot start {node} {script} ({e}); run scripts/setup-test-env.sh")
                    });
                let mut line = String::new();
                BufReader::new(child.stdout.take().unwrap())
                    .read_line(&mut line)
                    .unwrap();
                if line.trim() == format!("ready {port}") {
                    Some((child, port))
                } else {
                    let _ = child.kill();
                    let _ = child.wait();
                    None
                }
            })
            .expect("oauth server did not start (npm ci in testenv/oauth-server?)");
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
        }
    }

    /// Starts the server trusting `key`'s JWTs (issuer [`super::ISSUER`]) as subject tokens.
    pub fn trusting(key: &super::TestKey) -> Self {
        Self::start(
            &serde_json::json!({ "keys": [key.key.public_jwk()] }),
            super::ISSUER,
        )
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.base)
    }

    /// A real access token of this server for `upstream-app`, the stand-in for a user's
    /// upstream IdP token.
    pub async fn upstream_token(&self) -> String {
        let response = json(
            self.http
                .post(self.token_url())
                .basic_auth("upstream-app", Some("upstream-secret"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials&scope=read"),
        )
        .await;
        response["access_token"].as_str().unwrap().to_owned()
    }

    /// RFC 7662 introspection, authenticated as `exchanger`.
    pub async fn introspect(&self, token: &str) -> Value {
        json(
            self.http
                .post(format!("{}/token/introspection", self.base))
                .basic_auth("exchanger", Some("exchanger-secret"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("token={token}")),
        )
        .await
    }

    /// Every /token request's grant type and outcome, in order.
    pub async fn grants(&self) -> Vec<Value> {
        serde_json::from_value(json(self.http.get(format!("{}/test/grants", self.base))).await)
            .unwrap()
    }

    /// Makes /token answer `status` (0 = normal again).
    pub async fn fail_token_endpoint(&self, status: u16) {
        let response = self
            .http
            .post(format!(
                "{}/test/fail-token-endpoint?status={status}",
                self.base
            ))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }

    /// Every token-exchange request the grant handler saw, in order.
    pub async fn exchanges(&self) -> Vec<Value> {
        serde_json::from_value(json(self.http.get(format!("{}/test/exchanges", self.base))).await)
            .unwrap()
    }
}

async fn json(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

impl Drop for OAuthServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
