// SPDX-License-Identifier: Apache-2.0
//! Prometheus metrics: Checks by backend, strategy and outcome; Check latency; identity cache;
//! token-exchange cache and calls; upstream refreshes.
//! Labels are config names and fixed reason codes only.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// A shared string label value (a backend name), cloned without allocating.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name(Arc<str>);

impl EncodeLabelValue for Name {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, &self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CheckLabels {
    backend: Name,
    strategy: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CacheLabels {
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ExchangeLabels {
    backend: Name,
    result: &'static str,
}

/// What happened to one token-exchange lookup or call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeResult {
    /// A cached token was served.
    Hit,
    /// A cached rejection was served.
    NegativeHit,
    /// The Check found no entry and called the token endpoint.
    Miss,
    /// The Check found no entry and shared another Check's call.
    Coalesced,
    /// A background refresh replaced a token.
    Refresh,
    /// A call to the token endpoint failed.
    Failure,
}

impl ExchangeResult {
    fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::NegativeHit => "negative_hit",
            Self::Miss => "miss",
            Self::Coalesced => "coalesced",
            Self::Refresh => "refresh",
            Self::Failure => "failure",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RefreshLabels {
    provider: Name,
    result: &'static str,
}

/// Counts refreshes of upstream tokens in the Check path, by provider and result.
#[derive(Debug, Clone, Default)]
pub struct RefreshMetrics(Family<RefreshLabels, Counter>);

impl RefreshMetrics {
    /// Counts one outcome: `ok`, `refused`, `unavailable` or `replaced_elsewhere` (another
    /// replica refreshed first).
    pub fn record(&self, provider: &Arc<str>, result: &'static str) {
        self.0
            .get_or_create(&RefreshLabels {
                provider: Name(provider.clone()),
                result,
            })
            .inc();
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LoginLabels {
    flow: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LegLabels {
    provider: Name,
    flow: &'static str,
}

/// The authorization server's logins (DESIGN.md §11), by flow: `first` (no login session),
/// `incremental` (a session: only what is missing) or `connect` (a connect page).
#[derive(Debug, Clone, Default)]
pub struct LoginMetrics {
    logins: Family<LoginLabels, Counter>,
    legs: Family<LegLabels, Counter>,
    sessions: Counter,
}

impl LoginMetrics {
    /// Counts one walk's end: `completed`, `refused` (another user's page or account),
    /// `expired` (a connect link already used or too old) or `unavailable` (the store or a
    /// provider failed).
    pub fn login(&self, flow: &'static str, result: &'static str) {
        self.logins
            .get_or_create(&LoginLabels { flow, result })
            .inc();
    }

    /// Counts one upstream leg a user completed.
    pub fn leg(&self, provider: &Arc<str>, flow: &'static str) {
        self.legs
            .get_or_create(&LegLabels {
                provider: Name(provider.clone()),
                flow,
            })
            .inc();
    }

    /// Counts one login session created.
    pub fn session_created(&self) {
        self.sessions.inc();
    }
}

/// Handles for the token-exchange metrics, shared with the strategy.
#[derive(Debug, Clone)]
pub struct ExchangeMetrics {
    results: Family<ExchangeLabels, Counter>,
    duration: Histogram,
}

impl ExchangeMetrics {
    /// Counts one lookup or call for `backend`.
    pub fn record(&self, backend: &Arc<str>, result: ExchangeResult) {
        self.results
            .get_or_create(&ExchangeLabels {
                backend: Name(backend.clone()),
                result: result.as_str(),
            })
            .inc();
    }

    /// Records how long one call to a token endpoint took.
    pub fn observe(&self, elapsed: Duration) {
        self.duration.observe(elapsed.as_secs_f64());
    }
}

/// The metric handles.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    checks: Family<CheckLabels, Counter>,
    duration: Histogram,
    identity_cache: Family<CacheLabels, Counter>,
    exchange: ExchangeMetrics,
    refresh: RefreshMetrics,
    login: LoginMetrics,
    /// Audit events dropped because the writer fell behind.
    pub audit_dropped: Counter,
    /// Successful config reloads.
    pub reloads: Counter,
    /// Rejected config reloads (the running config stays).
    pub reload_failures: Counter,
    unknown_backend: Name,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("mcp_authz");
        let checks = Family::<CheckLabels, Counter>::default();
        registry.register(
            "checks",
            "Check calls by backend, strategy and outcome (allow or a denial reason)",
            checks.clone(),
        );
        let duration = Histogram::new(exponential_buckets(0.000_01, 2.0, 20));
        registry.register(
            "check_duration_seconds",
            "Time spent answering a Check",
            duration.clone(),
        );
        let identity_cache = Family::<CacheLabels, Counter>::default();
        registry.register(
            "identity_cache",
            "Verified-token cache lookups by result",
            identity_cache.clone(),
        );
        let exchange = ExchangeMetrics {
            results: Family::default(),
            duration: Histogram::new(exponential_buckets(0.000_1, 2.0, 18)),
        };
        registry.register(
            "token_exchange",
            "Token-exchange cache lookups and token-endpoint calls by backend and result",
            exchange.results.clone(),
        );
        registry.register(
            "token_exchange_request_duration_seconds",
            "Time of each call to a token endpoint",
            exchange.duration.clone(),
        );
        let refresh = RefreshMetrics::default();
        registry.register(
            "upstream_refresh",
            "Refreshes of expired upstream tokens in the Check path, by provider and result",
            refresh.0.clone(),
        );
        let login = LoginMetrics::default();
        registry.register(
            "logins",
            "Logins at the authorization server by flow (first, incremental, connect) and result",
            login.logins.clone(),
        );
        registry.register(
            "login_legs",
            "Upstream legs users completed, by provider and flow",
            login.legs.clone(),
        );
        registry.register(
            "login_sessions_created",
            "Login sessions (browser cookies) created",
            login.sessions.clone(),
        );
        let audit_dropped = Counter::default();
        registry.register(
            "audit_events_dropped",
            "Audit events dropped because the writer fell behind",
            audit_dropped.clone(),
        );
        let reloads = Counter::default();
        registry.register(
            "config_reloads",
            "Configuration reloads applied",
            reloads.clone(),
        );
        let reload_failures = Counter::default();
        registry.register(
            "config_reload_failures",
            "Configuration reloads rejected; the running configuration stayed",
            reload_failures.clone(),
        );
        Self {
            registry,
            checks,
            duration,
            identity_cache,
            exchange,
            refresh,
            login,
            audit_dropped,
            reloads,
            reload_failures,
            unknown_backend: Name(Arc::from("<unknown>")),
        }
    }

    /// Handles for the token-exchange strategy.
    pub fn exchange(&self) -> ExchangeMetrics {
        self.exchange.clone()
    }

    /// Handles for the upstream refresher.
    pub fn refresh(&self) -> RefreshMetrics {
        self.refresh.clone()
    }

    /// Handles for the authorization server.
    pub fn login(&self) -> LoginMetrics {
        self.login.clone()
    }

    /// Records one lookup in the verified-token cache.
    pub fn identity_cache(&self, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.identity_cache
            .get_or_create(&CacheLabels { result })
            .inc();
    }

    /// Records one Check: its backend (name and strategy kind, `None` when the route named an
    /// unknown backend), its outcome (`allow` or the denial's reason code) and its duration.
    pub fn record(
        &self,
        backend: Option<(&Arc<str>, &'static str)>,
        outcome: &'static str,
        elapsed: Duration,
    ) {
        let (name, strategy) = match backend {
            Some((name, kind)) => (Name(name.clone()), kind),
            None => (self.unknown_backend.clone(), "none"),
        };
        self.checks
            .get_or_create(&CheckLabels {
                backend: name,
                strategy,
                outcome,
            })
            .inc();
        self.duration.observe(elapsed.as_secs_f64());
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
