// SPDX-License-Identifier: Apache-2.0
//! Boot validation (DESIGN.md §5): every rule runs on every load, every violation is collected,
//! and the output order is stable (rules in a fixed order, backends sorted by name).
//!
//! Rule ids follow ToolHive vMCP where it has one (V-01…V-09, V-13); V-10…V-12 and V-14 are ours and are
//! listed in docs/configuration.md.

use std::fmt;
use std::net::SocketAddr;

use super::{
    AuthServerConfig, Config, Environment, HeaderInjectionConfig, IncomingAuthType, InlineSecret,
    StorageType, StrategyConfig, TokenExchangeCacheConfig, TokenExchangeConfig, UpstreamType,
};

/// How serious a violation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The config is refused.
    Error,
    /// Reported; the config is accepted.
    Warning,
}

/// One broken rule: `<rule> <config path>: <message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Rule id, e.g. `V-02`.
    pub rule: &'static str,
    /// Dotted config path, e.g. `outgoingAuth.backends.github.upstreamInject.providerName`.
    pub path: String,
    /// What is wrong. Never contains a secret value.
    pub message: String,
    /// Error or warning.
    pub severity: Severity,
}

impl Violation {
    /// Whether this violation refuses the config.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        write!(f, "{} {}: {}", self.rule, self.path, self.message)
    }
}

/// Strategy type strings accepted in `type:`.
pub const STRATEGY_TYPES: [&str; 4] = [
    "unauthenticated",
    "header_injection",
    "upstream_inject",
    "token_exchange",
];

/// Short forms accepted for `subjectTokenType`, with the URN each stands for.
pub const SUBJECT_TOKEN_TYPES: [(&str, &str); 3] = [
    (
        "access_token",
        "urn:ietf:params:oauth:token-type:access_token",
    ),
    ("id_token", "urn:ietf:params:oauth:token-type:id_token"),
    ("jwt", "urn:ietf:params:oauth:token-type:jwt"),
];

/// Headers an ext_authz answer must never set: pseudo-headers, framing and routing headers.
const RESTRICTED_HEADERS: [&str; 7] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "te",
    "upgrade",
    "keep-alive",
];

/// Checks every rule and returns all violations (errors and warnings), in a stable order.
pub fn validate(config: &Config, env: &dyn Environment) -> Vec<Violation> {
    let mut v = Violations::default();
    let strategies = strategies(config);
    server(config, &mut v);
    incoming(config, &mut v);
    if let Some(server) = &config.auth_server {
        auth_server(server, env, &mut v);
    }
    for (path, strategy) in &strategies {
        strategy_fields(path, strategy, env, &mut v);
    }
    exchange_cache(&config.outgoing_auth.token_exchange_cache, &mut v);
    cross_checks(config, &strategies, &mut v);
    v.0
}

#[derive(Default)]
struct Violations(Vec<Violation>);

impl Violations {
    fn error(&mut self, rule: &'static str, path: impl Into<String>, message: impl Into<String>) {
        self.push(rule, path.into(), message.into(), Severity::Error);
    }

    fn warning(&mut self, rule: &'static str, path: impl Into<String>, message: impl Into<String>) {
        self.push(rule, path.into(), message.into(), Severity::Warning);
    }

    fn push(&mut self, rule: &'static str, path: String, message: String, severity: Severity) {
        self.0.push(Violation {
            rule,
            path,
            message,
            severity,
        });
    }
}

/// The default strategy first, then the backends in name order, each with its config path.
fn strategies(config: &Config) -> Vec<(String, &StrategyConfig)> {
    let out = &config.outgoing_auth;
    let default = out
        .default
        .as_ref()
        .map(|s| ("outgoingAuth.default".to_owned(), s));
    default
        .into_iter()
        .chain(
            out.backends
                .iter()
                .map(|(name, s)| (format!("outgoingAuth.backends.{name}"), s)),
        )
        .collect()
}

fn server(config: &Config, v: &mut Violations) {
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

fn incoming(config: &Config, v: &mut Violations) {
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
}

fn auth_server(server: &AuthServerConfig, env: &dyn Environment, v: &mut Violations) {
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
    let mut seen: Vec<&str> = Vec::new();
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
        upstream_fields(&path, upstream, env, v);
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
    if let Some(redis) = &server.storage.redis {
        if !(redis.url.starts_with("redis://") || redis.url.starts_with("rediss://")) {
            v.error(
                "V-05",
                "authServer.storage.redis.url",
                "url must start with redis:// or rediss://",
            );
        }
        if redis.timeout_ms == Some(0) {
            v.error(
                "V-05",
                "authServer.storage.redis.timeoutMs",
                "timeoutMs must be greater than 0",
            );
        }
    } else if server.storage.kind == StorageType::Redis {
        v.error(
            "V-05",
            "authServer.storage.redis",
            "storage type redis requires the redis section",
        );
    }
}

fn upstream_fields(
    path: &str,
    upstream: &super::UpstreamConfig,
    env: &dyn Environment,
    v: &mut Violations,
) {
    let (secret, secret_env, endpoints): (_, _, Vec<(&str, &str)>) = match upstream.kind {
        UpstreamType::Oauth2 => match &upstream.oauth2 {
            Some(o) => (
                &o.client_secret,
                &o.client_secret_env,
                vec![
                    (
                        "oauth2.authorizationEndpoint",
                        o.authorization_endpoint.as_str(),
                    ),
                    ("oauth2.tokenEndpoint", o.token_endpoint.as_str()),
                ],
            ),
            None => {
                v.error("V-05", path, "type oauth2 requires the oauth2 section");
                return;
            }
        },
        UpstreamType::Oidc => match &upstream.oidc {
            Some(o) => (
                &o.client_secret,
                &o.client_secret_env,
                vec![("oidc.issuerUrl", o.issuer_url.as_str())],
            ),
            None => {
                v.error("V-05", path, "type oidc requires the oidc section");
                return;
            }
        },
    };
    for (field, url) in endpoints {
        if let Err(why) = absolute_url(url, true) {
            v.error("V-05", format!("{path}.{field}"), format!("{field} {why}"));
        }
    }
    let section = if upstream.kind == UpstreamType::Oauth2 {
        "oauth2"
    } else {
        "oidc"
    };
    secret_source(
        "V-05",
        &format!("{path}.{section}"),
        ("clientSecret", secret),
        ("clientSecretEnv", secret_env),
        false,
        env,
        v,
    );
}

fn strategy_fields(path: &str, s: &StrategyConfig, env: &dyn Environment, v: &mut Violations) {
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
        return;
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
    match s.kind.as_str() {
        "header_injection" => {
            if let Some(h) = &s.header_injection {
                header_injection(&format!("{path}.headerInjection"), h, env, v);
            }
        }
        "upstream_inject" => {
            if let Some(u) = &s.upstream_inject {
                if u.provider_name.is_empty() {
                    v.error(
                        "V-06",
                        format!("{path}.upstreamInject.providerName"),
                        "upstream_inject requires a non-empty providerName",
                    );
                }
            }
        }
        "token_exchange" => {
            if let Some(t) = &s.token_exchange {
                token_exchange(&format!("{path}.tokenExchange"), t, env, v);
            }
        }
        _ => {}
    }
}

fn header_injection(
    path: &str,
    h: &HeaderInjectionConfig,
    env: &dyn Environment,
    v: &mut Violations,
) {
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
    if let Some(value) = secret_source(
        "V-08",
        path,
        ("headerValue", &h.header_value),
        ("headerValueEnv", &h.header_value_env),
        true,
        env,
        v,
    ) {
        if !is_valid_header_value(&value) {
            v.error(
                "V-08",
                format!("{path}.headerValue"),
                "header value must be non-empty printable text without CR, LF or NUL",
            );
        }
    }
}

fn token_exchange(path: &str, t: &TokenExchangeConfig, env: &dyn Environment, v: &mut Violations) {
    if t.token_url.is_empty() {
        v.error("V-08", format!("{path}.tokenUrl"), "tokenUrl is required");
    } else if let Err(why) = absolute_url(&t.token_url, true) {
        v.error(
            "V-08",
            format!("{path}.tokenUrl"),
            format!("tokenUrl {why}"),
        );
    }
    let has_client_id = t.client_id.as_deref().is_some_and(|id| !id.is_empty());
    if !has_client_id {
        for (field, set) in [
            ("clientSecret", t.client_secret.is_some()),
            ("clientSecretEnv", t.client_secret_env.is_some()),
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
    secret_source(
        "V-08",
        path,
        ("clientSecret", &t.client_secret),
        ("clientSecretEnv", &t.client_secret_env),
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
}

fn exchange_cache(c: &TokenExchangeCacheConfig, v: &mut Violations) {
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

/// The URN for a `subjectTokenType` value, or `None` when it is not one we accept.
pub fn normalize_subject_token_type(kind: &str) -> Option<&'static str> {
    SUBJECT_TOKEN_TYPES
        .iter()
        .find(|(short, urn)| kind == *short || kind == *urn)
        .map(|(_, urn)| *urn)
}

/// Checks an inline-or-env secret pair and returns the resolved value when there is exactly one.
fn secret_source(
    rule: &'static str,
    path: &str,
    (inline_field, inline): (&str, &Option<InlineSecret>),
    (env_field, env_name): (&str, &Option<String>),
    required: bool,
    env: &dyn Environment,
    v: &mut Violations,
) -> Option<String> {
    match (inline, env_name) {
        (Some(_), Some(_)) => {
            v.error(
                rule,
                path,
                format!("exactly one of {inline_field} and {env_field} must be set"),
            );
            None
        }
        (None, None) => {
            if required {
                v.error(
                    rule,
                    path,
                    format!("exactly one of {inline_field} and {env_field} must be set"),
                );
            }
            None
        }
        (Some(value), None) => Some(value.expose_secret().to_owned()),
        (None, Some(name)) => match env.var(name).filter(|value| !value.is_empty()) {
            Some(value) => Some(value),
            None => {
                v.error(
                    rule,
                    format!("{path}.{env_field}"),
                    format!("environment variable {name} is not set or empty"),
                );
                None
            }
        },
    }
}

fn cross_checks(config: &Config, strategies: &[(String, &StrategyConfig)], v: &mut Violations) {
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

/// `^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`, at most 63 characters.
fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    let edge = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.first().is_some_and(edge)
        && bytes.last().is_some_and(edge)
        && bytes.iter().all(|b| edge(b) || *b == b'-')
}

/// Printable text (visible ASCII, space, tab, or UTF-8 above 0x7f), non-empty, with no CR, LF
/// or NUL: what may go in an HTTP header value.
pub fn is_valid_header_value(value: &str) -> bool {
    value.len() <= 8192 && is_header_text(value)
}

/// Non-empty text that can be an HTTP header value (visible ASCII, space, tab, or UTF-8 above
/// 0x7f): no CR, LF, NUL or other control character. No length limit.
pub fn is_header_text(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80)
}

/// An absolute http(s) URL; plain http only on a loopback host when `https_only` is set.
fn absolute_url(raw: &str, https_only: bool) -> Result<url::Url, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("{raw:?} is not an absolute URL ({e})"))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if !https_only || is_loopback(&url) => Ok(url),
        "http" => Err(format!("{raw:?} must use https (http only for loopback)")),
        other => Err(format!("{raw:?} has unsupported scheme {other:?}")),
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}
