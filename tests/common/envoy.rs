// SPDX-License-Identifier: Apache-2.0
//! A real Envoy (`ENVOY_BIN`) running `deploy/envoy/envoy.yaml` with its ports rewritten, an echo
//! backend that reports the headers it received, and a small HTTP client for both.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::http::HeaderMap;

use super::{free_port, TestServer};

/// Kills Envoy when the test ends, however it ends.
pub struct Envoy(Child);

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An HTTP server that answers every request with the request's headers as JSON, and its path
/// and query under `:path`.
pub async fn echo_backend() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(|uri: axum::http::Uri, headers: HeaderMap| async move {
        let mut map: BTreeMap<String, Vec<String>> = headers
            .keys()
            .map(|k| {
                (
                    k.as_str().to_owned(),
                    headers
                        .get_all(k)
                        .iter()
                        .map(|v| v.to_str().unwrap_or("").to_owned())
                        .collect(),
                )
            })
            .collect();
        let path = uri.path_and_query().map_or("", |p| p.as_str()).to_owned();
        map.insert(":path".to_owned(), vec![path]);
        axum::Json(map)
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

pub async fn start_envoy(server: &TestServer, backend: SocketAddr) -> (Envoy, u16) {
    start_envoy_on(server, backend, free_port()).await
}

/// [`start_envoy`] listening on `listen` (for a config that must know Envoy's URL first).
pub async fn start_envoy_on(server: &TestServer, backend: SocketAddr, listen: u16) -> (Envoy, u16) {
    let bin = std::env::var("ENVOY_BIN")
        .expect("ENVOY_BIN must name a real envoy binary; run scripts/test.sh");
    let admin = free_port();
    let template = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/envoy/envoy.yaml"
    ))
    .unwrap();
    let mut config = template;
    for (from, to) in [
        (10000, listen),
        (9901, admin),
        (9191, server.grpc.port()),
        (9090, server.http.port()),
        (8080, backend.port()),
    ] {
        let needle = format!("port_value: {from}\n");
        assert_eq!(
            config.matches(&needle).count(),
            1,
            "deploy/envoy/envoy.yaml has one {needle:?}"
        );
        config = config.replace(&needle, &format!("port_value: {to}\n"));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("envoy.yaml");
    std::fs::write(&path, config).unwrap();
    let child = Command::new(bin)
        .arg("-c")
        .arg(&path)
        .args(["--concurrency", "1", "--log-level", "warn", "--base-id"])
        .arg(listen.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("envoy starts");
    let mut envoy = Envoy(child);
    let client = reqwest::Client::new();
    for _ in 0..600 {
        if let Ok(Some(status)) = envoy.0.try_wait() {
            panic!(
                "envoy exited before it was ready ({status}); a port of {listen}/{admin} taken?"
            );
        }
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{admin}/ready"))
            .send()
            .await
        {
            if r.status() == 200 {
                std::mem::forget(dir);
                return (envoy, listen);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("envoy did not become ready");
}

pub struct Answer {
    pub status: u16,
    pub www_authenticate: Option<String>,
    pub body: String,
}

impl Answer {
    pub fn echoed(&self) -> BTreeMap<String, Vec<String>> {
        assert_eq!(self.status, 200, "body: {}", self.body);
        serde_json::from_str(&self.body).unwrap()
    }
}

pub async fn get(port: u16, path: &str, authorization: Option<&str>) -> Answer {
    let mut request = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}{path}"))
        .body("{}");
    if let Some(a) = authorization {
        request = request.header("authorization", a);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let www_authenticate = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    Answer {
        status,
        www_authenticate,
        body: response.text().await.unwrap(),
    }
}
