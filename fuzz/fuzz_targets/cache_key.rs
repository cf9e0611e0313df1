// SPDX-License-Identifier: Apache-2.0
//! Exchanged-token cache keys: two inputs share a key exactly when they are equal (scopes as a
//! set).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_authz::strategy::token_exchange::{KeyParts, KeyPrefix};

type Input<'a> = (&'a str, &'a str, Option<&'a str>, Vec<String>, &'a str);

fn key(i: &Input<'_>) -> mcp_authz::strategy::token_exchange::CacheKey {
    KeyPrefix::new(KeyParts {
        backend: i.0,
        token_url: i.1,
        client_id: i.2,
        audience: None,
        scopes: &i.3,
        subject_token_type: "urn:ietf:params:oauth:token-type:access_token",
        subject_provider: None,
    })
    .key(i.4)
}

fn normalized(i: &Input<'_>) -> (String, String, Option<String>, Vec<String>, String) {
    let mut scopes = i.3.clone();
    scopes.sort();
    scopes.dedup();
    (
        i.0.into(),
        i.1.into(),
        i.2.map(Into::into),
        scopes,
        i.4.into(),
    )
}

fuzz_target!(|pair: (Input<'_>, Input<'_>)| {
    let (a, b) = pair;
    assert_eq!(normalized(&a) == normalized(&b), key(&a) == key(&b));
});
