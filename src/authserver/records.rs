// SPDX-License-Identifier: Apache-2.0
//! Authorization-server state kept in the store (memory or Redis, shared by replicas): registered
//! clients, logins in progress, authorization codes and refresh tokens. Codes and refresh tokens
//! are stored under their digest and taken atomically, so each is redeemed once.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::OAuthError;
use crate::oauth::provider::UpstreamUser;
use crate::secret::{Token, Tsid};
use crate::store::Store;
use crate::upstream::connect::ConnectGrant;

/// How long a registered client is kept.
pub const CLIENT_TTL: Duration = Duration::from_secs(180 * 24 * 3600);

/// A client registered through RFC 7591, or described by its metadata document (§13).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRecord {
    /// `client_id`.
    pub client_id: String,
    /// SHA-256 (hex) of the secret, for confidential clients.
    pub secret_digest: Option<String>,
    /// Registered redirect URIs, compared exactly.
    pub redirect_uris: Vec<String>,
    /// `client_name`.
    pub client_name: Option<String>,
    /// `none`, `client_secret_basic` or `client_secret_post`.
    pub token_endpoint_auth_method: String,
}

/// The per-leg secrets of the upstream login in progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LegSecrets {
    /// PKCE verifier sent when redeeming the upstream code.
    #[serde(with = "crate::secret::exposed")]
    pub verifier: Token,
    /// OIDC nonce the upstream ID token must echo.
    #[serde(with = "crate::secret::exposed")]
    pub nonce: Token,
}

/// Tokens one upstream returned, held until every leg has succeeded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LegTokens {
    /// Provider name.
    pub provider: String,
    /// Access token.
    #[serde(with = "crate::secret::exposed")]
    pub access_token: Token,
    /// Refresh token.
    #[serde(with = "crate::secret::exposed_option")]
    pub refresh_token: Option<Token>,
    /// ID token.
    #[serde(with = "crate::secret::exposed_option")]
    pub id_token: Option<Token>,
    /// Expiry, unix seconds.
    pub expires_at: Option<u64>,
    /// Upstream subject (OIDC `sub`).
    pub subject: Option<String>,
}

/// What the MCP client asked for at `/oauth/authorize`, kept until its code is issued.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientLogin {
    /// The MCP client.
    pub client_id: String,
    /// Where the client gets its code.
    pub redirect_uri: String,
    /// The client's PKCE S256 challenge.
    pub code_challenge: String,
    /// The client's `state`, echoed back.
    pub client_state: Option<String>,
    /// The RFC 8707 resource: our token's audience.
    pub resource: String,
    /// Granted scope, echoed into our token.
    pub scope: Option<String>,
}

/// A login walking upstream legs, stored under the current leg's `state`: for an MCP client
/// (`client`), or for a connect page (`connect`, §11), or both never.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    /// The MCP client waiting for a code; `None` for a connect page.
    pub client: Option<ClientLogin>,
    /// The connect page this login serves.
    pub connect: Option<ConnectGrant>,
    /// The user, when their login session is known (an incremental login, §11).
    pub session: Option<SessionRecord>,
    /// The providers to walk, in order.
    pub walk: Vec<String>,
    /// When the login started (unix seconds): `loginTimeoutSeconds` covers every leg.
    pub started_at: u64,
    /// Index in `walk` of the upstream being walked.
    pub leg: usize,
    /// That leg's secrets.
    pub secrets: LegSecrets,
    /// Tokens of the legs done so far.
    pub done: Vec<LegTokens>,
    /// Who the first leg that named a user says the user is (for `scopeGrants`), and at
    /// which provider.
    pub user: Option<(String, UpstreamUser)>,
}

impl PendingLogin {
    /// The flow, for metrics: `connect`, `incremental` (a login session) or `first`.
    pub fn flow(&self) -> &'static str {
        match (&self.connect, &self.session) {
            (Some(_), _) => "connect",
            (None, Some(_)) => "incremental",
            (None, None) => "first",
        }
    }

    /// A walk starting now, before its first leg.
    pub fn start(
        client: Option<ClientLogin>,
        connect: Option<ConnectGrant>,
        session: Option<SessionRecord>,
        walk: Vec<String>,
    ) -> Self {
        Self {
            client,
            connect,
            session,
            walk,
            started_at: crate::time::unix_now(),
            leg: 0,
            secrets: LegSecrets {
                verifier: Token::new(""),
                nonce: Token::new(""),
            },
            done: Vec::new(),
            user: None,
        }
    }
}

/// A login session (§11): who the browser holding its cookie is. Stored under the cookie's
/// digest, as long-lived as a refresh token, and dead with its token family.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Our `sub`.
    pub subject: String,
    /// The user's upstream-token records.
    #[serde(with = "crate::secret::exposed")]
    pub tsid: Tsid,
    /// The token family of every code issued through this session.
    pub family: String,
    /// The provider whose ID token named the user, and what it said (for `scopeGrants`).
    pub user: Option<(String, UpstreamUser)>,
}

/// An authorization code's grant, stored under the code's digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeRecord {
    /// The client it was issued to.
    pub client_id: String,
    /// The redirect URI it was issued for.
    pub redirect_uri: String,
    /// The client's PKCE S256 challenge.
    pub code_challenge: String,
    /// Audience of the tokens.
    pub resource: String,
    /// Scope of the tokens.
    pub scope: Option<String>,
    /// Links our tokens to the stored upstream tokens.
    #[serde(with = "crate::secret::exposed")]
    pub tsid: Tsid,
    /// Our `sub`.
    pub subject: String,
    /// The token family it starts (its login session's).
    pub family: String,
}

/// A refresh token's grant, stored under the token's digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshRecord {
    /// The client it was issued to.
    pub client_id: String,
    /// Audience of the tokens.
    pub resource: String,
    /// Scope of the tokens.
    pub scope: Option<String>,
    /// Links our tokens to the stored upstream tokens.
    #[serde(with = "crate::secret::exposed")]
    pub tsid: Tsid,
    /// Our `sub`.
    pub subject: String,
    /// Every refresh token descending from one code shares a family; reuse revokes it.
    pub family: String,
}

/// Store keys, one place.
pub mod keys {
    /// A registered client.
    pub fn client(client_id: &str) -> String {
        format!("as:client:{client_id}")
    }
    /// A login in progress, by the upstream `state`.
    pub fn pending(state: &str) -> String {
        format!("as:pending:{}", crate::random::digest(state))
    }
    /// An unredeemed code, by digest.
    pub fn code(digest: &str) -> String {
        format!("as:code:{digest}")
    }
    /// A redeemed code → the token family it started.
    pub fn code_used(digest: &str) -> String {
        format!("as:code-used:{digest}")
    }
    /// A live refresh token, by digest.
    pub fn refresh(digest: &str) -> String {
        format!("as:rt:{digest}")
    }
    /// A rotated refresh token → its family.
    pub fn refresh_used(digest: &str) -> String {
        format!("as:rt-used:{digest}")
    }
    /// A login session, by its cookie's digest.
    pub fn session(digest: &str) -> String {
        format!("as:session:{digest}")
    }
    /// Which of our users an upstream account (provider, digest of its subject) belongs to.
    pub fn link(provider: &str, subject: &str) -> String {
        format!("as:link:{provider}:{}", crate::random::digest(subject))
    }
    /// That a user (digest of our `sub`) has used a client (digest of its id).
    pub fn consent(subject: &str, client_id: &str) -> String {
        format!(
            "as:consent:{}:{}",
            crate::random::digest(subject),
            crate::random::digest(client_id)
        )
    }
    /// A revoked token family.
    pub fn family_revoked(family: &str) -> String {
        format!("as:family-revoked:{family}")
    }
}

/// Typed access to the store.
#[derive(Debug)]
pub struct Records<'a>(pub &'a Store);

impl Records<'_> {
    /// Stores `value` as JSON.
    ///
    /// # Errors
    /// [`OAuthError`] (503) when the store fails.
    pub async fn put<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<(), OAuthError> {
        let json = serde_json::to_vec(value).map_err(|_| OAuthError::server_error())?;
        Ok(self.0.put(key, &json, Some(ttl)).await?)
    }

    /// Reads a JSON value.
    ///
    /// # Errors
    /// [`OAuthError`] (503) when the store fails or the value is not what was stored.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, OAuthError> {
        decode(self.0.get(key, None).await?)
    }

    /// Removes and returns a JSON value (single use).
    ///
    /// # Errors
    /// [`OAuthError`] (503) when the store fails or the value is not what was stored.
    pub async fn take<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, OAuthError> {
        decode(self.0.take(key).await?)
    }
}

fn decode<T: DeserializeOwned>(bytes: Option<Vec<u8>>) -> Result<Option<T>, OAuthError> {
    bytes
        .map(|b| serde_json::from_slice(&b).map_err(|_| OAuthError::server_error()))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_fields_are_stored_as_plain_strings_and_never_printed() {
        let record = RefreshRecord {
            client_id: "c".to_owned(),
            resource: "https://mcp.example.com/mcp".to_owned(),
            scope: None,
            tsid: Tsid::new("tsid-secret-value"),
            subject: "u1".to_owned(),
            family: "f".to_owned(),
        };
        let json: serde_json::Value = serde_json::to_value(&record).unwrap();
        assert_eq!(json["tsid"], "tsid-secret-value");
        let back: RefreshRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back.tsid, record.tsid);
        assert!(!format!("{back:?}").contains("tsid-secret-value"));

        let leg: LegTokens = serde_json::from_str(
            r#"{"provider":"github","access_token":"gho_a","refresh_token":null,"id_token":"eyJ.x.y","expires_at":null,"subject":null}"#,
        )
        .unwrap();
        assert_eq!(leg.access_token.expose_secret(), "gho_a");
        assert!(leg.refresh_token.is_none());
        let printed = format!("{leg:?}");
        assert!(
            !printed.contains("gho_a") && !printed.contains("eyJ"),
            "{printed}"
        );
    }
}
