// SPDX-License-Identifier: Apache-2.0
//! Client ID Metadata Documents (DESIGN.md §13): a `client_id` that is an https URL with a path
//! names its own metadata, fetched from that URL (no redirects, `Accept: application/json`, at
//! most 5 KiB, 5 s) and cached per `Cache-Control` within [60 s, 24 h]; a failure is cached
//! briefly. The document's `client_id` must equal the URL exactly.
//!
//! SSRF guard ([`crate::oauth::guard`]): the URL's host, or every address it resolves to, must
//! be public; loopback is allowed only with `authServer.clientMetadata.allowLoopback` (for
//! tests).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::Expiry;
use serde::Deserialize;

use super::records::ClientRecord;
use super::register::is_allowed_redirect_uri;
use crate::oauth::guard::{is_public, is_refused_address, PublicOnly};
use crate::oauth::read_capped;

/// Largest document read.
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const MIN_TTL: Duration = Duration::from_secs(60);
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
const FAILURE_TTL: Duration = Duration::from_secs(10);
const MAX_CACHED: u64 = 10_000;

/// Why a client metadata document cannot be used. The messages name no secret and no part of
/// the document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// The URL breaks the CIMD URL rules.
    #[error(
        "the client_id URL must be https with a path, without userinfo, fragment or dot segments"
    )]
    BadUrl,
    /// The host is or resolves to a loopback, private or link-local address.
    #[error("the client_id URL's host is not a public address")]
    NotPublic,
    /// No connection, or no answer in time.
    #[error("the client metadata document could not be fetched")]
    Unreachable,
    /// A redirect (never followed).
    #[error("the client metadata document URL redirects; redirects are not followed")]
    Redirect,
    /// Another status than 200.
    #[error("the client metadata document URL answered {0}")]
    Status(u16),
    /// Over [`MAX_DOCUMENT_BYTES`].
    #[error("the client metadata document is larger than 5 KiB")]
    TooLarge,
    /// Not a JSON object of client metadata.
    #[error("the client metadata document is not valid client metadata")]
    Invalid,
    /// Its `client_id` is not the URL.
    #[error("the client metadata document's client_id is not its URL")]
    ClientIdMismatch,
    /// A redirect URI we would not register either.
    #[error("the client metadata document lists no acceptable redirect_uris")]
    BadRedirectUris,
    /// It asks for client authentication we do not offer to such clients.
    #[error("a client metadata document client must be public (token_endpoint_auth_method none)")]
    NotPublicClient,
}

#[derive(Deserialize)]
struct Document {
    client_id: String,
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
}

type Entry = (Arc<Result<ClientRecord, DocumentError>>, Duration);

struct EntryTtl;

impl Expiry<String, Entry> for EntryTtl {
    fn expire_after_create(&self, _: &String, entry: &Entry, _: Instant) -> Option<Duration> {
        Some(entry.1)
    }
}

/// Fetches and caches client metadata documents.
pub struct ClientDocuments {
    http: reqwest::Client,
    allow_loopback: bool,
    cache: Cache<String, Entry>,
}

impl std::fmt::Debug for ClientDocuments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientDocuments")
            .field("allow_loopback", &self.allow_loopback)
            .finish_non_exhaustive()
    }
}

/// Whether `client_id` names a metadata document (rather than a registered client): an https
/// URL, as CIMD clients use. Whether it is a valid one is [`ClientDocuments::client`]'s call.
pub fn is_document_url(client_id: &str) -> bool {
    client_id.starts_with("https://")
}

impl ClientDocuments {
    /// Documents fetched trusting `roots` besides the system's.
    ///
    /// # Errors
    /// The TLS setup failing (never for valid roots).
    pub fn new(roots: &[reqwest::Certificate], allow_loopback: bool) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(Duration::from_secs(2))
            .user_agent(concat!("mcp-authz/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(PublicOnly::new(allow_loopback)))
            .tls_certs_merge(roots.to_vec())
            .build()
            .map_err(|e| format!("client metadata HTTP client: {e}"))?;
        let cache = Cache::builder()
            .max_capacity(MAX_CACHED)
            .expire_after(EntryTtl)
            .build();
        Ok(Self {
            http,
            allow_loopback,
            cache,
        })
    }

    /// The client `url` describes, from the cache when fresh.
    ///
    /// # Errors
    /// [`DocumentError`] saying why the document cannot be used.
    pub async fn client(&self, url: &str) -> Result<ClientRecord, DocumentError> {
        let entry = self
            .cache
            .get_with(url.to_owned(), async {
                let (result, ttl) = match self.fetch(url).await {
                    Ok((client, ttl)) => (Ok(client), ttl),
                    Err(e) => (Err(e), FAILURE_TTL),
                };
                (Arc::new(result), ttl)
            })
            .await;
        (*entry.0).clone()
    }

    async fn fetch(&self, raw: &str) -> Result<(ClientRecord, Duration), DocumentError> {
        let url = document_url(raw)?;
        if let Some(host) = url.host() {
            let ip = match host {
                url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
                url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
                url::Host::Domain(d) if is_localhost(d) => Some(IpAddr::from([127, 0, 0, 1])),
                url::Host::Domain(_) => None,
            };
            if ip.is_some_and(|ip| !is_public(ip, self.allow_loopback)) {
                return Err(DocumentError::NotPublic);
            }
        }
        let response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| {
                if is_refused_address(&e) {
                    DocumentError::NotPublic
                } else {
                    DocumentError::Unreachable
                }
            })?;
        let status = response.status();
        if status.is_redirection() {
            return Err(DocumentError::Redirect);
        }
        if status != reqwest::StatusCode::OK {
            return Err(DocumentError::Status(status.as_u16()));
        }
        let ttl = cache_ttl(
            response
                .headers()
                .get(reqwest::header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok()),
        );
        let body = read_capped(response, MAX_DOCUMENT_BYTES)
            .await
            .map_err(|e| match e {
                crate::oauth::BodyError::TooLarge => DocumentError::TooLarge,
                _ => DocumentError::Unreachable,
            })?;
        Ok((client_of(raw, &body)?, ttl))
    }
}

/// The CIMD URL rules: https, a host, a path other than `/`, no userinfo, fragment or `.`/`..`
/// segments, and written canonically (what is fetched is exactly what was named).
fn document_url(raw: &str) -> Result<url::Url, DocumentError> {
    let url = url::Url::parse(raw).map_err(|_| DocumentError::BadUrl)?;
    let dot_segment = raw
        .split(['/', '?', '#'])
        .skip(3)
        .any(|s| s == "." || s == "..");
    let ok = url.scheme() == "https"
        && url.host().is_some()
        && url.path() != "/"
        && url.username().is_empty()
        && url.password().is_none()
        && url.fragment().is_none()
        && !dot_segment
        && url.as_str() == raw;
    ok.then_some(url).ok_or(DocumentError::BadUrl)
}

/// The client a document body describes, checked against the URL it came from.
fn client_of(url: &str, body: &[u8]) -> Result<ClientRecord, DocumentError> {
    let document: Document = serde_json::from_slice(body).map_err(|_| DocumentError::Invalid)?;
    if document.client_id != url {
        return Err(DocumentError::ClientIdMismatch);
    }
    if document.redirect_uris.is_empty()
        || document.redirect_uris.len() > 10
        || !document
            .redirect_uris
            .iter()
            .all(|u| is_allowed_redirect_uri(u))
    {
        return Err(DocumentError::BadRedirectUris);
    }
    if document
        .token_endpoint_auth_method
        .as_deref()
        .is_some_and(|m| m != "none")
    {
        return Err(DocumentError::NotPublicClient);
    }
    let grants_ok = document
        .grant_types
        .iter()
        .flatten()
        .all(|g| g == "authorization_code" || g == "refresh_token");
    let responses_ok = document
        .response_types
        .iter()
        .flatten()
        .all(|r| r == "code");
    if !grants_ok || !responses_ok {
        return Err(DocumentError::Invalid);
    }
    Ok(ClientRecord {
        client_id: document.client_id,
        secret_digest: None,
        redirect_uris: document.redirect_uris,
        client_name: document
            .client_name
            .map(|n| n.chars().filter(|c| !c.is_control()).take(200).collect()),
        token_endpoint_auth_method: "none".to_owned(),
    })
}

/// `max-age` clamped to [60 s, 24 h]; `no-store`, `no-cache` or nothing: 60 s.
fn cache_ttl(cache_control: Option<&str>) -> Duration {
    let mut ttl = MIN_TTL;
    for directive in cache_control.unwrap_or("").split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return MIN_TTL;
        }
        if let Some(seconds) = lower
            .strip_prefix("max-age=")
            .and_then(|s| s.parse::<u64>().ok())
        {
            ttl = Duration::from_secs(seconds);
        }
    }
    ttl.clamp(MIN_TTL, MAX_TTL)
}

fn is_localhost(domain: &str) -> bool {
    domain.eq_ignore_ascii_case("localhost") || domain.to_ascii_lowercase().ends_with(".localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_rules() {
        assert!(document_url("https://app.example.com/oauth/client.json").is_ok());
        for bad in [
            "http://app.example.com/client.json",
            "https://app.example.com/",
            "https://app.example.com",
            "https://user@app.example.com/client.json",
            "https://app.example.com/a/../client.json",
            "https://app.example.com/./client.json",
            "https://app.example.com/client.json#x",
            "https://APP.example.com/client.json",
        ] {
            assert_eq!(
                document_url(bad).unwrap_err(),
                DocumentError::BadUrl,
                "{bad}"
            );
        }
    }

    #[test]
    fn cache_control_is_clamped() {
        assert_eq!(cache_ttl(None), MIN_TTL);
        assert_eq!(cache_ttl(Some("max-age=5")), MIN_TTL);
        assert_eq!(
            cache_ttl(Some("public, max-age=3600")),
            Duration::from_secs(3600)
        );
        assert_eq!(cache_ttl(Some("max-age=999999999")), MAX_TTL);
        assert_eq!(cache_ttl(Some("max-age=3600, no-store")), MIN_TTL);
    }

    #[test]
    fn the_document_must_name_itself_and_list_acceptable_redirects() {
        let url = "https://app.example.com/client.json";
        let doc = |v: serde_json::Value| client_of(url, v.to_string().as_bytes());
        let good = doc(serde_json::json!({"client_id": url, "redirect_uris": ["http://127.0.0.1:3000/cb"], "client_name": "App"})).unwrap();
        assert_eq!(good.redirect_uris, ["http://127.0.0.1:3000/cb"]);
        assert_eq!(good.token_endpoint_auth_method, "none");
        assert_eq!(
            doc(
                serde_json::json!({"client_id": "https://app.example.com/client.json?x", "redirect_uris": ["http://127.0.0.1:3000/cb"]})
            ),
            Err(DocumentError::ClientIdMismatch)
        );
        assert_eq!(
            doc(serde_json::json!({"client_id": url, "redirect_uris": ["http://evil.example/cb"]})),
            Err(DocumentError::BadRedirectUris)
        );
        assert_eq!(
            doc(
                serde_json::json!({"client_id": url, "redirect_uris": ["http://127.0.0.1:3000/cb"], "token_endpoint_auth_method": "private_key_jwt"})
            ),
            Err(DocumentError::NotPublicClient)
        );
        let twice = format!(
            r#"{{"client_id":"{url}","client_id":"{url}","redirect_uris":["http://127.0.0.1:3000/cb"]}}"#
        );
        assert_eq!(
            client_of(url, twice.as_bytes()),
            Err(DocumentError::Invalid)
        );
    }
}
