// SPDX-License-Identifier: Apache-2.0
//! Consent for a client a signed-in user has not used before (DESIGN.md §11). A login session
//! lets `/oauth/authorize` issue a code without visiting any upstream, so without this step any
//! registered client could send the user's browser there and receive a code for them (the MCP
//! security guidance's confused deputy). A client the user completed a login with is
//! remembered; any other is shown a page the user must confirm with a POST carrying a
//! single-use token that only that page holds.

use axum::extract::rejection::FormRejection;
use axum::extract::State as AxumState;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;

use super::login::next_leg;
use super::records::{keys, PendingLogin, Records};
use super::respond::{client_error, error_page};
use super::{parts, AuthServer, Handle, OAuthError};
use crate::random;
use crate::upstream::UpstreamStore;

/// The confirmation form.
#[derive(Debug, Deserialize)]
pub(super) struct ConsentForm {
    token: Option<String>,
    decision: Option<String>,
}

fn pending_key(token: &str) -> String {
    format!("as:consent-pending:{}", random::digest(token))
}

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

impl AuthServer {
    /// Whether `subject` has used `client_id` before.
    ///
    /// # Errors
    /// 503 when the store fails.
    pub(super) async fn consented(
        &self,
        store: &UpstreamStore,
        subject: &str,
        client_id: &str,
    ) -> Result<bool, OAuthError> {
        let consent: Option<bool> = Records(store.kv())
            .get(&keys::consent(subject, client_id))
            .await?;
        Ok(consent.is_some())
    }

    /// Remembers that `subject` uses `client_id`.
    ///
    /// # Errors
    /// 503 when the store fails.
    pub(super) async fn remember_consent(
        &self,
        store: &UpstreamStore,
        subject: &str,
        client_id: &str,
    ) -> Result<(), OAuthError> {
        Records(store.kv())
            .put(
                &keys::consent(subject, client_id),
                &true,
                self.lifetimes.refresh_token,
            )
            .await
    }
}

/// The page asking the user to confirm the client called `name` for `pending` (kept until
/// they answer).
pub(super) async fn ask(
    server: &AuthServer,
    store: &UpstreamStore,
    name: &str,
    pending: &PendingLogin,
) -> Response {
    let token = random::token(32);
    if let Err(e) = Records(store.kv())
        .put(&pending_key(&token), pending, server.lifetimes.login)
        .await
    {
        return error_page(&e);
    }
    let to = pending
        .client
        .as_ref()
        .and_then(|c| url::Url::parse(&c.redirect_uri).ok())
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let html = format!(
        "<!doctype html><meta charset=\"utf-8\"><title>Allow access?</title>\
         <p>The application <b>{name}</b> asks to act for you at the MCP servers of this \
         gateway. It receives its answer at <b>{to}</b>.</p>\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"token\" value=\"{token}\">\
         <button name=\"decision\" value=\"allow\">Allow</button> \
         <button name=\"decision\" value=\"deny\">Deny</button></form>",
        name = escape(name),
        to = escape(&to),
        action = escape(&server.url("/oauth/consent")),
    );
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; frame-ancestors 'none'",
            ),
        ],
        html,
    )
        .into_response()
}

/// `POST /oauth/consent`.
pub(super) async fn answer(
    AxumState(state): AxumState<Handle>,
    headers: HeaderMap,
    form: Result<Form<ConsentForm>, FormRejection>,
) -> Response {
    let (server, store) = match parts(&state) {
        Ok(parts) => parts,
        Err(e) => return error_page(&e),
    };
    let (server, store) = (&*server, &*store);
    let Ok(Form(form)) = form else {
        return error_page(&OAuthError::invalid_request("malformed consent form"));
    };
    let Some(token) = form.token.filter(|t| t.len() == random::token_len(32)) else {
        return error_page(&OAuthError::invalid_request("malformed consent form"));
    };
    let pending: PendingLogin = match Records(store.kv()).take(&pending_key(&token)).await {
        Ok(Some(pending)) => pending,
        Ok(None) => {
            return error_page(&OAuthError::invalid_request(
                "this page has expired or was already answered: start the login again",
            ))
        }
        Err(e) => return error_page(&e),
    };
    let (Some(client), Some(asked)) = (&pending.client, &pending.session) else {
        return error_page(&OAuthError::server_error());
    };
    // The answer must come from the browser that was asked.
    match server.session(store, &headers).await {
        Ok(Some(session)) if session.subject == asked.subject => {}
        Ok(_) => {
            return error_page(&OAuthError::access_denied(
                "this page was shown to another browser: start the login again",
            ))
        }
        Err(e) => return error_page(&e),
    }
    if form.decision.as_deref() != Some("allow") {
        server.ended(
            pending.flow(),
            "refused",
            Some(&pending),
            Some(&asked.subject),
            false,
        );
        return client_error(server, client, "access_denied", "the user denied access");
    }
    if let Err(e) = server
        .remember_consent(store, &asked.subject, &client.client_id)
        .await
    {
        return error_page(&e);
    }
    next_leg(server, store, pending).await
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn client_names_cannot_inject_markup() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\"\n"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }
}
