// SPDX-License-Identifier: Apache-2.0
//! Rules that relate sections to each other: strategies against the authorization server and
//! the incoming-auth settings.

use super::text::is_metadata_target;
use super::Violations;
use crate::config::{Config, IncomingAuthType, StrategyConfig};

pub(super) fn cross_checks(
    config: &Config,
    strategies: &[(String, &StrategyConfig)],
    v: &mut Violations,
) {
    let server = config.auth_server.as_ref();
    let known: Vec<&str> = server
        .map(|s| s.upstreams.iter().map(|u| u.name.as_str()).collect())
        .unwrap_or_default();
    let known_list = if known.is_empty() {
        "none".to_owned()
    } else {
        known.join(", ")
    };
    let anonymous = config.incoming_auth.kind == IncomingAuthType::Anonymous;

    for (path, s) in strategies {
        if s.kind == "upstream_inject" && server.is_none() {
            v.error(
                "V-01",
                path.as_str(),
                "upstream_inject requires an embedded auth server (authServer must be configured)",
            );
        }
        if let (Some(u), Some(_)) = (&s.upstream_inject, server) {
            if !u.provider_name.is_empty() && !known.contains(&u.provider_name.as_str()) {
                v.error(
                    "V-02",
                    format!("{path}.upstreamInject.providerName"),
                    format!(
                        "providerName {:?} not found in authServer.upstreams (known: {known_list})",
                        u.provider_name
                    ),
                );
            }
        }
        if let Some(t) = s
            .token_exchange
            .as_ref()
            .filter(|_| s.kind == "token_exchange")
        {
            match (t.subject_provider_name.as_deref(), server) {
                (Some(name), None) if !name.is_empty() => v.error(
                    "V-03",
                    format!("{path}.tokenExchange.subjectProviderName"),
                    "subjectProviderName requires an embedded auth server (authServer must be configured)",
                ),
                (Some(name), Some(_)) if !name.is_empty() && !known.contains(&name) => v.error(
                    "V-02",
                    format!("{path}.tokenExchange.subjectProviderName"),
                    format!(
                        "subjectProviderName {name:?} not found in authServer.upstreams (known: {known_list})"
                    ),
                ),
                (None, Some(_)) => v.warning(
                    "V-03",
                    format!("{path}.tokenExchange"),
                    "token_exchange without subjectProviderName sends our own JWT to a third-party token endpoint",
                ),
                _ => {}
            }
        }
        if anonymous && needs_identity(s) {
            v.error(
                "V-10",
                path.as_str(),
                format!(
                    "{} needs a caller identity, but incomingAuth.type is anonymous",
                    s.kind
                ),
            );
        }
    }

    if let Some(server) = server {
        if config.incoming_auth.kind != IncomingAuthType::Oidc {
            v.error(
                "V-09",
                "incomingAuth.type",
                "embedded auth server requires OIDC incoming auth",
            );
        }
        if let Some(oidc) = &config.incoming_auth.oidc {
            if oidc.issuer != server.issuer {
                v.error(
                    "V-04",
                    "incomingAuth.oidc.issuer",
                    format!(
                        "auth server issuer {:?} != incomingAuth.oidc.issuer {:?}",
                        server.issuer, oidc.issuer
                    ),
                );
            }
            if !oidc.audience.is_empty() && !server.allowed_audiences.contains(&oidc.audience) {
                v.error(
                    "V-07",
                    "incomingAuth.oidc.audience",
                    format!(
                        "incomingAuth.oidc.audience {:?} not in authServer.allowedAudiences {:?}",
                        oidc.audience, server.allowed_audiences
                    ),
                );
            }
        }
    }
}

fn needs_identity(s: &StrategyConfig) -> bool {
    matches!(s.kind.as_str(), "upstream_inject" | "token_exchange")
}

/// V-15: the URLs we call (JWKS, upstream token, userinfo and discovery endpoints, token exchange) point at
/// no link-local address or cloud metadata service, unless `server.allowLinkLocalTargets` says so.
pub(super) fn outbound_targets(
    config: &Config,
    strategies: &[(String, &StrategyConfig)],
    v: &mut Violations,
) {
    if config.server.allow_link_local_targets {
        return;
    }
    let mut targets: Vec<(String, &str)> = Vec::new();
    if let Some(url) = config
        .incoming_auth
        .oidc
        .as_ref()
        .and_then(|o| o.jwks_url.as_ref())
    {
        targets.push(("incomingAuth.oidc.jwksUrl".to_owned(), url));
    }
    for (i, upstream) in config
        .auth_server
        .iter()
        .flat_map(|s| s.upstreams.iter().enumerate())
    {
        let path = format!("authServer.upstreams[{i}]");
        if let Some(o) = &upstream.oauth2 {
            targets.push((format!("{path}.oauth2.tokenEndpoint"), &o.token_endpoint));
            if let Some(info) = &o.user_info {
                targets.push((format!("{path}.oauth2.userInfo.url"), &info.url));
            }
        }
        if let Some(o) = &upstream.oidc {
            targets.push((format!("{path}.oidc.issuerUrl"), &o.issuer_url));
        }
    }
    for (path, s) in strategies {
        if let Some(t) = &s.token_exchange {
            targets.push((format!("{path}.tokenExchange.tokenUrl"), &t.token_url));
        }
    }
    for (path, raw) in targets {
        if url::Url::parse(raw).is_ok_and(|url| is_metadata_target(&url)) {
            v.error(
                "V-15",
                path,
                format!(
                    "{raw:?} is a link-local or cloud metadata address; set server.allowLinkLocalTargets to call it"
                ),
            );
        }
    }
}
