//! A JWKS document → the keys a token may be verified with, each checked once when the document
//! arrives (never on the login path).
//!
//! A key is usable only with `use: "sig"`, a `kid`, and an `alg` of RS256, PS256, ES256 or
//! EdDSA that fits its `kty`/`crv`; RSA moduli must have at least 2048 bits; symmetric (`oct`)
//! keys are refused outright. Refused keys are remembered by `kid` with the reason, so a token
//! naming one gets that reason at once instead of causing a re-fetch.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

/// The smallest RSA modulus accepted, in bits.
pub(crate) const MIN_RSA_BITS: usize = 2048;
/// The largest RSA modulus accepted, in bits (the verifier refuses more anyway).
const MAX_RSA_BITS: usize = 8192;

/// One usable verification key.
pub(crate) struct VerifyingKey {
    pub(crate) alg: Algorithm,
    pub(crate) key: DecodingKey,
}

/// The keys of one JWKS document.
#[derive(Default)]
pub(crate) struct KeySet {
    pub(crate) keys: HashMap<String, Arc<VerifyingKey>>,
    /// `kid` → why the key in the document is not used.
    pub(crate) refused: HashMap<String, &'static str>,
    /// When this document was fetched; `None` for the empty set before the first fetch.
    pub(crate) fetched_at: Option<Instant>,
}

impl KeySet {
    /// The `kid`s of the usable keys, sorted.
    pub(crate) fn kids(&self) -> Vec<String> {
        let mut kids: Vec<String> = self.keys.keys().cloned().collect();
        kids.sort();
        kids
    }
}

/// Why a JWKS document was not accepted as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DocumentError {
    /// Not a JSON object with a `keys` array.
    NotJwks,
    /// A valid document without a single usable key (kept out so cached keys stay).
    NoUsableKey,
}

/// Parses a JWKS document. Individual bad keys are refused (and logged); only a document that is
/// not a JWKS or has no usable key at all is an error.
pub(crate) fn parse_jwks(bytes: &[u8], url: &str) -> Result<KeySet, DocumentError> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|_| DocumentError::NotJwks)?;
    let keys = doc
        .as_object()
        .and_then(|o| o.get("keys"))
        .and_then(Value::as_array)
        .ok_or(DocumentError::NotJwks)?;
    let mut set = KeySet::default();
    for jwk in keys {
        let Some(kid) = jwk
            .get("kid")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
        else {
            tracing::debug!(url, "JWKS key without a kid ignored");
            continue;
        };
        if set.keys.contains_key(kid) || set.refused.contains_key(kid) {
            tracing::warn!(url, kid, "JWKS lists kid twice; the first key is kept");
            continue;
        }
        match usable_key(jwk) {
            Ok(key) => {
                set.keys.insert(kid.to_owned(), Arc::new(key));
            }
            Err(reason) => {
                tracing::warn!(url, kid, reason, "JWKS key refused");
                set.refused.insert(kid.to_owned(), reason);
            }
        }
    }
    if set.keys.is_empty() {
        return Err(DocumentError::NoUsableKey);
    }
    Ok(set)
}

fn field<'a>(jwk: &'a Value, name: &str) -> Option<&'a str> {
    jwk.get(name).and_then(Value::as_str)
}

/// base64url without padding (a trailing `=` is tolerated: some servers pad).
fn b64(jwk: &Value, name: &str) -> Option<Vec<u8>> {
    let text = field(jwk, name)?.trim_end_matches('=');
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// Checks one JWK; the error is the fixed reason a token naming it gets.
fn usable_key(jwk: &Value) -> Result<VerifyingKey, &'static str> {
    let kty = field(jwk, "kty").unwrap_or("");
    if kty == "oct" {
        return Err("symmetric key refused");
    }
    if field(jwk, "use") != Some("sig") {
        return Err("key not for signing");
    }
    let alg = match field(jwk, "alg") {
        Some("RS256") => Algorithm::RS256,
        Some("PS256") => Algorithm::PS256,
        Some("ES256") => Algorithm::ES256,
        Some("EdDSA") => Algorithm::EdDSA,
        _ => return Err("unsupported key algorithm"),
    };
    let key = match (alg, kty) {
        (Algorithm::RS256 | Algorithm::PS256, "RSA") => {
            let n = b64(jwk, "n").ok_or("invalid key")?;
            let e = b64(jwk, "e").ok_or("invalid key")?;
            let bits = bit_length(&n);
            if bits < MIN_RSA_BITS {
                return Err("key too weak");
            }
            if bits > MAX_RSA_BITS || bit_length(&e) < 2 || bit_length(&e) > 64 {
                return Err("invalid key");
            }
            DecodingKey::from_rsa_raw_components(&n, &e)
        }
        (Algorithm::ES256, "EC") => {
            let (Some(x), Some(y)) = (b64(jwk, "x"), b64(jwk, "y")) else {
                return Err("invalid key");
            };
            if field(jwk, "crv") != Some("P-256") || x.len() != 32 || y.len() != 32 {
                return Err("invalid key");
            }
            let mut point = Vec::with_capacity(65);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            DecodingKey::from_ec_der(&point)
        }
        (Algorithm::EdDSA, "OKP") => {
            let x = b64(jwk, "x").ok_or("invalid key")?;
            if field(jwk, "crv") != Some("Ed25519") || x.len() != 32 {
                return Err("invalid key");
            }
            DecodingKey::from_ed_der(&x)
        }
        _ => return Err("invalid key"),
    };
    Ok(VerifyingKey { alg, key })
}

/// Significant bits of a big-endian unsigned integer.
fn bit_length(be: &[u8]) -> usize {
    let mut digits = be.iter().skip_while(|b| **b == 0);
    match digits.next() {
        None => 0,
        Some(first) => {
            let rest = digits.count();
            rest * 8 + (8 - first.leading_zeros() as usize)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[0, 0]), 0);
        assert_eq!(bit_length(&[0, 1]), 1);
        assert_eq!(bit_length(&[1, 0, 1]), 17);
        assert_eq!(bit_length(&[0x80; 256]), 2048);
        assert_eq!(bit_length(&[0x7f; 256]), 2047);
    }

    #[test]
    fn documents_and_refusals() {
        let n = URL_SAFE_NO_PAD.encode([0xc5u8; 256]);
        let weak = URL_SAFE_NO_PAD.encode([0xc5u8; 128]);
        let xy = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let doc = serde_json::json!({"keys": [
            {"kid": "rsa", "kty": "RSA", "use": "sig", "alg": "RS256", "n": n, "e": "AQAB"},
            {"kid": "rsa", "kty": "RSA", "use": "sig", "alg": "PS256", "n": n, "e": "AQAB"},
            {"kid": "pss", "kty": "RSA", "use": "sig", "alg": "PS256", "n": n, "e": "AQAB"},
            {"kid": "ec", "kty": "EC", "use": "sig", "alg": "ES256", "crv": "P-256", "x": xy, "y": xy},
            {"kid": "ed", "kty": "OKP", "use": "sig", "alg": "EdDSA", "crv": "Ed25519", "x": xy},
            {"kid": "enc", "kty": "RSA", "use": "enc", "alg": "RS256", "n": n, "e": "AQAB"},
            {"kid": "nouse", "kty": "RSA", "alg": "RS256", "n": n, "e": "AQAB"},
            {"kid": "weak", "kty": "RSA", "use": "sig", "alg": "RS256", "n": weak, "e": "AQAB"},
            {"kid": "oct", "kty": "oct", "use": "sig", "alg": "HS256", "k": "c2VjcmV0"},
            {"kid": "rs384", "kty": "RSA", "use": "sig", "alg": "RS384", "n": n, "e": "AQAB"},
            {"kid": "noalg", "kty": "RSA", "use": "sig", "n": n, "e": "AQAB"},
            {"kid": "mixed", "kty": "EC", "use": "sig", "alg": "RS256", "crv": "P-256", "x": xy, "y": xy},
            {"kid": "p384", "kty": "EC", "use": "sig", "alg": "ES256", "crv": "P-384", "x": xy, "y": xy},
            {"kid": "short", "kty": "OKP", "use": "sig", "alg": "EdDSA", "crv": "Ed25519", "x": "AAAA"},
            {"kid": "badn", "kty": "RSA", "use": "sig", "alg": "RS256", "n": 5, "e": "AQAB"},
            {"kty": "RSA", "use": "sig", "alg": "RS256", "n": n, "e": "AQAB"},
            "not an object",
        ]});
        let set = parse_jwks(doc.to_string().as_bytes(), "test").unwrap();
        assert_eq!(set.kids(), ["ec", "ed", "pss", "rsa"]);
        assert!(matches!(
            set.keys.get("rsa").map(|k| k.alg),
            Some(Algorithm::RS256)
        ));
        let refused = |kid: &str| set.refused.get(kid).copied();
        assert_eq!(refused("enc"), Some("key not for signing"));
        assert_eq!(refused("nouse"), Some("key not for signing"));
        assert_eq!(refused("weak"), Some("key too weak"));
        assert_eq!(refused("oct"), Some("symmetric key refused"));
        assert_eq!(refused("rs384"), Some("unsupported key algorithm"));
        assert_eq!(refused("noalg"), Some("unsupported key algorithm"));
        for kid in ["mixed", "p384", "short", "badn"] {
            assert_eq!(refused(kid), Some("invalid key"), "{kid}");
        }
    }

    #[test]
    fn whole_document_errors() {
        for doc in ["", "[]", "{}", "{\"keys\":{}}", "{\"keys\":[1]", "null"] {
            assert_eq!(
                parse_jwks(doc.as_bytes(), "t").err(),
                Some(DocumentError::NotJwks),
                "{doc}"
            );
        }
        assert_eq!(
            parse_jwks(b"{\"keys\":[]}", "t").err(),
            Some(DocumentError::NoUsableKey)
        );
    }
}
