// SPDX-License-Identifier: Apache-2.0
//! Redis as deployed in production (DESIGN.md §12), against real `redis-server` processes on
//! loopback: an ACL user whose password comes from a file, and TLS-only Redis with a CA the test
//! generates (trusted, untrusted, and with a client certificate). A wrong password or an
//! untrusted certificate is never OK: not ready, and 503 for Checks that need the store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::login_setup::injected;
use common::redis_server::Redis;
use common::{check, denied, logs, store_token, TestKey, TestServer};

/// A Mode B config whose store is Redis with `redis` (the inside of `redis: { … }`).
fn config(key: &TestKey, redis: &str) -> String {
    format!(
        r#"
server: {{ grpcAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", resourceUrl: "{aud}", audit: {{ enabled: false }} }}
incomingAuth:
  type: oidc
  oidc: {{ issuer: "{iss}", audience: "{aud}" }}
authServer:
  issuer: "{iss}"
  allowedAudiences: ["{aud}"]
  signingKeyFile: "{key}"
  storage: {{ type: redis, redis: {{ keyPrefix: "modes-{prefix}:", timeoutMs: 300, {redis} }} }}
  upstreams:
    - name: github
      type: oauth2
      oauth2: {{ authorizationEndpoint: "https://github.example/a", tokenEndpoint: "https://github.example/t", clientId: gh }}
outgoingAuth:
  backends:
    github: {{ type: upstream_inject, upstreamInject: {{ providerName: github }} }}
"#,
        iss = common::ISSUER,
        aud = common::AUDIENCE,
        key = key.path,
        prefix = mcp_authz::random::token(6),
    )
}

/// Whether the gRPC health service says SERVING, polled for a while.
async fn becomes_ready(server: &TestServer) -> bool {
    for _ in 0..60 {
        if common::process::health(server.grpc.port()).await == 1 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// The store works end to end: a token written through the server's store is injected.
async fn serves(key: &TestKey, server: &TestServer) {
    assert!(becomes_ready(server).await, "ready");
    store_token(server, "tsid-modes", "github", "gho_through_redis", None).await;
    let jwt = key.token("alice", Some("tsid-modes"), serde_json::json!({}));
    let response = check(server, Some(&format!("Bearer {jwt}")), Some("github")).await;
    assert_eq!(injected(&response), "Bearer gho_through_redis");
}

/// Never OK: a Check that needs the store gets 503, and the server does not say it is ready.
async fn refuses(key: &TestKey, server: &TestServer) {
    let jwt = key.token("alice", Some("tsid-modes"), serde_json::json!({}));
    let response = check(server, Some(&format!("Bearer {jwt}")), Some("github")).await;
    denied(&response, 14, 503);
    assert_ne!(common::process::health(server.grpc.port()).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acl_user_with_a_password_file_works_and_a_wrong_password_is_503() {
    logs();
    let redis = Redis::start_with(
        &[
            "--user",
            "mcp",
            "on",
            ">s3cret-pw",
            "~*",
            "&*",
            "+@all",
            "--user",
            "default",
            "off",
        ],
        false,
    );
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    std::fs::write(&good, "s3cret-pw\n").unwrap();
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not-it\n").unwrap();
    let key = TestKey::new();
    let redis_yaml = |file: &Path| {
        format!(
            "url: \"redis://127.0.0.1:{}/\", username: mcp, passwordFile: \"{}\"",
            redis.port,
            file.display()
        )
    };
    let server = TestServer::start(&config(&key, &redis_yaml(&good))).await;
    serves(&key, &server).await;
    server.stop().await;
    let server = TestServer::start(&config(&key, &redis_yaml(&wrong))).await;
    refuses(&key, &server).await;
    server.stop().await;

    // A rotated password file is read at the next reload, and the store reconnects with it,
    // though the config file itself is the same.
    let password = dir.path().join("rotating");
    std::fs::write(&password, "s3cret-pw\n").unwrap();
    let yaml = config(&key, &redis_yaml(&password));
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, &yaml).unwrap();
    let server = TestServer::start(&yaml).await;
    serves(&key, &server).await;
    let env = std::collections::HashMap::new();
    std::fs::write(&password, "not-it\n").unwrap();
    assert!(mcp_authz::reload::reload_file(&server.state, &path, &env).await);
    let jwt = key.token("alice", Some("tsid-modes"), serde_json::json!({}));
    let response = check(&server, Some(&format!("Bearer {jwt}")), Some("github")).await;
    denied(&response, 14, 503);
    std::fs::write(&password, "s3cret-pw\n").unwrap();
    assert!(mcp_authz::reload::reload_file(&server.state, &path, &env).await);
    let response = check(&server, Some(&format!("Bearer {jwt}")), Some("github")).await;
    assert_eq!(injected(&response), "Bearer gho_through_redis");
    server.stop().await;
    logs().assert_never_logged(&["s3cret-pw", "not-it"]);
}

/// A CA, and a server certificate for 127.0.0.1 and a client certificate it signs, in `dir`.
fn certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl (scripts/setup-test-env.sh installs it)");
        assert!(status.success(), "openssl {args:?}");
    };
    let key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &key,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=test-ca",
            "-days",
            "2",
        ],
    ]
    .concat());
    // Extensions make them X.509 v3 certificates, the only version rustls accepts.
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    std::fs::write(
        dir.join("client.ext"),
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    for (name, ext) in [("server", "server.ext"), ("client", "client.ext")] {
        let (csr, pem, k) = (
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.key"),
        );
        run(&[
            &["req"][..],
            &key,
            &["-keyout", &k, "-out", &csr, "-subj", &format!("/CN={name}")],
        ]
        .concat());
        run(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            ext,
        ]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_only_redis_is_reached_with_its_ca_refused_without_it_and_mutual_tls_works() {
    logs();
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let file = |name: &str| dir.path().join(name).display().to_string();
    let tls_args = |clients: &'static str| {
        vec![
            "--tls-cert-file".to_owned(),
            file("server.pem"),
            "--tls-key-file".to_owned(),
            file("server.key"),
            "--tls-ca-cert-file".to_owned(),
            file("ca.pem"),
            "--tls-auth-clients".to_owned(),
            clients.to_owned(),
        ]
    };
    let args = tls_args("no");
    let redis = Redis::start_with(&args.iter().map(String::as_str).collect::<Vec<_>>(), true);
    let key = TestKey::new();
    let url = format!("url: \"rediss://127.0.0.1:{}/\"", redis.port);
    // Trusted through tls.caFile.
    let server = TestServer::start(&config(
        &key,
        &format!("{url}, tls: {{ caFile: \"{}\" }}", file("ca.pem")),
    ))
    .await;
    serves(&key, &server).await;
    server.stop().await;
    // The system roots do not know the test CA.
    let server = TestServer::start(&config(&key, &url)).await;
    refuses(&key, &server).await;
    server.stop().await;
    drop(redis);

    // A Redis that requires a client certificate: refused without one, served with one.
    let args = tls_args("yes");
    let redis = Redis::start_with(&args.iter().map(String::as_str).collect::<Vec<_>>(), true);
    let url = format!("url: \"rediss://127.0.0.1:{}/\"", redis.port);
    let ca = format!("caFile: \"{}\"", file("ca.pem"));
    let server = TestServer::start(&config(&key, &format!("{url}, tls: {{ {ca} }}"))).await;
    refuses(&key, &server).await;
    server.stop().await;
    let mutual = format!(
        "{url}, tls: {{ {ca}, certFile: \"{}\", keyFile: \"{}\" }}",
        file("client.pem"),
        file("client.key")
    );
    let server = TestServer::start(&config(&key, &mutual)).await;
    serves(&key, &server).await;
    server.stop().await;
}
