//! The client address of a request, for login throttling: the TCP peer, or — only when the peer
//! is a proxy the app explicitly trusts — the address that proxy forwarded in `X-Forwarded-For`
//! (or `X-Real-IP`). PROTOCOL.md §3 "better", §7.2.
//!
//! The crate is transport-agnostic, so the server puts the peer into the request extensions:
//! either as a [`ClientAddr`] (hyper: insert it in the per-connection `service_fn`), or under any
//! type of its own, read by a closure given to [`ClientAddrResolver::peer_from`] (axum:
//! `ConnectInfo<SocketAddr>` from `into_make_service_with_connect_info`).
//!
//! ```
//! use std::net::IpAddr;
//! use http::Request;
//! use tower_jwt_login::client_addr::{ClientAddr, ClientAddrResolver, TrustedProxies};
//!
//! let proxies: TrustedProxies = "10.0.0.0/8, fd00::/8".parse().unwrap();
//! let resolver = ClientAddrResolver::new().trusted_proxies(proxies);
//!
//! // Behind the trusted proxy 10.0.0.1: the rightmost address that is no trusted proxy.
//! let mut req = Request::get("/api/login")
//!     .header("x-forwarded-for", "192.0.2.66, 203.0.113.7, 10.1.2.3")
//!     .body(())
//!     .unwrap();
//! req.extensions_mut().insert(ClientAddr("10.0.0.1:40000".parse().unwrap()));
//! let ip: IpAddr = "203.0.113.7".parse().unwrap();
//! assert_eq!(resolver.resolve(req.headers(), req.extensions()), Some(ip));
//!
//! // Straight from the internet: the forwarded headers are ignored.
//! req.extensions_mut().insert(ClientAddr("198.51.100.9:40000".parse().unwrap()));
//! let ip: IpAddr = "198.51.100.9".parse().unwrap();
//! assert_eq!(resolver.resolve(req.headers(), req.extensions()), Some(ip));
//!
//! // With axum, read `ConnectInfo` instead of `ClientAddr`:
//! let resolver = ClientAddrResolver::new().peer_from(|ext| {
//!     ext.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0)
//! });
//! # let _ = resolver;
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use http::{Extensions, HeaderMap, HeaderName};

/// The TCP peer of a request, as a request extension. Set it in the server (for example in
/// hyper's per-connection `service_fn`); [`ClientAddrResolver::new`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub SocketAddr);

/// An IP network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`, or a single address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

/// A network or network list that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NetParseError;

impl fmt::Display for NetParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an IP network in CIDR notation (like 10.0.0.0/8 or fd00::/8)")
    }
}

impl std::error::Error for NetParseError {}

impl IpNet {
    /// The network of `addr` with `prefix` leading bits; `None` when `prefix` is longer than the
    /// address. Host bits are cleared (`10.1.2.3/8` is `10.0.0.0/8`).
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return None;
        }
        Some(IpNet {
            addr: mask(addr, prefix),
            prefix,
        })
    }

    /// Whether `ip` lies in this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let kept = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits & kept))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let kept = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & kept))
        }
    }
}

impl FromStr for IpNet {
    type Err = NetParseError;

    fn from_str(s: &str) -> Result<Self, NetParseError> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => {
                let addr: IpAddr = addr.parse().map_err(|_| NetParseError)?;
                if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(NetParseError);
                }
                let prefix: u8 = prefix.parse().map_err(|_| NetParseError)?;
                // A mapped address keeps its IPv6 prefix length meaning: ::ffff:10.0.0.0/104.
                let prefix = match addr {
                    IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => {
                        prefix.checked_sub(96).ok_or(NetParseError)?
                    }
                    _ => prefix,
                };
                (addr, prefix)
            }
            None => {
                let addr: IpAddr = s.parse().map_err(|_| NetParseError)?;
                let addr = addr.to_canonical();
                (addr, if addr.is_ipv4() { 32 } else { 128 })
            }
        };
        IpNet::new(addr, prefix).ok_or(NetParseError)
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The proxies whose forwarded-address headers are believed. Empty by default: the TCP peer is
/// the client, whatever the headers say (Core trusts `X-Forwarded-For` from anyone, §7.2).
///
/// Parses from a list separated by commas or whitespace: `"10.0.0.0/8, 127.0.0.1"`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// No trusted proxy.
    pub fn none() -> Self {
        TrustedProxies::default()
    }

    /// The given networks.
    pub fn new(nets: impl IntoIterator<Item = IpNet>) -> Self {
        TrustedProxies {
            nets: nets.into_iter().collect(),
        }
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(ip))
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }
}

impl FromStr for TrustedProxies {
    type Err = NetParseError;

    fn from_str(s: &str) -> Result<Self, NetParseError> {
        s.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|part| !part.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<IpNet>, _>>()
            .map(TrustedProxies::new)
    }
}

type PeerFn = dyn Fn(&Extensions) -> Option<SocketAddr> + Send + Sync;

/// Finds the client address of a request: the peer (from the extensions), replaced by the
/// forwarded client address only when the peer is a [trusted proxy](TrustedProxies).
///
/// With trusted proxies, `X-Forwarded-For` (all its headers, in order) is read from the right:
/// the first address that is no trusted proxy is the client ("rightmost untrusted"), since only
/// the entries appended by our own proxies can be believed. An unparsable entry stops the walk at
/// the last trusted hop. Without `X-Forwarded-For`, a single valid `X-Real-IP` is used.
#[derive(Clone)]
pub struct ClientAddrResolver {
    peer: Arc<PeerFn>,
    trusted: Arc<TrustedProxies>,
}

impl Default for ClientAddrResolver {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ClientAddrResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAddrResolver")
            .field("trusted", &self.trusted)
            .finish_non_exhaustive()
    }
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

impl ClientAddrResolver {
    /// Reads the peer from the [`ClientAddr`] extension; trusts no proxy.
    pub fn new() -> Self {
        ClientAddrResolver {
            peer: Arc::new(|ext: &Extensions| ext.get::<ClientAddr>().map(|c| c.0)),
            trusted: Arc::new(TrustedProxies::none()),
        }
    }

    /// Reads the peer with `peer` instead (for a server that stores it under its own type).
    pub fn peer_from<F>(mut self, peer: F) -> Self
    where
        F: Fn(&Extensions) -> Option<SocketAddr> + Send + Sync + 'static,
    {
        self.peer = Arc::new(peer);
        self
    }

    /// Believes forwarded-address headers from these proxies.
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.trusted = Arc::new(proxies);
        self
    }

    /// The client address, or `None` when the server recorded no peer.
    pub fn resolve(&self, headers: &HeaderMap, extensions: &Extensions) -> Option<IpAddr> {
        let peer = (self.peer)(extensions)?.ip().to_canonical();
        Some(self.forwarded_client(peer, headers))
    }

    fn forwarded_client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusted.contains(peer) {
            return peer;
        }
        let mut forwarded = headers.get_all(X_FORWARDED_FOR).iter().rev().peekable();
        if forwarded.peek().is_none() {
            let mut real = headers.get_all(X_REAL_IP).iter();
            return match (real.next(), real.next()) {
                (Some(value), None) => value.to_str().ok().and_then(parse_hop).unwrap_or(peer),
                _ => peer,
            };
        }
        let mut last_trusted = peer;
        for value in forwarded {
            let Ok(value) = value.to_str() else {
                return last_trusted;
            };
            for hop in value.rsplit(',') {
                match parse_hop(hop) {
                    Some(ip) if self.trusted.contains(ip) => last_trusted = ip,
                    Some(ip) => return ip,
                    None => return last_trusted,
                }
            }
        }
        last_trusted
    }
}

/// One `X-Forwarded-For` entry: an address, optionally with a port (`1.2.3.4:80`, `[::1]:80`)
/// or in brackets.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    let ip = hop
        .parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            hop.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .and_then(|h| h.parse::<Ipv6Addr>().ok())
                .map(IpAddr::V6)
        })?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver(proxies: &str) -> ClientAddrResolver {
        ClientAddrResolver::new().trusted_proxies(proxies.parse().unwrap())
    }

    fn resolve(r: &ClientAddrResolver, peer: &str, headers: &[(&str, &str)]) -> Option<IpAddr> {
        let mut map = HeaderMap::new();
        for (n, v) in headers {
            map.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let mut ext = Extensions::new();
        ext.insert(ClientAddr(peer.parse().unwrap()));
        r.resolve(&map, &ext)
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn nets_parse_and_match() {
        let net: IpNet = "10.1.2.3/8".parse().unwrap();
        assert_eq!(net.to_string(), "10.0.0.0/8");
        assert!(net.contains("10.255.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.0.0.1".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(!net.contains("::a00:1".parse().unwrap()));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let v6: IpNet = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        let mapped: IpNet = "::ffff:10.0.0.0/104".parse().unwrap();
        assert_eq!(mapped.to_string(), "10.0.0.0/8");
        for bad in [
            "",
            "10.0.0.0/",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/+8",
            "x",
            "10/8",
            "::ffff:1.2.3.4/8",
        ] {
            assert_eq!(bad.parse::<IpNet>(), Err(NetParseError), "{bad:?}");
        }
        assert!("".parse::<TrustedProxies>().unwrap().is_empty());
        assert!("10.0.0.0/8,,  ::1".parse::<TrustedProxies>().is_ok());
        assert!("10.0.0.0/8, nope".parse::<TrustedProxies>().is_err());
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_the_headers() {
        let r = resolver("");
        let h = [("x-forwarded-for", "127.0.0.1"), ("x-real-ip", "127.0.0.1")];
        assert_eq!(resolve(&r, "203.0.113.1:9", &h), ip("203.0.113.1"));
        let r = resolver("10.0.0.0/8");
        assert_eq!(resolve(&r, "203.0.113.1:9", &h), ip("203.0.113.1"));
    }

    #[test]
    fn rightmost_untrusted_hop_wins() {
        let r = resolver("10.0.0.0/8");
        let peer = "10.0.0.1:9";
        let xff = |v| [("x-forwarded-for", v)];
        assert_eq!(resolve(&r, peer, &xff("1.1.1.1")), ip("1.1.1.1"));
        assert_eq!(
            resolve(&r, peer, &xff("6.6.6.6, 1.1.1.1, 10.2.2.2")),
            ip("1.1.1.1")
        );
        assert_eq!(
            resolve(&r, peer, &xff("10.3.3.3, 10.2.2.2")),
            ip("10.3.3.3")
        );
        assert_eq!(resolve(&r, peer, &xff("1.1.1.1, garbage")), ip("10.0.0.1"));
        assert_eq!(resolve(&r, peer, &xff("1.1.1.1:8080")), ip("1.1.1.1"));
        assert_eq!(
            resolve(&r, peer, &xff("[2001:db8::1]:443")),
            ip("2001:db8::1")
        );
        assert_eq!(resolve(&r, peer, &xff("[2001:db8::1]")), ip("2001:db8::1"));
        assert_eq!(resolve(&r, peer, &xff("::ffff:1.2.3.4")), ip("1.2.3.4"));
        // Two headers: the second is the later (rightmost) one.
        let two = [
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "2.2.2.2"),
        ];
        assert_eq!(resolve(&r, peer, &two), ip("2.2.2.2"));
        // X-Real-IP only without X-Forwarded-For, and only one of it.
        assert_eq!(
            resolve(&r, peer, &[("x-real-ip", "3.3.3.3")]),
            ip("3.3.3.3")
        );
        let both = [("x-forwarded-for", "1.1.1.1"), ("x-real-ip", "3.3.3.3")];
        assert_eq!(resolve(&r, peer, &both), ip("1.1.1.1"));
        let dup = [("x-real-ip", "3.3.3.3"), ("x-real-ip", "4.4.4.4")];
        assert_eq!(resolve(&r, peer, &dup), ip("10.0.0.1"));
        assert_eq!(resolve(&r, peer, &[("x-real-ip", "nope")]), ip("10.0.0.1"));
    }

    #[test]
    fn no_peer_means_no_address() {
        let r = resolver("0.0.0.0/0");
        let mut map = HeaderMap::new();
        map.insert(X_FORWARDED_FOR, "1.1.1.1".parse().unwrap());
        assert_eq!(r.resolve(&map, &Extensions::new()), None);
    }
}
