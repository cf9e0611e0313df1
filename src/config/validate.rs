// SPDX-License-Identifier: Apache-2.0
//! Boot validation (DESIGN.md §5): every rule runs on every load, every violation is collected,
//! and the output order is stable (rules in a fixed order, backends sorted by name).
//!
//! Rule ids follow ToolHive vMCP where it has one (V-01…V-09, V-13); V-10…V-12, V-14 and V-15 are
//! ours and listed in docs/configuration.md.

use std::fmt;

use std::sync::Arc;

use super::spec::{BackendSpec, Spec};
use super::{Config, Environment, StrategyConfig};

mod backends;
mod cross;
mod scopes;
mod secrets;
mod sections;
mod storage;
mod text;
mod upstreams;

pub use text::{is_header_text, is_metadata_target, is_valid_header_value};

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
    run(config, env).1
}

/// Checks every rule and, when none is broken, returns what the configuration means (with the
/// warnings to report).
///
/// # Errors
/// Every violation, errors and warnings, exactly as [`validate`] lists them.
pub fn check(
    config: &Config,
    env: &dyn Environment,
) -> Result<(Spec, Vec<Violation>), Vec<Violation>> {
    let (spec, violations) = run(config, env);
    if violations.iter().any(Violation::is_error) {
        return Err(violations);
    }
    match spec {
        Some(spec) => Ok((spec, violations)),
        // Every section yields its typed form unless it reported an error; this only guards
        // against a rule that forgets to.
        None => Err(vec![Violation {
            rule: "V-11",
            path: "config".to_owned(),
            message: "the configuration could not be read into its typed form".to_owned(),
            severity: Severity::Error,
        }]),
    }
}

fn run(config: &Config, env: &dyn Environment) -> (Option<Spec>, Vec<Violation>) {
    let mut v = Violations::default();
    let strategies = strategies(config);
    sections::server(config, &mut v);
    sections::incoming(config, &mut v);
    let upstreams = match &config.auth_server {
        Some(server) => sections::auth_server(server, env, &mut v),
        None => Some(Vec::new()),
    };
    let redis = config
        .auth_server
        .as_ref()
        .and_then(|s| Some((s.storage.kind, s.storage.redis.as_ref()?)))
        .and_then(|(kind, redis)| storage::redis(kind, redis, env, &mut v));
    let typed: Vec<_> = strategies
        .iter()
        .map(|(path, strategy)| backends::strategy_fields(path, strategy, env, &mut v))
        .collect();
    backends::exchange_cache(&config.outgoing_auth.token_exchange_cache, &mut v);
    cross::cross_checks(config, &strategies, &mut v);
    cross::outbound_targets(config, &strategies, &mut v);
    let (scopes_supported, scope_grants) = scopes::scopes(config, &strategies, &mut v);

    let spec = (|| {
        // `strategies` lists the default first, then the backends in name order.
        let mut typed = typed.into_iter();
        let mut next = |s: &StrategyConfig| {
            Some(BackendSpec {
                strategy: typed.next()??,
                required_scopes: s.required_scopes.clone(),
                tools: scopes::tool_rules(&s.tools),
            })
        };
        let default = match &config.outgoing_auth.default {
            Some(s) => Some(next(s)?),
            None => None,
        };
        let backends = config
            .outgoing_auth
            .backends
            .iter()
            .map(|(name, s)| Some((name.clone(), next(s)?)))
            .collect::<Option<Vec<_>>>()?;
        Some(Spec {
            raw: Arc::new(config.clone()),
            default,
            backends,
            scopes_supported,
            scope_grants,
            upstreams: upstreams?,
            redis,
        })
    })();
    (spec, v.0)
}

#[derive(Default)]
struct Violations(Vec<Violation>);

impl Violations {
    /// How many errors so far: pass to [`Violations::clean_since`].
    fn mark(&self) -> usize {
        self.0.iter().filter(|v| v.is_error()).count()
    }

    /// Whether no error was added since `mark`.
    fn clean_since(&self, mark: usize) -> bool {
        self.mark() == mark
    }

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

/// The URN for a `subjectTokenType` value, or `None` when it is not one we accept.
pub fn normalize_subject_token_type(kind: &str) -> Option<&'static str> {
    SUBJECT_TOKEN_TYPES
        .iter()
        .find(|(short, urn)| kind == *short || kind == *urn)
        .map(|(_, urn)| *urn)
}
