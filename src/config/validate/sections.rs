// SPDX-License-Identifier: Apache-2.0
//! Rules for the `server`, `incomingAuth` and `authServer` sections.

use std::net::SocketAddr;

use super::text::{absolute_url, is_dns_label};
use super::upstreams::{upstream_fields, user_naming};
use super::Violations;
use crate::config::spec::UpstreamSpec;
use crate::config::{AuthServerConfig, Config, Environment, IncomingAuthType, StorageType};

pub(super) fn server(config: &Config, v: &mut Violations) {
    let s = &config.server;
    for (field, addr) in [("grpcAddr", &s.grpc_addr), ("httpAddr", &s.http_addr)] {
        if addr.parse::<SocketAddr>().is_err() {
            v.error(
                "V-11",
                format!("server.{field}"),
                format!("{addr:?} is not a socket address (host:port)"),
            );
        }
    }
    if let Err(why) = absolute_url(&s.resource_url, false) {
        v.error("V-11", "server.resourceUrl", format!("resourceUrl {why}"));
    }
    if config.outgoing_auth.backend_context_key.is_empty() {
        v.error(
            "V-11",
            "outgoingAuth.backendContextKey",
            "backendContextKey must not be empty",
        );
    }
    if !(1024..=16 * 1024 * 1024).contains(&s.max_check_request_bytes) {
        v.error(
            "V-11",
            "server.maxCheckRequestBytes",
            "maxCheckRequestBytes must be between 1024 and 16777216",
        );
    }
    if !(0.0..=1.0).contains(&s.audit.allow_sample_rate) {
        v.error(
            "V-11",
            "server.audit.allowSampleRate",
            "allowSampleRate must be between 0.0 and 1.0",
        );
    }
}

/// Largest accepted clock leeway for incoming tokens.
const MAX_LEEWAY_SECONDS: u64 = 300;

pub(super) fn incoming(config: &Config, v: &mut Violations) {
    let incoming = &config.incoming_auth;
    if incoming.kind != IncomingAuthType::Oidc {
        return;
    }
    let Some(oidc) = &incoming.oidc else {
        v.error(
            "V-12",
            "incomingAuth.oidc",
            "incomingAuth.oidc is required when incomingAuth.type is oidc",
        );
        return;
    };
    if oidc.issuer.is_empty() {
        v.error("V-12", "incomingAuth.oidc.issuer", "issuer is required");
    }
    if oidc.audience.is_empty() {
        v.error("V-12", "incomingAuth.oidc.audience", "audience is required");
    }
    match (
        &oidc.jwks_url,
        &oidc.jwks_file,
        config.auth_server.is_some(),
    ) {
        (Some(_), Some(_), _) => v.error(
            "V-12",
            "incomingAuth.oidc",
            "jwksUrl and jwksFile are mutually exclusive",
        ),
        (None, None, false) => v.error(
            "V-12",
            "incomingAuth.oidc",
            "one of jwksUrl or jwksFile is required when there is no authServer",
        ),
        (Some(_), None, true) | (None, Some(_), true) => v.error(
            "V-12",
            "incomingAuth.oidc",
            "jwksUrl/jwksFile cannot be combined with authServer (its own key verifies tokens)",
        ),
        _ => {}
    }
    if let Some(url) = &oidc.jwks_url {
        if let Err(why) = absolute_url(url, true) {
            v.error(
                "V-12",
                "incomingAuth.oidc.jwksUrl",
                format!("jwksUrl {why}"),
            );
        }
    }
    if oidc.max_token_bytes == Some(0) {
        v.error(
            "V-12",
            "incomingAuth.oidc.maxTokenBytes",
            "maxTokenBytes must be greater than 0",
        );
    }
    match (&oidc.require_typ, config.auth_server.is_some()) {
        (Some(typ), _) if typ.trim().is_empty() => v.error(
            "V-12",
            "incomingAuth.oidc.requireTyp",
            "requireTyp must not be empty when set",
        ),
        (Some(_), true) => v.error(
            "V-12",
            "incomingAuth.oidc.requireTyp",
            "requireTyp is for external issuers: with authServer, tokens are always at+jwt",
        ),
        _ => {}
    }
    // A leeway of hours or years would quietly turn off expiry.
    if oidc.leeway_seconds.is_some_and(|s| s > MAX_LEEWAY_SECONDS) {
        v.error(
            "V-12",
            "incomingAuth.oidc.leewaySeconds",
            format!("leewaySeconds must be at most {MAX_LEEWAY_SECONDS}"),
        );
    }
}

/// Checks the `authServer` section; its upstreams, typed, when it breaks no rule.
pub(super) fn auth_server(
    server: &AuthServerConfig,
    env: &dyn Environment,
    v: &mut Violations,
) -> Option<Vec<UpstreamSpec>> {
    let mark = v.mark();
    if server.issuer.is_empty() {
        v.error(
            "V-05",
            "authServer.issuer",
            "auth server issuer is required",
        );
    } else if let Err(why) = absolute_url(&server.issuer, true) {
        v.error(
            "V-05",
            "authServer.issuer",
            format!("auth server issuer {why}"),
        );
    }
    if server.upstreams.is_empty() {
        v.error(
            "V-05",
            "authServer.upstreams",
            "auth server requires at least one upstream",
        );
    }
    if !server.upstreams.is_empty() && !server.upstreams.iter().any(|u| u.required) {
        v.error(
            "V-18",
            "authServer.upstreams",
            "at least one upstream must be required: a first login walks the required upstreams, and the first of them says who the user is",
        );
    }
    user_naming(server, v);
    if !server.previous_signing_key_files.is_empty() && server.signing_key_file.is_none() {
        v.error(
            "V-05",
            "authServer.previousSigningKeyFiles",
            "previousSigningKeyFiles needs signingKeyFile: an ephemeral key cannot be rotated",
        );
    }
    let mut seen: Vec<&str> = Vec::new();
    let mut upstreams = Vec::new();
    for (i, upstream) in server.upstreams.iter().enumerate() {
        let path = format!("authServer.upstreams[{i}]");
        if !is_dns_label(&upstream.name) {
            v.error(
                "V-05",
                format!("{path}.name"),
                format!(
                    "name {:?} must match ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$ (lowercase alphanumeric and hyphens)",
                    upstream.name
                ),
            );
        } else if seen.contains(&upstream.name.as_str()) {
            v.error(
                "V-05",
                format!("{path}.name"),
                format!("duplicate upstream name {:?}", upstream.name),
            );
        }
        seen.push(&upstream.name);
        upstreams.push(upstream_fields(&path, upstream, env, v));
    }
    if server.allowed_audiences.is_empty() {
        v.error(
            "V-13",
            "authServer.allowedAudiences",
            "auth server requires at least one allowed audience (MCP clients must send RFC 8707 resource parameter)",
        );
    } else if server.allowed_audiences.iter().any(String::is_empty) {
        v.error(
            "V-13",
            "authServer.allowedAudiences",
            "allowedAudiences must not contain an empty audience",
        );
    }
    for (field, value) in [
        (
            "accessTokenLifetimeSeconds",
            server.access_token_lifetime_seconds,
        ),
        (
            "refreshTokenLifetimeSeconds",
            server.refresh_token_lifetime_seconds,
        ),
        (
            "authorizationCodeLifetimeSeconds",
            server.authorization_code_lifetime_seconds,
        ),
        ("loginTimeoutSeconds", server.login_timeout_seconds),
    ] {
        if value == 0 {
            v.error(
                "V-05",
                format!("authServer.{field}"),
                format!("{field} must be at least 1"),
            );
        }
    }
    if server.storage.redis.is_none() && server.storage.kind == StorageType::Redis {
        v.error(
            "V-05",
            "authServer.storage.redis",
            "storage type redis requires the redis section",
        );
    }
    let upstreams = upstreams.into_iter().collect::<Option<Vec<_>>>()?;
    v.clean_since(mark).then_some(upstreams)
}
