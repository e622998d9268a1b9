//! Who is asking: the client's address, from the TCP peer or, when the peer
//! is a proxy the operator trusts, from the `Forwarded` / `X-Forwarded-For`
//! header that proxy wrote. Anyone can write those headers, so they are
//! read only from trusted peers; otherwise one client could pose as many
//! and slip past every per-address limit.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderName};

use crate::stream::access::PerIpSlot;

/// A network in CIDR notation (`10.0.0.0/8`, `fd00::/8`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error(
        "{0:?} is not an address or a network: expected e.g. 10.0.0.0/8, 192.168.1.7 or fd00::/8"
    )]
    Address(String),
    #[error("{text:?}: the prefix length must be a number from 0 to {max}")]
    Prefix { text: String, max: u8 },
}

impl std::str::FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let net: IpAddr = addr
            .parse()
            .map_err(|_| CidrError::Address(text.chars().take(60).collect()))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => {
                p.parse::<u8>()
                    .ok()
                    .filter(|p| *p <= max)
                    .ok_or_else(|| CidrError::Prefix {
                        text: text.chars().take(60).collect(),
                        max,
                    })?
            }
        };
        Ok(Self {
            net: net.to_canonical(),
            prefix,
        })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| -> (u128, u32) {
            match ip.to_canonical() {
                IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
                IpAddr::V6(v6) => (u128::from(v6), 128),
            }
        };
        let (net, width) = bits(self.net);
        let (ip, ip_width) = bits(ip);
        if width != ip_width {
            return false;
        }
        let shift = width - u32::from(self.prefix);
        shift >= width || (net >> shift) == (ip >> shift)
    }
}

/// The proxies whose forwarding headers are believed (`--trusted-proxy`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    pub fn new(cidrs: Vec<Cidr>) -> Self {
        Self(cidrs)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// The client's address: the peer itself unless it is trusted; then the
    /// hops its header lists, read from the right (the hop nearest to us)
    /// while each is itself a trusted proxy. A hop that cannot be read ends
    /// the walk at the proxy that wrote it.
    pub fn client_addr(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.contains(client) {
            return client;
        }
        for hop in forwarded_chain(headers).into_iter().rev() {
            if !self.contains(client) {
                break;
            }
            match hop {
                Some(ip) => client = ip.to_canonical(),
                None => break,
            }
        }
        client
    }
}

/// The hops in `Forwarded` (RFC 7239, its `for=` parameters) or, without
/// it, in `X-Forwarded-For`, in order; None for one that is not an address
/// (`unknown`, an obfuscated name, garbage). Every header line counts, as
/// a proxy may append a line rather than extend one.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let lines = |name: HeaderName| {
        headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap_or(""))
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>()
    };
    let forwarded = lines(header::FORWARDED);
    if !forwarded.is_empty() {
        return forwarded
            .into_iter()
            .map(|element| {
                let value = element.split(';').find_map(|pair| {
                    let (k, v) = pair.trim().split_once('=')?;
                    k.eq_ignore_ascii_case("for").then_some(v)
                })?;
                parse_node(value.trim().trim_matches('"'))
            })
            .collect();
    }
    lines(HeaderName::from_static("x-forwarded-for"))
        .into_iter()
        .map(parse_node)
        .collect()
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`
/// or `[2001:db8::1]:5678`.
fn parse_node(text: &str) -> Option<IpAddr> {
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    text.parse().ok().or_else(|| {
        let (host, port) = text.rsplit_once(':')?;
        port.parse::<u16>().ok()?;
        host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
    })
}

/// What a request handler knows of its client: the address the limits
/// count, and its place in the per-address connection count, held for as
/// long as the handler's stream runs.
#[derive(Debug, Clone)]
pub struct Client {
    pub addr: IpAddr,
    pub(super) _slot: Arc<PerIpSlot>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn networks_parse_and_contain() {
        let net: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains(ip("10.1.200.3")));
        assert!(net.contains(ip("::ffff:10.1.0.9")), "v4-mapped v6");
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(!net.contains(ip("::1")));
        let one: Cidr = "fd00::7".parse().unwrap();
        assert!(one.contains(ip("fd00::7")) && !one.contains(ip("fd00::8")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        for bad in ["10.0.0.0/33", "fd00::/129", "10.0.0.0/x", "proxy.local", ""] {
            let e = bad.parse::<Cidr>().unwrap_err().to_string();
            assert!(
                e.contains("10.0.0.0/8") || e.contains("prefix"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn forwarding_headers_are_believed_only_from_trusted_peers() {
        let trusted = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        let xff = headers(&[("x-forwarded-for", "203.0.113.5, 10.0.0.2")]);
        assert_eq!(
            trusted.client_addr(ip("10.0.0.1"), &xff),
            ip("203.0.113.5"),
            "through two trusted proxies"
        );
        assert_eq!(
            trusted.client_addr(ip("198.51.100.1"), &xff),
            ip("198.51.100.1"),
            "an untrusted peer's header is ignored"
        );
        let spoofed = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.5")]);
        assert_eq!(
            trusted.client_addr(ip("10.0.0.1"), &spoofed),
            ip("203.0.113.5"),
            "what the client wrote itself (left of the first untrusted hop) does not count"
        );
        let fwd = headers(&[(
            "forwarded",
            "for=192.0.2.60;proto=http, for=\"[2001:db8::1]:4711\"",
        )]);
        assert_eq!(trusted.client_addr(ip("10.0.0.1"), &fwd), ip("2001:db8::1"));
        let unknown = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(
            trusted.client_addr(ip("10.0.0.1"), &unknown),
            ip("10.0.0.1")
        );
        let port = headers(&[("x-forwarded-for", "192.0.2.9:5555")]);
        assert_eq!(trusted.client_addr(ip("10.0.0.1"), &port), ip("192.0.2.9"));
        assert_eq!(
            trusted.client_addr(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
    }
}
