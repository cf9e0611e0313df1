// SPDX-License-Identifier: Apache-2.0
//! Discovery: RFC 8414 authorization-server metadata (also served at the OIDC discovery path,
//! which some MCP clients try first) and the JWKS of our signing key.

use axum::extract::State as AxumState;
use axum::response::IntoResponse;
use axum::Json;

use super::Handle;
use super::{parts, OAuthError};

/// `GET /.well-known/oauth-authorization-server`.
pub(super) async fn authorization_server(
    AxumState(state): AxumState<Handle>,
) -> Result<impl IntoResponse, OAuthError> {
    let (server, _) = parts(&state)?;
    let mut document = serde_json::json!({
        "issuer": server.issuer,
        "authorization_endpoint": server.url("/oauth/authorize"),
        "token_endpoint": server.url("/oauth/token"),
        "registration_endpoint": server.url("/oauth/register"),
        "jwks_uri": server.url("/.well-known/jwks.json"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "authorization_response_iss_parameter_supported": true,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "resource_indicators_supported": true,
        "client_id_metadata_document_supported": true,
    });
    if !server.scopes_supported().is_empty() {
        let scopes: Vec<&str> = server.scopes_supported().iter().collect();
        document["scopes_supported"] = scopes.into();
    }
    Ok(Json(document))
}

/// `GET /.well-known/jwks.json`.
pub(super) async fn jwks(
    AxumState(state): AxumState<Handle>,
) -> Result<impl IntoResponse, OAuthError> {
    let (server, _) = parts(&state)?;
    Ok(Json(serde_json::json!({ "keys": server.published_keys })))
}
