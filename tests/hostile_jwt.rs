// SPDX-License-Identifier: Apache-2.0
//! Hostile JWTs a reviewer tries after the obvious forgeries (RFC 7515, 7519, 8725): each is
//! validly signed with our key, so only the rule under test can refuse it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{check, denied, header, logs, ok, TestKey, TestServer};
use jsonwebtoken::Algorithm;

/// `header` and `payload` (raw bytes, so they may be invalid UTF-8), signed with `key`.
fn signed(key: &TestKey, header: &[u8], payload: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature =
        jsonwebtoken::crypto::sign(input.as_bytes(), &key.encoding, Algorithm::ES256).unwrap();
    format!("{input}.{signature}")
}

fn claims() -> serde_json::Value {
    let now = common::now();
    serde_json::json!({
        "iss": common::ISSUER, "aud": common::AUDIENCE, "sub": "mallory",
        "iat": now, "exp": now + 300,
    })
}

#[tokio::test]
async fn validly_signed_tokens_that_bend_a_claim_or_header_rule_are_refused() {
    let key = TestKey::new();
    let config = common::mode_b_config(&key.path, "{ type: memory }");
    logs();
    let server = TestServer::start(&config).await;
    let es256 =
        serde_json::json!({"alg": "ES256", "kid": key.key.kid(), "typ": "at+jwt"}).to_string();
    let claims_text = claims().to_string();
    let with = |changes: serde_json::Value| {
        let mut c = claims();
        for (k, v) in changes.as_object().unwrap() {
            c[k] = v.clone();
        }
        signed(&key, es256.as_bytes(), c.to_string().as_bytes())
    };
    let with_header = |extra: serde_json::Value| {
        let mut h: serde_json::Value = serde_json::from_str(&es256).unwrap();
        for (k, v) in extra.as_object().unwrap() {
            h[k] = v.clone();
        }
        signed(&key, h.to_string().as_bytes(), claims_text.as_bytes())
    };
    // A 0xff byte where a string's first character was: not UTF-8.
    let invalid_utf8 = |text: &str, word: &[u8]| {
        let mut bytes = text.as_bytes().to_vec();
        let at = bytes.windows(word.len()).position(|w| w == word).unwrap();
        bytes[at] = 0xff;
        bytes
    };
    let invalid_utf8_payload = signed(
        &key,
        es256.as_bytes(),
        &invalid_utf8(&claims_text, b"mallory"),
    );
    let header_with_typ = serde_json::json!({"alg": "ES256", "kid": key.key.kid(), "typ": "JWT"});
    let invalid_utf8_header = signed(
        &key,
        &invalid_utf8(&header_with_typ.to_string(), b"JWT"),
        claims_text.as_bytes(),
    );
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "iss as an array holding our issuer",
            with(serde_json::json!({"iss": [common::ISSUER]})),
            "wrong issuer",
        ),
        (
            "iss as an array holding our issuer and another",
            with(serde_json::json!({"iss": ["https://evil.example", common::ISSUER]})),
            "wrong issuer",
        ),
        (
            "iss with a trailing slash",
            with(serde_json::json!({"iss": format!("{}/", common::ISSUER)})),
            "wrong issuer",
        ),
        (
            "iat as a string",
            with(serde_json::json!({"iat": common::now().to_string()})),
            "missing or invalid claim iat",
        ),
        (
            "exp as a string",
            with(serde_json::json!({"exp": (common::now() + 300).to_string()})),
            "missing or invalid claim exp",
        ),
        (
            "nbf as a string",
            with(serde_json::json!({"nbf": common::now().to_string()})),
            "missing or invalid claim nbf",
        ),
        (
            "crit naming an extension",
            with_header(serde_json::json!({"crit": ["exp"], "exp": 1})),
            "malformed token",
        ),
        (
            "crit empty",
            with_header(serde_json::json!({"crit": []})),
            "malformed token",
        ),
        (
            "crit null",
            with_header(serde_json::json!({"crit": null})),
            "malformed token",
        ),
        (
            "typ JWT on one of our tokens",
            with_header(serde_json::json!({"typ": "JWT"})),
            "wrong token type",
        ),
        (
            "no typ on one of our tokens",
            with_header(serde_json::json!({"typ": null})),
            "wrong token type",
        ),
        (
            "typ naming another JWT profile",
            with_header(serde_json::json!({"typ": "application/secevent+jwt"})),
            "wrong token type",
        ),
        (
            "invalid UTF-8 in the payload",
            invalid_utf8_payload,
            "malformed token",
        ),
        (
            "invalid UTF-8 in the header",
            invalid_utf8_header,
            "malformed token",
        ),
    ];
    for (case, token, description) in &cases {
        let response = check(&server, Some(&format!("Bearer {token}")), Some("github")).await;
        let d = denied(&response, 16, 401);
        let challenge = header(d, "www-authenticate").unwrap();
        assert!(
            challenge.contains(&format!("error_description=\"{description}\"")),
            "{case}: {challenge}"
        );
    }
    let tokens: Vec<&str> = cases.iter().map(|(_, t, _)| t.as_str()).collect();
    logs().assert_never_logged(&tokens);

    // The same construction with nothing bent is accepted: the cases fail for their rule.
    let fine = signed(&key, es256.as_bytes(), claims_text.as_bytes());
    let response = check(&server, Some(&format!("Bearer {fine}")), Some("public")).await;
    ok(&response);
    // `typ` compares as a media type: case aside, `application/` optional (RFC 7515 §4.1.9).
    let spelled = with_header(serde_json::json!({"typ": "Application/AT+JWT"}));
    let response = check(&server, Some(&format!("Bearer {spelled}")), Some("public")).await;
    ok(&response);
    server.stop().await;
}

/// A Mode A server trusting `key` through a JWKS file, with `extra` in `incomingAuth.oidc`.
async fn external_issuer(key: &TestKey, extra: &str) -> TestServer {
    let jwks = key.dir.path().join("jwks.json");
    std::fs::write(
        &jwks,
        serde_json::json!({ "keys": [key.key.public_jwk()] }).to_string(),
    )
    .unwrap();
    TestServer::start(&format!(
        r#"
server: {{ grpcAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", resourceUrl: "{aud}", audit: {{ enabled: false }} }}
incomingAuth: {{ type: oidc, oidc: {{ issuer: "{iss}", audience: "{aud}", jwksFile: "{jwks}"{extra} }} }}
outgoingAuth: {{ backends: {{ public: {{ type: unauthenticated }} }} }}
"#,
        aud = common::AUDIENCE,
        iss = common::ISSUER,
        jwks = jwks.display(),
    ))
    .await
}

#[tokio::test]
async fn an_external_issuers_typ_is_checked_only_when_configured() {
    logs();
    let key = TestKey::new();
    let header = |typ: &str| {
        serde_json::json!({"alg": "ES256", "kid": key.key.kid(), "typ": typ}).to_string()
    };
    let plain = signed(
        &key,
        header("JWT").as_bytes(),
        claims().to_string().as_bytes(),
    );
    let typed = signed(
        &key,
        header("at+jwt").as_bytes(),
        claims().to_string().as_bytes(),
    );

    let lenient = external_issuer(&key, "").await;
    for token in [&plain, &typed] {
        ok(&check(&lenient, Some(&format!("Bearer {token}")), Some("public")).await);
    }
    lenient.stop().await;

    let strict = external_issuer(&key, ", requireTyp: at+jwt").await;
    ok(&check(&strict, Some(&format!("Bearer {typed}")), Some("public")).await);
    let response = check(&strict, Some(&format!("Bearer {plain}")), Some("public")).await;
    let challenge = header_of(&response);
    assert!(
        challenge.contains("error_description=\"wrong token type\""),
        "{challenge}"
    );
    strict.stop().await;
}

fn header_of(response: &envoy_types::pb::envoy::service::auth::v3::CheckResponse) -> String {
    header(denied(response, 16, 401), "www-authenticate")
        .unwrap()
        .to_owned()
}
