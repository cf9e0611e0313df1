// SPDX-License-Identifier: Apache-2.0
//! `/oauth/token`: `authorization_code` (with PKCE) and `refresh_token` (rotated on every use; a
//! reused one revokes its whole family). Access tokens are ES256 JWTs carrying `tsid`.

use axum::extract::State as AxumState;
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::{Form, Json};
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::records::{keys, ClientRecord, CodeRecord, Records, RefreshRecord};
use super::Handle;
use super::{parts, AuthServer, OAuthError};
use crate::random;
use crate::secret::{Token, Tsid};
use crate::time::unix_now;
use crate::upstream::UpstreamStore;

/// The token request form.
#[derive(Debug, Deserialize)]
pub(super) struct TokenParams {
    grant_type: Option<String>,
    #[serde(default, with = "crate::secret::exposed_option")]
    code: Option<Token>,
    redirect_uri: Option<String>,
    #[serde(default, with = "crate::secret::exposed_option")]
    code_verifier: Option<Token>,
    #[serde(default, with = "crate::secret::exposed_option")]
    refresh_token: Option<Token>,
    client_id: Option<String>,
    #[serde(default, with = "crate::secret::exposed_option")]
    client_secret: Option<Token>,
}

#[derive(Serialize)]
struct AccessClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
    iat: u64,
    jti: String,
    client_id: &'a str,
    #[serde(with = "crate::secret::exposed")]
    tsid: &'a Tsid,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
}

fn equal(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// `client_id` and secret from HTTP Basic (form-encoded, RFC 6749 §2.3.1) or the form.
fn credentials(
    headers: &HeaderMap,
    params: &TokenParams,
) -> Result<(String, Option<Token>), OAuthError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        // RFC 6749 §2.3: one authentication method per request.
        if params.client_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "client credentials must be sent once: in the Authorization header or in the body, not both",
            ));
        }
        let encoded = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Basic "))
            .ok_or_else(OAuthError::invalid_client)?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(OAuthError::invalid_client)?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or_else(OAuthError::invalid_client)?;
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("v={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        return Ok((decode(id), Some(Token::new(decode(secret)))));
    }
    let id = params
        .client_id
        .clone()
        .ok_or_else(|| OAuthError::invalid_request("client_id is required"))?;
    Ok((id, params.client_secret.clone()))
}

/// The authenticated client (RFC 6749 §3.2.1): confidential clients prove their secret, public
/// ones only name themselves.
async fn authenticate(
    server: &AuthServer,
    store: &UpstreamStore,
    headers: &HeaderMap,
    params: &TokenParams,
) -> Result<ClientRecord, OAuthError> {
    let (id, secret) = credentials(headers, params)?;
    let client = server.client(store, &id).await.map_err(|e| {
        if e.status.is_server_error() {
            e
        } else {
            OAuthError::invalid_client()
        }
    })?;
    match (&client.secret_digest, secret) {
        (Some(digest), Some(secret)) if equal(digest, &random::digest(secret.expose_secret())) => {
            Ok(client)
        }
        (None, None) => Ok(client),
        _ => Err(OAuthError::invalid_client()),
    }
}

/// `POST /oauth/token`.
pub(super) async fn token(
    AxumState(state): AxumState<Handle>,
    headers: HeaderMap,
    params: Result<Form<TokenParams>, axum::extract::rejection::FormRejection>,
) -> Result<impl IntoResponse, OAuthError> {
    let (server, store) = parts(&state)?;
    let (server, store) = (&*server, &*store);
    let Form(params) = params.map_err(|_| {
        OAuthError::invalid_request("body must be application/x-www-form-urlencoded")
    })?;
    let client = authenticate(server, store, &headers, &params).await?;
    let grant = match params.grant_type.as_deref() {
        Some("authorization_code") => redeem_code(server, store, &client, &params).await?,
        Some("refresh_token") => redeem_refresh(server, store, &client, &params).await?,
        _ => return Err(OAuthError::unsupported_grant_type()),
    };
    let body = issue(server, store, &grant).await?;
    Ok((
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(body),
    ))
}

/// The grant of a valid code, in its login session's token family.
async fn redeem_code(
    server: &AuthServer,
    store: &UpstreamStore,
    client: &ClientRecord,
    params: &TokenParams,
) -> Result<RefreshRecord, OAuthError> {
    let code = params
        .code
        .as_ref()
        .map(Token::expose_secret)
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let digest = random::digest(code);
    let records = Records(store.kv());
    // RFC 6749 §4.1.2: a code used twice revokes what it issued.
    let grant: CodeRecord = take_single_use(
        server,
        &records,
        (&keys::code(&digest), &keys::code_used(&digest)),
        "authorization code",
    )
    .await?;
    // §11: every code of a login session is in the session's family, so a reuse anywhere in
    // it also ends the session.
    let family = grant.family.clone();
    records
        .put(
            &keys::code_used(&digest),
            &family,
            server.lifetimes.refresh_token,
        )
        .await?;
    if grant.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "code was issued to another client",
        ));
    }
    if params.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    let verifier = params
        .code_verifier
        .as_ref()
        .map(Token::expose_secret)
        .filter(|v| random::is_pkce_verifier(v))
        .ok_or_else(|| OAuthError::invalid_grant("code_verifier is missing or malformed"))?;
    if !equal(&random::pkce_s256(verifier), &grant.code_challenge) {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    if records
        .get::<bool>(&keys::family_revoked(&family))
        .await?
        .is_some()
    {
        return Err(OAuthError::invalid_grant("the login session was revoked"));
    }
    Ok(RefreshRecord {
        client_id: grant.client_id,
        resource: grant.resource,
        scope: grant.scope,
        tsid: grant.tsid,
        subject: grant.subject,
        family,
    })
}

/// The grant of a valid refresh token, which is rotated.
async fn redeem_refresh(
    server: &AuthServer,
    store: &UpstreamStore,
    client: &ClientRecord,
    params: &TokenParams,
) -> Result<RefreshRecord, OAuthError> {
    let token = params
        .refresh_token
        .as_ref()
        .map(Token::expose_secret)
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let digest = random::digest(token);
    let records = Records(store.kv());
    // Reuse of a rotated token means someone holds a copy: the whole family is revoked.
    let grant: RefreshRecord = take_single_use(
        server,
        &records,
        (&keys::refresh(&digest), &keys::refresh_used(&digest)),
        "refresh token",
    )
    .await?;
    records
        .put(
            &keys::refresh_used(&digest),
            &grant.family,
            server.lifetimes.refresh_token,
        )
        .await?;
    if grant.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "refresh token was issued to another client",
        ));
    }
    if records
        .get::<bool>(&keys::family_revoked(&grant.family))
        .await?
        .is_some()
    {
        return Err(OAuthError::invalid_grant("refresh token revoked"));
    }
    Ok(grant)
}

/// Takes the single-use grant under `live`. When it is gone but `used` names the token family
/// it started, this is a second use: the family is revoked.
async fn take_single_use<T: DeserializeOwned>(
    server: &AuthServer,
    records: &Records<'_>,
    (live, used): (&str, &str),
    what: &'static str,
) -> Result<T, OAuthError> {
    if let Some(grant) = records.take::<T>(live).await? {
        return Ok(grant);
    }
    if let Some(family) = records.get::<String>(used).await? {
        records
            .put(
                &keys::family_revoked(&family),
                &true,
                server.lifetimes.refresh_token,
            )
            .await?;
        tracing::warn!("{what} reused; its token family is revoked");
        return Err(OAuthError::invalid_grant(format!("{what} already used")));
    }
    Err(OAuthError::invalid_grant(format!(
        "invalid or expired {what}"
    )))
}

/// A new access token and refresh token for `grant`.
async fn issue(
    server: &AuthServer,
    store: &UpstreamStore,
    grant: &RefreshRecord,
) -> Result<serde_json::Value, OAuthError> {
    let now = unix_now();
    let lifetime = server.lifetimes.access_token.as_secs();
    let claims = AccessClaims {
        iss: &server.issuer,
        sub: &grant.subject,
        aud: &grant.resource,
        exp: now + lifetime,
        iat: now,
        jti: random::token(16),
        client_id: &grant.client_id,
        tsid: &grant.tsid,
        scope: grant.scope.as_deref(),
    };
    let access_token = jsonwebtoken::encode(&server.header, &claims, &server.encoding)
        .map_err(|_| OAuthError::server_error())?;
    let refresh_token = random::token(32);
    Records(store.kv())
        .put(
            &keys::refresh(&random::digest(&refresh_token)),
            grant,
            server.lifetimes.refresh_token,
        )
        .await?;
    let mut body = serde_json::json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "refresh_token": refresh_token,
    });
    if let Some(scope) = &grant.scope {
        body["scope"] = scope.as_str().into();
    }
    Ok(body)
}
