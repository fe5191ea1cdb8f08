//! Malformed input of every kind — tokens, headers, bodies — answered in the docs/protocol.md §2
//! error shape with the right status, never a panic; the server keeps serving afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use common::*;

fn b64(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

/// A token signed with Core's key over the given header and claims texts.
fn signed(header: &str, claims: &str) -> String {
    sign_hs256(&core_key(), header, claims)
}

/// `input` with a valid HS256 signature under Core's key appended.
fn sign_input(input: &str) -> String {
    let tag = hmac_sha256(&core_key(), input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag))
}

fn good_claims() -> String {
    core_claims("access", now(), 600)
}

/// Bad bearer tokens for a protected route: each must be a 401 with `error="invalid_token"`.
fn bad_tokens() -> Vec<(&'static str, String)> {
    let good = signed(CORE_HEADER, &good_claims());
    let (input, sig) = good.rsplit_once('.').unwrap();
    let (h, c) = input.split_once('.').unwrap();
    let mut flipped_sig = sig.as_bytes().to_vec();
    flipped_sig[5] = if flipped_sig[5] == b'A' { b'B' } else { b'A' };
    let flipped_sig = String::from_utf8(flipped_sig).unwrap();
    let t = now();
    vec![
        ("one segment", "abc".to_owned()),
        ("two segments", format!("{h}.{c}")),
        ("four segments", format!("{good}.x")),
        (
            "five segments (JWE shape)",
            format!("{h}.{c}.{sig}.{sig}.{sig}"),
        ),
        ("empty segments", "..".to_owned()),
        ("empty signature", format!("{h}.{c}.")),
        ("empty claims", format!("{h}..{sig}")),
        ("empty header", format!(".{c}.{sig}")),
        ("flipped signature", format!("{h}.{c}.{flipped_sig}")),
        ("truncated signature", format!("{h}.{c}.{}", &sig[..20])),
        ("signature with padding", format!("{h}.{c}.{sig}=")),
        ("standard base64 signature", {
            let raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
            format!("{h}.{c}.{}", STANDARD.encode(raw))
        }),
        ("padded claims, validly signed", {
            // Make sure padding is needed (length not a multiple of 3), then sign the padded
            // segment itself: only the encoding is wrong.
            let mut claims = good_claims();
            while claims.len().is_multiple_of(3) {
                claims.insert(1, ' ');
            }
            let input = format!("{h}.{}", URL_SAFE.encode(&claims));
            assert!(input.ends_with('='));
            sign_input(&input)
        }),
        ("standard alphabet claims, validly signed", {
            // Claims whose base64 contains '+' or '/' in the standard alphabet.
            let mut claims = good_claims();
            let mut i = 0;
            while !STANDARD.encode(&claims).contains(['+', '/']) {
                claims = format!("{{\"pad\":\"{}\",{}", "?".repeat(i), &good_claims()[1..]);
                i += 1;
            }
            sign_input(&format!(
                "{h}.{}",
                STANDARD.encode(&claims).trim_end_matches('=')
            ))
        }),
        ("non-canonical trailing bits in claims", {
            let mut claims = good_claims();
            while claims.len().is_multiple_of(3) {
                claims.insert(1, ' ');
            }
            let enc = URL_SAFE_NO_PAD.encode(&claims);
            // Flip the lowest bit of the last character: same bytes decoded by a lax decoder.
            let mut bytes = enc.into_bytes();
            let last = bytes.last_mut().unwrap();
            let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let pos = alphabet.iter().position(|a| a == last).unwrap();
            *last = alphabet[pos ^ 1];
            sign_input(&format!("{h}.{}", String::from_utf8(bytes).unwrap()))
        }),
        ("header not base64", format!("%%%.{c}.{sig}")),
        ("header not json", signed("not json", &good_claims())),
        (
            "header json array",
            signed(r#"["HS256","JWT"]"#, &good_claims()),
        ),
        ("header json string", signed(r#""HS256""#, &good_claims())),
        (
            "alg none",
            format!("{}.{c}.", b64(r#"{"alg":"none","typ":"JWT"}"#)),
        ),
        (
            "alg None with signature",
            signed(r#"{"alg":"None","typ":"JWT"}"#, &good_claims()),
        ),
        ("alg NONE", format!("{}.{c}.", b64(r#"{"alg":"NONE"}"#))),
        (
            "alg hs256 lowercase",
            signed(r#"{"alg":"hs256","typ":"JWT"}"#, &good_claims()),
        ),
        (
            "alg RS256",
            signed(r#"{"alg":"RS256","typ":"JWT"}"#, &good_claims()),
        ),
        (
            "alg number",
            signed(r#"{"alg":256,"typ":"JWT"}"#, &good_claims()),
        ),
        ("alg missing", signed(r#"{"typ":"JWT"}"#, &good_claims())),
        (
            "duplicate alg",
            signed(r#"{"alg":"HS256","alg":"none"}"#, &good_claims()),
        ),
        (
            "typ JWE",
            signed(r#"{"alg":"HS256","typ":"JWE"}"#, &good_claims()),
        ),
        ("claims not json", signed(CORE_HEADER, "{not json")),
        (
            "claims array",
            signed(
                CORE_HEADER,
                r#"[600,1,2,"datarhei-core","x","admin","access"]"#,
            ),
        ),
        ("claims null", signed(CORE_HEADER, "null")),
        ("claims number", signed(CORE_HEADER, "42")),
        (
            "claims invalid utf-8",
            sign_input(&format!(
                "{h}.{}",
                URL_SAFE_NO_PAD.encode([0x7b, 0xff, 0xfe, 0x7d])
            )),
        ),
        (
            "duplicate usefor",
            signed(
                CORE_HEADER,
                &format!(
                    r#"{{"exp":{},"iss":"datarhei-core","sub":"admin","usefor":"refresh","usefor":"access"}}"#,
                    t + 600
                ),
            ),
        ),
        (
            "duplicate sub",
            signed(
                CORE_HEADER,
                &format!(
                    r#"{{"exp":{},"iss":"datarhei-core","sub":"admin","sub":"root","usefor":"access"}}"#,
                    t + 600
                ),
            ),
        ),
        (
            "usefor null",
            signed(
                CORE_HEADER,
                &format!(
                    r#"{{"exp":{},"iss":"datarhei-core","sub":"admin","usefor":null}}"#,
                    t + 600
                ),
            ),
        ),
        (
            "usefor array",
            signed(
                CORE_HEADER,
                &format!(
                    r#"{{"exp":{},"iss":"datarhei-core","sub":"admin","usefor":["access"]}}"#,
                    t + 600
                ),
            ),
        ),
        (
            "usefor object",
            signed(
                CORE_HEADER,
                &format!(
                    r#"{{"exp":{},"iss":"datarhei-core","sub":"admin","usefor":{{"a":1}}}}"#,
                    t + 600
                ),
            ),
        ),
        (
            "iss number",
            signed(
                CORE_HEADER,
                &format!(
                    r#"{{"exp":{},"iss":1,"sub":"admin","usefor":"access"}}"#,
                    t + 600
                ),
            ),
        ),
        (
            "sub null",
            signed(
                CORE_HEADER,
                &format!(
                    r#"{{"exp":{},"iss":"datarhei-core","sub":null,"usefor":"access"}}"#,
                    t + 600
                ),
            ),
        ),
        (
            "sub empty",
            signed(
                CORE_HEADER,
                &format!(
                    r#"{{"exp":{},"iss":"datarhei-core","sub":"","usefor":"access"}}"#,
                    t + 600
                ),
            ),
        ),
        (
            "exp string",
            signed(
                CORE_HEADER,
                &format!(
                    r#"{{"exp":"{}","iss":"datarhei-core","sub":"admin","usefor":"access"}}"#,
                    t + 600
                ),
            ),
        ),
        (
            "exp float",
            signed(
                CORE_HEADER,
                &format!(
                    r#"{{"exp":{}.5,"iss":"datarhei-core","sub":"admin","usefor":"access"}}"#,
                    t + 600
                ),
            ),
        ),
        (
            "exp huge",
            signed(
                CORE_HEADER,
                r#"{"exp":1e400,"iss":"datarhei-core","sub":"admin","usefor":"access"}"#,
            ),
        ),
        (
            "exp negative",
            signed(
                CORE_HEADER,
                r#"{"exp":-1,"iss":"datarhei-core","sub":"admin","usefor":"access"}"#,
            ),
        ),
        (
            "exp beyond u64",
            signed(
                CORE_HEADER,
                r#"{"exp":18446744073709551616,"iss":"datarhei-core","sub":"admin","usefor":"access"}"#,
            ),
        ),
        (
            "iat string",
            signed(
                CORE_HEADER,
                &format!(
                    r#"{{"exp":{},"iat":"now","iss":"datarhei-core","sub":"admin","usefor":"access"}}"#,
                    t + 600
                ),
            ),
        ),
        (
            "deeply nested sub",
            signed(
                CORE_HEADER,
                &format!(
                    r#"{{"exp":{},"iss":"datarhei-core","sub":{}{},"usefor":"access"}}"#,
                    t + 600,
                    "[".repeat(200),
                    "]".repeat(200)
                ),
            ),
        ),
        (
            "1 MB token",
            format!("{h}.{}.{sig}", "A".repeat(1024 * 1024)),
        ),
        ("non-ASCII in token", format!("{h}.{c}.{sig}é")),
    ]
}

#[tokio::test]
async fn bad_tokens_are_401_in_error_shape() {
    let addr = spawn_core(core_config(Duration::ZERO)).await;
    let cases = bad_tokens();
    assert!(cases.len() >= 40, "{} token cases", cases.len());
    println!("{} bad tokens", cases.len());
    for (name, token) in &cases {
        let reply = Req::get("/api/v3/process").bearer(token).send(addr).await;
        match reply.status {
            401 => {
                // The §2 body and `error="invalid_token"` with one of the fixed descriptions.
                reply.assert_unauthorized(true);
            }
            // hyper refuses a 1 MB header line itself, before the app sees it.
            431 => assert_eq!(*name, "1 MB token"),
            s => panic!("{name}: status {s}: {}", reply.text()),
        }
        // The same token on the refresh route.
        let reply = Req::get("/api/login/refresh")
            .bearer(token)
            .send(addr)
            .await;
        if reply.status != 431 {
            reply.assert_error(401, "Missing or invalid JWT token");
        }
    }
    // Still serving.
    let (access, _) = login(addr).await;
    assert_eq!(
        Req::get("/api/v3/process")
            .bearer(&access)
            .send(addr)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn bad_authorization_headers_are_401_in_error_shape() {
    let addr = spawn_core(core_config(Duration::ZERO)).await;
    let (access, _) = login(addr).await;
    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("Bearer alone", vec![b"Bearer".to_vec()]),
        ("Bearer and a space", vec![b"Bearer ".to_vec()]),
        ("Basic", vec![b"Basic YWRtaW46ZGF0YXJoZWk=".to_vec()]),
        ("Token scheme", vec![format!("Token {access}").into_bytes()]),
        (
            "Bearer without space",
            vec![format!("Bearer{access}").into_bytes()],
        ),
        (
            "Bearer with tab",
            vec![format!("Bearer\t{access}").into_bytes()],
        ),
        (
            "two tokens",
            vec![format!("Bearer {access} {access}").into_bytes()],
        ),
        (
            "two headers, both valid",
            vec![
                format!("Bearer {access}").into_bytes(),
                format!("Bearer {access}").into_bytes(),
            ],
        ),
        (
            "two headers, second valid",
            vec![b"Basic x".to_vec(), format!("Bearer {access}").into_bytes()],
        ),
        (
            "quoted token",
            vec![format!("Bearer \"{access}\"").into_bytes()],
        ),
        (
            "comma list",
            vec![format!("Bearer {access}, Basic x").into_bytes()],
        ),
        ("latin-1 bytes", vec![b"Bearer \xe9\xe9\xe9".to_vec()]),
        ("empty value", vec![Vec::new()]),
    ];
    println!("{} bad Authorization headers", cases.len());
    for (name, values) in cases {
        let mut req = Req::get("/api/v3/process");
        for v in &values {
            req = req.header("Authorization", v);
        }
        let reply = req.send(addr).await;
        assert_eq!(reply.status, 401, "{name}: {}", reply.text());
        reply.assert_unauthorized(true);
    }
    // Extra spaces between scheme and token are allowed (RFC 6750 `1*SP`).
    let reply = Req::get("/api/v3/process")
        .header("Authorization", format!("Bearer   {access}"))
        .send(addr)
        .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn bad_login_bodies_are_400_or_413_in_error_shape() {
    let addr = spawn_core(core_config(Duration::ZERO)).await;
    let nested = format!("{}{}", "{\"a\":".repeat(300), "}".repeat(300));
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("not json", b"username=admin".to_vec(), 400),
        ("truncated", br#"{"username":"admin","#.to_vec(), 400),
        (
            "trailing garbage",
            br#"{"username":"admin","password":"datarhei"} x"#.to_vec(),
            400,
        ),
        (
            "two objects",
            br#"{"username":"admin","password":"datarhei"}{}"#.to_vec(),
            400,
        ),
        ("null", b"null".to_vec(), 400),
        ("string", br#""admin""#.to_vec(), 400),
        ("number", b"12".to_vec(), 400),
        (
            "bool password",
            br#"{"username":"admin","password":true}"#.to_vec(),
            400,
        ),
        (
            "object password",
            br#"{"username":"admin","password":{"p":"datarhei"}}"#.to_vec(),
            400,
        ),
        (
            "duplicate username",
            br#"{"username":"admin","username":"x","password":"datarhei"}"#.to_vec(),
            400,
        ),
        ("deep nesting", nested.into_bytes(), 400),
        (
            "invalid utf-8",
            b"{\"username\":\"\xff\xfe\",\"password\":\"datarhei\"}".to_vec(),
            400,
        ),
        (
            "lone surrogate escape",
            br#"{"username":"\ud800","password":"datarhei"}"#.to_vec(),
            400,
        ),
        (
            "BOM",
            b"\xef\xbb\xbf{\"username\":\"admin\",\"password\":\"datarhei\"}".to_vec(),
            400,
        ),
        (
            "NUL in username",
            br#"{"username":"admin\u0000","password":"datarhei"}"#.to_vec(),
            401,
        ),
        (
            "unicode username",
            br#"{"username":"\u00e4dmin","password":"datarhei"}"#.to_vec(),
            401,
        ),
        (
            "whitespace username",
            br#"{"username":" admin","password":"datarhei"}"#.to_vec(),
            401,
        ),
        ("huge", vec![b' '; 1024 * 1024], 413),
    ];
    println!("{} bad login bodies", cases.len());
    for (name, body, status) in cases {
        let reply = Req::post("/api/login").json(&body).send(addr).await;
        let detail = match status {
            400 => "Missing authorization credentials",
            401 => "Invalid authorization credentials: invalid username or password",
            _ => "Request body too large",
        };
        assert_eq!(reply.status, status, "{name}: {}", reply.text());
        reply.assert_error(status, detail);
    }
    // HEAD on the login route: status and headers only.
    let reply = Req::new("HEAD", "/api/login").send(addr).await;
    assert_eq!(reply.status, 401);
    assert!(reply.body.is_empty());
    // Still serving.
    login(addr).await;
}
