// SPDX-License-Identifier: Apache-2.0
//! Signing-key rotation and secrets from files on the real binary, driven by SIGHUP
//! (DESIGN.md §12): a key moved to `previousSigningKeyFiles` keeps verifying and stays in the
//! JWKS, a key dropped from the list stops verifying at once, a secret file is read again at
//! every reload, and an unreadable file refuses the reload while the running configuration stays.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::process::{connect, signal, Process};
use common::{check_request, denied, ok, TestKey, AUDIENCE, ISSUER};

/// A Mode B config signed by `current`, still verifying `previous`, with a `static` backend
/// whose header value comes from `secret_file`.
fn config(current: &TestKey, previous: &[&TestKey], secret_file: &str) -> String {
    let previous: Vec<String> = previous.iter().map(|k| format!("\"{}\"", k.path)).collect();
    format!(
        r#"
server:
  grpcAddr: "127.0.0.1:0"
  httpAddr: "127.0.0.1:0"
  resourceUrl: "{AUDIENCE}"
  audit: {{ enabled: false }}
incomingAuth:
  type: oidc
  oidc: {{ issuer: "{ISSUER}", audience: "{AUDIENCE}" }}
authServer:
  issuer: "{ISSUER}"
  allowedAudiences: ["{AUDIENCE}"]
  signingKeyFile: "{current}"
  previousSigningKeyFiles: [{previous}]
  upstreams:
    - name: github
      type: oauth2
      oauth2: {{ authorizationEndpoint: "https://github.example/a", tokenEndpoint: "https://github.example/t", clientId: gh }}
outgoingAuth:
  backends:
    static: {{ type: header_injection, headerInjection: {{ headerName: x-api-key, headerValueFile: "{secret_file}" }} }}
"#,
        current = current.path,
        previous = previous.join(", "),
    )
}

struct Running {
    process: Process,
    http: reqwest::Client,
}

impl Running {
    /// The key ids of our JWKS, in order.
    async fn kids(&self) -> Vec<String> {
        let url = format!(
            "http://127.0.0.1:{}/.well-known/jwks.json",
            self.process.http
        );
        let jwks: serde_json::Value = self
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn reload_failures(&self) -> u64 {
        let url = format!("http://127.0.0.1:{}/metrics", self.process.http);
        let text = self
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        common::metric_value(&text, "mcp_authz_config_reload_failures_total")
    }

    /// Writes `yaml` (ports kept) and sends SIGHUP.
    fn reload(&self, yaml: &str) {
        let yaml = common::process::with_ports(yaml, self.process.grpc, self.process.http);
        std::fs::write(&self.process.path, yaml).unwrap();
        signal(&self.process, "HUP");
    }

    /// Polls until `done` holds (a reload is applied within moments), then returns.
    async fn until<F: std::future::Future<Output = bool>>(&self, what: &str, done: impl Fn() -> F) {
        for _ in 0..200 {
            if done().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{what} did not happen");
    }
}

/// The `x-api-key` a Check with `token` gets, or the HTTP status of its denial.
async fn answer(process: &Process, token: &str) -> Result<String, i32> {
    let mut client = connect(process.grpc).await;
    let response = client
        .check(check_request(
            Some(&format!("Bearer {token}")),
            Some("static"),
        ))
        .await
        .unwrap()
        .into_inner();
    if response.status.as_ref().unwrap().code != 0 {
        return Err(denied(&response, 16, 401).status.as_ref().unwrap().code);
    }
    Ok(ok(&response)
        .headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .find(|h| h.key == "x-api-key")
        .map(|h| h.value.clone())
        .unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_and_secret_files_follow_sighup_and_an_unreadable_file_refuses_the_reload() {
    let (old, new) = (TestKey::new(), TestKey::new());
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("api-key");
    std::fs::write(&secret, "key-one\n").unwrap();
    let secret = secret.display().to_string();
    let running = Running {
        process: Process::spawn(&config(&old, &[], &secret), &["--watch-interval", "0"]),
        http: reqwest::Client::new(),
    };
    let process = &running.process;
    let by_old = old.token("alice", None, serde_json::json!({}));
    let by_new = new.token("alice", None, serde_json::json!({}));
    assert_eq!(
        answer(process, &by_old).await.as_deref(),
        Ok("key-one"),
        "newline trimmed"
    );
    assert_eq!(answer(process, &by_new).await, Err(401));
    assert_eq!(running.kids().await, [old.key.kid()]);

    // Rotate: the new key signs, the old one still verifies and is still published; the secret
    // file changed too.
    std::fs::write(&secret, "key-two\r\n").unwrap();
    running.reload(&config(&new, &[&old], &secret));
    running
        .until("the rotation", || async {
            running.kids().await == [new.key.kid(), old.key.kid()]
        })
        .await;
    assert_eq!(answer(process, &by_old).await.as_deref(), Ok("key-two"));
    assert_eq!(answer(process, &by_new).await.as_deref(), Ok("key-two"));

    // Drop the old key: its tokens stop at once, though they verified a moment ago (and sit in
    // the verified-token cache).
    running.reload(&config(&new, &[], &secret));
    running
        .until("the old key's removal", || async {
            running.kids().await == [new.key.kid()]
        })
        .await;
    assert_eq!(answer(process, &by_old).await, Err(401));
    assert_eq!(answer(process, &by_new).await.as_deref(), Ok("key-two"));

    // An unreadable secret file, then an unreadable key file: each reload is refused and what
    // runs stays.
    let failures = running.reload_failures().await;
    std::fs::remove_file(&secret).unwrap();
    running.reload(&config(&new, &[], &secret));
    running
        .until("the refusal", || async {
            running.reload_failures().await == failures + 1
        })
        .await;
    std::fs::write(&secret, "key-three\n").unwrap();
    let missing_key = TestKey::new();
    std::fs::remove_file(&missing_key.path).unwrap();
    running.reload(&config(&new, &[&old, &missing_key], &secret));
    running
        .until("the second refusal", || async {
            running.reload_failures().await == failures + 2
        })
        .await;
    assert_eq!(running.kids().await, [new.key.kid()]);
    assert_eq!(answer(process, &by_new).await.as_deref(), Ok("key-two"));
    assert_eq!(answer(process, &by_old).await, Err(401));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_secret_file_is_picked_up_without_a_signal() {
    let key = TestKey::new();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("api-key");
    std::fs::write(&secret, "before\n").unwrap();
    let secret_path = secret.display().to_string();
    // As a Kubernetes Secret volume does: the config stays, the file it names changes.
    let process = Process::spawn(&config(&key, &[], &secret_path), &["--watch-interval", "1"]);
    let token = key.token("alice", None, serde_json::json!({}));
    assert_eq!(answer(&process, &token).await.as_deref(), Ok("before"));
    let replacement = dir.path().join("api-key.new");
    std::fs::write(&replacement, "after\n").unwrap();
    std::fs::rename(&replacement, &secret).unwrap();
    let mut last = None;
    for _ in 0..100 {
        last = answer(&process, &token).await.ok();
        if last.as_deref() == Some("after") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last.as_deref(), Some("after"));
}
