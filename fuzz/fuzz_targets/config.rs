// SPDX-License-Identifier: Apache-2.0
//! Arbitrary text as a config file: parsing and every validation rule never panic.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(config) = mcp_authz::config::parse_str(text) {
            let _ = mcp_authz::config::validate(&config, &HashMap::<String, String>::new());
        }
    }
});
