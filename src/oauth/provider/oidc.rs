// SPDX-License-Identifier: Apache-2.0
//! The OpenID Connect side of an upstream provider: its endpoints (configured, or from
//! discovery, cached) and the verification of its ID tokens (signature by its JWKS, `iss`,
//! `aud`, `exp`, `nonce`).

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::subject::subject_value;
use super::{Endpoints, IdpError, UpstreamProvider, UpstreamUser};
use crate::config::validate::is_metadata_target;
use crate::identity::{RemoteJwks, ALLOWED_ALGORITHMS};
use crate::oauth::{read_capped, MAX_BODY_BYTES};
use crate::secret::Token;

/// Clock leeway for ID-token `exp`/`iat`.
const ID_TOKEN_LEEWAY_SECS: u64 = 60;

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct IdTokenClaims {
    sub: String,
    nonce: Option<String>,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

impl UpstreamProvider {
    pub(super) async fn endpoints(&self) -> Result<Arc<Endpoints>, IdpError> {
        let mut discovered = self.discovered.lock().await;
        if let Some(endpoints) = &*discovered {
            return Ok(endpoints.clone());
        }
        let endpoints = Arc::new(match (&self.configured, &self.issuer_url) {
            (Some((authorization, token)), _) => Endpoints {
                authorization: authorization.clone(),
                token: token.clone(),
                id_token: None,
            },
            (None, Some(issuer)) => self.discover(issuer).await?,
            (None, None) => return Err(self.unavailable("no endpoints")),
        });
        *discovered = Some(endpoints.clone());
        Ok(endpoints)
    }

    async fn discover(&self, issuer: &str) -> Result<Endpoints, IdpError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let response = self
            .http
            .get(&url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|_| self.unavailable("discovery failed"))?;
        if !response.status().is_success() {
            return Err(self.unavailable("discovery failed"));
        }
        let body = read_capped(response, MAX_BODY_BYTES)
            .await
            .map_err(|_| self.unavailable("discovery failed"))?;
        let doc: Discovery = serde_json::from_slice(&body)
            .map_err(|_| self.unavailable("discovery document unusable"))?;
        // OpenID Connect Discovery §4.3: the document must name the issuer it was fetched for.
        if doc.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(self.unavailable("discovery issuer mismatch"));
        }
        let parse = |u: &str| {
            let url = url::Url::parse(u).map_err(|_| self.unavailable("bad endpoint URL"))?;
            if !self.allow_link_local && is_metadata_target(&url) {
                return Err(self.unavailable("discovery names a link-local or metadata address"));
            }
            Ok(url)
        };
        let token = parse(&doc.token_endpoint)?;
        parse(&doc.jwks_uri)?;
        let jwks = RemoteJwks::new(
            doc.jwks_uri.clone(),
            Duration::from_secs(10),
            self.http.clone(),
        );
        if let Err(e) = jwks.refresh().await {
            tracing::warn!(provider = %self.name, "{e}");
        }
        Ok(Endpoints {
            authorization: url::Url::parse(&doc.authorization_endpoint)
                .map_err(|_| self.unavailable("bad endpoint URL"))?,
            token,
            id_token: Some((doc.issuer, jwks)),
        })
    }

    pub(super) async fn verify_id_token(
        &self,
        id_token: &Token,
        issuer: &str,
        jwks: &RemoteJwks,
        nonce: &str,
    ) -> Result<UpstreamUser, IdpError> {
        let bad = || self.rejected("invalid id_token");
        let header = jsonwebtoken::decode_header(id_token.expose_secret()).map_err(|_| bad())?;
        if !ALLOWED_ALGORITHMS.contains(&header.alg) {
            return Err(bad());
        }
        let key = jwks.find(header.kid.as_deref()).await.ok_or_else(bad)?;
        if !key.algorithms.contains(&header.alg) {
            return Err(bad());
        }
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[&self.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = ID_TOKEN_LEEWAY_SECS;
        let data =
            jsonwebtoken::decode::<IdTokenClaims>(id_token.expose_secret(), &key.key, &validation)
                .map_err(|_| bad())?;
        if data.claims.nonce.as_deref() != Some(nonce) {
            return Err(self.rejected("id_token nonce mismatch"));
        }
        let subject = if self.subject_claim == "sub" {
            Some(data.claims.sub).filter(|s| !s.is_empty())
        } else {
            data.claims
                .rest
                .get(&self.subject_claim)
                .and_then(subject_value)
        };
        Ok(UpstreamUser {
            subject: subject
                .ok_or_else(|| self.rejected("id_token names nobody by subjectClaim"))?,
            claims: data.claims.rest,
        })
    }
}
