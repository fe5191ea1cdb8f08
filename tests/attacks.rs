//! The JWT and login attack playbooks (RFC 8725, OWASP's JWT and authentication cheat sheets,
//! PortSwigger's JWT labs, jwt_tool's modes) against the example server over loopback HTTP.
//!
//! Every case asserts the exact refusal — status, the §2 body byte for byte, `WWW-Authenticate`
//! where the layer answers — and that the server still serves a good request afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use common::*;
use hmac::{Hmac, Mac};
use tower_jwt_login::throttle::{ThrottleConfig, ThrottleScope};
use tower_jwt_login::{JwtConfig, JwtKey, TokenUse};

const THROTTLED: &str = "Too many failed login attempts, try again later";

fn b64(s: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

async fn server() -> SocketAddr {
    spawn_core(core_config(Duration::ZERO)).await
}

/// Core-shaped access claims with fields replaced (`Some(raw JSON)`), removed (`None`) or added.
fn claims(edits: &[(&str, Option<&str>)]) -> String {
    let now = now();
    let mut fields: Vec<(String, String)> = [
        ("exi", "600".to_owned()),
        ("exp", (now + 600).to_string()),
        ("iat", now.to_string()),
        ("iss", "\"datarhei-core\"".to_owned()),
        ("jti", "\"2b7e1516-28ae-4d2a-abf7-158809cf4f3c\"".to_owned()),
        ("sub", "\"admin\"".to_owned()),
        ("usefor", "\"access\"".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (key, value) in edits {
        let pos = fields.iter().position(|(k, _)| k == key);
        match (pos, value) {
            (Some(i), Some(v)) => fields[i].1 = (*v).to_owned(),
            (Some(i), None) => {
                fields.remove(i);
            }
            (None, Some(v)) => fields.push(((*key).to_owned(), (*v).to_owned())),
            (None, None) => {}
        }
    }
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    format!("{{{}}}", body.join(","))
}

/// Signed with Core's key (HS256) over exactly these header and claims texts.
fn core_signed(header: &str, claims: &str) -> String {
    sign_hs256(&core_key(), header, claims)
}

fn good_token() -> String {
    core_signed(CORE_HEADER, &claims(&[]))
}

fn hmac_b64<M: Mac + hmac::digest::KeyInit>(key: &[u8], input: &str) -> String {
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key).unwrap();
    mac.update(input.as_bytes());
    b64(mac.finalize().into_bytes())
}

/// `header.claims.signature` with the signature computed by `sign` over the signing input.
fn with_signature(header: &str, claims: &str, sign: impl Fn(&str) -> String) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let sig = sign(&input);
    format!("{input}.{sig}")
}

/// The layer's 401 for a presented token, then a good request still served.
#[track_caller]
fn assert_refused(reply: &Reply, case: &str) {
    assert_eq!(
        reply.status,
        401,
        "{case}: {}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.assert_unauthorized(true);
}

async fn refuse(addr: SocketAddr, case: &str, token: &str) {
    let reply = Req::get("/api/v3/process").bearer(token).send(addr).await;
    assert_refused(&reply, case);
    assert_serves(addr).await;
}

/// A fresh, valid access token still opens a protected route.
async fn assert_serves(addr: SocketAddr) {
    let reply = Req::get("/api/v3/process")
        .bearer(&good_token())
        .send(addr)
        .await;
    assert_eq!(reply.status, 200, "server stopped serving good requests");
    assert_eq!(reply.text(), "[]\n");
}

// ------------------------------------------------------------------------------ alg handling

#[tokio::test]
async fn alg_none_in_every_letter_case_with_and_without_signature() {
    let addr = server().await;
    let body = claims(&[]);
    let mut spellings = vec!["none".to_owned()];
    // All 16 letter-case variants of "none".
    for mask in 1..16u8 {
        let s: String = "none"
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if mask & (1 << i) != 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        spellings.push(s);
    }
    for alg in &spellings {
        for header in [
            format!("{{\"alg\":\"{alg}\",\"typ\":\"JWT\"}}"),
            format!("{{\"alg\":\"{alg}\"}}"),
        ] {
            let input = format!("{}.{}", b64(&header), b64(&body));
            // No signature, an HS256 signature under Core's key, and garbage.
            let tag = b64(hmac_sha256(&core_key(), input.as_bytes()));
            for token in [
                format!("{input}."),
                format!("{input}.{tag}"),
                format!("{input}.AAAA"),
            ] {
                refuse(addr, &format!("alg {alg}"), &token).await;
            }
        }
    }
    // Missing, null, non-string and padded `alg` values.
    for header in [
        "{\"typ\":\"JWT\"}",
        "{\"alg\":null,\"typ\":\"JWT\"}",
        "{\"alg\":256,\"typ\":\"JWT\"}",
        "{\"alg\":[\"HS256\"],\"typ\":\"JWT\"}",
        "{\"alg\":\"HS256 \",\"typ\":\"JWT\"}",
        "{\"alg\":\"hs256\",\"typ\":\"JWT\"}",
        "{\"alg\":\"HS256\\u0000\",\"typ\":\"JWT\"}",
    ] {
        refuse(addr, header, &core_signed(header, &body)).await;
    }
}

#[tokio::test]
async fn other_algorithms_on_the_hs256_verifier() {
    let addr = server().await;
    let body = claims(&[]);
    let key = core_key();
    // HS384/HS512 correctly signed with Core's own key: Core accepts these, the crate does not.
    let hs384 = with_signature("{\"alg\":\"HS384\",\"typ\":\"JWT\"}", &body, |i| {
        hmac_b64::<Hmac<sha2::Sha384>>(&key, i)
    });
    let hs512 = with_signature("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", &body, |i| {
        hmac_b64::<Hmac<sha2::Sha512>>(&key, i)
    });
    refuse(addr, "HS384", &hs384).await;
    refuse(addr, "HS512", &hs512).await;
    // HS256 header over an HS512 tag, and an HS512 header over an HS256 tag.
    let mixed = with_signature(CORE_HEADER, &body, |i| {
        hmac_b64::<Hmac<sha2::Sha512>>(&key, i)
    });
    refuse(addr, "HS256 header, HS512 tag", &mixed).await;
    let mixed = with_signature("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", &body, |i| {
        hmac_b64::<Hmac<sha2::Sha256>>(&key, i)
    });
    refuse(addr, "HS512 header, HS256 tag", &mixed).await;

    // Asymmetric algorithms with signatures of the right length.
    for (alg, len) in [
        ("RS256", 256),
        ("RS384", 256),
        ("RS512", 512),
        ("PS256", 256),
        ("PS512", 256),
        ("ES256", 64),
        ("ES384", 96),
        ("ES512", 132),
        ("EdDSA", 64),
        ("ES256K", 64),
    ] {
        let header = format!("{{\"alg\":\"{alg}\",\"typ\":\"JWT\"}}");
        let token = with_signature(&header, &body, |_| b64(vec![0x5a; len]));
        refuse(addr, alg, &token).await;
    }
}

#[tokio::test]
async fn hs_rs_key_confusion_with_a_public_key_as_hmac_secret() {
    use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey};
    use rsa::pkcs8::{EncodePublicKey, LineEnding};

    let addr = server().await;
    let body = claims(&[]);
    let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let public = private.to_public_key();
    let spki_pem = public.to_public_key_pem(LineEnding::LF).unwrap();
    let pkcs1_pem = public.to_pkcs1_pem(LineEnding::LF).unwrap();
    let spki_der = public.to_public_key_der().unwrap();

    // The classic confusion: HS256 "signed" with the public key text as the HMAC secret, in
    // every encoding an attacker would try.
    for secret in [
        spki_pem.as_bytes(),
        spki_pem.trim_end().as_bytes(),
        pkcs1_pem.as_bytes(),
        spki_der.as_bytes(),
    ] {
        let token = with_signature(CORE_HEADER, &body, |i| {
            b64(hmac_sha256(secret, i.as_bytes()))
        });
        refuse(addr, "HS256 with public key as secret", &token).await;
        let token = with_signature("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", &body, |i| {
            b64(hmac_sha256(secret, i.as_bytes()))
        });
        refuse(addr, "RS256 header, HMAC with public key", &token).await;
    }

    // Real RS256 and PS256 signatures by the attacker's key.
    tower_jwt_login::ensure_jsonwebtoken_backend();
    let der = private.to_pkcs1_der().unwrap();
    let encoding = jsonwebtoken::EncodingKey::from_rsa_der(der.as_bytes());
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    for alg in [
        jsonwebtoken::Algorithm::RS256,
        jsonwebtoken::Algorithm::PS256,
    ] {
        let token =
            jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), &value, &encoding).unwrap();
        refuse(addr, &format!("{alg:?} signed"), &token).await;
    }
}

#[tokio::test]
async fn crit_typ_jwe_and_json_serialization() {
    let addr = server().await;
    let body = claims(&[]);
    for header in [
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"crit\":[\"exp\"],\"exp\":1}",
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"crit\":[\"b64\"],\"b64\":false}",
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"crit\":[]}",
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"crit\":null}",
        "{\"alg\":\"HS256\",\"typ\":null}",
        "{\"alg\":null,\"typ\":\"JWT\"}",
        "{\"alg\":\"HS256\",\"typ\":\"JWE\"}",
        "{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}",
        "{\"alg\":\"HS256\",\"typ\":1}",
        "{\"alg\":\"HS256\",\"alg\":\"HS256\"}",
    ] {
        refuse(addr, header, &core_signed(header, &body)).await;
    }
    // JWE compact serialization: five segments.
    let jwe = format!(
        "{}.{}.{}.{}.{}",
        b64("{\"alg\":\"dir\",\"enc\":\"A256GCM\"}"),
        "",
        b64("iv-iv-iv-iv"),
        b64(&body),
        b64("tag-tag-tag-tag")
    );
    refuse(addr, "JWE compact", &jwe).await;
    let jwe = format!(
        "{}.{}.{}.{}.{}",
        b64("{\"alg\":\"RSA-OAEP\",\"enc\":\"A256GCM\"}"),
        b64("key"),
        b64("iv"),
        b64(&body),
        b64("tag")
    );
    refuse(addr, "JWE compact with key", &jwe).await;
    // JSON serializations cannot be a b64token at all.
    let good = good_token();
    let mut parts = good.split('.');
    let (h, c, s) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    for json in [
        format!("{{\"payload\":\"{c}\",\"protected\":\"{h}\",\"signature\":\"{s}\"}}"),
        format!(
            "{{\"payload\":\"{c}\",\"signatures\":[{{\"protected\":\"{h}\",\"signature\":\"{s}\"}}]}}"
        ),
    ] {
        refuse(addr, "JSON serialization", &json).await;
        refuse(addr, "JSON serialization, base64url", &b64(&json)).await;
    }
}

// ---------------------------------------------------------------------- key-selection headers

/// A loopback listener that counts the connections it receives (it never answers).
async fn counting_listener() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((_stream, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
        }
    });
    (addr, count)
}

#[tokio::test]
async fn kid_jku_x5u_jwk_x5c_are_never_consulted() {
    let addr = server().await;
    let (trap, connections) = counting_listener().await;
    let body = claims(&[]);
    let attacker_key = b"attacker-controlled-secret-0123456789";
    let jwk = format!(
        "{{\"kty\":\"oct\",\"k\":\"{}\",\"alg\":\"HS256\"}}",
        b64(attacker_key)
    );
    let url = format!("http://{trap}/.well-known/jwks.json");
    let headers = [
        format!("{{\"alg\":\"HS256\",\"typ\":\"JWT\",\"jku\":\"{url}\"}}"),
        format!("{{\"alg\":\"HS256\",\"typ\":\"JWT\",\"x5u\":\"http://{trap}/cert.pem\"}}"),
        format!("{{\"alg\":\"HS256\",\"typ\":\"JWT\",\"jwk\":{jwk}}}"),
        format!(
            "{{\"alg\":\"HS256\",\"typ\":\"JWT\",\"x5c\":[\"{}\"]}}",
            STANDARD.encode(b"not really a certificate")
        ),
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"../../../../../../dev/null\"}".to_owned(),
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"/dev/null\"}".to_owned(),
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"' UNION SELECT 'attacker' --\"}".to_owned(),
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"key.pem|curl http://127.0.0.1\"}".to_owned(),
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":12}".to_owned(),
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":null}".to_owned(),
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":{\"$ne\":null}}".to_owned(),
    ];
    for header in &headers {
        // Signed with the attacker's key, with an empty key (/dev/null), and with the key "0"
        // (what a failed SQL lookup might yield): all refused.
        for key in [&attacker_key[..], b"", b"\0", b"attacker"] {
            let token = with_signature(header, &body, |i| b64(hmac_sha256(key, i.as_bytes())));
            refuse(addr, header, &token).await;
        }
        // Signed with the real key: accepted, because those members are simply ignored.
        let reply = Req::get("/api/v3/process")
            .bearer(&core_signed(header, &body))
            .send(addr)
            .await;
        assert_eq!(reply.status, 200, "{header}");
    }
    // Also on the refresh route.
    let refresh_claims = claims(&[("usefor", Some("\"refresh\"")), ("exi", Some("86400"))]);
    let token = with_signature(&headers[0], &refresh_claims, |i| {
        b64(hmac_sha256(attacker_key, i.as_bytes()))
    });
    let reply = Req::get("/api/login/refresh")
        .bearer(&token)
        .send(addr)
        .await;
    assert_refused(&reply, "jku on refresh");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "the server connected to a URL taken from a token header"
    );
}

// -------------------------------------------------------------------------------- time claims

/// Claim edits with owned values: `(claim, Some(raw JSON) | None)`.
type Edits = Vec<(&'static str, Option<String>)>;

#[tokio::test]
async fn time_claims() {
    let addr = server().await;
    let now = now();
    let t = |v: u64| v.to_string();
    let cases: Vec<(&str, Edits)> = vec![
        ("expired by 1 s", vec![("exp", Some(t(now - 1)))]),
        ("exp equals now", vec![("exp", Some(t(now)))]),
        ("expired long ago", vec![("exp", Some(t(1)))]),
        ("exp zero", vec![("exp", Some(t(0)))]),
        ("missing exp", vec![("exp", None)]),
        (
            "exp as string",
            vec![("exp", Some(format!("\"{}\"", now + 600)))],
        ),
        (
            "exp as float",
            vec![("exp", Some(format!("{}.5", now + 600)))],
        ),
        (
            "exp as float .0",
            vec![("exp", Some(format!("{}.0", now + 600)))],
        ),
        (
            "exp in exponent form",
            vec![("exp", Some("1e12".to_owned()))],
        ),
        (
            "exp beyond u64",
            vec![("exp", Some("18446744073709551616".to_owned()))],
        ),
        ("exp huge", vec![("exp", Some("1".repeat(400)))]),
        ("exp negative", vec![("exp", Some("-1".to_owned()))]),
        ("exp null", vec![("exp", Some("null".to_owned()))]),
        ("exp array", vec![("exp", Some(format!("[{}]", now + 600)))]),
        ("exp bool", vec![("exp", Some("true".to_owned()))]),
        ("nbf in the future", vec![("nbf", Some(t(now + 60)))]),
        ("nbf far future", vec![("nbf", Some(t(u64::MAX)))]),
        ("nbf as string", vec![("nbf", Some(format!("\"{now}\"")))]),
        ("iat in the future", vec![("iat", Some(t(now + 60)))]),
        ("iat as string", vec![("iat", Some(format!("\"{now}\"")))]),
        ("iat negative", vec![("iat", Some("-5".to_owned()))]),
    ];
    for (case, edits) in cases {
        let edits: Vec<(&str, Option<&str>)> =
            edits.iter().map(|(k, v)| (*k, v.as_deref())).collect();
        refuse(addr, case, &core_signed(CORE_HEADER, &claims(&edits))).await;
    }
    // At the boundary with leeway 0: `nbf` and `iat` equal to now are fine.
    for edits in [
        vec![("nbf", Some(t(now)))],
        vec![("iat", Some(t(now)))],
        vec![("iat", None)],
        vec![("exi", None), ("jti", None)],
    ] {
        let edits: Vec<(&str, Option<&str>)> =
            edits.iter().map(|(k, v)| (*k, v.as_deref())).collect();
        let reply = Req::get("/api/v3/process")
            .bearer(&core_signed(CORE_HEADER, &claims(&edits)))
            .send(addr)
            .await;
        assert_eq!(reply.status, 200, "{edits:?}");
    }
}

#[test]
fn leeway_boundaries() {
    let jwt = JwtConfig::new(JwtKey::from_secret(core_key()).unwrap())
        .leeway(Duration::from_secs(5))
        .build()
        .unwrap();
    let now = now();
    let check = |edits: &[(&str, Option<&str>)]| {
        jwt.verify(&core_signed(CORE_HEADER, &claims(edits)), TokenUse::Access)
    };
    // Inside the leeway (with 2 s of margin for a slow test machine).
    assert!(check(&[("exp", Some(&(now - 3).to_string()))]).is_ok());
    assert!(check(&[("nbf", Some(&(now + 3).to_string()))]).is_ok());
    assert!(check(&[("iat", Some(&(now + 3).to_string()))]).is_ok());
    // At and beyond it.
    assert!(check(&[("exp", Some(&(now - 5).to_string()))]).is_err());
    assert!(check(&[("exp", Some(&(now - 6).to_string()))]).is_err());
    assert!(check(&[("nbf", Some(&(now + 8).to_string()))]).is_err());
    assert!(check(&[("iat", Some(&(now + 8).to_string()))]).is_err());
}

// -------------------------------------------------------------------------------- claim types

#[tokio::test]
async fn claim_types_duplicates_and_token_use_swap() {
    let addr = server().await;
    let mut cases: Vec<(String, String)> = Vec::new();
    for claim in ["usefor", "sub", "iss"] {
        for value in [
            "1",
            "0",
            "1.5",
            "true",
            "null",
            "[]",
            "[\"admin\"]",
            "[\"access\"]",
            "[\"datarhei-core\"]",
            "{}",
            "{\"value\":\"access\"}",
        ] {
            cases.push((
                format!("{claim} = {value}"),
                claims(&[(claim, Some(value))]),
            ));
        }
        cases.push((format!("missing {claim}"), claims(&[(claim, None)])));
    }
    for (case, value) in [
        ("empty sub", ("sub", "\"\"")),
        ("usefor with case", ("usefor", "\"Access\"")),
        ("usefor padded", ("usefor", "\"access \"")),
        ("usefor with NUL", ("usefor", "\"access\\u0000\"")),
        ("iss padded", ("iss", "\"datarhei-core \"")),
        ("iss with case", ("iss", "\"Datarhei-Core\"")),
        ("iss other", ("iss", "\"https://evil.example/\"")),
        ("exi as string", ("exi", "\"600\"")),
        ("jti as number", ("jti", "7")),
    ] {
        cases.push((case.to_owned(), claims(&[(value.0, Some(value.1))])));
    }
    // Duplicate keys: whichever copy a lax parser keeps, the crate refuses both.
    let base = claims(&[]);
    let inner = base
        .trim_start_matches('{')
        .trim_end_matches('}')
        .to_owned();
    for dup in [
        "\"usefor\":\"refresh\"",
        "\"usefor\":\"access\"",
        "\"sub\":\"root\"",
        "\"exp\":1",
        "\"iss\":\"evil\"",
    ] {
        cases.push((
            format!("duplicate {dup} after"),
            format!("{{{inner},{dup}}}"),
        ));
        cases.push((
            format!("duplicate {dup} before"),
            format!("{{{dup},{inner}}}"),
        ));
    }
    // Claims that are not a JSON object.
    for not_object in ["[]", "null", "\"admin\"", "1", "[{\"sub\":\"admin\"}]", ""] {
        cases.push((format!("claims {not_object:?}"), not_object.to_owned()));
    }
    for (case, body) in &cases {
        refuse(addr, case, &core_signed(CORE_HEADER, body)).await;
    }

    // refresh ↔ access swap.
    let (access, refresh) = login(addr).await;
    let reply = Req::get("/api/v3/process")
        .bearer(&refresh)
        .send(addr)
        .await;
    assert_refused(&reply, "refresh token on a protected route");
    let reply = Req::get("/api/login/refresh")
        .bearer(&access)
        .send(addr)
        .await;
    assert_refused(&reply, "access token on the refresh route");
    let forged = core_signed(CORE_HEADER, &claims(&[("usefor", Some("\"refresh\""))]));
    let reply = Req::get("/api/v3/process").bearer(&forged).send(addr).await;
    assert_refused(&reply, "usefor refresh on a protected route");
    assert_serves(addr).await;
}

// ----------------------------------------------------------------------------------- encoding

#[tokio::test]
async fn base64_and_segment_variants() {
    let addr = server().await;
    // A good token whose signature uses `-` or `_`, so re-encoding changes it.
    let mut good = good_token();
    for i in 0.. {
        let body = claims(&[("jti", Some(&format!("\"jti-{i}\"")))]);
        good = core_signed(CORE_HEADER, &body);
        let sig = good.rsplit('.').next().unwrap();
        if sig.contains(['-', '_']) {
            break;
        }
    }
    let reply = Req::get("/api/v3/process").bearer(&good).send(addr).await;
    assert_eq!(reply.status, 200);
    let segs: Vec<&str> = good.split('.').collect();
    let (h, c, s) = (segs[0], segs[1], segs[2]);
    let raw = |seg: &str| URL_SAFE_NO_PAD.decode(seg).unwrap();

    let mut cases: Vec<(&str, String)> = vec![
        (
            "padded signature",
            format!("{h}.{c}.{}", URL_SAFE.encode(raw(s))),
        ),
        (
            "padded claims",
            format!("{h}.{}.{s}", URL_SAFE.encode(raw(c))),
        ),
        (
            "standard alphabet signature",
            format!("{h}.{c}.{}", STANDARD_NO_PAD.encode(raw(s))),
        ),
        (
            "standard alphabet, padded",
            format!("{h}.{c}.{}", STANDARD.encode(raw(s))),
        ),
        ("trailing dot", format!("{good}.")),
        ("leading dot", format!(".{good}")),
        ("one segment", h.to_owned()),
        ("two segments", format!("{h}.{c}")),
        ("four segments", format!("{good}.{s}")),
        ("five segments", format!("{good}.{s}.{s}")),
        ("empty header", format!(".{c}.{s}")),
        ("empty claims", format!("{h}..{s}")),
        ("empty signature", format!("{h}.{c}.")),
        ("only dots", "..".to_owned()),
        (
            "signature truncated",
            format!("{h}.{c}.{}", &s[..s.len() - 1]),
        ),
        ("signature extended", format!("{good}A")),
        ("signature doubled", format!("{good}{s}")),
        (
            "signature of 31 bytes",
            format!("{h}.{c}.{}", b64(&raw(s)[..31])),
        ),
        ("whitespace inside", format!("{h}.{c} .{s}")),
    ];
    // Non-canonical base64: the same bytes with non-zero trailing bits in the last character.
    for (name, seg) in [("signature", s), ("claims", c), ("header", h)] {
        let last = seg.chars().last().unwrap();
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let idx = alphabet.find(last).unwrap();
        let unused_bits = match seg.len() % 4 {
            2 => 4,
            3 => 2,
            _ => 0,
        };
        if unused_bits == 0 {
            continue;
        }
        let bumped = alphabet.chars().nth(idx | 1).unwrap();
        let mut noncanonical = seg.to_owned();
        noncanonical.pop();
        noncanonical.push(bumped);
        let token = good.replacen(seg, &noncanonical, 1);
        let label: &'static str = match name {
            "signature" => "non-canonical signature",
            "claims" => "non-canonical claims",
            _ => "non-canonical header",
        };
        cases.push((label, token));
    }
    // Segments that are not JSON, with valid signatures.
    for (label, header, body) in [
        ("header not JSON", "not json".to_owned(), claims(&[])),
        (
            "claims not JSON",
            CORE_HEADER.to_owned(),
            "not json".to_owned(),
        ),
        ("header JSON array", "[\"HS256\"]".to_owned(), claims(&[])),
        (
            "claims UTF-16",
            CORE_HEADER.to_owned(),
            "\u{feff}{}".to_owned(),
        ),
        (
            "claims trailing garbage",
            CORE_HEADER.to_owned(),
            format!("{}x", claims(&[])),
        ),
        (
            "claims two objects",
            CORE_HEADER.to_owned(),
            format!("{0}{0}", claims(&[])),
        ),
    ] {
        cases.push((label, core_signed(&header, &body)));
    }
    // Invalid UTF-8 inside a member the verifier ignores, validly signed (found by the
    // `verify_differential` fuzz target: serde_json skips ignored members unvalidated).
    let mut bad_claims = claims(&[("note", Some("\"xx\""))]).into_bytes();
    let at = bad_claims.windows(2).position(|w| w == b"xx").unwrap();
    bad_claims[at] = 0xf4;
    let bad_header = [
        br#"{"alg":"HS256","typ":"JWT","kid":"k"#.as_slice(),
        &[0xb0],
        b"\"}",
    ]
    .concat();
    for (label, header, body) in [
        (
            "invalid UTF-8 in an ignored claim",
            CORE_HEADER.as_bytes().to_vec(),
            bad_claims.clone(),
        ),
        (
            "invalid UTF-8 in an ignored header member",
            bad_header,
            claims(&[]).into_bytes(),
        ),
    ] {
        let input = format!("{}.{}", b64(&header), b64(&body));
        let tag = b64(hmac_sha256(&core_key(), input.as_bytes()));
        cases.push((label, format!("{input}.{tag}")));
    }
    // Non-UTF-8 claims bytes with a valid signature.
    let input = format!("{h}.{}", b64([0xff, 0xfe, b'{', b'}']));
    let tag = b64(hmac_sha256(&core_key(), input.as_bytes()));
    cases.push(("claims not UTF-8", format!("{input}.{tag}")));

    for (case, token) in &cases {
        refuse(addr, case, token).await;
    }
}

#[tokio::test]
async fn huge_tokens_are_refused_quickly() {
    let addr = server().await;
    // 64 KiB: over the crate's 8 KiB token cap, under hyper's header limit: the §2 401.
    let big = format!(
        "{}.{}.{}",
        b64(CORE_HEADER),
        "A".repeat(64 * 1024),
        "A".repeat(43)
    );
    let start = Instant::now();
    let reply = Req::get("/api/v3/process").bearer(&big).send(addr).await;
    assert_refused(&reply, "64 KiB token");
    assert!(start.elapsed() < Duration::from_secs(2));
    // Just over the cap, validly signed: still refused unread.
    let padding = "x".repeat(8 * 1024);
    let body = claims(&[("pad", Some(&format!("\"{padding}\"")))]);
    refuse(
        addr,
        "signed token over the cap",
        &core_signed(CORE_HEADER, &body),
    )
    .await;
    // 1 MiB: the HTTP server refuses the request head before the crate sees it (hyper's
    // header-size limit answers 431 and closes); the server keeps serving.
    let huge = format!(
        "{}.{}.{}",
        b64(CORE_HEADER),
        "A".repeat(1 << 20),
        "A".repeat(43)
    );
    let start = Instant::now();
    let raw = Req::get("/api/v3/process").bearer(&huge).to_bytes();
    let reply = send_raw(addr, &raw, false).await;
    assert_eq!(reply.status, 431);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_serves(addr).await;
}

// -------------------------------------------------------------------------- header variants

#[tokio::test]
async fn authorization_header_variants() {
    let addr = server().await;
    let token = good_token();
    // Accepted: the scheme in any letter case, more than one space (RFC 6750 `1*SP`).
    for value in [
        format!("bearer {token}"),
        format!("BEARER {token}"),
        format!("Bearer   {token}"),
    ] {
        let reply = Req::get("/api/v3/process")
            .header("Authorization", &value)
            .send(addr)
            .await;
        assert_eq!(reply.status, 200, "{value}");
    }
    // Refused with the challenge of a presented (but unusable) credential.
    let refused: Vec<(&str, Vec<u8>)> = vec![
        ("Bearer alone", b"Bearer".to_vec()),
        ("Bearer and spaces", b"Bearer    ".to_vec()),
        ("tab separator", format!("Bearer\t{token}").into_bytes()),
        ("no separator", format!("Bearer{token}").into_bytes()),
        ("colon separator", format!("Bearer:{token}").into_bytes()),
        ("comma separator", format!("Bearer,{token}").into_bytes()),
        ("Basic", b"Basic YWRtaW46ZGF0YXJoZWk=".to_vec()),
        ("Basic with token", format!("Basic {token}").into_bytes()),
        ("Token scheme", format!("Token {token}").into_bytes()),
        ("JWT scheme", format!("JWT {token}").into_bytes()),
        (
            "Bearer twice",
            format!("Bearer Bearer {token}").into_bytes(),
        ),
        ("two tokens", format!("Bearer {token} {token}").into_bytes()),
        (
            "token, comma, token",
            format!("Bearer {token}, {token}").into_bytes(),
        ),
        ("quoted token", format!("Bearer \"{token}\"").into_bytes()),
        ("non-ASCII", format!("Bearer {token}\u{e9}").into_bytes()),
        (
            "obs-text byte",
            [b"Bearer ".as_slice(), token.as_bytes(), &[0xff]].concat(),
        ),
        ("bare token", token.clone().into_bytes()),
    ];
    for (case, value) in refused {
        let reply = Req::get("/api/v3/process")
            .header("Authorization", &value)
            .send(addr)
            .await;
        assert_refused(&reply, case);
        assert_serves(addr).await;
    }
    // Two Authorization headers, even both valid.
    let reply = Req::get("/api/v3/process")
        .bearer(&token)
        .bearer(&token)
        .send(addr)
        .await;
    assert_refused(&reply, "two headers");
    let reply = Req::get("/api/v3/process")
        .bearer(&token)
        .header("authorization", "Basic YWRtaW46ZGF0YXJoZWk=")
        .send(addr)
        .await;
    assert_refused(&reply, "bearer and basic");
    // An empty header value counts as presented.
    let reply = Req::get("/api/v3/process")
        .header("Authorization", "")
        .send(addr)
        .await;
    assert_refused(&reply, "empty header");
    // Tokens elsewhere are not looked at: no credential presented.
    let reply = Req::get("/api/v3/process")
        .header("X-Authorization", format!("Bearer {token}"))
        .header("Proxy-Authorization", format!("Bearer {token}"))
        .send(addr)
        .await;
    reply.assert_unauthorized(false);
    assert_serves(addr).await;
}

// ------------------------------------------------------------------------------ login bodies

#[tokio::test]
async fn hostile_login_bodies() {
    let addr = server().await;
    let deep = format!(
        "{{\"username\":\"admin\",\"password\":{}\"datarhei\"{}}}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let deep_object = format!("{}1{}", "{\"a\":".repeat(2000), "}".repeat(2000));
    let bad_requests: Vec<(&str, Req)> = vec![
        ("truncated", Req::post("/api/login").json("{\"username\":")),
        ("deep array nesting", Req::post("/api/login").json(&deep)),
        (
            "deep object nesting",
            Req::post("/api/login").json(&deep_object),
        ),
        (
            "username number",
            Req::post("/api/login").json(r#"{"username":1,"password":"datarhei"}"#),
        ),
        (
            "password object",
            Req::post("/api/login").json(r#"{"username":"admin","password":{"$ne":null}}"#),
        ),
        (
            "password array",
            Req::post("/api/login").json(r#"{"username":"admin","password":["datarhei"]}"#),
        ),
        (
            "password bool",
            Req::post("/api/login").json(r#"{"username":"admin","password":true}"#),
        ),
        (
            "empty password",
            Req::post("/api/login").json(r#"{"username":"admin","password":""}"#),
        ),
        (
            "duplicate username",
            Req::post("/api/login")
                .json(r#"{"username":"x","username":"admin","password":"datarhei"}"#),
        ),
        (
            "duplicate password",
            Req::post("/api/login")
                .json(r#"{"username":"admin","password":"x","password":"datarhei"}"#),
        ),
        (
            "invalid UTF-8",
            Req::post("/api/login").json(b"{\"username\":\"\xff\xfe\",\"password\":\"datarhei\"}"),
        ),
        (
            "lone surrogate",
            Req::post("/api/login").json(r#"{"username":"\ud800","password":"datarhei"}"#),
        ),
        (
            "NUL byte raw",
            Req::post("/api/login").json(b"{\"username\":\"admin\0\",\"password\":\"datarhei\"}"),
        ),
        (
            "UTF-16 body",
            Req::post("/api/login").json(b"\xff\xfe{\0}\0"),
        ),
        (
            "BOM",
            Req::post("/api/login")
                .json("\u{feff}{\"username\":\"admin\",\"password\":\"datarhei\"}"),
        ),
        (
            "JSON string",
            Req::post("/api/login").json("\"admin:datarhei\""),
        ),
        (
            "multipart",
            Req::post("/api/login")
                .header("Content-Type", "multipart/form-data; boundary=x")
                .body("--x\r\n\r\nadmin\r\n--x--"),
        ),
    ];
    for (case, req) in bad_requests {
        let reply = req.send(addr).await;
        assert_eq!(reply.status, 400, "{case}: {}", reply.text());
        assert_eq!(reply.text(), MISSING_CREDENTIALS, "{case}");
        assert_eq!(reply.header("www-authenticate"), None, "{case}");
    }
    // Deep nesting in an ignored field is skipped without recursion: no stack overflow, and
    // the credentials beside it are valid.
    let deep_ignored = format!(
        "{{\"username\":\"admin\",\"password\":\"datarhei\",\"x\":{}1{}}}",
        "[{\"a\":".repeat(1500),
        "}]".repeat(1500)
    );
    let reply = Req::post("/api/login").json(&deep_ignored).send(addr).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    // Well-formed but wrong: 401 (and each counts as a failure for its own account).
    let wrong: Vec<(&str, String)> = vec![
        (
            "escaped NUL in username",
            r#"{"username":"admin\u0000","password":"datarhei"}"#.to_owned(),
        ),
        (
            "escaped NUL in password",
            r#"{"username":"admin","password":"datarhei\u0000"}"#.to_owned(),
        ),
        (
            "fullwidth username",
            "{\"username\":\"\u{ff41}dmin\",\"password\":\"datarhei\"}".to_owned(),
        ),
        (
            "combining username",
            "{\"username\":\"a\u{0301}dmin\",\"password\":\"datarhei\"}".to_owned(),
        ),
        (
            "RTL override",
            "{\"username\":\"\u{202e}nimda\",\"password\":\"datarhei\"}".to_owned(),
        ),
        (
            "cyrillic a",
            "{\"username\":\"\u{0430}dmin\",\"password\":\"datarhei\"}".to_owned(),
        ),
        (
            "long username",
            format!(
                "{{\"username\":\"{}\",\"password\":\"datarhei\"}}",
                "a".repeat(15_000)
            ),
        ),
        (
            "trailing space",
            r#"{"username":"admin ","password":"datarhei"}"#.to_owned(),
        ),
    ];
    for (case, body) in wrong {
        let reply = Req::post("/api/login").json(&body).send(addr).await;
        reply.assert_error(
            401,
            "Invalid authorization credentials: invalid username or password",
        );
        assert!(!reply.text().contains("datarhei"), "{case}");
    }
    // Over the body limit: 413, with or without a Content-Length.
    let huge = format!(
        "{{\"username\":\"admin\",\"password\":\"{}\"}}",
        "p".repeat(1 << 20)
    );
    let start = Instant::now();
    let reply = Req::post("/api/login").json(&huge).send(addr).await;
    reply.assert_error(413, "Request body too large");
    assert!(start.elapsed() < Duration::from_secs(5));
    let raw = b"POST /api/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n{}";
    let reply = send_raw(addr, raw, false).await;
    reply.assert_error(413, "Request body too large");
    // The real user still logs in.
    let (access, _) = login(addr).await;
    let reply = Req::get("/api/v3/process").bearer(&access).send(addr).await;
    assert_eq!(reply.status, 200);
}

// -------------------------------------------------------------------------------- brute force

fn wrong_login() -> Req {
    Req::post("/api/login").json(r#"{"username":"admin","password":"guess"}"#)
}

fn right_login() -> Req {
    Req::post("/api/login").json(format!(
        "{{\"username\":\"{USER}\",\"password\":\"{PASSWORD}\"}}"
    ))
}

#[track_caller]
fn assert_throttled(reply: &Reply) {
    reply.assert_error(429, THROTTLED);
    let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry), "Retry-After {retry}");
    assert_eq!(reply.header("www-authenticate"), None);
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test]
async fn eleventh_failure_is_429_and_the_right_password_works_elsewhere() {
    // A failure delay, to show the 429 is answered at once.
    let delay = Duration::from_millis(300);
    let addr = spawn_core(core_config(delay)).await;
    let attacker = ip("127.0.0.1");
    let mut slow = Vec::new();
    for _ in 0..10 {
        let req = wrong_login();
        slow.push(tokio::spawn(
            async move { req.send_from(addr, attacker).await },
        ));
    }
    for reply in slow {
        reply.await.unwrap().assert_error(
            401,
            "Invalid authorization credentials: invalid username or password",
        );
    }
    let start = Instant::now();
    let reply = wrong_login().send_from(addr, attacker).await;
    assert_throttled(&reply);
    assert!(start.elapsed() < delay, "429 took {:?}", start.elapsed());
    let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((899..=900).contains(&retry), "Retry-After {retry}");
    // Even the right password is refused from the throttled address …
    assert_throttled(&right_login().send_from(addr, attacker).await);
    // … but works from another address.
    let reply = right_login().send_from(addr, ip("127.0.0.2")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    // Protected routes are not throttled.
    assert_serves(addr).await;
}

#[tokio::test]
async fn parallel_guessing_cannot_overshoot_the_limit() {
    let addr = server().await;
    let mut tasks = Vec::new();
    for _ in 0..40 {
        tasks.push(tokio::spawn(async move { wrong_login().send(addr).await }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap().status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 10);
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 30);
}

#[tokio::test]
async fn spoofed_forwarded_headers_do_not_reset_the_count() {
    let addr = server().await;
    for i in 0..10 {
        let reply = wrong_login()
            .header("X-Forwarded-For", format!("198.51.100.{i}"))
            .header("X-Real-IP", format!("198.51.100.{i}"))
            .send(addr)
            .await;
        assert_eq!(reply.status, 401);
    }
    let reply = wrong_login()
        .header("X-Forwarded-For", "203.0.113.99")
        .send(addr)
        .await;
    assert_throttled(&reply);
}

#[tokio::test]
async fn behind_a_trusted_proxy_clients_are_told_apart() {
    let mut config = core_config(Duration::ZERO);
    config.trusted_proxies = "127.0.0.1/32".parse().unwrap();
    let addr = spawn_core(config).await;
    for _ in 0..10 {
        let reply = wrong_login()
            .header("X-Forwarded-For", "203.0.113.5")
            .send(addr)
            .await;
        assert_eq!(reply.status, 401);
    }
    // The same client, even when it prepends a fake address of its own.
    let reply = wrong_login()
        .header("X-Forwarded-For", "10.9.9.9, 203.0.113.5")
        .send(addr)
        .await;
    assert_throttled(&reply);
    // Another client behind the same proxy.
    let reply = right_login()
        .header("X-Forwarded-For", "203.0.113.6")
        .send(addr)
        .await;
    assert_eq!(reply.status, 200);
    // A peer that is no trusted proxy cannot use the header to escape its own count.
    let untrusted = ip("127.0.0.3");
    for _ in 0..10 {
        let reply = wrong_login()
            .header("X-Forwarded-For", "203.0.113.7")
            .send_from(addr, untrusted)
            .await;
        assert_eq!(reply.status, 401);
    }
    let reply = wrong_login()
        .header("X-Forwarded-For", "203.0.113.8")
        .send_from(addr, untrusted)
        .await;
    assert_throttled(&reply);
}

#[tokio::test]
async fn distributed_guessing_hits_the_account_ceiling_but_not_the_real_user() {
    let addr = server().await;
    // The real user logged in before from home.
    let home = ip("127.0.0.200");
    assert_eq!(right_login().send_from(addr, home).await.status, 200);
    // 100 failures from 20 addresses (5 each, under the per-address limits).
    for a in 0..20u8 {
        let from = IpAddr::from([127, 0, 1, a]);
        for _ in 0..5 {
            assert_eq!(wrong_login().send_from(addr, from).await.status, 401);
        }
    }
    // The 101st guess, from a fresh address, hits the per-account ceiling.
    assert_throttled(&wrong_login().send_from(addr, ip("127.0.2.1")).await);
    // The user at home is exempt from the ceiling.
    let reply = right_login().send_from(addr, home).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    // Other accounts are untouched.
    let reply = Req::post("/api/login")
        .json(r#"{"username":"someone","password":"else"}"#)
        .send_from(addr, ip("127.0.2.1"))
        .await;
    assert_eq!(reply.status, 401);
}

#[tokio::test]
async fn throttle_off_with_zero() {
    let mut config = core_config(Duration::ZERO);
    config.login_max_failures = 0;
    let addr = spawn_core(config).await;
    for _ in 0..15 {
        assert_eq!(wrong_login().send(addr).await.status, 401);
    }
    assert_eq!(right_login().send(addr).await.status, 200);
}

#[test]
fn memory_stays_bounded_under_100k_distinct_usernames() {
    // From one address: the per-address limit stops new counters after 50 failures.
    let throttle = ThrottleConfig::default().build().unwrap();
    let attacker = Some(ip("203.0.113.1"));
    let mut refused = 0;
    for i in 0..100_000u32 {
        if throttle.begin(&format!("user{i}"), attacker).is_err() {
            refused += 1;
        }
    }
    assert_eq!(refused, 100_000 - 50);
    assert!(
        throttle.tracked_keys() <= 2 * 50 + 1,
        "{}",
        throttle.tracked_keys()
    );

    // From 100k addresses (a botnet, or IPv6 /48s): capped by max_tracked_keys, and a counter
    // that is refusing survives the churn.
    let cap = 10_000;
    let throttle = ThrottleConfig::default()
        .max_tracked_keys(cap)
        .build()
        .unwrap();
    let victim = Some(ip("198.51.100.1"));
    for _ in 0..10 {
        throttle.begin("admin", victim).unwrap();
    }
    let mut max_seen = 0;
    for i in 0..100_000u32 {
        let from = Some(IpAddr::V6(Ipv6Addr::from(
            (0x2000_u128 << 112) | (u128::from(i) << 80),
        )));
        throttle.begin(&format!("user{i}"), from).unwrap();
        max_seen = max_seen.max(throttle.tracked_keys());
    }
    assert!(max_seen <= cap, "tracked {max_seen} > {cap}");
    let refused = throttle.begin("admin", victim).unwrap_err();
    assert_eq!(refused.scope(), ThrottleScope::AccountAndAddress);
}

// ------------------------------------------------------------------ client address

/// The example server behind a trusted proxy on 127.0.0.1, configured from the environment.
async fn behind_proxy(vars: &[(&str, &str)]) -> SocketAddr {
    let env: std::collections::HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain([(
            "CORE_API_AUTH_TRUSTED_PROXIES".to_owned(),
            "127.0.0.1/32".to_owned(),
        )])
        .collect();
    let config = core_config(Duration::ZERO)
        .with_lookup(|k| env.get(k).cloned())
        .unwrap();
    spawn_core(config).await
}

fn wrong_login_as(user: &str) -> Req {
    Req::post("/api/login").json(format!(
        "{{\"username\":\"{user}\",\"password\":\"guess\"}}"
    ))
}

/// nginx with `proxy_set_header X-Real-IP $remote_addr` passes the client's own
/// `X-Forwarded-For` through: with `CORE_API_AUTH_CLIENT_IP_HEADER=X-Real-IP` only the address
/// nginx set counts, however the client rotates `X-Forwarded-For`.
#[tokio::test]
async fn nginx_real_ip_wins_over_rotating_client_sent_forwarded_for() {
    let addr = behind_proxy(&[("CORE_API_AUTH_CLIENT_IP_HEADER", "X-Real-IP")]).await;
    // 50 failures (the per-address limit) on 50 accounts, each with a fresh spoofed XFF.
    for i in 0..50 {
        let reply = wrong_login_as(&format!("user{i}"))
            .header("X-Real-IP", "203.0.113.5")
            .header("X-Forwarded-For", format!("198.51.100.{i}"))
            .send(addr)
            .await;
        reply.assert_error(
            401,
            "Invalid authorization credentials: invalid username or password",
        );
    }
    let reply = wrong_login_as("user50")
        .header("X-Real-IP", "203.0.113.5")
        .header("X-Forwarded-For", "192.0.2.77")
        .send(addr)
        .await;
    assert_throttled(&reply);
    // Another client behind the same nginx is not affected.
    let reply = right_login()
        .header("X-Real-IP", "203.0.113.6")
        .header("X-Forwarded-For", "203.0.113.5")
        .send(addr)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

/// One hop that is not even ASCII, left of the address the proxy appended, no longer drops the
/// whole header (which counted every client as the proxy).
#[tokio::test]
async fn a_non_ascii_hop_does_not_drop_the_forwarded_header() {
    let addr = behind_proxy(&[]).await;
    for _ in 0..10 {
        let reply = wrong_login()
            .header("X-Forwarded-For", b"\xff\xfe garbage, 203.0.113.5")
            .send(addr)
            .await;
        assert_eq!(reply.status, 401, "{}", reply.text());
    }
    let reply = wrong_login()
        .header("X-Forwarded-For", b"caf\xc3\xa9, 203.0.113.5")
        .send(addr)
        .await;
    assert_throttled(&reply);
    // Another client with the same garbage in front of its address logs in.
    let reply = right_login()
        .header("X-Forwarded-For", b"\xff\xfe garbage, 203.0.113.6")
        .send(addr)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

/// Failures spread over 200 /64s and 10 /56s of one /48 stay under the /64 (50) and /56 (200)
/// limits, but the /48 has its own budget of 500.
#[tokio::test]
async fn ipv6_spraying_from_one_48_hits_the_48_limit() {
    let addr = behind_proxy(&[]).await;
    let from = |net56: u16, net64: u16, host: u16| {
        Ipv6Addr::new(0x2001, 0xdb8, 0x1, (net56 << 8) | net64, 0, 0, 0, host).to_string()
    };
    for i in 0..500u16 {
        let ip = from(i % 10, (i / 10) % 20, i);
        let reply = wrong_login_as(&format!("user{i}"))
            .header("X-Forwarded-For", &ip)
            .send(addr)
            .await;
        assert_eq!(reply.status, 401, "attempt {i} from {ip}: {}", reply.text());
    }
    // A fresh /56 and /64 of the same /48: the /48 budget is spent.
    let reply = wrong_login_as("user500")
        .header("X-Forwarded-For", from(0xff, 0xff, 1))
        .send(addr)
        .await;
    assert_throttled(&reply);
    let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((899..=900).contains(&retry), "Retry-After {retry}");
    // Another /48 is not.
    let reply = wrong_login_as("user500")
        .header("X-Forwarded-For", "2001:db8:2::1")
        .send(addr)
        .await;
    assert_eq!(reply.status, 401, "{}", reply.text());
}

/// A plain axum app: `LoginService::new` with nothing else, served with
/// `into_make_service_with_connect_info`. Throttled by default, per client address (the default
/// resolver reads axum's `ConnectInfo` with the crate's `axum` feature).
#[cfg(feature = "axum")]
#[tokio::test]
async fn plain_axum_login_is_throttled_per_address_by_default() {
    use tower_jwt_login::login::LoginService;
    use tower_jwt_login::store::PlaintextUser;
    let jwt = JwtConfig::new(JwtKey::from_secret("a test secret of at least 32 bytes!!").unwrap())
        .build()
        .unwrap();
    let login =
        LoginService::new(jwt, PlaintextUser::new(USER, PASSWORD)).failure_delay(Duration::ZERO);
    let app = axum::Router::new().route_service("/api/login", login);
    let addr = spawn_router(app).await;
    let attacker = ip("127.0.0.1");
    for _ in 0..10 {
        let reply = wrong_login().send_from(addr, attacker).await;
        assert_eq!(reply.status, 401, "{}", reply.text());
    }
    assert_throttled(&wrong_login().send_from(addr, attacker).await);
    // The per-address limit, not the account ceiling: another address still logs in.
    let reply = right_login().send_from(addr, ip("127.0.0.2")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}
