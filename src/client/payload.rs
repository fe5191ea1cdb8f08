//! Reads a token's time claims WITHOUT verifying it: the client only needs to know when to
//! refresh, and the server is the one that verifies. Anything unreadable gives `None`, and such
//! a token is refreshed only when the server refuses it (401).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

#[derive(Deserialize)]
struct TimeClaims {
    exp: Option<f64>,
    iat: Option<f64>,
    exi: Option<f64>,
    iss: Option<String>,
}

/// What the client reads from a token's payload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Peek {
    /// `exp`, whole seconds.
    pub(crate) exp: Option<u64>,
    /// The lifetime: `exi`, else `exp - iat`.
    pub(crate) lifetime: Option<u64>,
    /// `iss`.
    pub(crate) iss: Option<String>,
}

fn secs(v: Option<f64>) -> Option<u64> {
    // Saturating float-to-int conversion; negative, NaN and infinite values mean "unknown".
    v.filter(|v| v.is_finite() && *v >= 0.0).map(|v| v as u64)
}

/// The claims of a compact JWS `header.payload.signature`, or `None`.
pub(crate) fn peek(token: &str) -> Option<Peek> {
    let mut parts = token.split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let json = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: TimeClaims = serde_json::from_slice(&json).ok()?;
    let exp = secs(claims.exp);
    let lifetime = secs(claims.exi).or_else(|| exp?.checked_sub(secs(claims.iat)?));
    Some(Peek {
        exp,
        lifetime,
        iss: claims.iss,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(claims: &str) -> String {
        format!(
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{}.c2ln",
            URL_SAFE_NO_PAD.encode(claims)
        )
    }

    #[test]
    fn reads_core_claims() {
        let t = token(r#"{"exi":600,"exp":1700000600,"iat":1700000000,"iss":"datarhei-core"}"#);
        assert_eq!(
            peek(&t),
            Some(Peek {
                exp: Some(1_700_000_600),
                lifetime: Some(600),
                iss: Some("datarhei-core".into())
            })
        );
        let t = token(r#"{"exp":1700000600,"iat":1700000000}"#);
        assert_eq!(peek(&t).unwrap().lifetime, Some(600));
        let t = token(r#"{"exp":1700000600.5}"#);
        assert_eq!(peek(&t).unwrap().exp, Some(1_700_000_600));
        assert_eq!(peek(&t).unwrap().lifetime, None);
    }

    #[test]
    fn unreadable_tokens_give_none() {
        for t in [
            "",
            "abc",
            "a.b",
            "a.b.c.d",
            "a.!!!.c",
            &token("[1]"),
            &token(r#"{"exp":"soon"}"#),
            &token("not json"),
        ] {
            assert_eq!(peek(t), None, "{t}");
        }
        let t = token(r#"{"exp":-5}"#);
        assert_eq!(peek(&t).unwrap().exp, None);
    }
}
