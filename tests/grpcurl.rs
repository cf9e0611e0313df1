// SPDX-License-Identifier: Apache-2.0
//! What an operator debugging with grpcurl sees (`GRPCURL_BIN`, grpcurl 1.8, reflection v1alpha).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{logs, mode_b_config, TestKey, TestServer};

/// `grpcurl -plaintext <flags> <address> <verb…>`.
fn grpcurl(server: &TestServer, flags: &[&str], verb: &[&str]) -> String {
    let bin =
        std::env::var("GRPCURL_BIN").expect("GRPCURL_BIN must name grpcurl; run scripts/test.sh");
    let addr = server.grpc.to_string();
    let out = Command::new(bin)
        .arg("-plaintext")
        .args(flags)
        .arg(&addr)
        .args(verb)
        .output()
        .expect("grpcurl runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "grpcurl {flags:?} {verb:?}: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_lists_describes_and_calls_through_reflection() {
    logs();
    let key = TestKey::new();
    let server = TestServer::start(&mode_b_config(&key.path, "{ type: memory }")).await;

    let list = grpcurl(&server, &[], &["list"]);
    for service in [
        "envoy.service.auth.v3.Authorization",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(
            list.lines().any(|l| l == service),
            "{service} missing from:\n{list}"
        );
    }
    let described = grpcurl(
        &server,
        &[],
        &["describe", "envoy.service.auth.v3.CheckResponse"],
    );
    assert!(described.contains("error_response = 5"), "{described}");

    let mut serving = String::new();
    for _ in 0..50 {
        serving = grpcurl(&server, &["-d", "{}"], &["grpc.health.v1.Health/Check"]);
        if serving.contains("\"SERVING\"") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(serving.contains("\"SERVING\""), "{serving}");

    let request = r#"{"attributes":{"contextExtensions":{"backend":"public"},"request":{"http":{"headers":{"authorization":"Bearer not-a-jwt"}}}}}"#;
    let answer = grpcurl(
        &server,
        &["-d", request],
        &["envoy.service.auth.v3.Authorization/Check"],
    );
    let json: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(json["status"]["code"], 16);
    assert_eq!(json["deniedResponse"]["status"]["code"], "Unauthorized");
    server.stop().await;
}
