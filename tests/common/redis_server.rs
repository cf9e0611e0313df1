// SPDX-License-Identifier: Apache-2.0
//! A redis-server of a test's own, to kill and restart (`REDIS_SERVER_BIN`, set by
//! `scripts/test.sh`).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::free_port;

/// A throwaway redis-server that keeps its data across a restart (append-only file).
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    /// Extra arguments (ACL users, TLS files).
    extra: Vec<String>,
    /// Whether `port` is a TLS port (and there is no plain one).
    tls: bool,
}

impl Redis {
    pub fn start() -> Self {
        Self::start_with(&[], false)
    }

    /// A redis-server with `extra` arguments; with `tls`, its only port speaks TLS (`extra` must
    /// name the certificate files).
    pub fn start_with(extra: &[&str], tls: bool) -> Self {
        let mut redis = Self {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            extra: extra.iter().map(|a| (*a).to_owned()).collect(),
            tls,
        };
        redis.restart();
        redis
    }

    pub fn restart(&mut self) {
        let bin = std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".to_owned());
        let port = self.port.to_string();
        let ports = if self.tls {
            ["--port", "0", "--tls-port", &port]
        } else {
            ["--port", &port, "--tls-port", "0"]
        };
        let child = Command::new(bin)
            .args(ports)
            .args(["--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
            .arg(self.dir.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis did not start");
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
