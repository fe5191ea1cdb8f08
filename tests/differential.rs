//! Differential test: the crate's own HS256 verifier against `jsonwebtoken::decode`.
//!
//! For generated, mutated and random tokens, `Jwt::verify`'s verdict (accept or refuse) must
//! equal the verdict of a reference built on `jsonwebtoken` with equally strict settings: HS256
//! only, `exp` required, `nbf` checked, leeway 0, `iss` must be `datarhei-core`, claims
//! deserialized into a typed struct (`sub`, `usefor` strings, times `u64`).
//!
//! Where the crate is *deliberately* stricter than `jsonwebtoken` (docs/protocol.md §4 "better"),
//! the reference adds that rule explicitly, each one in [`crate_only_rules`] with its reason.
//! Everything else — base64url strictness, JSON syntax, duplicate and mistyped claims,
//! signature length and value, algorithm confusion, segment structure — must agree as is.
//!
//! Time-dependent cases are built against `now` and discarded if the clock ticks over a second
//! while both verifiers run, so the boundaries (`exp == now`, `nbf == now + 1`, …) are exact.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Sha256, Sha384};
use tower_jwt_login::{Jwt, JwtConfig, JwtKey, TokenUse};

const KEY: &[u8] = b"admindatarheisecretsecret";
const ISSUER: &str = "datarhei-core";
const MAX_TOKEN_LEN: usize = 8 * 1024;

fn config() -> Config {
    // 384 cases per property keep the debug suite under a second or two; set PROPTEST_CASES for
    // a longer hunt.
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(384);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

fn jwt() -> Jwt {
    JwtConfig::new(JwtKey::core_compatible("admin", "datarhei", "secretsecret"))
        .build()
        .unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// ---------------------------------------------------------------------------------------------
// The reference.

/// Core's claims as a `jsonwebtoken` user types them. `exp`, `iss`, `sub`, `usefor` required;
/// the others optional but typed.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct RefClaims {
    exi: Option<u64>,
    exp: u64,
    iat: Option<u64>,
    nbf: Option<u64>,
    iss: String,
    jti: Option<String>,
    sub: String,
    usefor: String,
}

struct Reference {
    key: jsonwebtoken::DecodingKey,
    validation: jsonwebtoken::Validation,
}

impl Reference {
    fn new() -> Self {
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        Reference {
            key: jsonwebtoken::DecodingKey::from_secret(KEY),
            validation,
        }
    }

    /// The reference verdict for `token` as a `usefor` token at time `now`.
    fn accepts(&self, token: &str, usefor: TokenUse, now: u64) -> bool {
        tower_jwt_login::ensure_jsonwebtoken_backend();
        let Ok(data) = jsonwebtoken::decode::<RefClaims>(token, &self.key, &self.validation) else {
            return false;
        };
        crate_only_rules(token, &data.claims, usefor, now)
    }
}

/// The rules the crate adds on top of `jsonwebtoken` on purpose, for a token `jsonwebtoken`
/// accepted (so it has three segments of canonical base64url and a valid HS256 tag).
fn crate_only_rules(token: &str, claims: &RefClaims, usefor: TokenUse, now: u64) -> bool {
    let mut segments = token.split('.');
    let header = URL_SAFE_NO_PAD.decode(segments.next().unwrap()).unwrap();
    let payload = URL_SAFE_NO_PAD.decode(segments.next().unwrap()).unwrap();
    // A refresh or access token is only good for its own route (docs/protocol.md §4 `usefor`);
    // `jsonwebtoken` has no notion of it, so every user checks it by hand.
    claims.usefor == usefor.as_str()
        // The crate refuses tokens beyond a configured length unread (default 8 KiB).
        && token.len() <= MAX_TOKEN_LEN
        // RFC 7519 §4.1.4: the token must not be accepted "on or after" `exp`;
        // `jsonwebtoken` still accepts it during the second `exp` itself.
        && claims.exp > now
        // A token issued in the future is refused (docs/protocol.md §4); `jsonwebtoken` never
        // looks at `iat`.
        && claims.iat.is_none_or(|iat| iat <= now)
        // `sub` names the user: an empty one is as good as none.
        && !claims.sub.is_empty()
        // Serde's derived structs also accept a JSON array, field by field in declaration
        // order; a JWT claims set is a JSON object (RFC 7519 §7.2 step 10). (Today
        // `jsonwebtoken` happens to refuse arrays of Core's claims anyway: its internal
        // validation struct takes at most five positional values. The rule stays explicit.)
        && starts_as_object(&payload)
        && no_null_claims(&payload)
        && header_rules(&header)
}

/// Header rules beyond `jsonwebtoken`'s: a `typ`, if given, is the string `JWT` (any case, RFC
/// 7519 §5.1; `null` is no string); any `crit`, even `null`, is refused because the crate
/// understands no extension (RFC 7515 §4.1.11 — `jsonwebtoken` parses `crit` but never
/// enforces it).
fn header_rules(header: &[u8]) -> bool {
    if !starts_as_object(header) {
        return false;
    }
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(header) else {
        return false;
    };
    let typ_ok = match map.get("typ") {
        None => true,
        Some(Value::String(typ)) => typ.eq_ignore_ascii_case("JWT"),
        Some(_) => false,
    };
    let crit_ok = map.get("crit").is_none();
    typ_ok && crit_ok
}

/// A claim the crate reads that is present as `null` is mistyped (no NumericDate, no string),
/// not absent. `jsonwebtoken` agrees for `exp` and `nbf`; for the optional claims of a typed
/// struct (`Option<u64>`, `Option<String>`) serde reads `null` as `None`.
fn no_null_claims(payload: &[u8]) -> bool {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(payload) else {
        return false;
    };
    ["exi", "exp", "iat", "nbf", "iss", "jti", "sub", "usefor"]
        .iter()
        .all(|claim| !matches!(map.get(*claim), Some(Value::Null)))
}

fn starts_as_object(json: &[u8]) -> bool {
    json.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

// ---------------------------------------------------------------------------------------------
// Generated tokens.

/// A JSON value of a member, rendered when the clock is read.
#[derive(Debug, Clone)]
enum Val {
    /// `now + offset` as a JSON integer (negative results render as negative numbers).
    Rel(i64),
    /// JSON text as is.
    Raw(String),
}

impl Val {
    fn render(&self, now: u64) -> String {
        match self {
            Val::Rel(offset) => (i128::from(now) + i128::from(*offset)).to_string(),
            Val::Raw(text) => text.clone(),
        }
    }
}

fn raw(text: &str) -> Val {
    Val::Raw(text.to_owned())
}

/// A member: mostly once, sometimes absent or twice (a duplicate key).
fn member(value: impl Strategy<Value = Val> + Clone) -> impl Strategy<Value = Vec<Val>> {
    prop_oneof![
        28 => value.clone().prop_map(|v| vec![v]),
        1 => Just(Vec::new()),
        1 => (value.clone(), value).prop_map(|(a, b)| vec![a, b]),
    ]
}

/// Values of the wrong JSON type or range for every claim.
fn junk() -> impl Strategy<Value = Val> + Clone {
    prop::sample::select(vec![
        "null",
        "true",
        "\"1700000000\"",
        "1.5",
        "1e3",
        "-1",
        "[1]",
        "{}",
        "18446744073709551616",
        "\"\"",
    ])
    .prop_map(raw)
}

/// Mostly `good`, sometimes one of `variants` (other valid or invalid values), sometimes junk.
fn value(good: Val, variants: Vec<Val>) -> impl Strategy<Value = Val> + Clone {
    prop_oneof![
        20 => Just(good),
        2 => prop::sample::select(variants),
        1 => junk(),
    ]
}

fn rel(offsets: &[i64]) -> Vec<Val> {
    offsets.iter().copied().map(Val::Rel).collect()
}

fn raws(texts: &[&str]) -> Vec<Val> {
    texts.iter().copied().map(raw).collect()
}

/// The claims and header of a generated token, and how it is encoded and signed.
#[derive(Debug, Clone)]
struct Spec {
    header: Vec<(&'static str, Vec<Val>)>,
    claims: Vec<(&'static str, Vec<Val>)>,
    /// 0 object, 1 array (positional), 2 object with surrounding whitespace, 3 scalar, 4 object
    /// followed by garbage.
    claims_form: u8,
    encodings: [Encoding; 3],
    signature: Signature,
    usefor: TokenUse,
}

#[derive(Debug, Clone, Copy)]
enum Encoding {
    /// Canonical base64url without padding.
    Canonical,
    /// With `=` padding.
    Padded,
    /// The standard alphabet (`+` and `/`).
    Standard,
    /// The last character changed so that its unused low bits are not zero.
    NonCanonicalBits,
}

#[derive(Debug, Clone, Copy)]
enum Signature {
    Correct,
    WrongKey,
    /// The first `n` bytes of the correct tag.
    Truncated(usize),
    /// The correct tag and one more byte.
    Extended,
    /// An HS384 tag under the right key (algorithm confusion).
    Hs384,
    Empty,
}

fn encoding() -> impl Strategy<Value = Encoding> {
    prop_oneof![
        40 => Just(Encoding::Canonical),
        1 => Just(Encoding::Padded),
        1 => Just(Encoding::Standard),
        1 => Just(Encoding::NonCanonicalBits),
    ]
}

fn signature() -> impl Strategy<Value = Signature> {
    prop_oneof![
        40 => Just(Signature::Correct),
        1 => Just(Signature::WrongKey),
        1 => (0usize..32).prop_map(Signature::Truncated),
        1 => Just(Signature::Extended),
        1 => Just(Signature::Hs384),
        1 => Just(Signature::Empty),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    let header = (
        member(value(
            raw("\"HS256\""),
            raws(&[
                "\"HS384\"",
                "\"HS512\"",
                "\"none\"",
                "\"None\"",
                "\"hs256\"",
                "\"RS256\"",
                "\"HS256 \"",
                "\"HS\\u0032\\u00356\"",
            ]),
        )),
        prop_oneof![
            6 => member(value(
                raw("\"JWT\""),
                raws(&["\"jwt\"", "\"at+jwt\"", "\"JOSE\"", "\"J\\u0057T\""]),
            )),
            1 => Just(Vec::new()),
        ],
        prop_oneof![
            20 => Just(Vec::new()),
            1 => prop::sample::select(vec!["[\"exp\"]", "[]", "null"]).prop_map(|c| vec![raw(c)]),
        ],
        prop_oneof![6 => Just(Vec::new()), 1 => Just(vec![raw("\"key-1\"")])],
    )
        .prop_map(|(alg, typ, crit, kid)| {
            vec![("alg", alg), ("typ", typ), ("crit", crit), ("kid", kid)]
        });

    let claims = (
        member(value(raw("600"), raws(&["86400", "0"]))),
        // exp: valid, or around the boundary, or far off.
        member(value(
            Val::Rel(600),
            [rel(&[-86_400, -2, -1, 0, 1, 2]), raws(&["0", "18446744073709551615"])].concat(),
        )),
        // iat: now, or around the boundary.
        member(value(
            Val::Rel(0),
            [rel(&[-600, -1, 1, 2, 86_400]), raws(&["0", "18446744073709551615"])].concat(),
        )),
        // nbf: mostly absent (as in Core's tokens).
        prop_oneof![
            12 => Just(Vec::new()),
            1 => member(value(Val::Rel(0), rel(&[-5, 1, 2, 600]))),
        ],
        member(value(
            raw("\"datarhei-core\""),
            raws(&[
                "\"datarhei\\u002dcore\"",
                "\"Datarhei-core\"",
                "\"datarhei-core \"",
                "[\"datarhei-core\"]",
            ]),
        )),
        prop_oneof![
            12 => Just(vec![raw("\"6a1f0c52-7c4e-4b8e-9d0a-1f2e3d4c5b6a\"")]),
            1 => Just(Vec::new()),
            1 => member(value(raw("\"\""), raws(&["\"j\\n1\"", "\"x\""]))),
        ],
        member(value(
            raw("\"admin\""),
            raws(&[
                "\"\"",
                "\"ad\\\"min\"",
                "\"\u{fc}n\u{ef}c\u{f6}d\u{e9}\"",
                "\"a-subject-of-more-than-eighty-bytes-which-does-not-fit-inline-next-to-a-uuid-jti\"",
            ]),
        )),
        member(value(
            raw("\"access\""),
            raws(&["\"refresh\"", "\"Access\"", "\"access\\u0000\"", "\"acc\\u0065ss\""]),
        )),
        prop_oneof![
            12 => Just(Vec::new()),
            1 => prop::sample::select(vec!["\"x\"", "{\"a\":[1,{\"b\":null}]}", "[]"])
                .prop_map(|v| vec![raw(v)]),
        ],
    )
        .prop_map(|(exi, exp, iat, nbf, iss, jti, sub, usefor, aud)| {
            vec![
                ("exi", exi),
                ("exp", exp),
                ("iat", iat),
                ("nbf", nbf),
                ("iss", iss),
                ("jti", jti),
                ("sub", sub),
                ("usefor", usefor),
                ("aud", aud),
            ]
        })
        .boxed();

    (
        header,
        // Core's own order half of the time: the verifier's fast path for the layout it mints
        // (falling back to serde on any deviation) must agree too.
        prop_oneof![claims.clone(), claims.prop_shuffle()],
        prop_oneof![40 => Just(0u8), 1 => Just(1), 1 => Just(2), 1 => Just(3), 1 => Just(4)],
        [encoding(), encoding(), encoding()],
        signature(),
        prop_oneof![9 => Just(TokenUse::Access), 1 => Just(TokenUse::Refresh)],
    )
        .prop_map(
            |(header, claims, claims_form, encodings, signature, usefor)| Spec {
                header,
                claims,
                claims_form,
                encodings,
                signature,
                usefor,
            },
        )
}

fn object(members: &[(&str, Vec<Val>)], now: u64) -> String {
    let body: Vec<String> = members
        .iter()
        .flat_map(|(key, values)| {
            values
                .iter()
                .map(move |v| format!("\"{key}\":{}", v.render(now)))
        })
        .collect();
    format!("{{{}}}", body.join(","))
}

/// The claims rendered in `form`.
fn claims_json(spec: &Spec, now: u64) -> String {
    match spec.claims_form {
        1 => {
            // Positional, in `RefClaims`' field order: what serde would accept as that struct.
            let order = ["exi", "exp", "iat", "nbf", "iss", "jti", "sub", "usefor"];
            let values: Vec<String> = order
                .iter()
                .map(|name| {
                    spec.claims
                        .iter()
                        .find(|(k, _)| k == name)
                        .and_then(|(_, v)| v.first())
                        .map_or_else(|| "null".to_owned(), |v| v.render(now))
                })
                .collect();
            format!("[{}]", values.join(","))
        }
        2 => format!(" \n{}\t ", object(&spec.claims, now)),
        3 => "\"a string\"".to_owned(),
        4 => format!("{}x", object(&spec.claims, now)),
        _ => object(&spec.claims, now),
    }
}

fn encode(bytes: &[u8], encoding: Encoding) -> String {
    match encoding {
        Encoding::Canonical => URL_SAFE_NO_PAD.encode(bytes),
        Encoding::Padded => URL_SAFE.encode(bytes),
        Encoding::Standard => STANDARD_NO_PAD.encode(bytes),
        Encoding::NonCanonicalBits => {
            let mut s = URL_SAFE_NO_PAD.encode(bytes);
            if !bytes.len().is_multiple_of(3) {
                // The last character carries 2 or 4 unused bits; set the lowest one.
                let last = s.pop().unwrap();
                let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
                let index = alphabet.iter().position(|&c| c == last as u8).unwrap();
                s.push(char::from(alphabet[index | 1]));
            }
            s
        }
    }
}

fn hs256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn build(spec: &Spec, now: u64) -> String {
    let header = object(&spec.header, now);
    let claims = claims_json(spec, now);
    let input = format!(
        "{}.{}",
        encode(header.as_bytes(), spec.encodings[0]),
        encode(claims.as_bytes(), spec.encodings[1])
    );
    let tag = match spec.signature {
        Signature::Correct => hs256(KEY, input.as_bytes()),
        Signature::WrongKey => hs256(b"admindatarheisecretsecreT", input.as_bytes()),
        Signature::Truncated(n) => hs256(KEY, input.as_bytes())[..n].to_vec(),
        Signature::Extended => {
            let mut tag = hs256(KEY, input.as_bytes());
            tag.push(0);
            tag
        }
        Signature::Hs384 => {
            let mut mac = Hmac::<Sha384>::new_from_slice(KEY).unwrap();
            mac.update(input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        Signature::Empty => Vec::new(),
    };
    format!("{input}.{}", encode(&tag, spec.encodings[2]))
}

// ---------------------------------------------------------------------------------------------
// The comparison.

/// Runs both verifiers on the token `make(now)` builds, re-running if the clock ticked over a
/// second in between. Returns the common verdict, or the disagreement as a failure.
fn compare(
    jwt: &Jwt,
    reference: &Reference,
    usefor: TokenUse,
    make: impl Fn(u64) -> String,
) -> Result<bool, TestCaseError> {
    for _ in 0..5 {
        let t0 = now();
        let token = make(t0);
        let ours = jwt.verify(&token, usefor);
        let theirs = reference.accepts(&token, usefor, t0);
        if now() != t0 {
            continue;
        }
        prop_assert_eq!(
            ours.is_ok(),
            theirs,
            "crate {:?} vs reference {} for {:?} token {:?}",
            ours,
            theirs,
            usefor,
            token
        );
        return Ok(theirs);
    }
    Err(TestCaseError::fail("the clock kept ticking"))
}

/// Small edits of a valid token.
#[derive(Debug, Clone)]
enum Mutation {
    /// Flip one of the low 7 bits of the byte at a position (stays ASCII).
    BitFlip(prop::sample::Index, u8),
    /// Swap two of the three segments.
    Swap(usize, usize),
    Delete(prop::sample::Index),
    Insert(prop::sample::Index, char),
    Truncate(prop::sample::Index),
    /// Repeat a segment with its dot (four segments).
    DuplicateSegment(usize),
    /// `-` → `+` and `_` → `/` throughout.
    StandardAlphabet,
    /// `=` padding after a segment.
    Pad(usize),
    /// Re-sign the header `{"alg":<alg>,"typ":"JWT"}` over the same claims with HS256.
    AlgHeader(&'static str),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<prop::sample::Index>(), 0u8..7).prop_map(|(i, b)| Mutation::BitFlip(i, b)),
        1 => (0usize..3, 0usize..3).prop_map(|(a, b)| Mutation::Swap(a, b)),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Delete),
        1 => (
            any::<prop::sample::Index>(),
            prop::sample::select(vec!['A', 'z', '0', '-', '_', '.', '=', '+', '/', ' ', '~']),
        )
            .prop_map(|(i, c)| Mutation::Insert(i, c)),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        1 => (0usize..3).prop_map(Mutation::DuplicateSegment),
        1 => Just(Mutation::StandardAlphabet),
        1 => (0usize..3).prop_map(Mutation::Pad),
        1 => prop::sample::select(vec!["\"HS256\"", "\"none\"", "\"HS512\"", "\"hs256\"", "null"])
            .prop_map(Mutation::AlgHeader),
    ]
}

fn mutate(token: &str, m: &Mutation) -> String {
    let segments: Vec<&str> = token.split('.').collect();
    let n = segments.len();
    match m {
        Mutation::BitFlip(i, bit) if !token.is_empty() => {
            let mut bytes = token.as_bytes().to_vec();
            let at = i.index(bytes.len());
            bytes[at] ^= 1 << bit;
            String::from_utf8(bytes).unwrap()
        }
        Mutation::Swap(a, b) if *a < n && *b < n => {
            let mut s = segments.clone();
            s.swap(*a, *b);
            s.join(".")
        }
        Mutation::Delete(i) if !token.is_empty() => {
            let mut s = token.to_owned();
            s.remove(i.index(s.len()));
            s
        }
        Mutation::Insert(i, c) => {
            let mut s = token.to_owned();
            s.insert(i.index(s.len() + 1), *c);
            s
        }
        Mutation::Truncate(i) if !token.is_empty() => token[..i.index(token.len())].to_owned(),
        Mutation::DuplicateSegment(k) if *k < n => {
            let mut s = segments.clone();
            s.insert(*k, segments[*k]);
            s.join(".")
        }
        Mutation::StandardAlphabet => token.replace('-', "+").replace('_', "/"),
        Mutation::Pad(k) if *k < n => {
            let mut s: Vec<String> = segments.iter().map(|s| (*s).to_owned()).collect();
            s[*k].push_str("==");
            s.join(".")
        }
        Mutation::AlgHeader(alg) if n >= 2 => {
            let header = URL_SAFE_NO_PAD.encode(format!("{{\"alg\":{alg},\"typ\":\"JWT\"}}"));
            let input = format!("{header}.{}", segments[1]);
            let tag = URL_SAFE_NO_PAD.encode(hs256(KEY, input.as_bytes()));
            format!("{input}.{tag}")
        }
        // Not applicable to what earlier edits left: unchanged.
        _ => token.to_owned(),
    }
}

proptest! {
    #![proptest_config(config())]

    /// Tokens generated claim by claim: right and wrong values, types, duplicates, forms,
    /// encodings and signatures.
    #[test]
    fn generated_tokens_agree(spec in spec()) {
        let jwt = jwt();
        let reference = Reference::new();
        compare(&jwt, &reference, spec.usefor, |now| build(&spec, now))?;
    }

    /// Valid tokens minted by the crate, then edited one to three times.
    #[test]
    fn mutated_tokens_agree(
        mutations in prop::collection::vec(mutation(), 1..=3),
        refresh in any::<bool>(),
        usefor in prop_oneof![Just(TokenUse::Access), Just(TokenUse::Refresh)],
    ) {
        let jwt = jwt();
        let reference = Reference::new();
        let pair = jwt.issue_pair("admin");
        let original = if refresh { pair.refresh_token } else { pair.access_token };
        let token = mutations.iter().fold(original, |t, m| mutate(&t, m));
        compare(&jwt, &reference, usefor, |_| token.clone())?;
    }

    /// Random strings over the token alphabet (and some outside it), and random bytes.
    #[test]
    fn random_strings_agree(
        text in "[A-Za-z0-9_.=+/ -]{0,400}",
        bytes in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let jwt = jwt();
        let reference = Reference::new();
        for token in [text, String::from_utf8_lossy(&bytes).into_owned()] {
            prop_assert!(!compare(&jwt, &reference, TokenUse::Access, |_| token.clone())?);
        }
    }
}

/// The generator reaches both verdicts often: a differential test that only ever compares
/// refusals proves little.
#[test]
fn generator_reaches_both_verdicts() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let jwt = jwt();
    let reference = Reference::new();
    let mut runner = TestRunner::deterministic();
    let strategy = spec();
    let mut verdicts = HashSet::new();
    let mut accepted = 0;
    for _ in 0..200 {
        let spec = strategy.new_tree(&mut runner).unwrap().current();
        let verdict = compare(&jwt, &reference, spec.usefor, |now| build(&spec, now)).unwrap();
        accepted += usize::from(verdict);
        verdicts.insert(verdict);
    }
    println!("{accepted} of 200 generated tokens are valid");
    assert_eq!(verdicts.len(), 2);
    assert!(
        accepted >= 10,
        "only {accepted} of 200 generated tokens are valid"
    );
}

/// Each rule of [`crate_only_rules`] on its own: `jsonwebtoken` accepts the token, the crate
/// (and so the reference) refuses it. Guards the reference against encoding a rule wrongly.
#[test]
fn crate_only_rules_each_refuse_what_jsonwebtoken_accepts() {
    let jwt = jwt();
    let reference = Reference::new();
    let sign = |header: &str, claims: &str| {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(hs256(KEY, input.as_bytes()))
        )
    };
    fn claims(exp: i64, iat: i64, sub: &str) -> impl Fn(u64) -> String + '_ {
        move |now: u64| {
            format!(
                "{{\"exp\":{},\"iat\":{},\"iss\":\"datarhei-core\",\"sub\":\"{sub}\",\"usefor\":\"access\"}}",
                now as i64 + exp,
                now as i64 + iat
            )
        }
    }
    let h = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    type MakeToken = Box<dyn Fn(u64) -> String>;
    let cases: Vec<(&str, MakeToken)> = vec![
        (
            "exp == now",
            Box::new(move |n| sign(h, &claims(0, -5, "admin")(n))),
        ),
        (
            "iat in the future",
            Box::new(move |n| sign(h, &claims(600, 1, "admin")(n))),
        ),
        (
            "empty sub",
            Box::new(move |n| sign(h, &claims(600, 0, "")(n))),
        ),
        (
            "typ other than JWT",
            Box::new(move |n| {
                sign(
                    "{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}",
                    &claims(600, 0, "admin")(n),
                )
            }),
        ),
        (
            "crit",
            Box::new(move |n| {
                sign(
                    "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
                    &claims(600, 0, "admin")(n),
                )
            }),
        ),
        (
            "a null optional claim",
            Box::new(move |n| {
                sign(
                    h,
                    &format!(
                        "{{\"exp\":{},\"iat\":null,\"iss\":\"datarhei-core\",\"sub\":\"admin\",\"usefor\":\"access\"}}",
                        n + 600
                    ),
                )
            }),
        ),
    ];
    tower_jwt_login::ensure_jsonwebtoken_backend();
    for (name, make) in cases {
        for _ in 0..5 {
            let t0 = now();
            let token = make(t0);
            let theirs =
                jsonwebtoken::decode::<RefClaims>(&token, &reference.key, &reference.validation);
            let ours = jwt.verify(&token, TokenUse::Access);
            let verdict = reference.accepts(&token, TokenUse::Access, t0);
            if now() != t0 {
                continue;
            }
            assert!(theirs.is_ok(), "{name}: jsonwebtoken accepts ({theirs:?})");
            assert!(ours.is_err(), "{name}: the crate refuses");
            assert!(!verdict, "{name}: the reference refuses");
            break;
        }
    }
    // A plain valid token passes all of them.
    let t0 = now();
    let token = sign(h, &claims(600, 0, "admin")(t0));
    assert!(jwt.verify(&token, TokenUse::Access).is_ok());
    assert!(reference.accepts(&token, TokenUse::Access, t0));
}
