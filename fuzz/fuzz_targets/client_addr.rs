//! Trusted-proxy lists and forwarded headers: parsing never panics, and an untrusted peer is
//! always the client whatever the headers say.
#![no_main]

use std::net::{IpAddr, SocketAddr};

use http::{Extensions, HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use tower_jwt_login::client_addr::{ClientAddr, ClientAddrResolver, IpNet, TrustedProxies};

fuzz_target!(|data: &[u8]| {
    let [a, b, c, d, rest @ ..] = data else {
        return;
    };
    let peer = IpAddr::from([*a, *b, *c, *d]);
    let text = String::from_utf8_lossy(rest);
    let mut lines = text.split('\n');
    let proxies_text = lines.next().unwrap_or("");
    let _ = proxies_text.parse::<IpNet>();
    let proxies = proxies_text.parse::<TrustedProxies>().unwrap_or_default();
    let mut headers = HeaderMap::new();
    for (i, line) in lines.take(4).enumerate() {
        let name = if i % 2 == 0 {
            "x-forwarded-for"
        } else {
            "x-real-ip"
        };
        if let Ok(value) = HeaderValue::from_str(line) {
            headers.append(HeaderName::from_static(name), value);
        }
    }
    let mut ext = Extensions::new();
    ext.insert(ClientAddr(SocketAddr::new(peer, 1234)));
    let trusted = proxies.contains(peer);
    let resolved = ClientAddrResolver::new()
        .trusted_proxies(proxies)
        .resolve(&headers, &ext)
        .expect("a peer is set");
    if !trusted {
        assert_eq!(resolved, peer);
    }
});
