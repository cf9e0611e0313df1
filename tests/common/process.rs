// SPDX-License-Identifier: Apache-2.0
//! The real `mcp-authz` binary as a child process: started on fresh ports, signalled, probed.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;

use super::free_port;

/// The real `mcp-authz serve` on fresh loopback ports, its config file in a temp dir; killed on
/// drop.
pub struct Process {
    pub child: Child,
    pub grpc: u16,
    pub http: u16,
    pub path: PathBuf,
    pub yaml: String,
    _dir: tempfile::TempDir,
}

impl Process {
    /// Writes `yaml` (whose `grpcAddr`/`httpAddr` lines say port 0) with fresh ports and starts
    /// `mcp-authz serve` on it with `extra_args`.
    pub fn spawn(yaml: &str, extra_args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        let (grpc, http) = (free_port(), free_port());
        let yaml = with_ports(yaml, grpc, http);
        std::fs::write(&path, &yaml).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_mcp-authz"))
            .arg("serve")
            .arg("--config")
            .arg(&path)
            .args(extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self {
            child,
            grpc,
            http,
            path,
            yaml,
            _dir: dir,
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn with_ports(yaml: &str, grpc: u16, http: u16) -> String {
    yaml.replace(
        "  grpcAddr: \"127.0.0.1:0\"\n  httpAddr: \"127.0.0.1:0\"",
        &format!("  grpcAddr: \"127.0.0.1:{grpc}\"\n  httpAddr: \"127.0.0.1:{http}\""),
    )
}

pub async fn connect(port: u16) -> AuthorizationClient<tonic::transport::Channel> {
    for _ in 0..200 {
        if let Ok(client) = AuthorizationClient::connect(format!("http://127.0.0.1:{port}")).await {
            return client;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("mcp-authz did not start");
}

pub fn signal(process: &Process, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(process.child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

pub async fn health(port: u16) -> i32 {
    let Ok(channel) = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
    else {
        return -1;
    };
    tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|r| r.into_inner().status)
        .unwrap_or(-1)
}
