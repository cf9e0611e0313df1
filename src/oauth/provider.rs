// SPDX-License-Identifier: Apache-2.0
//! A client of one upstream identity provider (`authServer.upstreams[]`): where to send the user,
//! how to redeem the code it returns, how to check its ID token (`oidc`), and how to refresh.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Mutex;

mod oidc;
mod subject;

use super::token_endpoint::{self, Answer, Status, Transport};
use super::{basic_auth, form_encode};
use crate::config::spec::{UpstreamEndpoints, UpstreamSpec, UserInfoSpec};
use crate::config::{TokenEndpointAuthMethod, UpstreamType};
use crate::identity::RemoteJwks;
use crate::secret::{is_b64token, Token};

/// Why a call to an upstream provider failed. Carries a recognised OAuth error code at most,
/// never the provider's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdpError {
    /// The provider refused (a 4xx, or an unusable answer): the grant cannot succeed by retrying.
    #[error("upstream provider {provider:?} refused: {reason}")]
    Rejected {
        /// The provider.
        provider: Arc<str>,
        /// A fixed reason or the provider's RFC error code.
        reason: &'static str,
    },
    /// The provider did not answer (unreachable, 5xx, timeout): it may recover.
    #[error("upstream provider {provider:?} unavailable: {reason}")]
    Unavailable {
        /// The provider.
        provider: Arc<str>,
        /// What happened.
        reason: &'static str,
    },
}

/// Tokens from a provider's token endpoint.
#[derive(Debug, Clone)]
pub struct TokenSet {
    /// Access token (a valid bearer credential).
    pub access_token: Token,
    /// Refresh token, if issued.
    pub refresh_token: Option<Token>,
    /// OIDC ID token, if issued.
    pub id_token: Option<Token>,
    /// `expires_in`, if given.
    pub expires_in: Option<Duration>,
}

/// A provider's endpoints (configured for `oauth2`, discovered for `oidc`).
#[derive(Debug)]
struct Endpoints {
    authorization: url::Url,
    token: url::Url,
    /// `oidc` only: the issuer the ID token must name and its keys.
    id_token: Option<(String, RemoteJwks)>,
}

/// One upstream identity provider.
pub struct UpstreamProvider {
    name: Arc<str>,
    client_id: String,
    /// `client_secret_basic`: the `Authorization` header.
    client_auth: Option<Token>,
    /// `client_secret_post`: the secret for the form.
    client_secret_post: Option<Token>,
    scopes: Vec<String>,
    kind: UpstreamType,
    required: bool,
    authorization_params: Vec<(String, String)>,
    configured: Option<(url::Url, url::Url)>,
    issuer_url: Option<String>,
    /// `oauth2.userInfo`: where an `oauth2` login learns who the user is.
    user_info: Option<Box<UserInfoSpec>>,
    /// `oidc.subjectClaim`.
    subject_claim: String,
    discovered: Mutex<Option<Arc<Endpoints>>>,
    http: reqwest::Client,
    /// `server.allowLinkLocalTargets`: whether discovered endpoints may be link-local.
    allow_link_local: bool,
}

impl std::fmt::Debug for UpstreamProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamProvider")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    refresh_token: Option<String>,
    id_token: Option<String>,
    expires_in: Option<serde_json::Value>,
    error: Option<String>,
}

impl token_endpoint::TokenResponse for TokenResponse {
    fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
}

/// Who an upstream login was, from its verified ID token or its userinfo answer. Kept with the
/// login session so that a later login of the same user is judged by the same `scopeGrants`
/// rules.
#[derive(Clone, serde::Serialize, Deserialize)]
pub struct UpstreamUser {
    /// The subject: the ID token's `subjectClaim` or the userinfo `subjectField`.
    pub subject: String,
    /// The other claims or members (what `scopeGrants` claim rules read; never logged).
    pub claims: serde_json::Map<String, serde_json::Value>,
}

impl std::fmt::Debug for UpstreamUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamUser").finish_non_exhaustive()
    }
}

impl UpstreamProvider {
    /// The provider for one validated upstream; requests go out through `http`. Unless
    /// `allow_link_local`, endpoints that discovery names on link-local or cloud metadata
    /// addresses are refused, as V-15 refuses configured ones.
    pub fn new(spec: &UpstreamSpec, http: reqwest::Client, allow_link_local: bool) -> Self {
        let (kind, configured, issuer_url, scopes, user_info, subject_claim) = match &spec.endpoints
        {
            UpstreamEndpoints::OAuth2 {
                authorization,
                token,
                user_info,
            } => (
                UpstreamType::Oauth2,
                Some((authorization.clone(), token.clone())),
                None,
                spec.scopes.clone(),
                user_info.clone(),
                String::new(),
            ),
            UpstreamEndpoints::Oidc {
                issuer,
                subject_claim,
            } => {
                let mut scopes = spec.scopes.clone();
                if !scopes.iter().any(|s| s == "openid") {
                    scopes.insert(0, "openid".to_owned());
                }
                let issuer = Some(issuer.clone());
                let claim = subject_claim.clone();
                (UpstreamType::Oidc, None, issuer, scopes, None, claim)
            }
        };
        let secret = spec.client_secret.as_ref().filter(|s| !s.is_empty());
        Self {
            name: Arc::from(spec.name.as_str()),
            client_auth: secret
                .filter(|_| spec.client_auth == TokenEndpointAuthMethod::ClientSecretBasic)
                .map(|s| basic_auth(&spec.client_id, s.expose_secret())),
            client_secret_post: secret
                .filter(|_| spec.client_auth == TokenEndpointAuthMethod::ClientSecretPost)
                .cloned(),
            client_id: spec.client_id.clone(),
            scopes,
            kind,
            required: spec.required,
            authorization_params: spec.authorization_params.clone(),
            configured,
            issuer_url,
            user_info,
            subject_claim,
            discovered: Mutex::new(None),
            http,
            allow_link_local,
        }
    }

    /// The provider's name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// Whether a first login walks it (DESIGN.md §11).
    pub fn required(&self) -> bool {
        self.required
    }

    fn unavailable(&self, reason: &'static str) -> IdpError {
        IdpError::Unavailable {
            provider: self.name.clone(),
            reason,
        }
    }

    fn rejected(&self, reason: &'static str) -> IdpError {
        IdpError::Rejected {
            provider: self.name.clone(),
            reason,
        }
    }

    /// Where to send the user: authorization code with PKCE S256, `state` and (for `oidc`)
    /// `nonce`.
    ///
    /// # Errors
    /// [`IdpError::Unavailable`] when discovery fails.
    pub async fn authorization_url(
        &self,
        redirect_uri: &str,
        state: &str,
        code_challenge: &str,
        nonce: &str,
    ) -> Result<url::Url, IdpError> {
        let endpoints = self.endpoints().await?;
        let mut url = endpoints.authorization.clone();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("state", state)
                .append_pair("code_challenge", code_challenge)
                .append_pair("code_challenge_method", "S256");
            if !self.scopes.is_empty() {
                query.append_pair("scope", &self.scopes.join(" "));
            }
            if self.kind == UpstreamType::Oidc {
                query.append_pair("nonce", nonce);
            }
            for (name, value) in &self.authorization_params {
                query.append_pair(name, value);
            }
        }
        Ok(url)
    }

    /// Redeems an authorization code and learns who the user is: for `oidc` from the ID token
    /// (verified against `nonce`, its `subjectClaim`), for `oauth2` from `userInfo` if set.
    ///
    /// # Errors
    /// [`IdpError`].
    pub async fn redeem_code(
        &self,
        code: &str,
        code_verifier: &str,
        redirect_uri: &str,
        nonce: &str,
    ) -> Result<(TokenSet, Option<UpstreamUser>), IdpError> {
        let form = format!(
            "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}",
            form_encode(code),
            form_encode(redirect_uri),
            form_encode(code_verifier)
        );
        let tokens = self.token_request(form, Duration::from_secs(10)).await?;
        let endpoints = self.endpoints().await?;
        let user = match (&endpoints.id_token, &tokens.id_token) {
            (Some((issuer, jwks)), Some(id_token)) => {
                Some(self.verify_id_token(id_token, issuer, jwks, nonce).await?)
            }
            (Some(_), None) => return Err(self.rejected("no id_token")),
            (None, _) => match &self.user_info {
                Some(info) => Some(self.user_info(info, &tokens.access_token).await?),
                None => None,
            },
        };
        Ok((tokens, user))
    }

    /// Refreshes with `refresh_token` within `budget`.
    ///
    /// # Errors
    /// [`IdpError::Rejected`] when the provider refuses (the user must log in again),
    /// [`IdpError::Unavailable`] when it does not answer.
    pub async fn refresh(
        &self,
        refresh_token: &Token,
        budget: Duration,
    ) -> Result<TokenSet, IdpError> {
        let form = format!(
            "grant_type=refresh_token&refresh_token={}",
            form_encode(refresh_token.expose_secret())
        );
        self.token_request(form, budget).await
    }

    async fn token_request(
        &self,
        mut form: String,
        budget: Duration,
    ) -> Result<TokenSet, IdpError> {
        let endpoints = self.endpoints().await?;
        let authorization = match &self.client_auth {
            Some(auth) => Some(auth),
            None => {
                form.push_str("&client_id=");
                form.push_str(&form_encode(&self.client_id));
                if let Some(secret) = &self.client_secret_post {
                    form.push_str("&client_secret=");
                    form.push_str(&form_encode(secret.expose_secret()));
                }
                None
            }
        };
        let answer =
            token_endpoint::post(&self.http, &endpoints.token, authorization, form, budget)
                .await
                .map_err(|e| match e {
                    Transport::TooLarge => self.rejected("token response over 1 MiB"),
                    Transport::Timeout => self.unavailable("token endpoint timed out"),
                    Transport::Unreachable => self.unavailable("token endpoint unreachable"),
                })?;
        self.check_answer(answer)
    }

    fn check_answer(&self, answer: Answer<TokenResponse>) -> Result<TokenSet, IdpError> {
        let code = answer.error_code();
        match answer.class() {
            Status::Success => {}
            Status::Transient => return Err(self.unavailable("token endpoint failed")),
            Status::Refused | Status::Unexpected => {
                return Err(self.rejected(code.unwrap_or("token request refused")))
            }
        }
        if let Some(code) = code {
            return Err(self.rejected(code));
        }
        let parsed = answer.parsed;
        let Some(response) = parsed else {
            return Err(self.rejected("token response is not JSON"));
        };
        let access_token = response
            .access_token
            .filter(|t| is_b64token(t))
            .ok_or_else(|| self.rejected("no usable access_token"))?;
        let expires_in = match response.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        Ok(TokenSet {
            access_token: Token::new(access_token),
            refresh_token: response
                .refresh_token
                .filter(|t| !t.is_empty())
                .map(Token::new),
            id_token: response.id_token.map(Token::new),
            expires_in: expires_in.map(Duration::from_secs),
        })
    }
}

#[cfg(test)]
mod tests;
