// SPDX-License-Identifier: Apache-2.0
//! The official MCP Python SDK in the tests: its MCP server (`tests/mcp_sdk/server.py`) behind
//! Envoy, and its client (`tests/mcp_sdk/client.py`), which reports every exchange as JSON.

use std::path::PathBuf;
use std::process::{Child, Command};

use serde_json::Value;

use super::https_documents::spawn_ready;

pub fn python() -> String {
    std::env::var("MCP_SDK_PYTHON")
        .expect("MCP_SDK_PYTHON must name a python with the MCP SDK; run scripts/test.sh")
}

pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/mcp_sdk")
        .join(name)
}

/// The SDK's MCP server, killed on drop; `log` holds one JSON line per request it received.
pub struct McpServer {
    child: Child,
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl McpServer {
    pub fn start(path: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("requests.jsonl");
        let mut command = Command::new(python());
        command
            .arg(script("server.py"))
            .args(["--port", "0", "--path", path, "--log"])
            .arg(&log);
        let (child, port) = spawn_ready(command);
        Self {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    /// Every request it received so far.
    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The `tools/call`s of `tool` it received.
    pub fn calls_of(&self, tool: &str) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r["tool"] == tool)
            .collect()
    }
}

impl Drop for McpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The SDK client against `url` as `user`, making `calls`: its JSON report.
pub async fn client(url: &str, user: &str, calls: Value, extra: &[&str]) -> Value {
    let output = tokio::process::Command::new(python())
        .arg(script("client.py"))
        .arg(url)
        .args(["--user", user, "--calls", &calls.to_string()])
        .args(extra)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_else(|| {
        panic!(
            "client.py printed nothing; stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    serde_json::from_str(last).unwrap()
}
