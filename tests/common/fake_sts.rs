// SPDX-License-Identifier: Apache-2.0
//! A controllable token endpoint for fault injection (500, slow, malformed, oversize) and for
//! counting requests exactly. The happy path is tested against the real OAuth server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

/// What the endpoint answers.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A valid RFC 8693 answer with token `xt-<n>` (n = request number, from 1).
    Token { expires_in: u64 },
    /// A fixed status and JSON body.
    Raw(u16, String),
    /// A 200 whose body is larger than 1 MiB.
    Oversize,
}

struct Inner {
    calls: AtomicUsize,
    reply: Mutex<Reply>,
    delay: Mutex<Duration>,
    bodies: Mutex<Vec<String>>,
}

#[derive(Clone)]
pub struct FakeSts {
    pub url: String,
    inner: Arc<Inner>,
}

impl FakeSts {
    pub async fn start(reply: Reply) -> Self {
        let inner = Arc::new(Inner {
            calls: AtomicUsize::new(0),
            reply: Mutex::new(reply),
            delay: Mutex::new(Duration::ZERO),
            bodies: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/token", post(token))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, inner }
    }

    /// Requests received so far.
    pub fn calls(&self) -> usize {
        self.inner.calls.load(Ordering::SeqCst)
    }

    /// Form bodies received so far.
    pub fn bodies(&self) -> Vec<String> {
        self.inner.bodies.lock().unwrap().clone()
    }

    pub fn set_reply(&self, reply: Reply) {
        *self.inner.reply.lock().unwrap() = reply;
    }

    pub fn set_delay(&self, delay: Duration) {
        *self.inner.delay.lock().unwrap() = delay;
    }
}

async fn token(State(inner): State<Arc<Inner>>, body: String) -> Response {
    let n = inner.calls.fetch_add(1, Ordering::SeqCst) + 1;
    inner.bodies.lock().unwrap().push(body);
    let delay = *inner.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    let reply = inner.reply.lock().unwrap().clone();
    let json = [("content-type", "application/json")];
    match reply {
        Reply::Token { expires_in } => (
            json,
            serde_json::json!({
                "access_token": format!("xt-{n}"),
                "token_type": "Bearer",
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                "expires_in": expires_in,
            })
            .to_string(),
        )
            .into_response(),
        Reply::Raw(status, body) => {
            (StatusCode::from_u16(status).unwrap(), json, body).into_response()
        }
        Reply::Oversize => {
            (json, format!("{{\"pad\":\"{}\"}}", "x".repeat(2 << 20))).into_response()
        }
    }
}

/// A loopback URL where nothing listens.
pub fn refused_url() -> String {
    format!("http://127.0.0.1:{}/token", super::free_port())
}
