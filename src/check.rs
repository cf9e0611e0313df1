// SPDX-License-Identifier: Apache-2.0
//! THE Check pipeline: backend → identity → strategy (which reads upstream tokens lazily) →
//! allow or error. This is the only place that knows the order of the stages; the wire edge
//! (`app::grpc`) turns the result into an answer and records it.

use std::sync::Arc;

use tokio::time::Instant;

use crate::config::validate::is_header_text;
use crate::identity::{bearer_token, Identity, IdentityError, Verifier};
pub use crate::response::CheckError;
use crate::response::{Challenge, Decision, Facts};
use crate::scope::Scopes;
use crate::strategy::{Backend, Backends, Mutations, StrategyContext, StrategyError};
use crate::upstream::connect::{ConnectGrant, ConnectSettings};
use crate::upstream::{Refresher, UpstreamError, UpstreamStore};
use crate::wire::elicitation::elicitable;
use crate::wire::mcp::tool_calls;
use crate::wire::CheckInput;

/// Longest header value we ever emit (a bearer token of 16 KiB plus its scheme).
const MAX_EMITTED_HEADER_BYTES: usize = 16 * 1024 + 16;

/// Everything one Check reads, built from a valid config (one snapshot per Check, so a Check
/// never sees half of a reload).
#[derive(Debug)]
pub struct Pipeline {
    /// `context_extensions` key naming the backend.
    pub backend_key: Box<str>,
    /// Strategies per backend.
    pub backends: Backends,
    /// JWT verifier (with its cache); `None` with anonymous incoming auth.
    pub verifier: Option<Arc<Verifier>>,
    /// Upstream token store; present with an authorization server.
    pub store: Option<Arc<UpstreamStore>>,
    /// Realm and metadata URL of our 401 challenges.
    pub challenge: Challenge,
    /// Refreshes expired upstream tokens in the Check path.
    pub refresher: Option<Refresher>,
    /// Where a caller missing a provider's token connects it (§11); with an authorization
    /// server.
    pub connect: Option<ConnectSettings>,
}

/// An allowed Check: the header changes for the backend and what dynamic metadata reports.
#[derive(Debug)]
pub struct Allow {
    /// Header changes.
    pub mutations: Mutations,
    /// Non-secret facts for access logs.
    pub facts: Facts,
}

impl From<Allow> for Decision {
    fn from(allow: Allow) -> Self {
        Decision::Allow {
            mutations: allow.mutations,
            facts: allow.facts,
        }
    }
}

/// One Check's result, with what its records need whichever way it went.
#[derive(Debug)]
pub struct Checked<'p> {
    /// The backend the route named (`None` when it is not configured).
    pub backend: Option<&'p Backend>,
    /// The verified caller's `sub`.
    pub subject: Option<Arc<str>>,
    /// Whether the verified-token cache answered; `None` when no token was verified.
    pub identity_cache_hit: Option<bool>,
    /// The verified caller (`None` when no token was verified).
    pub identity: Option<Arc<Identity>>,
    /// What the request needs when its tools add scopes to the backend's (`None` otherwise).
    pub needed: Option<Scopes>,
    /// The answer, or why there is none.
    pub result: Result<Allow, CheckError>,
}

impl Checked<'_> {
    /// §10: the `scope` a challenge for this Check names: what the backend requires, then what
    /// a valid token already holds (a client that replaces its scopes with the challenge's
    /// loses nothing). `None` without a routed backend or when both are empty.
    pub fn challenge_scope(&self) -> Option<String> {
        let backend = self.backend?;
        let none = Scopes::default();
        let held = self.identity.as_ref().map_or(&none, |i| &i.scopes);
        let needed = self.needed.as_ref().unwrap_or(&backend.required_scopes);
        needed.union_value(held)
    }
}

/// Runs one Check through `pipeline`. Recording it (metrics, audit) is the caller's job.
pub async fn check<'p>(
    pipeline: &'p Pipeline,
    input: &CheckInput<'_>,
    deadline: Instant,
) -> Checked<'p> {
    let backend = pipeline.backends.resolve(input.backend);
    let mut checked = Checked {
        backend,
        subject: None,
        identity_cache_hit: None,
        identity: None,
        needed: None,
        result: Err(CheckError::UnknownBackend),
    };
    if let Some(backend) = backend {
        checked.result = allow(pipeline, backend, input, deadline, &mut checked).await;
    }
    checked
}

async fn allow(
    pipeline: &Pipeline,
    backend: &Backend,
    input: &CheckInput<'_>,
    deadline: Instant,
    checked: &mut Checked<'_>,
) -> Result<Allow, CheckError> {
    // §10: the tools a request calls can add scopes. They are known before the token is
    // checked, so that a 401 already names every scope the request needs.
    let tools = if backend.tools.is_empty() {
        Ok(())
    } else {
        tool_calls(input).map(|calls| {
            checked.needed = backend
                .tools
                .needed(&backend.required_scopes, calls.iter().map(|c| &**c));
        })
    };
    let (identity, caller_token) = match &pipeline.verifier {
        Some(verifier) => {
            if input.ambiguous_authorization {
                return Err(CheckError::Identity(IdentityError::Malformed));
            }
            let token = bearer_token(input.authorization).map_err(CheckError::Identity)?;
            let (identity, hit) = verifier.verify(token).await.map_err(CheckError::Identity)?;
            checked.subject = Some(identity.subject.clone());
            checked.identity_cache_hit = Some(hit);
            checked.identity = Some(identity.clone());
            (Some(identity), Some(token))
        }
        None => (None, None),
    };
    tools.map_err(CheckError::Tool)?;
    if let Some(identity) = &identity {
        let needed = checked.needed.as_ref().unwrap_or(&backend.required_scopes);
        if !needed.is_subset(&identity.scopes) {
            return Err(CheckError::InsufficientScope);
        }
    }
    let ctx = StrategyContext {
        identity: identity.as_deref(),
        caller_token,
        store: pipeline.store.as_ref(),
        refresher: pipeline.refresher.as_ref(),
        deadline,
    };
    let mut mutations = match backend.strategy.apply(&ctx).await {
        Ok(mutations) => mutations,
        Err(e) => return Err(missing_provider(pipeline, identity.as_deref(), input, e).await),
    };
    check_emitted(&mutations)?;
    if let Some(headers) = input.headers {
        mutations.remove_spellings_of_set_header(headers.keys().map(String::as_str));
    }
    if let Some(query) = input.query {
        mutations.remove_credential_query_parameters(query);
    }
    Ok(Allow {
        mutations,
        facts: Facts {
            backend: backend.name.clone(),
            strategy: backend.strategy.kind(),
            subject: checked.subject.clone(),
            identity_cache_hit: checked.identity_cache_hit.unwrap_or(false),
        },
    })
}

/// §11: when the caller has no usable token for a provider, the provider is marked wanted (the
/// next login walks it), and a client that can show a URL is asked to open the connect page.
/// Any failure here leaves the original denial.
async fn missing_provider(
    pipeline: &Pipeline,
    identity: Option<&Identity>,
    input: &CheckInput<'_>,
    error: StrategyError,
) -> CheckError {
    let (
        StrategyError::Upstream(
            UpstreamError::NotFound(provider)
            | UpstreamError::ProviderRefused(provider)
            | UpstreamError::Corrupt { provider, .. },
        ),
        Some(identity),
        Some(store),
        Some(connect),
    ) = (&error, identity, &pipeline.store, &pipeline.connect)
    else {
        return CheckError::Strategy(error);
    };
    let Some(tsid) = &identity.tsid else {
        return CheckError::Strategy(error);
    };
    if let Err(e) = store.want(tsid, provider, connect.wanted_lifetime).await {
        tracing::warn!(provider = %provider, error = %e, "cannot mark a provider wanted");
    }
    let Some(request_id) = elicitable(input) else {
        return CheckError::Strategy(error);
    };
    let grant = ConnectGrant {
        tsid: tsid.clone(),
        subject: identity.subject.to_string(),
        provider: provider.to_string(),
    };
    match store.mint_connect(&grant, connect.id_lifetime).await {
        Ok(id) => CheckError::ConnectProvider {
            provider: provider.clone(),
            url: format!("{}{id}", connect.page),
            request_id,
        },
        Err(e) => {
            tracing::warn!(provider = %provider, error = %e, "cannot mint a connect id");
            CheckError::Strategy(error)
        }
    }
}

/// The last guard before a value reaches Envoy: printable, no CR/LF/NUL, bounded.
fn check_emitted(mutations: &Mutations) -> Result<(), CheckError> {
    match &mutations.set {
        Some(set) if set.value.len() > MAX_EMITTED_HEADER_BYTES || !is_header_text(&set.value) => {
            Err(CheckError::InvalidHeaderValue)
        }
        _ => Ok(()),
    }
}
