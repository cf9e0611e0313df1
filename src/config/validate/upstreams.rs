// SPDX-License-Identifier: Apache-2.0
//! Rules for each `authServer.upstreams[]` entry: its endpoints, its client secret, where the
//! user's subject comes from (DESIGN.md §12) and its extra authorization parameters (V-19); and
//! whether any required upstream can say who the user is (V-20).

use super::secrets::{secret_source, SecretFields};
use super::text::absolute_url;
use super::Violations;
use crate::config::spec::{UpstreamEndpoints, UpstreamSpec, UserInfoSpec};
use crate::config::{AuthServerConfig, Environment, UpstreamConfig, UpstreamType};

/// The authorization-request parameters we set ourselves (V-19).
const RESERVED_AUTHORIZATION_PARAMS: [&str; 8] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "scope",
];

/// Whether a login through `upstream` learns a stable subject.
fn names_the_user(upstream: &UpstreamConfig) -> bool {
    match upstream.kind {
        UpstreamType::Oidc => true,
        UpstreamType::Oauth2 => upstream
            .oauth2
            .as_ref()
            .is_some_and(|o| o.user_info.is_some()),
    }
}

/// V-20 (a warning): without a required upstream that names the user, every first login gets a
/// new random `sub`.
pub(super) fn user_naming(server: &AuthServerConfig, v: &mut Violations) {
    let required: Vec<_> = server.upstreams.iter().filter(|u| u.required).collect();
    if !required.is_empty() && !required.iter().any(|u| names_the_user(u)) {
        v.warning(
            "V-20",
            "authServer.upstreams",
            "no required upstream says who the user is (oidc, or oauth2 with userInfo): every first login gets a new random sub, so audit lines, sessions and scopeGrants cannot follow a user across logins",
        );
    }
}

/// Checks one upstream; its typed form when it breaks no rule.
pub(super) fn upstream_fields(
    path: &str,
    upstream: &UpstreamConfig,
    env: &dyn Environment,
    v: &mut Violations,
) -> Option<UpstreamSpec> {
    let mark = v.mark();
    let (section, (inline, env_name, file), client_id, scopes, client_auth) =
        match (upstream.kind, &upstream.oauth2, &upstream.oidc) {
            (UpstreamType::Oauth2, Some(o), _) => (
                "oauth2",
                (
                    &o.client_secret,
                    &o.client_secret_env,
                    &o.client_secret_file,
                ),
                &o.client_id,
                &o.scopes,
                o.token_endpoint_auth_method,
            ),
            (UpstreamType::Oidc, _, Some(o)) => (
                "oidc",
                (
                    &o.client_secret,
                    &o.client_secret_env,
                    &o.client_secret_file,
                ),
                &o.client_id,
                &o.scopes,
                o.token_endpoint_auth_method,
            ),
            (UpstreamType::Oauth2, None, _) => {
                v.error("V-05", path, "type oauth2 requires the oauth2 section");
                return None;
            }
            (UpstreamType::Oidc, _, None) => {
                v.error("V-05", path, "type oidc requires the oidc section");
                return None;
            }
        };
    let fields = SecretFields {
        name: "clientSecret",
        inline: Some(inline),
        env: env_name,
        file,
    };
    let mut url = |field: &str, raw: &str| match absolute_url(raw, true) {
        Ok(url) => Some(url),
        Err(why) => {
            v.error("V-05", format!("{path}.{field}"), format!("{field} {why}"));
            None
        }
    };
    let endpoints = match (&upstream.oauth2, &upstream.oidc) {
        (Some(o), _) if upstream.kind == UpstreamType::Oauth2 => {
            let authorization = url("oauth2.authorizationEndpoint", &o.authorization_endpoint);
            let token = url("oauth2.tokenEndpoint", &o.token_endpoint);
            let user_info = o
                .user_info
                .as_ref()
                .map(|u| (url("oauth2.userInfo.url", &u.url), &u.subject_field));
            // `Some(None)`: no userInfo; `None`: a userInfo that broke a rule.
            let user_info = match user_info {
                Some((url, field)) => {
                    user_info_spec(path, url, field, v).map(|i| Some(Box::new(i)))
                }
                None => Some(None),
            };
            match (authorization, token, user_info) {
                (Some(authorization), Some(token), Some(user_info)) => {
                    Some(UpstreamEndpoints::OAuth2 {
                        authorization,
                        token,
                        user_info,
                    })
                }
                _ => None,
            }
        }
        (_, Some(o)) => {
            let issuer = url("oidc.issuerUrl", &o.issuer_url);
            let claim = o.subject_claim.clone().unwrap_or_else(|| "sub".to_owned());
            if claim.is_empty() {
                v.error(
                    "V-05",
                    format!("{path}.oidc.subjectClaim"),
                    "subjectClaim must not be empty",
                );
            }
            issuer.map(|_| UpstreamEndpoints::Oidc {
                issuer: o.issuer_url.clone(),
                subject_claim: claim,
            })
        }
        _ => None,
    };
    let client_secret = secret_source("V-05", &format!("{path}.{section}"), fields, false, env, v);
    for name in upstream.additional_authorization_params.keys() {
        let reserved = RESERVED_AUTHORIZATION_PARAMS
            .iter()
            .any(|r| r.eq_ignore_ascii_case(name));
        if reserved || name.is_empty() {
            v.error(
                "V-19",
                format!("{path}.additionalAuthorizationParams.{name}"),
                format!("{name:?} is a parameter mcp-authz sets itself"),
            );
        }
    }
    let endpoints = endpoints?;
    v.clean_since(mark).then(|| UpstreamSpec {
        name: upstream.name.clone(),
        client_id: client_id.clone(),
        client_secret,
        client_auth,
        scopes: scopes.clone(),
        required: upstream.required,
        authorization_params: upstream
            .additional_authorization_params
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        endpoints,
    })
}

/// `userInfo`: its URL (already checked) and a dotted `subjectField` with no empty step.
fn user_info_spec(
    path: &str,
    url: Option<url::Url>,
    subject_field: &str,
    v: &mut Violations,
) -> Option<UserInfoSpec> {
    let steps: Vec<String> = subject_field.split('.').map(str::to_owned).collect();
    if steps.iter().any(String::is_empty) {
        v.error(
            "V-05",
            format!("{path}.oauth2.userInfo.subjectField"),
            format!(
                "subjectField {subject_field:?} must be a dotted path of member names (e.g. id or data.user.id)"
            ),
        );
        return None;
    }
    Some(UserInfoSpec {
        url: url?,
        subject_field: steps,
    })
}
