// SPDX-License-Identifier: Apache-2.0
//! §10 scope rules (V-16): every scope is an RFC 6749 scope-token listed once, a backend's
//! `requiredScopes` are among an explicit `authServer.scopesSupported`, and only a verified
//! token can hold a scope.

use super::Violations;
use crate::config::{Config, IncomingAuthType, StrategyConfig};
use crate::scope::is_scope_token;

/// Checks the scope lists; returns the scopes supported: the explicit list, or else every
/// scope a backend requires (sorted, each once).
pub(super) fn scopes(
    config: &Config,
    strategies: &[(String, &StrategyConfig)],
    v: &mut Violations,
) -> Vec<String> {
    let explicit = config
        .auth_server
        .as_ref()
        .and_then(|s| s.scopes_supported.as_ref());
    if let Some(list) = explicit {
        tokens("authServer.scopesSupported", list, v);
    }
    let anonymous = config.incoming_auth.kind == IncomingAuthType::Anonymous;
    let mut required: Vec<String> = Vec::new();
    for (path, s) in strategies {
        if s.required_scopes.is_empty() {
            continue;
        }
        let path = format!("{path}.requiredScopes");
        if anonymous {
            v.error(
                "V-16",
                path.as_str(),
                "requiredScopes needs incomingAuth type oidc: an anonymous caller holds no scope",
            );
        }
        tokens(&path, &s.required_scopes, v);
        for (i, scope) in s.required_scopes.iter().enumerate() {
            if explicit.is_some_and(|list| !list.contains(scope)) {
                v.error(
                    "V-16",
                    format!("{path}[{i}]"),
                    format!("scope {scope:?} is not in authServer.scopesSupported"),
                );
            }
        }
        required.extend(s.required_scopes.iter().cloned());
    }
    match explicit {
        Some(list) => list.clone(),
        None => {
            required.sort();
            required.dedup();
            required
        }
    }
}

/// Each entry of `list` is a scope-token, listed once.
fn tokens(path: &str, list: &[String], v: &mut Violations) {
    for (i, scope) in list.iter().enumerate() {
        if !is_scope_token(scope) {
            v.error(
                "V-16",
                format!("{path}[{i}]"),
                format!(
                    "{scope:?} is not an RFC 6749 scope token (visible ASCII except \" and \\, no spaces)"
                ),
            );
        } else if list[..i].contains(scope) {
            v.error(
                "V-16",
                format!("{path}[{i}]"),
                format!("scope {scope:?} is listed twice"),
            );
        }
    }
}
