//! `Jwt::verify` on arbitrary tokens, and on validly *signed* tokens over arbitrary header and
//! claims bytes (so the fuzzer gets past the signature into header and claim parsing). Whatever
//! is accepted must satisfy every rule of docs/protocol.md §4, checked independently here.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tower_jwt_login::TokenUse;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let jwt = common::jwt();
    let use_for = if mode & 0x80 == 0 {
        TokenUse::Access
    } else {
        TokenUse::Refresh
    };
    if mode & 1 == 0 {
        let Ok(token) = std::str::from_utf8(rest) else {
            return;
        };
        // An unsigned guess never verifies (the key is secret to the fuzzer).
        if let Ok(claims) = jwt.verify(token, use_for) {
            panic!("forged token accepted: {token:?} -> {claims:?}");
        }
        return;
    }
    let (header, claims) = common::split_header_claims(rest);
    let token = common::sign(header, claims);
    let Ok(verified) = jwt.verify(&token, use_for) else {
        return;
    };
    // Accepted: check it against the rules independently. Members the rules do not name are
    // skipped like the crate skips them (serde_json's `Value` would refuse, say, 1e999 there,
    // which JSON's grammar allows), but the text must be UTF-8.
    assert!(std::str::from_utf8(header).is_ok() && std::str::from_utf8(claims).is_ok());
    #[derive(serde::Deserialize)]
    struct Header {
        alg: Option<Value>,
        crit: Option<Value>,
    }
    #[derive(serde::Deserialize)]
    struct Checked {
        exp: Option<Value>,
        nbf: Option<Value>,
        iat: Option<Value>,
        iss: Option<Value>,
        sub: Option<Value>,
        usefor: Option<Value>,
    }
    let h: Header = serde_json::from_slice(header).expect("accepted header is a JSON object");
    let c: Checked = serde_json::from_slice(claims).expect("accepted claims are a JSON object");
    assert_eq!(h.alg, Some(Value::from("HS256")));
    assert!(h.crit.is_none_or(|v| v.is_null()), "crit accepted");
    let exp = c.exp.and_then(|v| v.as_u64()).expect("exp is an integer");
    assert!(exp > common::now().saturating_sub(1), "expired accepted");
    assert_eq!(c.iss, Some(Value::from("datarhei-core")));
    assert_eq!(c.usefor, Some(Value::from(use_for.as_str())));
    let sub = c
        .sub
        .as_ref()
        .and_then(Value::as_str)
        .expect("sub is a string");
    assert!(!sub.is_empty());
    assert_eq!(verified.subject(), sub);
    assert_eq!(verified.expires_at(), exp);
    if let Some(nbf) = c.nbf {
        assert!(nbf.as_u64().expect("nbf integer") <= common::now() + 1);
    }
    if let Some(iat) = c.iat {
        assert!(iat.as_u64().expect("iat integer") <= common::now() + 1);
    }
});
