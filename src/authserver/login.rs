// SPDX-License-Identifier: Apache-2.0
//! The login: `/oauth/authorize` checks the client's request and walks the user through the
//! upstreams it needs (DESIGN.md §11): for a browser without a login session, every required
//! upstream; with one, only the required upstreams without a usable record and the providers a
//! Check has asked for since, or none, and the code is issued at once. `/oauth/callback` takes
//! each upstream's code, redeems it, and moves to the next leg; [`super::complete`] ends the
//! walk. Any failure tears the walk down: nothing is stored.
//!
//! Errors that cannot be trusted to reach the client (unknown client, unregistered redirect URI,
//! unknown `state`) are shown to the user as a 400 and never redirected (RFC 6749 §4.1.2.1).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State as AxumState};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

use super::records::{keys, ClientLogin, LegSecrets, LegTokens, PendingLogin, Records};
use super::respond::{client_error, error_page, login_failed, see_other};
use super::Handle;
use super::{complete, consent};
use super::{parts, AuthServer, OAuthError};
use crate::oauth::provider::{IdpError, UpstreamProvider};
use crate::random;
use crate::scope::Scopes;
use crate::secret::Token;
use crate::time::unix_now;
use crate::upstream::UpstreamStore;

/// Longest `state` a client may send (echoed back in the redirect).
const MAX_STATE_LENGTH: usize = 1024;
/// `/oauth/authorize` query parameters.
#[derive(Debug, Deserialize)]
pub(super) struct AuthorizeParams {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    state: Option<String>,
    scope: Option<String>,
    resource: Option<String>,
}

/// `/oauth/callback` query parameters (from an upstream).
#[derive(Debug, Deserialize)]
pub(super) struct CallbackParams {
    #[serde(default, with = "crate::secret::exposed_option")]
    code: Option<Token>,
    state: Option<String>,
    error: Option<String>,
}

/// The server, its store and the parsed query.
fn prologue<P>(
    state: &Handle,
    params: Result<Query<P>, QueryRejection>,
) -> Result<(Arc<AuthServer>, Arc<UpstreamStore>, P), OAuthError> {
    let (server, store) = parts(state)?;
    let Query(params) = params.map_err(|_| OAuthError::invalid_request("malformed query"))?;
    Ok((server, store, params))
}

/// `GET /oauth/authorize`.
pub(super) async fn authorize(
    AxumState(state): AxumState<Handle>,
    headers: HeaderMap,
    params: Result<Query<AuthorizeParams>, QueryRejection>,
) -> Response {
    let (server, store, params) = match prologue(&state, params) {
        Ok(parts) => parts,
        Err(e) => return error_page(&e),
    };
    let (server, store) = (&*server, &*store);
    let client_id = params.client_id.as_deref().unwrap_or_default();
    let client = match server.client(store, client_id).await {
        Ok(client) => client,
        Err(e) => return error_page(&e),
    };
    let redirect_uri = match (&params.redirect_uri, client.redirect_uris.as_slice()) {
        (Some(uri), registered) if registered.contains(uri) => uri.clone(),
        (None, [only]) => only.clone(),
        _ => {
            return error_page(&OAuthError::invalid_request(
                "redirect_uri does not match a registered redirect URI",
            ))
        }
    };
    let client_name = client
        .client_name
        .unwrap_or_else(|| client.client_id.clone());
    let mut request = ClientLogin {
        client_id: client.client_id,
        redirect_uri,
        code_challenge: String::new(),
        client_state: params.state.clone(),
        resource: String::new(),
        scope: None,
    };
    let fail = |error: &str, description: &str| client_error(server, &request, error, description);
    if params.response_type.as_deref() != Some("code") {
        return fail("unsupported_response_type", "response_type must be code");
    }
    let Some(challenge) = params
        .code_challenge
        .as_deref()
        .filter(|c| random::is_pkce_verifier(c))
    else {
        return fail("invalid_request", "code_challenge (PKCE S256) is required");
    };
    if params.code_challenge_method.as_deref() != Some("S256") {
        return fail("invalid_request", "code_challenge_method must be S256");
    }
    if params
        .state
        .as_ref()
        .is_some_and(|s| s.len() > MAX_STATE_LENGTH)
    {
        return fail("invalid_request", "state is too long");
    }
    let requested = match params.scope.as_deref().map(Scopes::parse) {
        None => Scopes::default(),
        Some(Some(requested)) => requested,
        Some(None) => {
            return fail(
                "invalid_scope",
                "scope must be space-separated RFC 6749 scope tokens",
            )
        }
    };
    // §10: what we support of what was asked; the token endpoint's `scope` says what that was.
    let granted = server.grantable(&requested);
    let resource = match (&params.resource, server.allowed_audiences.as_slice()) {
        (Some(resource), allowed) if allowed.contains(resource) => resource.clone(),
        (None, [only]) => only.clone(),
        (None, _) => return fail("invalid_target", "resource is required"),
        (Some(_), _) => return fail("invalid_target", "resource is not an allowed audience"),
    };
    request.code_challenge = challenge.to_owned();
    request.resource = resource;
    request.scope = granted;
    let session = match server.session(store, &headers).await {
        Ok(session) => session,
        Err(e) => return error_page(&e),
    };
    let walk = match &session {
        Some(session) => match server.missing(store, session).await {
            Ok(walk) => walk,
            Err(e) => return client_error(server, &request, e.error, &e.description),
        },
        None => server.required(),
    };
    let consent = match &session {
        Some(s) => {
            server
                .consented(store, &s.subject, &request.client_id)
                .await
        }
        None => Ok(true),
    };
    let pending = PendingLogin::start(Some(request), None, session, walk);
    match consent {
        Ok(true) => next_leg(server, store, pending).await,
        Ok(false) => consent::ask(server, store, &client_name, &pending).await,
        Err(e) => login_failed(server, &pending, &e),
    }
}

/// The next leg of `pending`, or its end when every leg is done.
pub(super) async fn next_leg(
    server: &AuthServer,
    store: &UpstreamStore,
    pending: PendingLogin,
) -> Response {
    if pending.leg < pending.walk.len() {
        start_leg(server, store, pending).await
    } else {
        complete::finish(server, store, pending).await
    }
}

/// The provider of `pending`'s current leg.
///
/// # Errors
/// `access_denied` when a reload removed it mid-login.
fn leg_provider<'s>(
    server: &'s AuthServer,
    pending: &PendingLogin,
) -> Result<&'s Arc<UpstreamProvider>, OAuthError> {
    pending
        .walk
        .get(pending.leg)
        .and_then(|p| server.provider(p))
        .ok_or_else(|| OAuthError::access_denied("start the login again"))
}

/// Sends the user to the upstream of `pending.leg`, with fresh PKCE, `state` and `nonce`.
async fn start_leg(
    server: &AuthServer,
    store: &UpstreamStore,
    mut pending: PendingLogin,
) -> Response {
    let provider = match leg_provider(server, &pending) {
        Ok(provider) => provider.clone(),
        Err(e) => return login_failed(server, &pending, &e),
    };
    let elapsed = Duration::from_secs(unix_now().saturating_sub(pending.started_at));
    let remaining = server.lifetimes.login.saturating_sub(elapsed);
    if remaining.is_zero() {
        let late = OAuthError::access_denied("the login took too long: start again");
        return login_failed(server, &pending, &late);
    }
    let upstream_state = random::token(32);
    pending.secrets = LegSecrets {
        verifier: Token::new(random::token(32)),
        nonce: Token::new(random::token(16)),
    };
    let url = provider
        .authorization_url(
            &server.callback_url(),
            &upstream_state,
            &random::pkce_s256(pending.secrets.verifier.expose_secret()),
            pending.secrets.nonce.expose_secret(),
        )
        .await;
    let url = match url {
        Ok(url) => url,
        Err(e) => {
            tracing::warn!(error = %e, "login cannot start an upstream leg");
            return login_failed(server, &pending, &OAuthError::upstream_unavailable());
        }
    };
    if let Err(e) = Records(store.kv())
        .put(&keys::pending(&upstream_state), &pending, remaining)
        .await
    {
        return login_failed(server, &pending, &e);
    }
    see_other(url.as_str())
}

/// `GET /oauth/callback`.
pub(super) async fn callback(
    AxumState(state): AxumState<Handle>,
    params: Result<Query<CallbackParams>, QueryRejection>,
) -> Response {
    let (server, store, params) = match prologue(&state, params) {
        Ok(parts) => parts,
        Err(e) => return error_page(&e),
    };
    let (server, store) = (&*server, &*store);
    let Some(upstream_state) = params.state.as_deref() else {
        return error_page(&OAuthError::invalid_request("state is missing"));
    };
    // Taken, not read: a replayed callback finds nothing.
    let mut pending: PendingLogin = match Records(store.kv())
        .take(&keys::pending(upstream_state))
        .await
    {
        Ok(Some(pending)) => pending,
        Ok(None) => {
            return error_page(&OAuthError::invalid_request(
                "unknown or expired state: start the login again",
            ))
        }
        Err(e) => return error_page(&e),
    };
    let provider = match leg_provider(server, &pending) {
        Ok(provider) => provider.clone(),
        Err(e) => return login_failed(server, &pending, &e),
    };
    let denied = |description: &'static str| {
        login_failed(server, &pending, &OAuthError::access_denied(description))
    };
    if params.error.is_some() {
        tracing::debug!(provider = %provider.name(), "upstream returned an error at the callback");
        return denied("the upstream identity provider did not authorize the login");
    }
    let Some(code) = params.code.as_ref().map(Token::expose_secret) else {
        return denied("the upstream identity provider returned no code");
    };
    let redeemed = provider
        .redeem_code(
            code,
            pending.secrets.verifier.expose_secret(),
            &server.callback_url(),
            pending.secrets.nonce.expose_secret(),
        )
        .await;
    let (tokens, user) = match redeemed {
        Ok(result) => result,
        Err(e @ IdpError::Unavailable { .. }) => {
            tracing::warn!(error = %e, "login failed at an upstream token endpoint");
            return login_failed(server, &pending, &OAuthError::upstream_unavailable());
        }
        Err(e) => {
            tracing::debug!(error = %e, "login refused at an upstream token endpoint");
            return denied("the upstream identity provider refused the login");
        }
    };
    let now = unix_now();
    let subject = user.as_ref().map(|u| u.subject.clone());
    if pending.user.is_none() {
        // §10: the first leg that names the user says which scopes they may hold.
        pending.user = user.map(|u| (provider.name().to_string(), u));
    }
    pending.done.push(LegTokens {
        provider: provider.name().to_string(),
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        id_token: tokens.id_token,
        expires_at: tokens.expires_in.map(|d| now + d.as_secs()),
        subject,
    });
    pending.leg += 1;
    server.metrics.leg(provider.name(), pending.flow());
    if let Err(e) = complete::same_user(&pending) {
        let named = pending.done.iter().find_map(|l| l.subject.as_deref());
        server.ended(pending.flow(), "refused", Some(&pending), named, false);
        return login_failed(server, &pending, &e);
    }
    next_leg(server, store, pending).await
}
