// SPDX-License-Identifier: Apache-2.0
//! Discovery refuses endpoints on metadata addresses unless allowed.

use super::*;

/// A discovery document at `/.well-known/openid-configuration` naming `token_endpoint`.
async fn issuer_with_token_endpoint(token_endpoint: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let doc = serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": token_endpoint,
        "jwks_uri": format!("{issuer}/jwks"),
    });
    let app = axum::Router::new().route(
        "/.well-known/openid-configuration",
        axum::routing::get(move || async move { axum::Json(doc) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    issuer
}

fn provider(issuer: String, allow_link_local: bool) -> UpstreamProvider {
    let spec = UpstreamSpec {
        name: "okta".to_owned(),
        client_id: "c".to_owned(),
        client_secret: None,
        client_auth: crate::config::TokenEndpointAuthMethod::ClientSecretBasic,
        scopes: Vec::new(),
        required: true,
        authorization_params: Vec::new(),
        endpoints: UpstreamEndpoints::Oidc {
            issuer,
            subject_claim: "sub".to_owned(),
        },
    };
    UpstreamProvider::new(
        &spec,
        crate::oauth::http_client(&[]).unwrap(),
        allow_link_local,
    )
}

#[tokio::test]
async fn a_discovered_endpoint_on_a_metadata_address_is_refused_unless_allowed() {
    let issuer = issuer_with_token_endpoint("http://169.254.169.254/latest/meta-data").await;
    let refused = provider(issuer.clone(), false)
        .authorization_url("https://mcp.example/cb", "s", "c", "n")
        .await
        .unwrap_err();
    assert_eq!(
        refused,
        IdpError::Unavailable {
            provider: Arc::from("okta"),
            reason: "discovery names a link-local or metadata address",
        }
    );
    assert!(provider(issuer, true)
        .authorization_url("https://mcp.example/cb", "s", "c", "n")
        .await
        .is_ok());
}
