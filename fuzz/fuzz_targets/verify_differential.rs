//! Differential: the crate's `Jwt::verify` against `jsonwebtoken::decode` with equivalent
//! strict settings (HS256 only, `exp` required with no leeway, `nbf` checked, `iss` fixed) plus
//! the `usefor`/`sub` checks the crate adds, on validly signed tokens over arbitrary header and
//! claims bytes.
//!
//! - The crate must never accept what jsonwebtoken refuses, except where jsonwebtoken is the
//!   stricter one about members the crate deliberately ignores (`kid`, `jku`, `x5c`, … of an odd
//!   type; the crate never reads them).
//! - When jsonwebtoken accepts and the crate refuses, it must be one of the crate's documented
//!   extra rules: duplicate keys, a `typ` other than `JWT`, any `crit`, a future `iat`,
//!   mistyped optional claims, `exp == now`, or the size caps.
#![no_main]

#[path = "common.rs"]
mod common;

use std::collections::HashSet;
use std::fmt;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use libfuzzer_sys::fuzz_target;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use tower_jwt_login::TokenUse;

/// Whether a JSON text is an object with a repeated top-level key.
fn has_duplicate_keys(json: &[u8]) -> bool {
    struct Keys(bool);
    impl<'de> Deserialize<'de> for Keys {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Keys;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                    let mut seen = HashSet::new();
                    let mut dup = false;
                    while let Some(key) = map.next_key::<String>()? {
                        dup |= !seen.insert(key);
                        map.next_value::<IgnoredAny>()?;
                    }
                    Ok(Keys(dup))
                }
            }
            d.deserialize_map(V)
        }
    }
    serde_json::from_slice::<Keys>(json).is_ok_and(|k| k.0)
}

fn validation() -> Validation {
    let mut v = Validation::new(Algorithm::HS256);
    v.leeway = 0;
    v.validate_exp = true;
    v.validate_nbf = true;
    v.validate_aud = false;
    v.set_required_spec_claims(&["exp", "iss", "sub"]);
    v.set_issuer(&["datarhei-core"]);
    v
}

fn is_u64(v: Option<&Value>) -> bool {
    v.is_none_or(|v| v.is_u64())
}

fn is_str(v: Option<&Value>) -> bool {
    v.is_none_or(|v| v.is_string())
}

/// The crate's documented extra rules that jsonwebtoken does not have.
fn crate_is_stricter(token: &str, header: &[u8], claims: &[u8], h: &Value, c: &Value) -> bool {
    let now = common::now();
    let typ_ok = match h.get("typ") {
        None | Some(Value::Null) => true,
        Some(Value::String(t)) => t.eq_ignore_ascii_case("JWT"),
        Some(_) => false,
    };
    token.len() > 8 * 1024
        || header.len() > 192
        || has_duplicate_keys(header)
        || has_duplicate_keys(claims)
        || !typ_ok
        || h.get("crit").is_some_and(|v| !v.is_null())
        || !is_u64(c.get("exp"))
        || !is_u64(c.get("nbf"))
        || !is_u64(c.get("iat"))
        || !is_u64(c.get("exi"))
        || !is_str(c.get("jti"))
        || !is_str(c.get("iss"))
        || c.get("exp")
            .and_then(Value::as_u64)
            .is_some_and(|e| e <= now + 1)
        || c.get("nbf")
            .and_then(Value::as_u64)
            .is_some_and(|n| n + 1 >= now)
        || c.get("iat")
            .and_then(Value::as_u64)
            .is_some_and(|i| i + 1 >= now)
}

/// Members the crate never reads, which jsonwebtoken parses and may refuse by type.
fn jsonwebtoken_is_stricter(h: &Value, c: &Value) -> bool {
    let header_typed = ["kid", "jku", "x5u", "cty", "x5t", "x5t#S256", "typ"]
        .iter()
        .any(|k| h.get(*k).is_some_and(|v| !v.is_string()));
    let x5c = h
        .get("x5c")
        .is_some_and(|v| !v.as_array().is_some_and(|a| a.iter().all(Value::is_string)));
    let now = common::now();
    header_typed
        || x5c
        || h.get("jwk").is_some()
        || h.get("enc").is_some()
        || h.get("zip").is_some()
        || c.get("aud").is_some()
        || c.get("exp")
            .and_then(Value::as_u64)
            .is_some_and(|e| e > i64::MAX as u64 || e.abs_diff(now) <= 1)
        || c.get("nbf")
            .and_then(Value::as_u64)
            .is_some_and(|n| n > i64::MAX as u64 || n.abs_diff(now) <= 1)
}

fuzz_target!(|data: &[u8]| {
    let (header, claims) = common::split_header_claims(data);
    let token = common::sign(header, claims);

    let ours = common::jwt().verify(&token, TokenUse::Access);
    let theirs = jsonwebtoken::decode::<Value>(
        &token,
        &DecodingKey::from_secret(common::KEY),
        &validation(),
    )
    .ok()
    .filter(|d| {
        d.claims["usefor"] == "access" && d.claims["sub"].as_str().is_some_and(|s| !s.is_empty())
    });

    match (ours.is_ok(), theirs.is_some()) {
        (true, false) => {
            assert!(std::str::from_utf8(header).is_ok() && std::str::from_utf8(claims).is_ok());
            // serde_json's `Value` (and so jsonwebtoken) refuses numbers out of f64 range and
            // lone surrogate escapes even in members nobody reads; JSON's grammar allows both,
            // and the crate skips such members unread.
            let (Ok(h), Ok(c)) = (
                serde_json::from_slice::<Value>(header),
                serde_json::from_slice::<Value>(claims),
            ) else {
                return;
            };
            assert!(
                jsonwebtoken_is_stricter(&h, &c),
                "crate accepts what jsonwebtoken refuses:\n{h}\n{c}"
            );
        }
        (false, true) => {
            let h: Value = serde_json::from_slice(header).expect("header is JSON");
            let c: Value = serde_json::from_slice(claims).expect("claims are JSON");
            assert!(
                crate_is_stricter(&token, header, claims, &h, &c),
                "crate refuses ({:?}) what jsonwebtoken accepts:\n{}\n{}",
                ours.err(),
                String::from_utf8_lossy(header),
                String::from_utf8_lossy(claims)
            );
        }
        _ => {}
    }
});
