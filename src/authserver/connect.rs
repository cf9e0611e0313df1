// SPDX-License-Identifier: Apache-2.0
//! `GET /oauth/connect/{id}` (DESIGN.md §11): the page a URL-mode elicitation points at. The id
//! is single-use (the first open consumes it, whatever happens next) and bound to
//! (tsid, sub, provider). With a login session of that `sub` the page runs the provider's leg
//! at once; with a session of anyone else it refuses (the spec's phishing rule); without a
//! session the browser first signs in through the required upstreams, and the walk stops the
//! moment it names someone else.

use axum::extract::{Path, State as AxumState};
use axum::http::HeaderMap;
use axum::response::Response;

use super::login::next_leg;
use super::records::PendingLogin;
use super::respond::error_page;
use super::{parts, Handle, OAuthError};
use crate::random;

/// Random bytes of a connect id (as minted by [`crate::upstream::UpstreamStore::mint_connect`]).
const ID_BYTES: usize = 32;

fn gone() -> OAuthError {
    OAuthError::invalid_request(
        "this link has expired or was already used: return to your MCP client and try again",
    )
}

/// `GET /oauth/connect/{id}`.
pub(super) async fn connect(
    AxumState(state): AxumState<Handle>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (server, store) = match parts(&state) {
        Ok(parts) => parts,
        Err(e) => return error_page(&e),
    };
    let (server, store) = (&*server, &*store);
    let well_formed = id.len() == random::token_len(ID_BYTES)
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return error_page(&gone());
    }
    let grant = match store.take_connect(&id).await {
        Ok(Some(grant)) => grant,
        Ok(None) => {
            server.ended("connect", "expired", None, None, false);
            return error_page(&gone());
        }
        Err(e) => return error_page(&e.into()),
    };
    if server.provider(&grant.provider).is_none() {
        return error_page(&gone());
    }
    let session = match server.session(store, &headers).await {
        Ok(session) => session,
        Err(e) => return error_page(&e),
    };
    let walk = match &session {
        Some(session) if session.subject != grant.subject => {
            tracing::info!(provider = %grant.provider, "refused a connect link opened by another user");
            server.ended("connect", "refused", None, Some(&session.subject), false);
            return error_page(&OAuthError::access_denied(
                "this link was made for another user: sign in as that user, or return to your MCP client",
            ));
        }
        Some(_) => vec![grant.provider.clone()],
        None => {
            let mut walk = server.required();
            if !walk.contains(&grant.provider) {
                walk.push(grant.provider.clone());
            }
            walk
        }
    };
    let pending = PendingLogin::start(None, Some(grant), session, walk);
    next_leg(server, store, pending).await
}
