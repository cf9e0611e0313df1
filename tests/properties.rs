// SPDX-License-Identifier: Apache-2.0
//! Property tests for everything that faces input: bearer extraction, JWT handling, config
//! loading, `WWW-Authenticate` construction and exchanged-token cache keys. The same entry
//! points are cargo-fuzz targets (`fuzz/`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use mcp_authz::authserver::SigningKey;
use mcp_authz::identity::{bearer_token, KeySource, Verifier, VerifierSettings};
use mcp_authz::response::Challenge;
use mcp_authz::secret::is_b64token;
use mcp_authz::strategy::token_exchange::{KeyParts, KeyPrefix};
use proptest::prelude::*;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

fn verifier() -> &'static Verifier {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let key = SigningKey::generate();
        Verifier::new(
            KeySource::Static(key.key_set().unwrap()),
            VerifierSettings {
                issuer: "https://issuer.example".to_owned(),
                audience: "https://mcp.example/mcp".to_owned(),
                leeway: Duration::from_secs(30),
                max_token_bytes: 8192,
                cache_capacity: 1000,
                required_typ: Some("at+jwt".to_owned()),
            },
        )
    })
}

fn b64token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._~+/=-]{1,200}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn bearer_extraction_never_panics_and_only_yields_b64tokens(header in any::<Option<String>>()) {
        if let Ok(token) = bearer_token(header.as_deref()) {
            prop_assert!(is_b64token(token));
            prop_assert!(header.as_deref().unwrap_or_default().contains(token));
        }
    }

    #[test]
    fn a_bearer_token_round_trips_whatever_the_scheme_case(token in b64token(), upper in any::<bool>(), spaces in 1usize..4) {
        let scheme = if upper { "BEARER" } else { "Bearer" };
        let header = format!("{scheme}{}{token}", " ".repeat(spaces));
        prop_assert_eq!(bearer_token(Some(&header)), Ok(token.as_str()));
    }

    #[test]
    fn arbitrary_text_never_verifies_and_never_panics(token in ".{0,300}") {
        prop_assert!(runtime().block_on(verifier().verify(&token)).is_err());
    }

    #[test]
    fn arbitrary_jwt_shaped_input_never_verifies(
        header in proptest::collection::hash_map("[a-z]{1,5}", "[ -~]{0,20}", 0..5),
        claims in proptest::collection::hash_map("[a-z]{1,5}", any::<i64>(), 0..8),
        signature in proptest::collection::vec(any::<u8>(), 0..80),
        alg in prop_oneof![Just("ES256"), Just("none"), Just("HS256"), Just("RS256"), Just("EdDSA")],
    ) {
        let mut header: serde_json::Map<String, serde_json::Value> =
            header.into_iter().map(|(k, v)| (k, v.into())).collect();
        header.insert("alg".to_owned(), alg.into());
        let claims: serde_json::Map<String, serde_json::Value> =
            claims.into_iter().map(|(k, v)| (k, v.into())).collect();
        let token = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::Value::Object(header).to_string()),
            URL_SAFE_NO_PAD.encode(serde_json::Value::Object(claims).to_string()),
            URL_SAFE_NO_PAD.encode(signature)
        );
        prop_assert!(runtime().block_on(verifier().verify(&token)).is_err());
    }

    #[test]
    fn config_loading_never_panics(text in "(?s).{0,400}") {
        if let Ok(config) = mcp_authz::config::parse_str(&text) {
            let _ = mcp_authz::config::validate(&config, &HashMap::<String, String>::new());
        }
    }

    #[test]
    fn config_shaped_yaml_never_panics(
        kind in prop_oneof![Just("unauthenticated"), Just("header_injection"), Just("upstream_inject"), Just("token_exchange"), Just("x")],
        name in "[ -~]{0,12}",
        value in "[ -~\\t\\r\\n]{0,40}",
        url in "[ -~]{0,40}",
    ) {
        let yaml = format!(
            "server: {{ resourceUrl: {url:?} }}\nincomingAuth: {{ type: anonymous }}\noutgoingAuth:\n  backends:\n    {name:?}: {{ type: {kind}, headerInjection: {{ headerName: {name:?}, headerValue: {value:?} }}, tokenExchange: {{ tokenUrl: {url:?} }} }}\n"
        );
        if let Ok(config) = mcp_authz::config::parse_str(&yaml) {
            let _ = mcp_authz::config::validate(&config, &HashMap::<String, String>::new());
        }
    }

    #[test]
    fn challenges_are_valid_header_values_whatever_the_description(
        realm in "[ -~]{0,40}",
        description in "\\PC{0,80}",
        control in proptest::collection::vec(0u8..32, 0..4),
    ) {
        let mut description = description;
        description.extend(control.into_iter().map(char::from));
        let challenge = Challenge::new(&realm, "https://mcp.example/.well-known/oauth-protected-resource");
        let value = challenge.with_error("invalid_token", &description, None);
        prop_assert!(http::HeaderValue::from_str(&value).is_ok(), "{value:?}");
        prop_assert!(!value.chars().any(char::is_control));
        // Every quoted-string is closed: unescaped quotes come in pairs.
        let mut unescaped = 0;
        let mut escaped = false;
        for c in value.chars() {
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => unescaped += 1,
                _ => escaped = false,
            }
        }
        prop_assert_eq!(unescaped % 2, 0);
    }

    #[test]
    fn distinct_cache_key_inputs_never_share_a_key(
        a in key_inputs(),
        b in key_inputs(),
    ) {
        let key = |k: &KeyInputs| {
            KeyPrefix::new(KeyParts {
                backend: &k.0,
                token_url: &k.1,
                client_id: k.2.as_deref(),
                audience: k.3.as_deref(),
                scopes: &k.4,
                subject_token_type: &k.5,
                subject_provider: k.6.as_deref(),
            })
            .key(k.7.as_str())
        };
        let normalized = |k: &KeyInputs| {
            let mut scopes = k.4.clone();
            scopes.sort();
            scopes.dedup();
            (k.0.clone(), k.1.clone(), k.2.clone(), k.3.clone(), scopes, k.5.clone(), k.6.clone(), k.7.clone())
        };
        prop_assert_eq!(normalized(&a) == normalized(&b), key(&a) == key(&b));
    }
}

type KeyInputs = (
    String,
    String,
    Option<String>,
    Option<String>,
    Vec<String>,
    String,
    Option<String>,
    String,
);

/// Small alphabets, so that distinct inputs that look alike (and equal ones) are common.
fn key_inputs() -> impl Strategy<Value = KeyInputs> {
    let s = || "[ab:]{0,3}";
    (
        s(),
        s(),
        proptest::option::of(s()),
        proptest::option::of(s()),
        proptest::collection::vec(s(), 0..3),
        s(),
        proptest::option::of(s()),
        s(),
    )
}
