// SPDX-License-Identifier: Apache-2.0
//! The login: `/oauth/authorize` checks the client's request and sends the user to the first
//! upstream; `/oauth/callback` takes each upstream's code, redeems it, and moves to the next
//! upstream. After the last one, every upstream's tokens are stored under a fresh `tsid` and the
//! client gets its code. Any failure tears the whole chain down: nothing is stored.
//!
//! Errors that cannot be trusted to reach the client (unknown client, unregistered redirect URI,
//! unknown `state`) are shown to the user as a 400 and never redirected (RFC 6749 §4.1.2.1).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State as AxumState};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::records::{keys, CodeRecord, LegSecrets, LegTokens, PendingLogin, Records};
use super::Handle;
use super::{parts, AuthServer, OAuthError};
use crate::oauth::provider::IdpError;
use crate::random;
use crate::scope::Scopes;
use crate::secret::{Token, Tsid};
use crate::time::unix_now;
use crate::upstream::{UpstreamStore, UpstreamToken};

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

/// An error page for the user (never a redirect).
fn error_page(error: &OAuthError) -> Response {
    (
        error.status,
        [(header::CACHE_CONTROL, "no-store")],
        format!("{}: {}\n", error.error, error.description),
    )
        .into_response()
}

fn see_other(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, "no-store"),
        ],
    )
        .into_response()
}

/// Sends the user back to the client with `params` (plus `state` and `iss`, RFC 9207).
fn back_to_client(
    server: &AuthServer,
    redirect_uri: &str,
    client_state: Option<&str>,
    params: &[(&str, &str)],
) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return error_page(&OAuthError::server_error());
    };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            query.append_pair(name, value);
        }
        if let Some(state) = client_state {
            query.append_pair("state", state);
        }
        query.append_pair("iss", &server.issuer);
    }
    see_other(url.as_str())
}

fn client_error(
    server: &AuthServer,
    redirect_uri: &str,
    client_state: Option<&str>,
    error: &str,
    description: &str,
) -> Response {
    back_to_client(
        server,
        redirect_uri,
        client_state,
        &[("error", error), ("error_description", description)],
    )
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
    let client_state = params.state.as_deref();
    let fail = |error: &str, description: &str| {
        client_error(server, &redirect_uri, client_state, error, description)
    };
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
    let pending = PendingLogin {
        client_id: client.client_id,
        redirect_uri: redirect_uri.clone(),
        code_challenge: challenge.to_owned(),
        client_state: params.state.clone(),
        resource,
        scope: granted,
        started_at: unix_now(),
        leg: 0,
        secrets: LegSecrets {
            verifier: Token::new(""),
            nonce: Token::new(""),
        },
        done: Vec::new(),
    };
    start_leg(server, store, pending).await
}

/// Sends the user to the upstream of `pending.leg`, with fresh PKCE, `state` and `nonce`.
async fn start_leg(
    server: &AuthServer,
    store: &UpstreamStore,
    mut pending: PendingLogin,
) -> Response {
    let Some(provider) = server.providers.get(pending.leg) else {
        return error_page(&OAuthError::server_error());
    };
    let elapsed = Duration::from_secs(unix_now().saturating_sub(pending.started_at));
    let remaining = server.lifetimes.login.saturating_sub(elapsed);
    if remaining.is_zero() {
        return client_error(
            server,
            &pending.redirect_uri,
            pending.client_state.as_deref(),
            "access_denied",
            "the login took too long: start again",
        );
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
            return client_error(
                server,
                &pending.redirect_uri,
                pending.client_state.as_deref(),
                "temporarily_unavailable",
                "an upstream identity provider is unavailable",
            );
        }
    };
    if let Err(e) = Records(store.kv())
        .put(&keys::pending(&upstream_state), &pending, remaining)
        .await
    {
        return client_error(
            server,
            &pending.redirect_uri,
            pending.client_state.as_deref(),
            e.error,
            &e.description,
        );
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
    let pending: PendingLogin = match Records(store.kv())
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
    let Some(provider) = server.providers.get(pending.leg) else {
        return error_page(&OAuthError::server_error());
    };
    let denied = |description: &str| {
        client_error(
            server,
            &pending.redirect_uri,
            pending.client_state.as_deref(),
            "access_denied",
            description,
        )
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
            return client_error(
                server,
                &pending.redirect_uri,
                pending.client_state.as_deref(),
                "temporarily_unavailable",
                "an upstream identity provider is unavailable",
            );
        }
        Err(e) => {
            tracing::debug!(error = %e, "login refused at an upstream token endpoint");
            return denied("the upstream identity provider refused the login");
        }
    };
    let now = unix_now();
    let mut pending = pending;
    if pending.leg == 0 {
        // §10: the first upstream says who the user is, and so which scopes they may hold.
        pending.scope = server.withhold(pending.scope.take(), user.as_ref());
    }
    let subject = user.map(|u| u.subject);
    pending.done.push(LegTokens {
        provider: provider.name().to_string(),
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        id_token: tokens.id_token,
        expires_at: tokens.expires_in.map(|d| now + d.as_secs()),
        subject,
    });
    pending.leg += 1;
    if pending.leg < server.providers.len() {
        return start_leg(server, store, pending).await;
    }
    finish(server, store, pending).await
}

/// Every leg succeeded: store the upstream tokens under a new `tsid` and give the client its code.
async fn finish(server: &AuthServer, store: &UpstreamStore, pending: PendingLogin) -> Response {
    let fail = |e: OAuthError| {
        client_error(
            server,
            &pending.redirect_uri,
            pending.client_state.as_deref(),
            e.error,
            &e.description,
        )
    };
    let tsid = Tsid::new(random::token(16));
    for (i, leg) in pending.done.iter().enumerate() {
        let record = UpstreamToken {
            access_token: leg.access_token.clone(),
            refresh_token: leg.refresh_token.clone(),
            id_token: leg.id_token.clone(),
            expires_at: leg.expires_at,
            subject: leg.subject.clone(),
            client_id: Some(pending.client_id.clone()),
        };
        if let Err(e) = store.put(&tsid, &leg.provider, &record).await {
            for written in &pending.done[..i] {
                let _ = store.delete(&tsid, &written.provider).await;
            }
            return fail(e.into());
        }
    }
    let subject = pending
        .done
        .iter()
        .find_map(|leg| leg.subject.clone())
        .unwrap_or_else(|| format!("user-{}", random::token(12)));
    let code = random::token(32);
    let record = CodeRecord {
        client_id: pending.client_id.clone(),
        redirect_uri: pending.redirect_uri.clone(),
        code_challenge: pending.code_challenge.clone(),
        resource: pending.resource.clone(),
        scope: pending.scope.clone(),
        tsid: tsid.clone(),
        subject,
    };
    if let Err(e) = Records(store.kv())
        .put(
            &keys::code(&random::digest(&code)),
            &record,
            server.lifetimes.code,
        )
        .await
    {
        for leg in &pending.done {
            let _ = store.delete(&tsid, &leg.provider).await;
        }
        return fail(e);
    }
    tracing::info!(
        client_id = %pending.client_id,
        subject = %record.subject,
        upstreams = pending.done.len(),
        "login completed"
    );
    back_to_client(
        server,
        &pending.redirect_uri,
        pending.client_state.as_deref(),
        &[("code", &code)],
    )
}
