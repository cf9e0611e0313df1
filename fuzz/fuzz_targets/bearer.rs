// SPDX-License-Identifier: Apache-2.0
//! `authorization` header → bearer credential: never panics, yields only b64tokens.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_authz::identity::bearer_token;
use mcp_authz::secret::is_b64token;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = std::str::from_utf8(data) {
        if let Ok(token) = bearer_token(Some(header)) {
            assert!(is_b64token(token));
        }
    }
});
