// SPDX-License-Identifier: Apache-2.0
//! criterion: the in-process Check pipeline on its hot path (verified-token cache warm, memory
//! store; exchanged-token cache hit), the response encoding, one uncached ES256 verification, the
//! signature check alone with each P-256 implementation available here, the cache lookups, and
//! the decision audit (one Check with every allow written, one event queued).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{Algorithm, Header, Validation};
use mcp_authz::app::State;
use mcp_authz::authserver::SigningKey;
use mcp_authz::response::encode::encode;
use mcp_authz::secret::{Token, Tsid};
use mcp_authz::strategy::token_exchange::{KeyParts, KeyPrefix};
use mcp_authz::telemetry::audit::{now_ms, AuditEvent};
use mcp_authz::upstream::UpstreamToken;
use mcp_authz::wire::CheckInput;

const ISSUER: &str = "https://mcp.example.com";
const AUDIENCE: &str = "https://mcp.example.com/mcp";

fn config(key_path: &str, token_url: &str, audit: &str) -> String {
    format!(
        r#"
server: {{ resourceUrl: "{AUDIENCE}", audit: {audit} }}
incomingAuth: {{ oidc: {{ issuer: "{ISSUER}", audience: "{AUDIENCE}" }} }}
authServer:
  issuer: {ISSUER}
  allowedAudiences: ["{AUDIENCE}"]
  signingKeyFile: {key_path}
  upstreams:
    - {{ name: github, type: oauth2, oauth2: {{ authorizationEndpoint: "https://gh.example/a", tokenEndpoint: "https://gh.example/t", clientId: c }} }}
outgoingAuth:
  backends:
    github: {{ type: upstream_inject, upstreamInject: {{ providerName: github }} }}
    jira: {{ type: token_exchange, tokenExchange: {{ tokenUrl: "{token_url}", clientId: c, clientSecret: s, audience: jira, subjectProviderName: github }} }}
"#
    )
}

fn token(key: &SigningKey) -> String {
    token_for(key, 0)
}

/// A token of the same shape as [`token`] for identity `n`: its own `sub`, `jti` and `tsid`.
fn token_for(key: &SigningKey, n: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": format!("4d2b7e1c-0f3a-4c1e-9a55-{n:012x}"),
        "iat": now, "exp": now + 3600, "jti": format!("b1f0c9e2-55aa-4f0b-8e0c-{n:012x}"),
        "client_id": "mcp-client-1234",
        "tsid": if n == 0 { "Q2ZJ7K4V3M6N8P1R5T9W0X2Y4Z6A8C0E".to_owned() } else { format!("Q2ZJ7K4V3M6N8P1R{n:016X}") }, "name": "Alice Example", "email": "alice@example.com",
        "scope": "openid profile email mcp:tools mcp:resources",
    });
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some("at+jwt".to_owned());
    header.kid = Some(key.kid().to_owned());
    jsonwebtoken::encode(&header, &claims, &key.encoding_key().unwrap()).unwrap()
}

/// A token endpoint that issues one long-lived token, so the bench measures cache hits.
async fn token_endpoint() -> String {
    let app = axum::Router::new().route(
        "/token",
        axum::routing::post(|| async {
            axum::Json(serde_json::json!({
                "access_token": "eyJhbGciOiJFUzI1NiJ9.eyJhdWQiOiJqaXJhIn0.c2lnbmF0dXJlLWV4Y2hhbmdlZA",
                "token_type": "Bearer",
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                "expires_in": 3600,
            }))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = SigningKey::generate();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.pem");
    std::fs::write(&path, key.to_pkcs8_pem().unwrap()).unwrap();
    let token_url = rt.block_on(token_endpoint());
    let env: HashMap<String, String> = HashMap::new();
    let build = |audit: &str| {
        let yaml = config(&path.to_string_lossy(), &token_url, audit);
        let cfg = mcp_authz::config::parse_str(&yaml).unwrap();
        rt.block_on(State::build(&cfg, &env)).unwrap().0
    };
    let state = build("{ enabled: false }");
    // The shipped audit defaults (every allow written), to a file instead of stdout so the
    // report stays readable; the Check path's share is the same.
    let audited = build("{ file: /dev/null }");
    let upstream = UpstreamToken {
        access_token: Token::new("gho_16C7e42F292c6912E7710c838347Ae178B4a"),
        refresh_token: None,
        id_token: None,
        expires_at: None,
        subject: None,
        client_id: None,
    };
    for state in [&state, &audited] {
        rt.block_on(state.runtime().pipeline.store.as_ref().unwrap().put(
            &Tsid::new("Q2ZJ7K4V3M6N8P1R5T9W0X2Y4Z6A8C0E"),
            "github",
            &upstream,
        ))
        .unwrap();
    }
    let jwt = token(&key);
    let authorization = format!("Bearer {jwt}");
    let input = CheckInput {
        authorization: Some(&authorization),
        ambiguous_authorization: false,
        backend: Some("github"),
        headers: None,
        query: None,
        method: "POST",
        ..CheckInput::default()
    };
    let deadline = || tokio::time::Instant::now() + Duration::from_millis(200);

    c.bench_function("check/upstream_inject_warm", |b| {
        b.to_async(&rt).iter(|| async {
            mcp_authz::app::grpc::decide(&state, &state.runtime().pipeline, &input, deadline())
                .await
        })
    });
    c.bench_function("check/upstream_inject_warm_audited", |b| {
        b.to_async(&rt).iter(|| async {
            let pipeline = &audited.runtime().pipeline;
            mcp_authz::app::grpc::decide(&audited, pipeline, &input, deadline()).await
        })
    });
    let audit = audited.audit.as_ref().unwrap();
    let event = AuditEvent {
        ts_ms: now_ms(),
        decision: "allow",
        backend: Some(Arc::from("github")),
        strategy: "upstream_inject",
        subject: Some(Arc::from("user-1")),
        reason: None,
        grpc_status: 0,
        identity_cache_hit: true,
        latency_us: 2,
    };
    c.bench_function("audit/record", |b| b.iter(|| audit.record(event.clone())));
    let exchange_input = CheckInput {
        backend: Some("jira"),
        ..input
    };
    let warm = rt.block_on(mcp_authz::app::grpc::decide(
        &state,
        &state.runtime().pipeline,
        &exchange_input,
        deadline(),
    ));
    assert!(matches!(warm, mcp_authz::response::Decision::Allow { .. }));
    c.bench_function("check/token_exchange_cache_hit", |b| {
        b.to_async(&rt).iter(|| async {
            mcp_authz::app::grpc::decide(
                &state,
                &state.runtime().pipeline,
                &exchange_input,
                deadline(),
            )
            .await
        })
    });
    c.bench_function("check/upstream_inject_warm_with_encode", |b| {
        b.to_async(&rt).iter(|| async {
            encode(
                mcp_authz::app::grpc::decide(&state, &state.runtime().pipeline, &input, deadline())
                    .await,
            )
        })
    });

    let decoding = key.key_set().unwrap();
    let verifying = decoding.find(Some(key.kid())).unwrap().clone();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    c.bench_function("jwt/es256_verify_uncached", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<serde_json::Value>(&jwt, &verifying.key, &validation).unwrap()
        })
    });

    // The signature check alone, with each P-256 implementation available here.
    let (signing_input, signature) = jwt.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    let jwk = key.public_jwk();
    let coordinate = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
    let mut point = vec![4u8];
    point.extend(coordinate("x"));
    point.extend(coordinate("y"));
    c.bench_function("es256/p256_rust_crypto", |b| {
        use p256::ecdsa::signature::Verifier as _;
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
        let sig = p256::ecdsa::Signature::from_slice(&signature).unwrap();
        b.iter(|| key.verify(signing_input.as_bytes(), &sig).unwrap())
    });
    c.bench_function("es256/aws_lc_rs", |b| {
        let key = aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
            &point,
        );
        b.iter(|| key.verify(signing_input.as_bytes(), &signature).unwrap())
    });
    c.bench_function("es256/ring", |b| {
        let key = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            &point,
        );
        b.iter(|| key.verify(signing_input.as_bytes(), &signature).unwrap())
    });

    // A token never seen before, verified in full and inserted into the verified-token cache,
    // which fills as it runs (minting, in the untimed setup, gives each one its own identity).
    let fresh = state.runtime().pipeline.verifier.clone().unwrap();
    let mut n = 1u64;
    c.bench_function("jwt/fresh_verify_and_cache", |b| {
        b.iter_batched(
            || {
                n += 1;
                token_for(&key, n)
            },
            |t| rt.block_on(fresh.verify(&t)).unwrap(),
            criterion::BatchSize::SmallInput,
        )
    });

    // Cache lookups on their own.
    let verifier = state.runtime().pipeline.verifier.clone().unwrap();
    rt.block_on(verifier.verify(&jwt)).unwrap();
    c.bench_function("cache/verified_token_hit", |b| {
        b.to_async(&rt)
            .iter(|| async { verifier.verify(&jwt).await.unwrap() })
    });
    let scopes = ["read".to_owned()];
    let prefix = KeyPrefix::new(KeyParts {
        backend: "jira",
        token_url: "https://sts.example.com/token",
        client_id: Some("c"),
        audience: Some("jira"),
        scopes: &scopes,
        subject_token_type: "urn:ietf:params:oauth:token-type:access_token",
        subject_provider: Some("github"),
    });
    let subject = "gho_16C7e42F292c6912E7710c838347Ae178B4a";
    c.bench_function("cache/exchange_key", |b| b.iter(|| prefix.key(subject)));
}

criterion_group!(benches, bench);
criterion_main!(benches);
