// SPDX-License-Identifier: Apache-2.0
//! The SSRF guard of fetches that a client steers (client metadata documents): only public
//! addresses, checked at resolution time.

use std::net::{IpAddr, SocketAddr};

/// Whether `ip` may be fetched from: public, or loopback when allowed.
pub(crate) fn is_public(ip: IpAddr, allow_loopback: bool) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    if ip.is_loopback() {
        return allow_loopback;
    }
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || (a == 100 && (64..128).contains(&b))
                || a == 0)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// A resolver for fetches that must reach only public hosts: a name that resolves to any other
/// address fails, so the connection goes to exactly the addresses that were checked.
pub(crate) struct PublicOnly {
    allow_loopback: bool,
}

impl PublicOnly {
    /// The resolver; `allow_loopback` also lets loopback addresses through.
    pub(crate) fn new(allow_loopback: bool) -> Self {
        Self { allow_loopback }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the host resolves to a non-public address")]
struct RefusedAddress;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() || addrs.iter().any(|a| !is_public(a.ip(), allow_loopback)) {
                return Err(Box::new(RefusedAddress) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Whether a fetch failed because [`PublicOnly`] refused the host.
pub(crate) fn is_refused_address(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<RefusedAddress>() {
            return true;
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_unless_loopback_is_allowed() {
        for private in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "fc00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::",
        ] {
            let ip: IpAddr = private.parse().unwrap();
            assert!(!is_public(ip, true), "{private}");
        }
        for loopback in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            let ip: IpAddr = loopback.parse().unwrap();
            assert!(!is_public(ip, false) && is_public(ip, true), "{loopback}");
        }
        assert!(is_public("93.184.215.14".parse().unwrap(), false));
        assert!(is_public("2606:4700::1111".parse().unwrap(), false));
    }
}
