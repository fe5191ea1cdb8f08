//! Trusted-proxy lists and forwarded headers (every `ClientIpHeader`, arbitrary bytes): parsing
//! never panics, an untrusted peer is always the client whatever the headers say, and the answer
//! is canonical (IPv4-mapped IPv6 as IPv4).
#![no_main]

use std::net::{IpAddr, SocketAddr};

use http::{Extensions, HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use tower_jwt_login::client_addr::{
    ClientAddr, ClientAddrResolver, ClientIpHeader, IpNet, TrustedProxies,
};

fuzz_target!(|data: &[u8]| {
    let [a, b, c, d, h, rest @ ..] = data else {
        return;
    };
    let peer = IpAddr::from([*a, *b, *c, *d]);
    let header = ClientIpHeader::ALL[usize::from(*h) % ClientIpHeader::ALL.len()];
    let _ = String::from_utf8_lossy(rest).parse::<ClientIpHeader>();
    // Lines as bytes: header values may hold any byte but control characters.
    let mut lines = rest.split(|b| *b == b'\n');
    let proxies_text = String::from_utf8_lossy(lines.next().unwrap_or(b""));
    let _ = proxies_text.parse::<IpNet>();
    let proxies = proxies_text.parse::<TrustedProxies>().unwrap_or_default();
    let configured = HeaderName::from_bytes(header.as_str().as_bytes()).expect("header name");
    let mut headers = HeaderMap::new();
    for (i, line) in lines.take(4).enumerate() {
        let name = match i % 3 {
            0 | 2 => configured.clone(),
            _ => HeaderName::from_static("x-forwarded-for"),
        };
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(name, value);
        }
    }
    let mut ext = Extensions::new();
    ext.insert(ClientAddr(SocketAddr::new(peer, 1234)));
    let trusted = proxies.contains(peer);
    let resolved = ClientAddrResolver::new()
        .trusted_proxies(proxies)
        .client_ip_header(header)
        .resolve(&headers, &ext)
        .expect("a peer is set");
    assert_eq!(resolved, resolved.to_canonical());
    if !trusted {
        assert_eq!(resolved, peer);
    }
});
