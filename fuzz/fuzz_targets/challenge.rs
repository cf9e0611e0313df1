// SPDX-License-Identifier: Apache-2.0
//! `WWW-Authenticate` construction from arbitrary realm, description and scope: always a valid
//! header value without control characters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_authz::response::Challenge;

fuzz_target!(|input: (&str, &str, Option<&str>)| {
    let (realm, description, scope) = input;
    let value = Challenge::new(
        realm,
        "https://mcp.example/.well-known/oauth-protected-resource",
    )
    .with_error("invalid_token", description, scope);
    assert!(!value.chars().any(char::is_control), "{value:?}");
});
