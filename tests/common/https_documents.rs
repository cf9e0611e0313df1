// SPDX-License-Identifier: Apache-2.0
//! A test CA and an HTTPS server answering from a routes file (`tests/fixtures/https_documents.py`,
//! run with the test venv's python): client metadata documents served over real TLS.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A CA and a certificate it signed for `localhost` and `127.0.0.1`, made with `openssl`.
pub struct TestCa {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl {args:?}");
}

impl TestCa {
    pub fn new(dir: &Path) -> Self {
        let ext = dir.join("san.ext");
        std::fs::write(
            &ext,
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        openssl(
            dir,
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                "ca.key",
            ],
        );
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "ca.key",
                "-subj",
                "/CN=mcp-authz test CA",
                "-days",
                "2",
                "-out",
                "ca.pem",
            ],
        );
        openssl(
            dir,
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                "server.key",
            ],
        );
        openssl(
            dir,
            &[
                "req",
                "-new",
                "-key",
                "server.key",
                "-subj",
                "/CN=localhost",
                "-out",
                "server.csr",
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "san.ext",
                "-out",
                "server.pem",
            ],
        );
        Self {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        }
    }
}

/// Starts `command`, which prints `ready <port>` as its first line once it listens: the child
/// and the port.
pub fn spawn_ready(mut command: Command) -> (Child, u16) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?} starts: {e}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .strip_prefix("ready ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("{command:?} said {line:?}"));
    (child, port)
}

/// The HTTPS server, killed on drop.
pub struct Documents {
    child: Child,
    pub port: u16,
    routes: PathBuf,
    log: PathBuf,
}

impl Documents {
    pub fn start(ca: &TestCa, dir: &Path) -> Self {
        let python = std::env::var("VENV_PYTHON")
            .expect("VENV_PYTHON must name the test venv's python; run scripts/test.sh");
        let routes = dir.join("routes.json");
        let log = dir.join("requests.log");
        std::fs::write(&routes, "{}").unwrap();
        let mut command = Command::new(python);
        command
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/https_documents.py"
            ))
            .arg("--cert")
            .arg(&ca.cert)
            .arg("--key")
            .arg(&ca.key)
            .arg("--routes")
            .arg(&routes)
            .arg("--log")
            .arg(&log);
        let (child, port) = spawn_ready(command);
        Self {
            child,
            port,
            routes,
            log,
        }
    }

    /// `https://localhost:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    /// Answers `path` with `status`, `headers` and `body` from now on.
    pub fn serve(&self, path: &str, status: u16, headers: serde_json::Value, body: &str) {
        let mut routes: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&self.routes).unwrap()).unwrap();
        routes[path] = serde_json::json!({ "status": status, "headers": headers, "body": body });
        std::fs::write(&self.routes, routes.to_string()).unwrap();
    }

    /// How many requests for `path` it received.
    pub fn fetches(&self, path: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| *l == path)
            .count()
    }
}

impl Drop for Documents {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
