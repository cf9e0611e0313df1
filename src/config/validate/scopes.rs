// SPDX-License-Identifier: Apache-2.0
//! §10 scope rules (V-16): every scope is an RFC 6749 scope-token listed once, the scopes a
//! backend or a tool rule requires are among an explicit `authServer.scopesSupported`, and only
//! a verified token can hold a scope. Tool rules (V-17): a name or `*` pattern, and at least one
//! scope each.

use super::Violations;
use crate::config::spec::ScopeGrant;
use crate::config::{
    AuthServerConfig, Config, IncomingAuthType, StrategyConfig, ToolRuleConfig, UpstreamType,
};
use crate::scope::{is_scope_token, Scopes};
use crate::tools::{ToolPattern, ToolRule, ToolRules, MAX_TOOL_NAME, RESERVED_PATTERN_CHARS};

/// Checks the scope lists; returns the scopes supported (the explicit list, or else every
/// scope a backend or tool rule requires, sorted, each once) and the grant rules.
pub(super) fn scopes(
    config: &Config,
    strategies: &[(String, &StrategyConfig)],
    v: &mut Violations,
) -> (Vec<String>, Vec<(String, ScopeGrant)>) {
    let explicit = config
        .auth_server
        .as_ref()
        .and_then(|s| s.scopes_supported.as_ref());
    if let Some(list) = explicit {
        tokens("authServer.scopesSupported", list, v);
    }
    let anonymous = config.incoming_auth.kind == IncomingAuthType::Anonymous;
    let mut required: Vec<String> = Vec::new();
    let mut required_list = |path: String, list: &[String], v: &mut Violations| {
        tokens(&path, list, v);
        for (i, scope) in list.iter().enumerate() {
            if explicit.is_some_and(|supported| !supported.contains(scope)) {
                v.error(
                    "V-16",
                    format!("{path}[{i}]"),
                    format!("scope {scope:?} is not in authServer.scopesSupported"),
                );
            }
        }
        required.extend(list.iter().cloned());
    };
    for (path, s) in strategies {
        for (field, used) in [
            ("requiredScopes", !s.required_scopes.is_empty()),
            ("tools", !s.tools.is_empty()),
        ] {
            if anonymous && used {
                v.error(
                    "V-16",
                    format!("{path}.{field}"),
                    format!(
                        "{field} needs incomingAuth type oidc: an anonymous caller holds no scope"
                    ),
                );
            }
        }
        required_list(format!("{path}.requiredScopes"), &s.required_scopes, v);
        for (i, rule) in s.tools.iter().enumerate() {
            let rule_path = format!("{path}.tools[{i}]");
            tool_name(&format!("{rule_path}.name"), &rule.name, v);
            if rule.required_scopes.is_empty() {
                v.error(
                    "V-17",
                    format!("{rule_path}.requiredScopes"),
                    "a tool rule must require at least one scope",
                );
            }
            required_list(
                format!("{rule_path}.requiredScopes"),
                &rule.required_scopes,
                v,
            );
        }
    }
    let supported = match explicit {
        Some(list) => list.clone(),
        None => {
            required.sort();
            required.dedup();
            required
        }
    };
    let grants = config
        .auth_server
        .as_ref()
        .map(|server| grants(server, &supported, v))
        .unwrap_or_default();
    (supported, grants)
}

/// `authServer.scopeGrants`: each for a supported scope, with exactly one well-formed rule, and
/// a first upstream whose ID token can be judged.
fn grants(
    server: &AuthServerConfig,
    supported: &[String],
    v: &mut Violations,
) -> Vec<(String, ScopeGrant)> {
    if server.scope_grants.is_empty() {
        return Vec::new();
    }
    let first_required = server.upstreams.iter().find(|u| u.required);
    let names_user = first_required.is_some_and(|u| match u.kind {
        UpstreamType::Oidc => true,
        UpstreamType::Oauth2 => u.oauth2.as_ref().is_some_and(|o| o.user_info.is_some()),
    });
    if !names_user {
        v.error(
            "V-16",
            "authServer.scopeGrants",
            "scopeGrants needs the first required upstream to say who the user is (oidc, or oauth2 with userInfo)",
        );
    }
    let mut out = Vec::new();
    for (scope, grant) in &server.scope_grants {
        let path = format!("authServer.scopeGrants.{scope}");
        if !supported.contains(scope) {
            v.error(
                "V-16",
                path.as_str(),
                format!("scope {scope:?} is not supported, so nobody is granted it"),
            );
        }
        let rule = match (&grant.subjects, &grant.claim) {
            (Some(subjects), None) if !subjects.is_empty() => {
                Some(ScopeGrant::Subjects(subjects.clone()))
            }
            (Some(_), None) => {
                v.error(
                    "V-16",
                    format!("{path}.subjects"),
                    "subjects must not be empty",
                );
                None
            }
            (None, Some(claim)) if !claim.name.is_empty() && !claim.values.is_empty() => {
                Some(ScopeGrant::Claim {
                    name: claim.name.clone(),
                    values: claim.values.clone(),
                })
            }
            (None, Some(_)) => {
                v.error(
                    "V-16",
                    format!("{path}.claim"),
                    "a claim rule needs a name and at least one value",
                );
                None
            }
            _ => {
                v.error(
                    "V-16",
                    path.as_str(),
                    "give exactly one of subjects and claim",
                );
                None
            }
        };
        out.extend(rule.map(|r| (scope.clone(), r)));
    }
    out
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

/// V-17: a tool name, or a pattern where `*` is any run of characters.
fn tool_name(path: &str, name: &str, v: &mut Violations) {
    let problem = if name.is_empty() {
        Some("a tool rule needs a name (a tool name, or a pattern with *)".to_owned())
    } else if name.chars().count() > MAX_TOOL_NAME {
        Some(format!("a tool name is at most {MAX_TOOL_NAME} characters"))
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some(format!("{name:?} holds a space or control character"))
    } else if let Some(c) = name.chars().find(|c| RESERVED_PATTERN_CHARS.contains(c)) {
        Some(format!("{name:?} holds {c:?}: only * is a wildcard"))
    } else if name.contains("**") {
        Some(format!("{name:?} holds **: one * already matches any run"))
    } else {
        None
    };
    if let Some(message) = problem {
        v.error("V-17", path, message);
    }
}

/// The typed rules of a backend whose `tools` broke no rule.
pub(super) fn tool_rules(rules: &[ToolRuleConfig]) -> ToolRules {
    ToolRules::new(
        rules
            .iter()
            .map(|r| ToolRule {
                pattern: ToolPattern::new(&r.name),
                required_scopes: r
                    .required_scopes
                    .iter()
                    .map(String::as_str)
                    .collect::<Scopes>(),
            })
            .collect(),
    )
}
