// SPDX-License-Identifier: Apache-2.0
//! Login sessions (DESIGN.md §11): at the end of a login the browser gets a cookie naming a
//! server-side [`SessionRecord`] (`{sub, tsid}`) in the store, so that every replica knows who
//! it is. A later `/oauth/authorize` or connect page from that browser walks only what is
//! missing. The cookie is opaque (the store key is its digest), `HttpOnly`, `SameSite=Lax`,
//! `Path=/`, `Secure` (and `__Host-` prefixed) unless the issuer is http on loopback; the
//! session lives as long as a refresh token and dies with its token family.

use axum::http::{header, HeaderMap};

use super::records::{keys, Records, SessionRecord};
use super::{AuthServer, OAuthError};
use crate::random;
use crate::upstream::UpstreamStore;

/// The cookie's name over https (the `__Host-` prefix pins it to our host, `Path=/`, `Secure`).
const SECURE_NAME: &str = "__Host-mcp_authz_session";
/// The cookie's name over http on loopback (tests and local demos).
const LOOPBACK_NAME: &str = "mcp_authz_session";
/// Random bytes of a session id.
const ID_BYTES: usize = 32;

/// Whether cookies for `issuer` are sent over https only: always, except for an http issuer
/// on a loopback host.
pub(super) fn secure(issuer: &str) -> bool {
    let Ok(url) = url::Url::parse(issuer) else {
        return true;
    };
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    !(url.scheme() == "http" && loopback)
}

impl AuthServer {
    fn cookie_name(&self) -> &'static str {
        if self.secure_cookies {
            SECURE_NAME
        } else {
            LOOPBACK_NAME
        }
    }

    /// The session the request's cookie names; `None` without a cookie, or for one naming no
    /// live session (unknown, expired, or its token family revoked).
    ///
    /// # Errors
    /// 400 when the request carries our cookie more than once (ambiguous); 503 when the store
    /// fails (never taken for "no session").
    pub(super) async fn session(
        &self,
        store: &UpstreamStore,
        headers: &HeaderMap,
    ) -> Result<Option<SessionRecord>, OAuthError> {
        let name = self.cookie_name();
        let mut values = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|h| h.to_str().ok())
            .flat_map(|h| h.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v);
        let Some(id) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(OAuthError::invalid_request(
                "more than one session cookie: clear this site's cookies and sign in again",
            ));
        }
        if id.len() != random::token_len(ID_BYTES) {
            return Ok(None);
        }
        let records = Records(store.kv());
        let Some(session) = records
            .get::<SessionRecord>(&keys::session(&random::digest(id)))
            .await?
        else {
            return Ok(None);
        };
        if records
            .get::<bool>(&keys::family_revoked(&session.family))
            .await?
            .is_some()
        {
            return Ok(None);
        }
        Ok(Some(session))
    }

    /// Stores `session` under a new id; the `Set-Cookie` value that names it.
    ///
    /// # Errors
    /// 503 when the store fails.
    pub(super) async fn create_session(
        &self,
        store: &UpstreamStore,
        session: &SessionRecord,
    ) -> Result<String, OAuthError> {
        let id = random::token(ID_BYTES);
        let lifetime = self.lifetimes.refresh_token;
        Records(store.kv())
            .put(&keys::session(&random::digest(&id)), session, lifetime)
            .await?;
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        Ok(format!(
            "{}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
            self.cookie_name(),
            lifetime.as_secs()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_secure_except_for_http_on_loopback() {
        assert!(secure("https://auth.example.com"));
        assert!(secure("https://127.0.0.1:8443"));
        assert!(secure("http://auth.example.com"));
        assert!(secure("http://10.0.0.1:8080"));
        assert!(!secure("http://127.0.0.1:8080"));
        assert!(!secure("http://localhost:8080"));
        assert!(!secure("http://[::1]:8080"));
        assert!(secure("not a url"));
    }
}
