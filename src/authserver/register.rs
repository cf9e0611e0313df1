// SPDX-License-Identifier: Apache-2.0
//! RFC 7591 dynamic client registration: MCP clients register themselves before the first login.

use std::net::IpAddr;

use axum::extract::State as AxumState;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;

use super::records::{keys, ClientRecord, Records, CLIENT_TTL};
use super::Handle;
use super::{parts, OAuthError};
use crate::random;

const MAX_REDIRECT_URIS: usize = 10;
const MAX_URI_LENGTH: usize = 2000;
const MAX_NAME_LENGTH: usize = 200;

/// The registration request; unknown members are ignored (RFC 7591 §2).
#[derive(Debug, Deserialize)]
pub(super) struct RegistrationRequest {
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    response_types: Option<Vec<String>>,
    #[serde(default)]
    application_type: Option<String>,
}

/// Whether a client may use `uri` as a redirect URI: https, http on loopback (RFC 8252 §7.3), or
/// a private-use scheme with a dot (RFC 8252 §7.1); never a fragment or userinfo, and only in its
/// canonical form (what the browser is sent to is exactly what was registered, but for the `/`
/// of an empty path), so no two spellings can name one URI.
pub(super) fn is_allowed_redirect_uri(uri: &str) -> bool {
    let Ok(url) = url::Url::parse(uri) else {
        return false;
    };
    if url.fragment().is_some() || uri.len() > MAX_URI_LENGTH {
        return false;
    }
    if !url.username().is_empty() || url.password().is_some() {
        return false;
    }
    let canonical = url.as_str();
    if canonical != uri && canonical.strip_suffix('/') != Some(uri) {
        return false;
    }
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
            None => false,
        },
        scheme => scheme.contains('.'),
    }
}

/// `POST /oauth/register`.
pub(super) async fn register(
    AxumState(state): AxumState<Handle>,
    request: Result<Json<RegistrationRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<impl IntoResponse, OAuthError> {
    let (_, store) = parts(&state)?;
    let store = &*store;
    let Json(request) = request.map_err(|_| {
        OAuthError::invalid_client_metadata("body must be a JSON client metadata object")
    })?;
    if request.redirect_uris.is_empty() || request.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(OAuthError::invalid_redirect_uri(
            "redirect_uris must list 1 to 10 URIs",
        ));
    }
    if let Some(bad) = request
        .redirect_uris
        .iter()
        .find(|u| !is_allowed_redirect_uri(u))
    {
        return Err(OAuthError::invalid_redirect_uri(format!(
            "redirect URI {:?} must be https, http on loopback, or a private-use scheme, in canonical form, without userinfo or a fragment",
            bad.chars().take(100).collect::<String>()
        )));
    }
    let method = request
        .token_endpoint_auth_method
        .as_deref()
        .unwrap_or("none");
    if !matches!(
        method,
        "none" | "client_secret_basic" | "client_secret_post"
    ) {
        return Err(OAuthError::invalid_client_metadata(
            "token_endpoint_auth_method must be none, client_secret_basic or client_secret_post",
        ));
    }
    if request
        .grant_types
        .iter()
        .flatten()
        .any(|g| g != "authorization_code" && g != "refresh_token")
    {
        return Err(OAuthError::invalid_client_metadata(
            "grant_types may only contain authorization_code and refresh_token",
        ));
    }
    // OpenID Connect Registration §2, which MCP 2026-07-28 asks clients to send.
    if request
        .application_type
        .as_deref()
        .is_some_and(|t| t != "native" && t != "web")
    {
        return Err(OAuthError::invalid_client_metadata(
            "application_type must be native or web",
        ));
    }
    if request.response_types.iter().flatten().any(|r| r != "code") {
        return Err(OAuthError::invalid_client_metadata(
            "response_types may only contain code",
        ));
    }
    let client_name = request.client_name.map(|n| {
        n.chars()
            .filter(|c| !c.is_control())
            .take(MAX_NAME_LENGTH)
            .collect::<String>()
    });
    let client_id = random::token(16);
    let secret = (method != "none").then(|| random::token(32));
    let record = ClientRecord {
        client_id: client_id.clone(),
        secret_digest: secret.as_deref().map(random::digest),
        redirect_uris: request.redirect_uris,
        client_name,
        token_endpoint_auth_method: method.to_owned(),
    };
    Records(store.kv())
        .put(&keys::client(&client_id), &record, CLIENT_TTL)
        .await?;
    let mut body = serde_json::json!({
        "client_id": client_id,
        "client_id_issued_at": crate::time::unix_now(),
        "redirect_uris": record.redirect_uris,
        "token_endpoint_auth_method": record.token_endpoint_auth_method,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    });
    if let Some(name) = &record.client_name {
        body["client_name"] = name.as_str().into();
    }
    if let Some(secret) = secret {
        body["client_secret"] = secret.into();
        body["client_secret_expires_at"] = 0.into();
    }
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Json(body),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_follow_rfc_8252() {
        for ok in [
            "https://app.example.com/cb",
            "http://127.0.0.1:3000/callback",
            "http://localhost:8080/cb",
            "http://[::1]/cb",
            "com.example.app:/oauth2redirect",
            "https://app.example.com",
            "https://app.example.com/cb?x=1",
        ] {
            assert!(is_allowed_redirect_uri(ok), "{ok}");
        }
        for bad in [
            "http://evil.example.com/cb",
            "https://app.example.com/cb#frag",
            "javascript:alert(1)",
            "not a url",
            "file:///etc/passwd",
            " https://app.example.com/cb",
            "https://app.example.com/cb\t",
            "https:///cb",
            "https:app.example.com/cb",
            "https://user@app.example.com/cb",
            "https://user:pw@app.example.com/cb",
            "HTTPS://app.example.com/cb",
            "https://APP.example.com/cb",
            "https://app.example.com:443/cb",
            "https://app.example.com/a/../cb",
        ] {
            assert!(!is_allowed_redirect_uri(bad), "{bad}");
        }
    }
}
