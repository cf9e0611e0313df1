// SPDX-License-Identifier: Apache-2.0
//! Arbitrary bytes as a JWT: never panics, never verifies.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mcp_authz::authserver::SigningKey;
use mcp_authz::identity::{KeySource, Verifier, VerifierSettings};

fn setup() -> &'static (tokio::runtime::Runtime, Verifier) {
    static SETUP: OnceLock<(tokio::runtime::Runtime, Verifier)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let key = SigningKey::generate();
        let verifier = Verifier::new(
            KeySource::Static(key.key_set().expect("key set")),
            VerifierSettings {
                issuer: "https://issuer.example".to_owned(),
                audience: "https://mcp.example/mcp".to_owned(),
                leeway: Duration::from_secs(30),
                max_token_bytes: 8192,
                cache_capacity: 16,
                required_typ: Some("at+jwt".to_owned()),
            },
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        (rt, verifier)
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        let (rt, verifier) = setup();
        assert!(rt.block_on(verifier.verify(token)).is_err());
    }
});
