// SPDX-License-Identifier: Apache-2.0
//! Shape rules for names, header text and URLs.

/// `^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`, at most 63 characters.
pub(super) fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    let edge = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.first().is_some_and(edge)
        && bytes.last().is_some_and(edge)
        && bytes.iter().all(|b| edge(b) || *b == b'-')
}

/// Printable text (visible ASCII, space, tab, or UTF-8 above 0x7f), non-empty, with no CR, LF
/// or NUL: what may go in an HTTP header value.
pub fn is_valid_header_value(value: &str) -> bool {
    value.len() <= 8192 && is_header_text(value)
}

/// Non-empty text that can be an HTTP header value (visible ASCII, space, tab, or UTF-8 above
/// 0x7f): no CR, LF, NUL or other control character. No length limit.
pub fn is_header_text(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80)
}

/// An absolute http(s) URL; plain http only on a loopback host when `https_only` is set.
pub(super) fn absolute_url(raw: &str, https_only: bool) -> Result<url::Url, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("{raw:?} is not an absolute URL ({e})"))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if !https_only || is_loopback(&url) => Ok(url),
        "http" => Err(format!("{raw:?} must use https (http only for loopback)")),
        other => Err(format!("{raw:?} has unsupported scheme {other:?}")),
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}
