//! Property tests: random inputs on every CI run (the fuzz targets in `fuzz/` go deeper).
//!
//! Nothing here may panic; every refusal is an error value or a §2-shaped response.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use proptest::prelude::*;
use tower::ServiceExt;
use tower_jwt_login::bearer::bearer_token;
use tower_jwt_login::client_addr::{ClientAddr, ClientAddrResolver, IpNet, TrustedProxies};
use tower_jwt_login::login::LoginService;
use tower_jwt_login::store::PlaintextUser;
use tower_jwt_login::throttle::ThrottleConfig;
use tower_jwt_login::{Jwt, JwtConfig, JwtKey, TokenUse};

fn jwt() -> Jwt {
    JwtConfig::new(JwtKey::core_compatible("admin", "datarhei", "secretsecret"))
        .build()
        .unwrap()
}

/// A token-ish string: mostly base64url characters and dots, sometimes anything.
fn tokenish() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_.=+/-]{0,200}",
        "eyJ[A-Za-z0-9_-]{0,60}\\.eyJ[A-Za-z0-9_-]{0,120}\\.[A-Za-z0-9_-]{0,50}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn verify_never_panics_and_refuses_random_tokens(token in tokenish()) {
        let jwt = jwt();
        prop_assert!(jwt.verify(&token, TokenUse::Access).is_err());
        prop_assert!(jwt.verify(&token, TokenUse::Refresh).is_err());
    }

    #[test]
    fn any_single_character_change_of_a_valid_token_is_refused(
        subject in "[a-zA-Z0-9|@._-]{1,40}",
        index in any::<prop::sample::Index>(),
        replacement in prop::char::any(),
    ) {
        let jwt = jwt();
        let token = jwt.issue_pair(&subject).access_token;
        let claims = jwt.verify(&token, TokenUse::Access).unwrap();
        prop_assert_eq!(claims.subject(), subject.as_str());
        let mut chars: Vec<char> = token.chars().collect();
        let i = index.index(chars.len());
        prop_assume!(chars[i] != replacement);
        chars[i] = replacement;
        let mutated: String = chars.into_iter().collect();
        prop_assert!(jwt.verify(&mutated, TokenUse::Access).is_err(), "{}", mutated);
    }

    #[test]
    fn minted_tokens_verify_for_any_subject(subject in "\\PC{1,64}") {
        let jwt = jwt();
        let pair = jwt.issue_pair(&subject);
        let claims = jwt.verify(&pair.access_token, TokenUse::Access).unwrap();
        prop_assert_eq!(claims.subject(), subject.as_str());
        let claims = jwt.verify(&pair.refresh_token, TokenUse::Refresh).unwrap();
        prop_assert_eq!(claims.subject(), subject.as_str());
        prop_assert!(jwt.verify(&pair.access_token, TokenUse::Refresh).is_err());
        prop_assert!(jwt.verify(&pair.refresh_token, TokenUse::Access).is_err());
    }

    #[test]
    fn bearer_parsing_never_panics_and_returns_a_b64token(
        value in prop::collection::vec(any::<u8>(), 0..120),
        prefix in prop_oneof![Just(""), Just("Bearer "), Just("bearer  "), Just("Basic ")],
    ) {
        let mut bytes = prefix.as_bytes().to_vec();
        bytes.extend_from_slice(&value);
        let Ok(header) = HeaderValue::from_bytes(&bytes) else {
            return Ok(());
        };
        let mut headers = HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, header);
        if let Ok(token) = bearer_token(&headers) {
            prop_assert!(!token.is_empty());
            let b64token = token
                .trim_end_matches('=')
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
            prop_assert!(b64token, "{}", token);
            let text = std::str::from_utf8(&bytes).unwrap();
            prop_assert!(text.get(..7).is_some_and(|s| s.eq_ignore_ascii_case("bearer ")));
            prop_assert!(text.ends_with(token));
        }
    }

    #[test]
    fn networks_contain_their_own_addresses(bits in any::<u128>(), v4 in any::<u32>(), prefix in 0u8..=128) {
        let v6 = IpAddr::from(std::net::Ipv6Addr::from(bits));
        if let Some(net) = IpNet::new(v6, prefix) {
            prop_assert!(net.contains(v6) || v6.to_canonical().is_ipv4());
            prop_assert_eq!(net.to_string().parse::<IpNet>().ok(), Some(net));
        }
        let v4 = IpAddr::from(std::net::Ipv4Addr::from(v4));
        if let Some(net) = IpNet::new(v4, prefix.min(32)) {
            prop_assert!(net.contains(v4));
        }
    }

    #[test]
    fn network_lists_parse_without_panicking(text in "[0-9a-fA-F:./, x]{0,60}") {
        let _ = text.parse::<TrustedProxies>();
        let _ = text.parse::<IpNet>();
    }

    #[test]
    fn throttle_never_allows_more_than_the_limit_and_stays_bounded(
        ops in prop::collection::vec((0u8..8, 0u8..4, any::<bool>()), 1..300),
    ) {
        let window = Duration::from_secs(900);
        // Large enough that nothing is evicted: the exact limits hold.
        let roomy = ThrottleConfig::new(3, window).build().unwrap();
        // Tiny: the key count stays under the cap whatever happens.
        let cap = 16;
        let tiny = ThrottleConfig::new(3, window).max_tracked_keys(cap).build().unwrap();
        let mut failures = std::collections::HashMap::<(u8, u8), u32>::new();
        let mut per_addr = std::collections::HashMap::<u8, u32>::new();
        for (account, addr, succeed) in ops {
            let name = format!("user{account}");
            let ip = Some(IpAddr::from([192, 0, 2, addr]));
            if tiny.begin(&name, ip).is_ok() && succeed {
                tiny.succeeded(&name, ip);
            }
            prop_assert!(tiny.tracked_keys() <= cap);
            if roomy.begin(&name, ip).is_ok() {
                if succeed {
                    roomy.succeeded(&name, ip);
                    failures.remove(&(account, addr));
                } else {
                    *failures.entry((account, addr)).or_default() += 1;
                    *per_addr.entry(addr).or_default() += 1;
                }
            }
            prop_assert!(failures.values().all(|n| *n <= 3), "{:?}", failures);
            prop_assert!(per_addr.values().all(|n| *n <= 15), "{:?}", per_addr);
        }
    }
}

/// One `X-Forwarded-For` hop of the model: an address of a trusted proxy (10.0.0.0/8), of a
/// client, or bytes that are no address (ASCII garbage, non-ASCII bytes, empty).
#[derive(Debug, Clone)]
enum Hop {
    Trusted(u8, u8),
    Client(IpAddr),
    Garbage(Vec<u8>),
}

fn hop() -> impl Strategy<Value = Hop> {
    prop_oneof![
        (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Hop::Trusted(a, b)),
        any::<[u8; 4]>()
            .prop_filter("not trusted", |b| b[0] != 10)
            .prop_map(|b| Hop::Client(IpAddr::from(b))),
        any::<u16>().prop_map(|x| Hop::Client(IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, x]))),
        r"[ \t]{0,2}[g-zG-Z][g-z0-9:.\[\]]{0,6}".prop_map(|g| Hop::Garbage(g.into_bytes())),
        prop::collection::vec(0x80u8..=0xff, 1..4).prop_map(Hop::Garbage),
        Just(Hop::Garbage(Vec::new())),
    ]
}

fn hop_bytes(hop: &Hop) -> Vec<u8> {
    match hop {
        Hop::Trusted(a, b) => format!("10.0.{a}.{b}").into_bytes(),
        Hop::Client(IpAddr::V6(v6)) => format!("[{v6}]:443").into_bytes(),
        Hop::Client(ip) => ip.to_string().into_bytes(),
        Hop::Garbage(bytes) => bytes.clone(),
    }
}

fn resolve_xff(lines: &[Vec<u8>]) -> Option<IpAddr> {
    let resolver = ClientAddrResolver::new().trusted_proxies("10.0.0.0/8".parse().unwrap());
    let mut headers = HeaderMap::new();
    for line in lines {
        headers.append("x-forwarded-for", HeaderValue::from_bytes(line).unwrap());
    }
    let mut ext = http::Extensions::new();
    ext.insert(ClientAddr("10.0.0.1:40000".parse().unwrap()));
    resolver.resolve(&headers, &ext)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The walk from the right: trusted hops are skipped, the first client address is the
    /// client, and a hop that is no address ends the walk at the last trusted hop.
    #[test]
    fn forwarded_for_is_the_rightmost_untrusted_hop(hops in prop::collection::vec(hop(), 0..8)) {
        let line = hops.iter().map(hop_bytes).collect::<Vec<_>>().join(&b","[..]);
        let mut expected: IpAddr = "10.0.0.1".parse().unwrap();
        for hop in hops.iter().rev() {
            match hop {
                Hop::Trusted(a, b) => expected = IpAddr::from([10, 0, *a, *b]),
                Hop::Client(ip) => {
                    expected = *ip;
                    break;
                }
                Hop::Garbage(_) => break,
            }
        }
        prop_assert_eq!(resolve_xff(&[line]), Some(expected));
    }

    /// Whatever the client sends in front of the entry its proxy appended, the result is that
    /// entry: the client cannot choose its address nor make the proxy's entry unreadable.
    #[test]
    fn client_sent_prefix_never_matters(
        prefix in prop::collection::vec(
            any::<u8>().prop_filter("header byte", |b| *b == b'\t' || (*b >= 0x20 && *b != 0x7f)),
            0..40,
        ),
        client in any::<[u8; 4]>().prop_filter("not trusted", |b| b[0] != 10),
        inner in prop::collection::vec((any::<u8>(), any::<u8>()), 0..3),
        split_lines in any::<bool>(),
    ) {
        let client = IpAddr::from(client);
        let mut appended = client.to_string();
        for (a, b) in &inner {
            appended.push_str(&format!(", 10.0.{a}.{b}"));
        }
        let lines = if split_lines {
            vec![prefix, appended.into_bytes()]
        } else {
            let mut line = prefix;
            line.extend_from_slice(b", ");
            line.extend_from_slice(appended.as_bytes());
            vec![line]
        };
        prop_assert_eq!(resolve_xff(&lines), Some(client));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn login_bodies_never_panic_and_errors_have_the_section_2_shape(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            "\\{\"username\":\"[a-z\\\\u0000]{0,8}\",\"password\":(\"[a-z]{0,8}\"|null|1|\\[\\]|\\{\\})\\}"
                .prop_map(String::into_bytes),
        ],
        content_type in prop_oneof![
            Just("application/json"),
            Just("application/json; charset=utf-8"),
            Just("APPLICATION/JSON"),
            Just("text/plain"),
            Just(""),
        ],
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let login = LoginService::new(jwt(), PlaintextUser::new("admin", "datarhei"))
                .failure_delay(Duration::ZERO);
            let mut req = Request::post("/api/login");
            if !content_type.is_empty() {
                req = req.header("content-type", content_type);
            }
            let req = req.body(Full::new(Bytes::from(body))).unwrap();
            let res = login.oneshot(req).await.unwrap();
            let status = res.status();
            let body = res.into_body().collect().await.unwrap().to_bytes();
            prop_assert!(matches!(status.as_u16(), 200 | 400 | 401 | 413), "{}", status);
            if status != 200 {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                prop_assert_eq!(v["code"].as_u64(), Some(u64::from(status.as_u16())));
                prop_assert!(v["details"].as_array().is_some_and(|d| d.len() == 1));
            }
            Ok(())
        })?;
    }
}
