// SPDX-License-Identifier: Apache-2.0
//! Shared test harness: a real mcp-authz on loopback ports, a signing key on disk, token minting,
//! and a Check client built from Envoy's official protos (`envoy-types`).
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

pub mod browser;
pub mod envoy;
pub mod fake_github;
pub mod fake_sts;
pub mod https_documents;
pub mod login_setup;
pub mod mcp_sdk;
pub mod oauth_server;
pub mod process;
pub mod redis_server;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{
    AttributeContext, CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcp_authz::app::{self, State};
use mcp_authz::authserver::SigningKey;
use mcp_authz::secret::{Token, Tsid};
use mcp_authz::upstream::UpstreamToken;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const ISSUER: &str = "http://127.0.0.1:9090";
pub const AUDIENCE: &str = "http://127.0.0.1:10000/mcp";

/// A P-256 key written to a temp file, as `authServer.signingKeyFile` expects.
pub struct TestKey {
    pub key: SigningKey,
    pub encoding: EncodingKey,
    pub dir: tempfile::TempDir,
    pub path: String,
}

impl TestKey {
    pub fn new() -> Self {
        let key = SigningKey::generate();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.pem");
        std::fs::write(&path, key.to_pkcs8_pem().unwrap()).unwrap();
        let encoding = key.encoding_key().unwrap();
        Self {
            key,
            encoding,
            path: path.to_string_lossy().into_owned(),
            dir,
        }
    }

    /// A valid token for `sub`, with optional `tsid`; `extra` overrides any claim.
    pub fn token(&self, sub: &str, tsid: Option<&str>, extra: serde_json::Value) -> String {
        let now = now();
        let mut claims = serde_json::json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": sub,
            "iat": now, "exp": now + 300, "jti": format!("jti-{sub}-{now}"),
            "client_id": "test-client",
        });
        if let Some(tsid) = tsid {
            claims["tsid"] = tsid.into();
        }
        if let serde_json::Value::Object(extra) = extra {
            for (k, v) in extra {
                claims[k] = v;
            }
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key.kid().to_owned());
        header.typ = Some("at+jwt".to_owned());
        jsonwebtoken::encode(&header, &claims, &self.encoding).unwrap()
    }
}

/// A loopback port nothing listens on (at the time of the call).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The standard Mode B config used by most tests; `storage` is a YAML flow mapping.
pub fn mode_b_config(key_path: &str, storage: &str) -> String {
    format!(
        r#"
server:
  grpcAddr: 127.0.0.1:0
  httpAddr: 127.0.0.1:0
  resourceUrl: {AUDIENCE}
  audit: {{ enabled: false }}
incomingAuth:
  type: oidc
  oidc: {{ issuer: "{ISSUER}", audience: "{AUDIENCE}" }}
authServer:
  issuer: {ISSUER}
  allowedAudiences: ["{AUDIENCE}"]
  signingKeyFile: {key_path}
  upstreams:
    - name: github
      type: oauth2
      oauth2: {{ authorizationEndpoint: "https://github.example/authorize", tokenEndpoint: "https://github.example/token", clientId: gh }}
    - name: okta
      type: oauth2
      oauth2: {{ authorizationEndpoint: "https://okta.example/authorize", tokenEndpoint: "https://okta.example/token", clientId: ok }}
  storage: {storage}
outgoingAuth:
  default: {{ type: unauthenticated }}
  backends:
    github: {{ type: upstream_inject, upstreamInject: {{ providerName: github }} }}
    okta: {{ type: upstream_inject, upstreamInject: {{ providerName: okta }} }}
    public: {{ type: unauthenticated }}
    static: {{ type: header_injection, headerInjection: {{ headerName: X-Api-Key, headerValue: static-secret-value }} }}
    exchange: {{ type: token_exchange, tokenExchange: {{ tokenUrl: "http://127.0.0.1:1/token", subjectProviderName: okta }} }}
"#
    )
}

/// A running mcp-authz.
pub struct TestServer {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub state: Arc<State>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start(yaml: &str) -> Self {
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_with_http(yaml, http).await
    }

    /// Starts with the HTTP listener given (when the config's issuer must name its port).
    pub async fn start_with_http(yaml: &str, http: TcpListener) -> Self {
        Self::start_full(yaml, http, &HashMap::new()).await
    }

    /// Starts with environment variables `env` (for `*Env` secrets).
    pub async fn start_with_env(yaml: &str, env: &HashMap<String, String>) -> Self {
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_full(yaml, http, env).await
    }

    async fn start_full(yaml: &str, http: TcpListener, env: &HashMap<String, String>) -> Self {
        let config = mcp_authz::config::parse_str(yaml).expect("test config parses");
        let (state, _warnings) = State::build(&config, env)
            .await
            .expect("test config is valid");
        let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (grpc_addr, http_addr) = (grpc.local_addr().unwrap(), http.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app::run(state.clone(), grpc, http, async {
            let _ = stopped.await;
        }));
        let task = tokio::spawn(async move {
            task.await.unwrap().unwrap();
        });
        Self {
            grpc: grpc_addr,
            http: http_addr,
            state,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn client(&self) -> AuthorizationClient<tonic::transport::Channel> {
        AuthorizationClient::connect(format!("http://{}", self.grpc))
            .await
            .unwrap()
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.http))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Stops the server and waits until both listeners have closed.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

/// A CheckRequest as Envoy builds it.
pub fn check_request(authorization: Option<&str>, backend: Option<&str>) -> CheckRequest {
    let mut headers: HashMap<String, String> = HashMap::from([
        (":authority".to_owned(), "mcp.example.com".to_owned()),
        (":method".to_owned(), "POST".to_owned()),
        (":path".to_owned(), "/mcp".to_owned()),
    ]);
    if let Some(a) = authorization {
        headers.insert("authorization".to_owned(), a.to_owned());
    }
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(HttpRequest {
                    method: "POST".to_owned(),
                    path: "/mcp".to_owned(),
                    headers,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            context_extensions: backend
                .map(|b| HashMap::from([("backend".to_owned(), b.to_owned())]))
                .unwrap_or_default(),
            ..Default::default()
        }),
    }
}

/// The HTTP request inside a CheckRequest built by [`check_request`].
pub fn http_of(request: &mut CheckRequest) -> &mut HttpRequest {
    request
        .attributes
        .as_mut()
        .unwrap()
        .request
        .as_mut()
        .unwrap()
        .http
        .as_mut()
        .unwrap()
}

/// Calls Check with `request`.
pub async fn send(server: &TestServer, request: CheckRequest) -> CheckResponse {
    server
        .client()
        .await
        .check(request)
        .await
        .expect("Check answers with a CheckResponse, never a gRPC error")
        .into_inner()
}

/// Calls Check.
pub async fn check(
    server: &TestServer,
    authorization: Option<&str>,
    backend: Option<&str>,
) -> CheckResponse {
    send(server, check_request(authorization, backend)).await
}

/// Writes an upstream token for (tsid, provider) into the server's store.
pub async fn store_token(
    server: &TestServer,
    tsid: &str,
    provider: &str,
    access: &str,
    expires_at: Option<u64>,
) {
    let store = server.state.runtime().pipeline.store.clone().unwrap();
    let token = UpstreamToken {
        access_token: Token::new(access),
        refresh_token: None,
        id_token: None,
        expires_at,
        subject: Some("upstream-user".to_owned()),
        client_id: Some("test-client".to_owned()),
    };
    store.put(&Tsid::new(tsid), provider, &token).await.unwrap();
}

pub fn ok(response: &CheckResponse) -> &OkHttpResponse {
    assert_eq!(response.status.as_ref().unwrap().code, 0, "{response:?}");
    match &response.http_response {
        Some(HttpResponse::OkResponse(ok)) => ok,
        other => panic!("expected ok_response, got {other:?}"),
    }
}

pub fn denied(response: &CheckResponse, grpc: i32, http: i32) -> &DeniedHttpResponse {
    assert_eq!(response.status.as_ref().unwrap().code, grpc);
    let denied = match (&response.http_response, grpc) {
        (Some(HttpResponse::ErrorResponse(d)), 14) => d,
        (Some(HttpResponse::DeniedResponse(d)), 16 | 7) => d,
        other => panic!("unexpected http_response for status {grpc}: {other:?}"),
    };
    assert_eq!(denied.status.as_ref().unwrap().code, http);
    denied
}

pub fn header<'a>(d: &'a DeniedHttpResponse, name: &str) -> Option<&'a str> {
    d.headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .find(|h| h.key == name)
        .map(|h| h.value.as_str())
}

/// Every log line of this test binary, at TRACE level, so tests can assert that no secret was
/// ever logged.
pub fn logs() -> &'static LogBuffer {
    static LOGS: std::sync::OnceLock<&'static LogBuffer> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer: &'static LogBuffer = Box::leak(Box::new(LogBuffer::default()));
        let _ = tracing_subscriber::fmt()
            .with_env_filter("trace,h2=info,tower=info,hyper=info,tonic=debug")
            .with_writer(move || buffer.clone_writer())
            .try_init();
        buffer
    })
}

#[derive(Default)]
pub struct LogBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

pub struct LogWriter(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    fn clone_writer(&self) -> LogWriter {
        LogWriter(self.0.clone())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Panics if any secret appears in any log line so far.
    pub fn assert_never_logged(&self, secrets: &[&str]) {
        let text = self.text();
        assert!(!text.is_empty(), "log capture is active");
        for s in secrets {
            assert!(!text.contains(s), "a secret value was logged");
        }
    }
}

/// The value of the unlabelled metric `name` in Prometheus text (0 when absent).
pub fn metric_value(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .map_or(0, |v| v.trim().parse().unwrap())
}
