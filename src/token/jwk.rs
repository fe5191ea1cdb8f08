//! JSON Web Keys: the one place that reads, checks, writes and fingerprints public keys.
//!
//! Shared by the key ring (the published JWKS, RFC 7638 thumbprints as default `kid`s, the checks
//! on keys read from PEM files) and the Auth0 key cache (a fetched JWKS document → the keys a
//! token may be verified with, each checked once when the document arrives, never on the login
//! path).
//!
//! A fetched key is usable only with `use: "sig"`, a `kid`, and an `alg` of RS256, PS256, ES256
//! or EdDSA that fits its `kty`/`crv`; RSA moduli must have at least 2048 bits (and at most
//! 8192); symmetric (`oct`) keys are refused outright. Refused keys are remembered by `kid` with
//! the reason, so a token naming one gets that reason at once instead of causing a re-fetch.
// Each of the two users (features `auth0`, `asymmetric`) needs a part of this module.
#![cfg_attr(not(all(feature = "auth0", feature = "asymmetric")), allow(dead_code))]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The smallest RSA modulus accepted, in bits.
pub(crate) const MIN_RSA_BITS: usize = 2048;
/// The largest RSA modulus accepted, in bits (the verifiers refuse more anyway).
pub(crate) const MAX_RSA_BITS: usize = 8192;

/// The asymmetric JWS algorithms a JWK may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JwkAlg {
    RS256,
    PS256,
    ES256,
    EdDSA,
}

impl JwkAlg {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            JwkAlg::RS256 => "RS256",
            JwkAlg::PS256 => "PS256",
            JwkAlg::ES256 => "ES256",
            JwkAlg::EdDSA => "EdDSA",
        }
    }
}

/// A checked public key: what a JWK carries, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PublicJwk {
    /// Modulus and public exponent, big-endian without leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// An uncompressed P-256 point.
    P256 { x: [u8; 32], y: [u8; 32] },
    /// An Ed25519 public key.
    Ed25519 { x: [u8; 32] },
}

/// A published JWK: public members only, in a fixed order.
#[derive(Serialize)]
pub(crate) struct JwkJson<'a> {
    kty: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    crv: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    e: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    y: Option<String>,
    kid: &'a str,
    alg: &'static str,
    #[serde(rename = "use")]
    use_: &'static str,
}

impl PublicJwk {
    /// An RSA key from its modulus and exponent; `Err` is the fixed reason.
    pub(crate) fn rsa(n: &[u8], e: &[u8]) -> Result<Self, &'static str> {
        let n = strip_zeros(n);
        let e = strip_zeros(e);
        let bits = bit_length(n);
        if bits < MIN_RSA_BITS {
            return Err("key too weak");
        }
        if bits > MAX_RSA_BITS || bit_length(e) < 2 || bit_length(e) > 64 {
            return Err("invalid key");
        }
        Ok(PublicJwk::Rsa {
            n: n.to_vec(),
            e: e.to_vec(),
        })
    }

    /// A P-256 key from its coordinates.
    pub(crate) fn p256(x: &[u8], y: &[u8]) -> Result<Self, &'static str> {
        let (Ok(x), Ok(y)) = (<[u8; 32]>::try_from(x), <[u8; 32]>::try_from(y)) else {
            return Err("invalid key");
        };
        Ok(PublicJwk::P256 { x, y })
    }

    /// A P-256 key from an uncompressed SEC 1 point (`04 ‖ x ‖ y`).
    pub(crate) fn p256_point(point: &[u8]) -> Result<Self, &'static str> {
        match point {
            [0x04, xy @ ..] if xy.len() == 64 => {
                let (x, y) = xy.split_at(32);
                PublicJwk::p256(x, y)
            }
            _ => Err("invalid key"),
        }
    }

    /// An Ed25519 key.
    pub(crate) fn ed25519(x: &[u8]) -> Result<Self, &'static str> {
        <[u8; 32]>::try_from(x)
            .map(|x| PublicJwk::Ed25519 { x })
            .map_err(|_| "invalid key")
    }

    /// Reads and checks one JWK of a fetched document; the error is the fixed reason a token
    /// naming it gets.
    pub(crate) fn from_jwk(jwk: &Value) -> Result<(JwkAlg, PublicJwk), &'static str> {
        let kty = field(jwk, "kty").unwrap_or("");
        if kty == "oct" {
            return Err("symmetric key refused");
        }
        if field(jwk, "use") != Some("sig") {
            return Err("key not for signing");
        }
        let alg = match field(jwk, "alg") {
            Some("RS256") => JwkAlg::RS256,
            Some("PS256") => JwkAlg::PS256,
            Some("ES256") => JwkAlg::ES256,
            Some("EdDSA") => JwkAlg::EdDSA,
            _ => return Err("unsupported key algorithm"),
        };
        let key = match (alg, kty) {
            (JwkAlg::RS256 | JwkAlg::PS256, "RSA") => {
                let n = b64(jwk, "n").ok_or("invalid key")?;
                let e = b64(jwk, "e").ok_or("invalid key")?;
                PublicJwk::rsa(&n, &e)?
            }
            (JwkAlg::ES256, "EC") => {
                let (Some(x), Some(y)) = (b64(jwk, "x"), b64(jwk, "y")) else {
                    return Err("invalid key");
                };
                if field(jwk, "crv") != Some("P-256") {
                    return Err("invalid key");
                }
                PublicJwk::p256(&x, &y)?
            }
            (JwkAlg::EdDSA, "OKP") => {
                let x = b64(jwk, "x").ok_or("invalid key")?;
                if field(jwk, "crv") != Some("Ed25519") {
                    return Err("invalid key");
                }
                PublicJwk::ed25519(&x)?
            }
            _ => return Err("invalid key"),
        };
        Ok((alg, key))
    }

    /// The JWK with `kid`, `alg` and `use: "sig"`: public members only.
    pub(crate) fn to_json<'a>(&self, kid: &'a str, alg: JwkAlg) -> JwkJson<'a> {
        let enc = |bytes: &[u8]| Some(URL_SAFE_NO_PAD.encode(bytes));
        let mut jwk = JwkJson {
            kty: "",
            crv: None,
            n: None,
            e: None,
            x: None,
            y: None,
            kid,
            alg: alg.as_str(),
            use_: "sig",
        };
        match self {
            PublicJwk::Rsa { n, e } => {
                jwk.kty = "RSA";
                jwk.n = enc(n);
                jwk.e = enc(e);
            }
            PublicJwk::P256 { x, y } => {
                jwk.kty = "EC";
                jwk.crv = Some("P-256");
                jwk.x = enc(x);
                jwk.y = enc(y);
            }
            PublicJwk::Ed25519 { x } => {
                jwk.kty = "OKP";
                jwk.crv = Some("Ed25519");
                jwk.x = enc(x);
            }
        }
        jwk
    }

    /// The RFC 7638 thumbprint (SHA-256, base64url): the required members in lexicographic
    /// order, no whitespace (RFC 8037 §2 for `OKP`).
    pub(crate) fn thumbprint(&self) -> String {
        let enc = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let json = match self {
            PublicJwk::Rsa { n, e } => {
                format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, enc(e), enc(n))
            }
            PublicJwk::P256 { x, y } => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                enc(x),
                enc(y)
            ),
            PublicJwk::Ed25519 { x } => {
                format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, enc(x))
            }
        };
        URL_SAFE_NO_PAD.encode(Sha256::digest(json.as_bytes()))
    }
}

/// The RFC 7638 thumbprint of a symmetric key (`{"k":"…","kty":"oct"}`). Never published; the
/// key ring uses a prefix of it as the default `kid` of HMAC keys.
pub(crate) fn oct_thumbprint(secret: &[u8]) -> String {
    let json = format!(
        r#"{{"k":"{}","kty":"oct"}}"#,
        URL_SAFE_NO_PAD.encode(secret)
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(json.as_bytes()))
}

/// The keys of one fetched JWKS document, converted to the verifier's type `K`.
pub(crate) struct KeySet<K> {
    pub(crate) keys: HashMap<String, Arc<K>>,
    /// `kid` → why the key in the document is not used.
    pub(crate) refused: HashMap<String, &'static str>,
    /// When this document was fetched; `None` for the empty set before the first fetch.
    pub(crate) fetched_at: Option<Instant>,
}

impl<K> Default for KeySet<K> {
    fn default() -> Self {
        KeySet {
            keys: HashMap::new(),
            refused: HashMap::new(),
            fetched_at: None,
        }
    }
}

impl<K> KeySet<K> {
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

/// Parses a JWKS document, turning each usable key into a `K` with `convert`. Individual bad
/// keys are refused (and logged); only a document that is not a JWKS or has no usable key at all
/// is an error.
pub(crate) fn parse_jwks<K>(
    bytes: &[u8],
    url: &str,
    convert: impl Fn(JwkAlg, &PublicJwk) -> K,
) -> Result<KeySet<K>, DocumentError> {
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
        match PublicJwk::from_jwk(jwk) {
            Ok((alg, key)) => {
                set.keys
                    .insert(kid.to_owned(), Arc::new(convert(alg, &key)));
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

fn strip_zeros(be: &[u8]) -> &[u8] {
    let zeros = be.iter().take_while(|b| **b == 0).count();
    be.get(zeros..).unwrap_or_default()
}

/// Significant bits of a big-endian unsigned integer.
pub(crate) fn bit_length(be: &[u8]) -> usize {
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
        let set = parse_jwks(doc.to_string().as_bytes(), "test", |alg, _| alg).unwrap();
        assert_eq!(set.kids(), ["ec", "ed", "pss", "rsa"]);
        assert_eq!(set.keys.get("rsa").map(|k| **k), Some(JwkAlg::RS256));
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
                parse_jwks(doc.as_bytes(), "t", |_, _| ()).err(),
                Some(DocumentError::NotJwks),
                "{doc}"
            );
        }
        assert_eq!(
            parse_jwks(b"{\"keys\":[]}", "t", |_, _| ()).err(),
            Some(DocumentError::NoUsableKey)
        );
    }

    /// RFC 7638 §3.1's example key and thumbprint; RFC 8037 A.3's Ed25519 thumbprint.
    #[test]
    fn thumbprints_match_the_rfcs() {
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let n = URL_SAFE_NO_PAD.decode(n).unwrap();
        let rsa = PublicJwk::rsa(&n, &[1, 0, 1]).unwrap();
        assert_eq!(
            rsa.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        let x = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap();
        assert_eq!(
            PublicJwk::ed25519(&x).unwrap().thumbprint(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn published_members() {
        let key = PublicJwk::p256(&[1; 32], &[2; 32]).unwrap();
        let json = serde_json::to_string(&key.to_json("k1", JwkAlg::ES256)).unwrap();
        let xy = |b: u8| URL_SAFE_NO_PAD.encode([b; 32]);
        assert_eq!(
            json,
            format!(
                r#"{{"kty":"EC","crv":"P-256","x":"{}","y":"{}","kid":"k1","alg":"ES256","use":"sig"}}"#,
                xy(1),
                xy(2)
            )
        );
        // Leading zeros of n and e are not part of the key.
        let mut n = vec![0, 0];
        n.extend([0xc5u8; 256]);
        assert_eq!(
            PublicJwk::rsa(&n, &[0, 1, 0, 1]).unwrap(),
            PublicJwk::rsa(&[0xc5; 256], &[1, 0, 1]).unwrap()
        );
        assert_eq!(
            PublicJwk::rsa(&[0xc5; 255], &[1, 0, 1]),
            Err("key too weak")
        );
        assert_eq!(PublicJwk::p256_point(&[4; 64]), Err("invalid key"));
    }
}
