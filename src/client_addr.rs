//! The client address of a request, for login throttling and the audit log: the TCP peer, or —
//! only when the peer is a proxy the app explicitly trusts — the address that proxy forwarded in
//! the ONE header the operator names ([`ClientIpHeader`]; docs/protocol.md §3 "better", §7.2).
//!
//! The peer comes from the request extensions. [`ClientAddrResolver::new`] finds it without
//! wiring under the usual servers: a [`ClientAddr`] the server inserted (plain hyper: in the
//! per-connection `service_fn`), axum's `ConnectInfo<SocketAddr>` (feature `axum`; serve with
//! `into_make_service_with_connect_info::<SocketAddr>()`), and tonic's `TcpConnectInfo` (feature
//! `tonic`; tonic's transport server records it for every request, HTTP/1.1 routes included).
//! Anything else: [`ClientAddrResolver::peer_from`].
//!
//! ```
//! use std::net::IpAddr;
//! use http::Request;
//! use tower_jwt_login::client_addr::{ClientAddr, ClientAddrResolver, ClientIpHeader, TrustedProxies};
//!
//! let proxies: TrustedProxies = "10.0.0.0/8, fd00::/8".parse().unwrap();
//! let resolver = ClientAddrResolver::new().trusted_proxies(proxies.clone());
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
//! // nginx with `proxy_set_header X-Real-IP $remote_addr`: only that header counts, whatever
//! // `X-Forwarded-For` the client sent along.
//! let nginx = ClientAddrResolver::new()
//!     .trusted_proxies(proxies)
//!     .client_ip_header(ClientIpHeader::XRealIp);
//! req.headers_mut().insert("x-real-ip", "198.51.100.4".parse().unwrap());
//! let ip: IpAddr = "198.51.100.4".parse().unwrap();
//! assert_eq!(nginx.resolve(req.headers(), req.extensions()), Some(ip));
//!
//! // Straight from the internet: the forwarded headers are ignored.
//! req.extensions_mut().insert(ClientAddr("198.51.100.9:40000".parse().unwrap()));
//! let ip: IpAddr = "198.51.100.9".parse().unwrap();
//! assert_eq!(resolver.resolve(req.headers(), req.extensions()), Some(ip));
//! ```
//!
//! # Which parsing is whose
//!
//! The single-address headers (`X-Real-IP`, `CF-Connecting-IP`, `True-Client-IP`,
//! `Fly-Client-IP`) are read by the [`client-ip`](https://docs.rs/client-ip) crate (extracted
//! from axum-client-ip, so this security-sensitive parsing lives in one place): exactly one
//! occurrence of the header, visible ASCII, one IP address. The multi-hop headers
//! (`X-Forwarded-For`, RFC 7239 `Forwarded`) are walked here, because `client-ip` only gives the
//! rightmost entry of the last header line and refuses a whole line with one non-ASCII byte,
//! while a chain of trusted proxies needs the rightmost *untrusted* entry — see
//! [`ClientAddrResolver`].

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

/// The one header a trusted proxy sets with the client address
/// (`CORE_API_AUTH_CLIENT_IP_HEADER`). Only this header is read, and only when the TCP peer is a
/// [trusted proxy](TrustedProxies); every other forwarded-address header is ignored.
///
/// Parses from its header name, case-insensitively: `"X-Real-IP".parse()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ClientIpHeader {
    /// `X-Forwarded-For` (the default): a comma-separated list each proxy appends its peer to;
    /// the rightmost address that is no trusted proxy is the client.
    #[default]
    XForwardedFor,
    /// `X-Real-IP`: one address (nginx `proxy_set_header X-Real-IP $remote_addr`).
    XRealIp,
    /// RFC 7239 `Forwarded`: the `for=` of the rightmost element that is no trusted proxy.
    Forwarded,
    /// `CF-Connecting-IP` (Cloudflare).
    CfConnectingIp,
    /// `True-Client-IP` (Akamai, Cloudflare Enterprise).
    TrueClientIp,
    /// `Fly-Client-IP` (Fly.io).
    FlyClientIp,
}

impl ClientIpHeader {
    /// Every header, in the order of the documentation.
    pub const ALL: [ClientIpHeader; 6] = [
        ClientIpHeader::XForwardedFor,
        ClientIpHeader::XRealIp,
        ClientIpHeader::Forwarded,
        ClientIpHeader::CfConnectingIp,
        ClientIpHeader::TrueClientIp,
        ClientIpHeader::FlyClientIp,
    ];

    /// The header name as usually spelled (`X-Forwarded-For`, `X-Real-IP`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ClientIpHeader::XForwardedFor => "X-Forwarded-For",
            ClientIpHeader::XRealIp => "X-Real-IP",
            ClientIpHeader::Forwarded => "Forwarded",
            ClientIpHeader::CfConnectingIp => "CF-Connecting-IP",
            ClientIpHeader::TrueClientIp => "True-Client-IP",
            ClientIpHeader::FlyClientIp => "Fly-Client-IP",
        }
    }
}

impl fmt::Display for ClientIpHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A header name that is no [`ClientIpHeader`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnknownClientIpHeader;

impl fmt::Display for UnknownClientIpHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a supported client address header (one of ")?;
        for (i, h) in ClientIpHeader::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(h.as_str())?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for UnknownClientIpHeader {}

impl FromStr for ClientIpHeader {
    type Err = UnknownClientIpHeader;

    fn from_str(s: &str) -> Result<Self, UnknownClientIpHeader> {
        let s = s.trim();
        ClientIpHeader::ALL
            .into_iter()
            .find(|h| h.as_str().eq_ignore_ascii_case(s))
            .ok_or(UnknownClientIpHeader)
    }
}

type PeerFn = dyn Fn(&Extensions) -> Option<SocketAddr> + Send + Sync;

/// Finds the client address of a request: the peer (from the extensions), replaced by the
/// forwarded client address only when the peer is a [trusted proxy](TrustedProxies), read from
/// the one [`ClientIpHeader`] configured (default `X-Forwarded-For`).
///
/// **Multi-hop headers** (`X-Forwarded-For`, `Forwarded`; all lines of the header, in order,
/// as one list) are read hop by hop from the right, as bytes: each proxy appends the address of
/// its own peer, so only the entries right of the first untrusted one were written by our
/// proxies. Trusted hops are skipped; the first hop that is no trusted proxy is the client. A
/// hop the walk reaches that is not an address (empty, `unknown`, obfuscated, not ASCII, …)
/// was written by a trusted proxy that could not name its peer: the walk stops there and the
/// client is the last trusted hop (the proxy itself, or the peer), never anything further left,
/// which the client may have chosen. Garbage left of the client's entry is never looked at, so a
/// client cannot make its proxy's entry unreadable.
///
/// **Single-address headers** (`X-Real-IP`, `CF-Connecting-IP`, `True-Client-IP`,
/// `Fly-Client-IP`): one occurrence with one address, else the peer counts.
///
/// The peer: see the [module docs](self) for where [`new`](Self::new) looks.
#[derive(Clone)]
pub struct ClientAddrResolver {
    peer: Option<Arc<PeerFn>>,
    trusted: Arc<TrustedProxies>,
    header: ClientIpHeader,
}

impl Default for ClientAddrResolver {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ClientAddrResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAddrResolver")
            .field(
                "peer",
                &if self.peer.is_some() {
                    "custom"
                } else {
                    "default"
                },
            )
            .field("trusted", &self.trusted)
            .field("header", &self.header)
            .finish()
    }
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// The peer the server recorded: [`ClientAddr`], axum's `ConnectInfo<SocketAddr>`, tonic's
/// `TcpConnectInfo`, in that order.
fn default_peer(extensions: &Extensions) -> Option<SocketAddr> {
    if let Some(ClientAddr(addr)) = extensions.get::<ClientAddr>() {
        return Some(*addr);
    }
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0);
    }
    #[cfg(feature = "tonic")]
    if let Some(addr) = extensions
        .get::<tonic::transport::server::TcpConnectInfo>()
        .and_then(|info| info.remote_addr())
    {
        return Some(addr);
    }
    None
}

impl ClientAddrResolver {
    /// Reads the peer from the [`ClientAddr`] extension, axum's `ConnectInfo<SocketAddr>`
    /// (feature `axum`) or tonic's `TcpConnectInfo` (feature `tonic`); trusts no proxy; reads
    /// `X-Forwarded-For` once proxies are trusted.
    pub fn new() -> Self {
        ClientAddrResolver {
            peer: None,
            trusted: Arc::new(TrustedProxies::none()),
            header: ClientIpHeader::default(),
        }
    }

    /// Reads the peer with `peer` instead (for a server that stores it under its own type, or
    /// tonic with TLS, whose extension is `TlsConnectInfo<TcpConnectInfo>`).
    #[must_use]
    pub fn peer_from<F>(mut self, peer: F) -> Self
    where
        F: Fn(&Extensions) -> Option<SocketAddr> + Send + Sync + 'static,
    {
        self.peer = Some(Arc::new(peer));
        self
    }

    /// Believes the [client address header](Self::client_ip_header) from these proxies.
    #[must_use]
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.trusted = Arc::new(proxies);
        self
    }

    /// The one header the trusted proxies set (default `X-Forwarded-For`); no other is read.
    #[must_use]
    pub fn client_ip_header(mut self, header: ClientIpHeader) -> Self {
        self.header = header;
        self
    }

    /// The header read from trusted proxies.
    pub fn header(&self) -> ClientIpHeader {
        self.header
    }

    /// The client address, or `None` when the server recorded no peer.
    pub fn resolve(&self, headers: &HeaderMap, extensions: &Extensions) -> Option<IpAddr> {
        let peer = match &self.peer {
            Some(peer) => peer(extensions),
            None => default_peer(extensions),
        }?;
        let peer = peer.ip().to_canonical();
        if !self.trusted.contains(peer) {
            return Some(peer);
        }
        Some(self.forwarded_client(peer, headers))
    }

    fn forwarded_client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let single = match self.header {
            ClientIpHeader::XForwardedFor => {
                return self.rightmost_untrusted(peer, headers, &X_FORWARDED_FOR, false);
            }
            ClientIpHeader::Forwarded => {
                return self.rightmost_untrusted(peer, headers, &FORWARDED, true);
            }
            ClientIpHeader::XRealIp => client_ip::x_real_ip(headers),
            ClientIpHeader::CfConnectingIp => client_ip::cf_connecting_ip(headers),
            ClientIpHeader::TrueClientIp => client_ip::true_client_ip(headers),
            ClientIpHeader::FlyClientIp => client_ip::fly_client_ip(headers),
        };
        match single {
            Ok(ip) => ip.to_canonical(),
            Err(error) => {
                tracing::debug!(%error, %peer, "no usable client address header from a trusted proxy; the proxy counts");
                peer
            }
        }
    }

    /// Walks the hops of every `name` line from the right (the last line first).
    fn rightmost_untrusted(
        &self,
        peer: IpAddr,
        headers: &HeaderMap,
        name: &HeaderName,
        forwarded: bool,
    ) -> IpAddr {
        let mut last_trusted = peer;
        for value in headers.get_all(name).iter().rev() {
            let value = value.as_bytes();
            let done = if forwarded {
                let hops = RSplitUnquoted::new(value, b',').map(parse_forwarded_element);
                self.walk(hops, &mut last_trusted)
            } else {
                self.walk(
                    value.rsplit(|b| *b == b',').map(parse_node),
                    &mut last_trusted,
                )
            };
            if let Some(client) = done {
                return client;
            }
        }
        last_trusted
    }

    /// Skips trusted hops; `Some` when the walk ends in this line.
    fn walk(
        &self,
        hops: impl Iterator<Item = Option<IpAddr>>,
        last_trusted: &mut IpAddr,
    ) -> Option<IpAddr> {
        for hop in hops {
            match hop {
                Some(ip) if self.trusted.contains(ip) => *last_trusted = ip,
                Some(ip) => return Some(ip),
                None => return Some(*last_trusted),
            }
        }
        None
    }
}

/// Splits at `sep` outside double quotes, from the right. Quotes are only tracked, not
/// unescaped: a quoted-pair (`\"`) in an element makes that element unparsable, never a split
/// point moved into another element written by a trusted proxy (those hold no escapes).
struct RSplitUnquoted<'a> {
    rest: Option<&'a [u8]>,
    sep: u8,
}

impl<'a> RSplitUnquoted<'a> {
    fn new(value: &'a [u8], sep: u8) -> Self {
        RSplitUnquoted {
            rest: Some(value),
            sep,
        }
    }
}

impl<'a> Iterator for RSplitUnquoted<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        let mut quoted = false;
        for (i, b) in rest.iter().enumerate().rev() {
            if *b == b'"' {
                quoted = !quoted;
            } else if *b == self.sep && !quoted {
                self.rest = rest.get(..i);
                return rest.get(i + 1..);
            }
        }
        self.rest = None;
        Some(rest)
    }
}

fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

/// One RFC 7239 `forwarded-element` (`for=…;proto=…;by=…`): the address of its single `for`
/// parameter, or `None` (no `for`, two of them, `unknown`, an obfuscated name, garbage).
fn parse_forwarded_element(element: &[u8]) -> Option<IpAddr> {
    let mut found = None;
    for pair in RSplitUnquoted::new(element, b';') {
        let pair = trim_ows(pair);
        let eq = pair.iter().position(|b| *b == b'=')?;
        let (name, value) = (pair.get(..eq)?, pair.get(eq + 1..)?);
        if !trim_ows(name).eq_ignore_ascii_case(b"for") {
            continue;
        }
        if found.is_some() {
            return None;
        }
        let value = trim_ows(value);
        let value = match value {
            [b'"', inner @ .., b'"'] => inner,
            _ => value,
        };
        found = Some(parse_node(value)?);
    }
    found
}

/// One `X-Forwarded-For` entry or `Forwarded` node: an address, optionally with a port
/// (`1.2.3.4:80`, `[::1]:80`) or in brackets; surrounding spaces and tabs allowed.
fn parse_node(hop: &[u8]) -> Option<IpAddr> {
    let hop = std::str::from_utf8(trim_ows(hop)).ok()?;
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

    fn with_header(proxies: &str, header: ClientIpHeader) -> ClientAddrResolver {
        resolver(proxies).client_ip_header(header)
    }

    fn resolve_raw(
        r: &ClientAddrResolver,
        peer: &str,
        headers: &[(&str, &[u8])],
    ) -> Option<IpAddr> {
        let mut map = HeaderMap::new();
        for (n, v) in headers {
            map.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                http::HeaderValue::from_bytes(v).unwrap(),
            );
        }
        let mut ext = Extensions::new();
        ext.insert(ClientAddr(peer.parse().unwrap()));
        r.resolve(&map, &ext)
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_the_headers() {
        let h = [
            ("x-forwarded-for", "127.0.0.1"),
            ("x-real-ip", "127.0.0.1"),
            ("forwarded", "for=127.0.0.1"),
            ("cf-connecting-ip", "127.0.0.1"),
        ];
        for header in ClientIpHeader::ALL {
            let r = with_header("", header);
            assert_eq!(resolve(&r, "203.0.113.1:9", &h), ip("203.0.113.1"));
            let r = with_header("10.0.0.0/8", header);
            assert_eq!(resolve(&r, "203.0.113.1:9", &h), ip("203.0.113.1"));
        }
    }

    #[test]
    fn header_names_parse_case_insensitively_and_nothing_else() {
        for h in ClientIpHeader::ALL {
            assert_eq!(h.as_str().parse::<ClientIpHeader>(), Ok(h));
            assert_eq!(h.as_str().to_lowercase().parse::<ClientIpHeader>(), Ok(h));
            assert_eq!(format!(" {h} ").parse::<ClientIpHeader>(), Ok(h));
        }
        assert_eq!(ClientIpHeader::default(), ClientIpHeader::XForwardedFor);
        for bad in [
            "",
            "X-Forwarded",
            "X-Real-IP,Forwarded",
            "X-Client-IP",
            "x_real_ip",
        ] {
            assert_eq!(bad.parse::<ClientIpHeader>(), Err(UnknownClientIpHeader));
        }
        assert_eq!(
            UnknownClientIpHeader.to_string(),
            "not a supported client address header (one of X-Forwarded-For, X-Real-IP, \
             Forwarded, CF-Connecting-IP, True-Client-IP, Fly-Client-IP)"
        );
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
        assert_eq!(resolve(&r, peer, &xff("1.1.1.1:8080")), ip("1.1.1.1"));
        assert_eq!(
            resolve(&r, peer, &xff("[2001:db8::1]:443")),
            ip("2001:db8::1")
        );
        assert_eq!(resolve(&r, peer, &xff("[2001:db8::1]")), ip("2001:db8::1"));
        assert_eq!(resolve(&r, peer, &xff("::ffff:1.2.3.4")), ip("1.2.3.4"));
        assert_eq!(resolve(&r, peer, &xff("\t1.1.1.1\t")), ip("1.1.1.1"));
        // Two headers: the second is the later (rightmost) one.
        let two = [
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "2.2.2.2"),
        ];
        assert_eq!(resolve(&r, peer, &two), ip("2.2.2.2"));
        let two = [
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "10.2.2.2"),
        ];
        assert_eq!(resolve(&r, peer, &two), ip("1.1.1.1"));
        // Only the configured header: X-Real-IP is ignored under the default.
        assert_eq!(
            resolve(&r, peer, &[("x-real-ip", "3.3.3.3")]),
            ip("10.0.0.1")
        );
        let both = [("x-forwarded-for", "1.1.1.1"), ("x-real-ip", "3.3.3.3")];
        assert_eq!(resolve(&r, peer, &both), ip("1.1.1.1"));
    }

    #[test]
    fn garbage_stops_the_walk_only_where_it_is_reached() {
        let r = resolver("10.0.0.0/8");
        let peer = "10.0.0.1:9";
        let xff = |v: &'static [u8]| [("x-forwarded-for", v)];
        // Garbage left of the client's entry is never read, not even non-ASCII bytes.
        for value in [
            &b"\xff\xfe, 203.0.113.5"[..],
            b"caf\xc3\xa9, 203.0.113.5, 10.9.9.9",
            b"garbage, 203.0.113.5",
            b",, 203.0.113.5",
            b"unknown,203.0.113.5",
        ] {
            assert_eq!(
                resolve_raw(&r, peer, &xff(value)),
                ip("203.0.113.5"),
                "{value:?}"
            );
        }
        // Garbage a trusted proxy wrote: the walk stops at the last trusted hop, and never
        // believes what lies further left (which the client may have chosen).
        for (value, expected) in [
            (&b"1.1.1.1, garbage"[..], "10.0.0.1"),
            (b"1.1.1.1, \xff", "10.0.0.1"),
            (b"1.1.1.1, unknown, 10.2.2.2", "10.2.2.2"),
            (b"1.1.1.1, , 10.2.2.2", "10.2.2.2"),
            (b"1.1.1.1,", "10.0.0.1"),
            (b"", "10.0.0.1"),
            (b"1.1.1.1 2.2.2.2", "10.0.0.1"),
        ] {
            assert_eq!(
                resolve_raw(&r, peer, &xff(value)),
                ip(expected),
                "{value:?}"
            );
        }
        // A garbage last line stops the walk before earlier lines.
        let lines: [(&str, &[u8]); 2] = [
            ("x-forwarded-for", b"1.1.1.1"),
            ("x-forwarded-for", b"\xff"),
        ];
        assert_eq!(resolve_raw(&r, peer, &lines), ip("10.0.0.1"));
    }

    #[test]
    fn forwarded_rfc_7239() {
        let r = with_header("10.0.0.0/8", ClientIpHeader::Forwarded);
        let peer = "10.0.0.1:9";
        let fwd = |v| [("forwarded", v)];
        for (value, expected) in [
            ("for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60"),
            ("For=\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::17"),
            ("for=192.0.2.43, for=198.51.100.17", "198.51.100.17"),
            (
                "for=192.0.2.43, for=198.51.100.17;by=10.0.0.1, for=10.1.1.1",
                "198.51.100.17",
            ),
            (
                "proto=https; for=\"192.0.2.8:80\" ;host=example.com",
                "192.0.2.8",
            ),
            ("for=\"_hidden\", for=192.0.2.9", "192.0.2.9"),
            ("for=\"\\\",,\", for=192.0.2.9", "192.0.2.9"),
            ("for=192.0.2.9;host=\"a,b\"", "192.0.2.9"),
            // Trusted-written elements the walk cannot read: stop at the last trusted hop.
            ("for=192.0.2.43, for=unknown", "10.0.0.1"),
            ("for=192.0.2.43, for=_hidden, for=10.1.1.1", "10.1.1.1"),
            ("for=192.0.2.43, proto=https", "10.0.0.1"),
            ("for=192.0.2.43, for=1.1.1.1;for=2.2.2.2", "10.0.0.1"),
            ("192.0.2.43", "10.0.0.1"),
        ] {
            assert_eq!(resolve(&r, peer, &fwd(value)), ip(expected), "{value}");
        }
        // X-Forwarded-For is not read when Forwarded is configured.
        assert_eq!(
            resolve(&r, peer, &[("x-forwarded-for", "1.1.1.1")]),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn single_address_headers_through_client_ip() {
        for (header, name) in [
            (ClientIpHeader::XRealIp, "x-real-ip"),
            (ClientIpHeader::CfConnectingIp, "cf-connecting-ip"),
            (ClientIpHeader::TrueClientIp, "true-client-ip"),
            (ClientIpHeader::FlyClientIp, "fly-client-ip"),
        ] {
            let r = with_header("10.0.0.0/8", header);
            let peer = "10.0.0.1:9";
            // The one header, whatever X-Forwarded-For the client sent.
            let h = [(name, "3.3.3.3"), ("x-forwarded-for", "6.6.6.6")];
            assert_eq!(resolve(&r, peer, &h), ip("3.3.3.3"), "{name}");
            assert_eq!(
                resolve(&r, peer, &[(name, " 2001:db8::7 ")]),
                ip("2001:db8::7")
            );
            assert_eq!(
                resolve(&r, peer, &[(name, "::ffff:3.3.3.3")]),
                ip("3.3.3.3")
            );
            // Missing, twice, or not one address: the proxy counts.
            for bad in [
                &[("x-forwarded-for", "6.6.6.6")][..],
                &[(name, "3.3.3.3"), (name, "4.4.4.4")],
                &[(name, "nope")],
                &[(name, "3.3.3.3, 4.4.4.4")],
            ] {
                assert_eq!(resolve(&r, peer, bad), ip("10.0.0.1"), "{name} {bad:?}");
            }
            assert_eq!(
                resolve_raw(&r, peer, &[(name, b"\xff3.3.3.3")]),
                ip("10.0.0.1")
            );
        }
    }

    #[cfg(feature = "axum")]
    #[test]
    fn reads_axum_connect_info_by_default() {
        let mut ext = Extensions::new();
        ext.insert(axum::extract::ConnectInfo::<SocketAddr>(
            "198.51.100.3:5000".parse().unwrap(),
        ));
        let r = ClientAddrResolver::new();
        assert_eq!(r.resolve(&HeaderMap::new(), &ext), ip("198.51.100.3"));
        // An explicit ClientAddr wins.
        ext.insert(ClientAddr("198.51.100.4:5000".parse().unwrap()));
        assert_eq!(r.resolve(&HeaderMap::new(), &ext), ip("198.51.100.4"));
    }

    #[cfg(feature = "tonic")]
    #[test]
    fn reads_tonic_tcp_connect_info_by_default() {
        let mut ext = Extensions::new();
        ext.insert(tonic::transport::server::TcpConnectInfo {
            local_addr: Some("127.0.0.1:50051".parse().unwrap()),
            remote_addr: Some("[2001:db8::5]:6000".parse().unwrap()),
        });
        let r = ClientAddrResolver::new();
        assert_eq!(r.resolve(&HeaderMap::new(), &ext), ip("2001:db8::5"));
        let mut ext = Extensions::new();
        ext.insert(tonic::transport::server::TcpConnectInfo {
            local_addr: None,
            remote_addr: None,
        });
        assert_eq!(r.resolve(&HeaderMap::new(), &ext), None);
    }

    #[test]
    fn peer_from_replaces_the_default_sources() {
        let r = ClientAddrResolver::new().peer_from(|_| Some("192.0.2.1:1".parse().unwrap()));
        let mut ext = Extensions::new();
        ext.insert(ClientAddr("198.51.100.4:5000".parse().unwrap()));
        assert_eq!(r.resolve(&HeaderMap::new(), &ext), ip("192.0.2.1"));
    }

    #[test]
    fn no_peer_means_no_address() {
        let r = resolver("0.0.0.0/0");
        let mut map = HeaderMap::new();
        map.insert(X_FORWARDED_FOR, "1.1.1.1".parse().unwrap());
        assert_eq!(r.resolve(&map, &Extensions::new()), None);
    }
}
