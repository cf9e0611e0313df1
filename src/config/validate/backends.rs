// SPDX-License-Identifier: Apache-2.0
//! Rules for each backend's strategy and for the token-exchange cache.

use super::secrets::{secret_source, SecretFields};
use super::text::{absolute_url, is_valid_header_value};
use super::{normalize_subject_token_type, Violations, RESTRICTED_HEADERS, STRATEGY_TYPES};
use crate::config::spec::{StrategySpec, TokenExchangeSpec};
use crate::config::{
    Environment, HeaderInjectionConfig, StrategyConfig, TokenExchangeCacheConfig,
    TokenExchangeConfig,
};

/// Checks one strategy; its typed form when it breaks no rule.
pub(super) fn strategy_fields(
    path: &str,
    s: &StrategyConfig,
    env: &dyn Environment,
    v: &mut Violations,
) -> Option<StrategySpec> {
    let mark = v.mark();
    if !STRATEGY_TYPES.contains(&s.kind.as_str()) {
        v.error(
            "V-08",
            format!("{path}.type"),
            format!(
                "type {:?} must be one of: {}",
                s.kind,
                STRATEGY_TYPES.join(", ")
            ),
        );
        return None;
    }
    let sections = [
        (
            "header_injection",
            "headerInjection",
            s.header_injection.is_some(),
        ),
        (
            "upstream_inject",
            "upstreamInject",
            s.upstream_inject.is_some(),
        ),
        (
            "token_exchange",
            "tokenExchange",
            s.token_exchange.is_some(),
        ),
    ];
    for (kind, section, present) in sections {
        if kind == s.kind && !present {
            v.error(
                "V-08",
                path,
                format!("type {kind} requires the {section} section"),
            );
        } else if kind != s.kind && present {
            v.error(
                "V-08",
                format!("{path}.{section}"),
                format!("{section} is set but type is {}", s.kind),
            );
        }
    }
    let spec = match s.kind.as_str() {
        "unauthenticated" => Some(StrategySpec::Unauthenticated),
        "header_injection" => s
            .header_injection
            .as_ref()
            .and_then(|h| header_injection(&format!("{path}.headerInjection"), h, env, v)),
        "upstream_inject" => s.upstream_inject.as_ref().map(|u| {
            if u.provider_name.is_empty() {
                v.error(
                    "V-06",
                    format!("{path}.upstreamInject.providerName"),
                    "upstream_inject requires a non-empty providerName",
                );
            }
            StrategySpec::UpstreamInject {
                provider: u.provider_name.clone(),
            }
        }),
        "token_exchange" => s
            .token_exchange
            .as_ref()
            .and_then(|t| token_exchange(&format!("{path}.tokenExchange"), t, env, v))
            .map(StrategySpec::TokenExchange),
        _ => None,
    };
    spec.filter(|_| v.clean_since(mark))
}

fn header_injection(
    path: &str,
    h: &HeaderInjectionConfig,
    env: &dyn Environment,
    v: &mut Violations,
) -> Option<StrategySpec> {
    let mark = v.mark();
    let name = h.header_name.as_str();
    if name.is_empty() {
        v.error(
            "V-08",
            format!("{path}.headerName"),
            "headerName is required",
        );
    } else if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        v.error(
            "V-08",
            format!("{path}.headerName"),
            format!("headerName {name:?} is not a valid HTTP header name"),
        );
    } else if RESTRICTED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        v.error(
            "V-08",
            format!("{path}.headerName"),
            format!("headerName {name:?} cannot be set by ext_authz"),
        );
    }
    let value = secret_source(
        "V-08",
        path,
        SecretFields {
            name: "headerValue",
            inline: Some(&h.header_value),
            env: &h.header_value_env,
            file: &h.header_value_file,
        },
        true,
        env,
        v,
    )?;
    if !is_valid_header_value(value.expose_secret()) {
        v.error(
            "V-08",
            format!("{path}.headerValue"),
            "header value must be non-empty printable text without CR, LF or NUL",
        );
    }
    v.clean_since(mark).then(|| StrategySpec::HeaderInjection {
        name: h.header_name.clone(),
        value,
    })
}

fn token_exchange(
    path: &str,
    t: &TokenExchangeConfig,
    env: &dyn Environment,
    v: &mut Violations,
) -> Option<TokenExchangeSpec> {
    let mark = v.mark();
    let mut token_url = None;
    if t.token_url.is_empty() {
        v.error("V-08", format!("{path}.tokenUrl"), "tokenUrl is required");
    } else {
        match absolute_url(&t.token_url, true) {
            Ok(url) => token_url = Some(url),
            Err(why) => v.error(
                "V-08",
                format!("{path}.tokenUrl"),
                format!("tokenUrl {why}"),
            ),
        }
    }
    let has_client_id = t.client_id.as_deref().is_some_and(|id| !id.is_empty());
    if !has_client_id {
        for (field, set) in [
            ("clientSecret", t.client_secret.is_some()),
            ("clientSecretEnv", t.client_secret_env.is_some()),
            ("clientSecretFile", t.client_secret_file.is_some()),
        ] {
            if set {
                v.error(
                    "V-08",
                    format!("{path}.{field}"),
                    format!("{field} cannot be provided without clientId"),
                );
            }
        }
    }
    let client_secret = secret_source(
        "V-08",
        path,
        SecretFields {
            name: "clientSecret",
            inline: Some(&t.client_secret),
            env: &t.client_secret_env,
            file: &t.client_secret_file,
        },
        false,
        env,
        v,
    );
    if let Some(kind) = &t.subject_token_type {
        if normalize_subject_token_type(kind).is_none() {
            v.error(
                "V-08",
                format!("{path}.subjectTokenType"),
                format!(
                    "invalid subjectTokenType {kind:?}: must be one of: access_token, id_token, jwt (or their urn:ietf:params:oauth:token-type URNs)"
                ),
            );
        }
    }
    if t.timeout_ms.is_some_and(|ms| ms == 0 || ms > 60_000) {
        v.error(
            "V-08",
            format!("{path}.timeoutMs"),
            "timeoutMs must be between 1 and 60000",
        );
    }
    if t.subject_provider_name.as_deref() == Some("") {
        v.error(
            "V-06",
            format!("{path}.subjectProviderName"),
            "subjectProviderName must not be empty when set",
        );
    }
    let subject_token_type =
        normalize_subject_token_type(t.subject_token_type.as_deref().unwrap_or("access_token"))?;
    Some(TokenExchangeSpec {
        token_url: token_url?,
        client_id: t.client_id.clone(),
        client_secret,
        audience: t.audience.clone(),
        scopes: t.scopes.clone(),
        subject_token_type,
        subject_provider: t.subject_provider_name.clone(),
        timeout: std::time::Duration::from_millis(t.timeout_ms.unwrap_or(2_000)),
    })
    .filter(|_| v.clean_since(mark))
}

pub(super) fn exchange_cache(c: &TokenExchangeCacheConfig, v: &mut Violations) {
    let path = "outgoingAuth.tokenExchangeCache";
    if c.max_entries == 0 {
        v.error(
            "V-14",
            format!("{path}.maxEntries"),
            "maxEntries must be at least 1",
        );
    }
    if c.refresh_ahead_percent > 99 {
        v.error(
            "V-14",
            format!("{path}.refreshAheadPercent"),
            "refreshAheadPercent must be 0 (never) to 99",
        );
    }
    if c.default_lifetime_seconds == 0 {
        v.error(
            "V-14",
            format!("{path}.defaultLifetimeSeconds"),
            "defaultLifetimeSeconds must be at least 1",
        );
    }
}
