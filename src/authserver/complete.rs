// SPDX-License-Identifier: Apache-2.0
//! The end of a walk (DESIGN.md §7, §11): who the user is, a refusal when an upstream account
//! belongs to another user, the upstream tokens stored under the user's `tsid` (a new one for
//! a first login), a login session for the browser, and then the MCP client's code or the
//! connect page's "return to your client".

use axum::http::StatusCode;
use axum::response::Response;

use super::records::{keys, CodeRecord, PendingLogin, Records, SessionRecord};
use super::respond::{back_to_client, login_failed, page, with_cookie};
use super::{AuthServer, OAuthError};
use crate::oauth::provider::UpstreamUser;
use crate::random;
use crate::secret::Tsid;
use crate::upstream::{UpstreamStore, UpstreamToken};

fn other_user() -> OAuthError {
    OAuthError::access_denied("this sign-in belongs to another user")
}

/// The user the legs done so far name: the subject of the first leg that has one.
fn named(pending: &PendingLogin) -> Option<&str> {
    pending.done.iter().find_map(|leg| leg.subject.as_deref())
}

/// §11 phishing rule, checked after every leg: a connect page opened without a session may only
/// go on while the person signing in is the user the page was made for; and in a session, the
/// provider that named the user must name them again.
///
/// # Errors
/// 403 `access_denied` when someone else is signing in.
pub(super) fn same_user(pending: &PendingLogin) -> Result<(), OAuthError> {
    if let (Some(grant), None) = (&pending.connect, &pending.session) {
        if named(pending).is_some_and(|s| s != grant.subject) {
            return Err(other_user());
        }
    }
    if let Some(SessionRecord {
        subject,
        user: Some((named_by, _)),
        ..
    }) = &pending.session
    {
        let renamed = pending
            .done
            .iter()
            .any(|leg| &leg.provider == named_by && leg.subject.as_ref() != Some(subject));
        if renamed {
            return Err(other_user());
        }
    }
    Ok(())
}

/// Who the walk is for: our `sub`, its `tsid`, and its token family.
fn identify(pending: &PendingLogin) -> Result<(String, Tsid, String), OAuthError> {
    if let Some(session) = &pending.session {
        let tsid = match &pending.connect {
            Some(grant) => grant.tsid.clone(),
            None => session.tsid.clone(),
        };
        return Ok((session.subject.clone(), tsid, session.family.clone()));
    }
    if let Some(grant) = &pending.connect {
        // Without a session, the walk must have named the page's user (not just not someone
        // else): an upstream that names nobody cannot prove who opened the page.
        if named(pending) != Some(grant.subject.as_str()) {
            return Err(other_user());
        }
        return Ok((grant.subject.clone(), grant.tsid.clone(), random::token(16)));
    }
    let subject =
        named(pending).map_or_else(|| format!("user-{}", random::token(12)), str::to_owned);
    Ok((subject, Tsid::new(random::token(16)), random::token(16)))
}

/// Every walked leg: stores its tokens, unless its upstream account is linked to another user.
async fn store_legs(
    server: &AuthServer,
    store: &UpstreamStore,
    pending: &PendingLogin,
    subject: &str,
    tsid: &Tsid,
) -> Result<(), OAuthError> {
    let records = Records(store.kv());
    for leg in &pending.done {
        if let Some(upstream) = &leg.subject {
            let owner: Option<String> = records.get(&keys::link(&leg.provider, upstream)).await?;
            if owner.is_some_and(|o| o != subject) {
                tracing::info!(provider = %leg.provider, "refused an upstream account linked to another user");
                return Err(other_user());
            }
        }
    }
    let client_id = pending.client.as_ref().map(|c| c.client_id.clone());
    for (i, leg) in pending.done.iter().enumerate() {
        let record = UpstreamToken {
            access_token: leg.access_token.clone(),
            refresh_token: leg.refresh_token.clone(),
            id_token: leg.id_token.clone(),
            expires_at: leg.expires_at,
            subject: leg.subject.clone(),
            client_id: client_id.clone(),
        };
        if let Err(e) = store.put(tsid, &leg.provider, &record).await {
            // A first login leaves nothing; a later one keeps what the user had before.
            if pending.session.is_none() && pending.connect.is_none() {
                for written in &pending.done[..i] {
                    let _ = store.delete(tsid, &written.provider).await;
                }
            }
            return Err(e.into());
        }
    }
    for leg in &pending.done {
        if let Err(e) = store.unwant(tsid, &leg.provider).await {
            tracing::warn!(provider = %leg.provider, error = %e, "cannot clear a wanted provider");
        }
        if let Some(upstream) = &leg.subject {
            records
                .put(
                    &keys::link(&leg.provider, upstream),
                    &subject,
                    server.lifetimes.refresh_token,
                )
                .await?;
        }
    }
    Ok(())
}

/// §10: the user `scopeGrants` judges: the session's, or this walk's first named one.
fn judged_user(pending: &PendingLogin) -> Option<&UpstreamUser> {
    match (&pending.session, &pending.user) {
        (Some(session), Some((fresh_by, fresh)))
            if session.user.as_ref().is_some_and(|(by, _)| by == fresh_by) =>
        {
            Some(fresh)
        }
        (Some(session), _) => session.user.as_ref().map(|(_, u)| u),
        (None, user) => user.as_ref().map(|(_, u)| u),
    }
}

/// Every leg succeeded: store, open a session, and answer the client or the connect page.
pub(super) async fn finish(
    server: &AuthServer,
    store: &UpstreamStore,
    pending: PendingLogin,
) -> Response {
    let flow = pending.flow();
    let fail = |e: OAuthError, subject: Option<&str>| {
        let result = if e.status.is_server_error() {
            "unavailable"
        } else {
            "refused"
        };
        server.ended(flow, result, Some(&pending), subject, false);
        login_failed(server, &pending, &e)
    };
    let (subject, tsid, family) = match identify(&pending) {
        Ok(who) => who,
        Err(e) => return fail(e, None),
    };
    if let Err(e) = store_legs(server, store, &pending, &subject, &tsid).await {
        return fail(e, Some(&subject));
    }
    let cookie = if pending.session.is_none() {
        let session = SessionRecord {
            subject: subject.clone(),
            tsid: tsid.clone(),
            family: family.clone(),
            user: pending.user.clone(),
        };
        match server.create_session(store, &session).await {
            Ok(cookie) => {
                server.metrics.session_created();
                Some(cookie)
            }
            Err(e) => return fail(e, Some(&subject)),
        }
    } else {
        None
    };
    let Some(client) = &pending.client else {
        let provider = pending.connect.as_ref().map_or("", |g| g.provider.as_str());
        tracing::info!(provider, legs = pending.done.len(), "provider connected");
        server.ended(
            flow,
            "completed",
            Some(&pending),
            Some(&subject),
            cookie.is_some(),
        );
        let text = format!(
            "{provider} is connected. You can close this page and return to your MCP client.\n"
        );
        return with_cookie(page(StatusCode::OK, &text), cookie.as_deref());
    };
    let code = random::token(32);
    let record = CodeRecord {
        client_id: client.client_id.clone(),
        redirect_uri: client.redirect_uri.clone(),
        code_challenge: client.code_challenge.clone(),
        resource: client.resource.clone(),
        scope: server.withhold(client.scope.clone(), judged_user(&pending)),
        tsid,
        subject,
        family,
    };
    if let Err(e) = Records(store.kv())
        .put(
            &keys::code(&random::digest(&code)),
            &record,
            server.lifetimes.code,
        )
        .await
    {
        return fail(e, Some(&record.subject));
    }
    if let Err(e) = server
        .remember_consent(store, &record.subject, &client.client_id)
        .await
    {
        return fail(e, Some(&record.subject));
    }
    server.ended(
        flow,
        "completed",
        Some(&pending),
        Some(&record.subject),
        cookie.is_some(),
    );
    tracing::info!(
        client_id = %client.client_id,
        legs = pending.done.len(),
        incremental = pending.session.is_some(),
        "login completed"
    );
    with_cookie(
        back_to_client(server, client, &[("code", &code)]),
        cookie.as_deref(),
    )
}
