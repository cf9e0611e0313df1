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

/// Whether `url` points at a link-local address (169.254.0.0/16, fe80::/10: where cloud metadata
/// services answer) or at a metadata service by its other names and addresses, also spelled as
/// an IPv4-mapped IPv6 address.
pub fn is_metadata_target(url: &url::Url) -> bool {
    use std::net::Ipv4Addr;
    let v4 = |ip: Ipv4Addr| ip.is_link_local() || ip == Ipv4Addr::new(100, 100, 100, 200);
    match url.host() {
        Some(url::Host::Ipv4(ip)) => v4(ip),
        Some(url::Host::Ipv6(ip)) => {
            ip.to_ipv4_mapped().is_some_and(v4)
                || ip.segments()[0] & 0xffc0 == 0xfe80
                || ip.segments() == [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x254]
        }
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            METADATA_NAMES.contains(&name.as_str())
        }
        None => false,
    }
}

/// Host names of cloud metadata services.
const METADATA_NAMES: [&str; 3] = [
    "metadata.google.internal",
    "metadata.goog",
    "instance-data.ec2.internal",
];

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
