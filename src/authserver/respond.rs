// SPDX-License-Identifier: Apache-2.0
//! The answers of the browser-facing endpoints: plain pages for the user, redirects to an
//! upstream or back to the MCP client (with `state` and RFC 9207 `iss`), and the session
//! cookie riding on any of them.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::records::{ClientLogin, PendingLogin};
use super::{AuthServer, OAuthError};

/// An error page for the user (never a redirect).
pub(super) fn error_page(error: &OAuthError) -> Response {
    page(
        error.status,
        &format!("{}: {}\n", error.error, error.description),
    )
}

/// A plain-text page.
pub(super) fn page(status: StatusCode, text: &str) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        text.to_owned(),
    )
        .into_response()
}

/// A 303 to `location`.
pub(super) fn see_other(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, "no-store"),
        ],
    )
        .into_response()
}

/// `response` carrying `cookie` (a `Set-Cookie` value), when there is one.
pub(super) fn with_cookie(mut response: Response, cookie: Option<&str>) -> Response {
    if let Some(value) = cookie.and_then(|c| HeaderValue::from_str(c).ok()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Sends the user back to the client with `params` (plus `state` and `iss`, RFC 9207).
pub(super) fn back_to_client(
    server: &AuthServer,
    client: &ClientLogin,
    params: &[(&str, &str)],
) -> Response {
    let Ok(mut url) = url::Url::parse(&client.redirect_uri) else {
        return error_page(&OAuthError::server_error());
    };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            query.append_pair(name, value);
        }
        if let Some(state) = &client.client_state {
            query.append_pair("state", state);
        }
        query.append_pair("iss", &server.issuer);
    }
    see_other(url.as_str())
}

/// An OAuth error for the client of `client`.
pub(super) fn client_error(
    server: &AuthServer,
    client: &ClientLogin,
    error: &str,
    description: &str,
) -> Response {
    back_to_client(
        server,
        client,
        &[("error", error), ("error_description", description)],
    )
}

/// How a login that cannot go on ends: back to its MCP client with the error, or, for a
/// connect page, a page for the user.
pub(super) fn login_failed(
    server: &AuthServer,
    pending: &PendingLogin,
    error: &OAuthError,
) -> Response {
    match &pending.client {
        Some(client) => client_error(server, client, error.error, &error.description),
        None => error_page(error),
    }
}
