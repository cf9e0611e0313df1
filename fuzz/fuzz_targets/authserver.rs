// SPDX-License-Identifier: Apache-2.0
//! Arbitrary requests to the authorization server's endpoints, through the real HTTP router:
//! registration bodies, authorization and callback queries, token forms and their headers.
//! Nothing panics, and no input is answered with a 500.
#![no_main]

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

const CONFIG: &str = r#"
server: { grpcAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", resourceUrl: "http://127.0.0.1:10000/mcp", audit: { enabled: false } }
incomingAuth: { type: oidc, oidc: { issuer: "http://127.0.0.1:9090", audience: "http://127.0.0.1:10000/mcp" } }
authServer:
  issuer: http://127.0.0.1:9090
  allowedAudiences: ["http://127.0.0.1:10000/mcp"]
  upstreams:
    - { name: github, type: oauth2, oauth2: { authorizationEndpoint: "https://github.example/authorize", tokenEndpoint: "https://github.example/token", clientId: gh } }
outgoingAuth: { backends: { public: { type: unauthenticated } } }
"#;

const ENDPOINTS: [(&str, &str); 5] = [
    ("POST", "/oauth/register"),
    ("GET", "/oauth/authorize"),
    ("GET", "/oauth/callback"),
    ("POST", "/oauth/token"),
    ("GET", "/.well-known/oauth-authorization-server"),
];
const CONTENT_TYPES: [&str; 3] = [
    "application/json",
    "application/x-www-form-urlencoded",
    "text/plain",
];

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

fn router() -> &'static axum::Router {
    static ROUTER: OnceLock<axum::Router> = OnceLock::new();
    ROUTER.get_or_init(|| {
        let config = mcp_authz::config::parse_str(CONFIG).unwrap();
        let env: HashMap<String, String> = HashMap::new();
        let (state, _) = runtime()
            .block_on(mcp_authz::app::State::build(&config, &env))
            .unwrap();
        mcp_authz::app::http::router(Arc::clone(&state))
    })
}

fuzz_target!(|data: &[u8]| {
    // [endpoint, content type, query length, query…, authorization length, authorization…, body…]
    let [endpoint, content_type, rest @ ..] = data else {
        return;
    };
    let (method, path) = ENDPOINTS[usize::from(*endpoint) % ENDPOINTS.len()];
    let (query, rest) = split(rest);
    let (authorization, body) = split(rest);
    let Ok(query) = std::str::from_utf8(query) else {
        return;
    };
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!("{path}?{}", query.replace(['#', ' '], "")))
        .header(
            "content-type",
            CONTENT_TYPES[usize::from(*content_type) % CONTENT_TYPES.len()],
        );
    if !authorization.is_empty() {
        request = request.header("authorization", authorization);
    }
    let Ok(request) = request.body(Body::from(body.to_vec())) else {
        return; // not a valid URI or header: the HTTP server would never hand it over
    };
    let response = runtime().block_on(router().clone().oneshot(request)).unwrap();
    assert_ne!(response.status().as_u16(), 500, "{method} {path}");
});

/// The first byte is a length: that many bytes, and the rest.
fn split(data: &[u8]) -> (&[u8], &[u8]) {
    match data.split_first() {
        Some((n, rest)) => rest.split_at(usize::from(*n).min(rest.len())),
        None => (&[], &[]),
    }
}
