//! Asymmetric keys (cargo feature `asymmetric`): reading PKCS#8 / SPKI DER, generating fresh
//! keys, signing and verifying.
//!
//! The crypto is chosen per algorithm for verification speed, the hot path:
//! - **EdDSA** with `ed25519-dalek` (pure Rust; its AVX2 backend is picked at run time). The
//!   public point is decompressed once here, not per token.
//! - **ES256** and **RS256** with `ring` (assembly-optimized P-256 and Montgomery arithmetic,
//!   several times faster than the pure-Rust `p256` and `rsa` crates at verification).
//! - The `rsa` crate only generates a fresh RSA key (ring cannot) and reads the PKCS#1
//!   structures inside PKCS#8 and SPKI (through its `pkcs1`/`pkcs8` re-exports), never signs or
//!   verifies.

use ed25519_dalek::Signer as _;
use ring::rand::SystemRandom;
use ring::signature::{self as rs, KeyPair as _};
use rsa::pkcs1::der::Decode as _;
use rsa::pkcs8::spki::SubjectPublicKeyInfoRef;
use rsa::pkcs8::{ObjectIdentifier, PrivateKeyInfo};
use zeroize::Zeroizing;

use super::Algorithm;
use super::jwk::{MAX_RSA_BITS, MIN_RSA_BITS, PublicJwk, bit_length};
use super::key::{KeyProblem, fill_random};

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// The longest signature: RS256 with an 8192-bit key.
pub(crate) const MAX_SIG_LEN: usize = MAX_RSA_BITS / 8;

/// A private key, ready to sign.
pub(crate) enum Signer {
    Ed25519(Box<ed25519_dalek::SigningKey>),
    Es256(Box<rs::EcdsaKeyPair>, SystemRandom),
    Rs256(Box<rs::RsaKeyPair>, SystemRandom),
}

/// A public key, ready to verify: exactly one algorithm each.
pub(crate) enum Verifier {
    Ed25519(Box<ed25519_dalek::VerifyingKey>),
    /// The uncompressed SEC 1 point.
    Es256(Box<[u8]>),
    /// Modulus and exponent, big-endian.
    Rs256 {
        n: Box<[u8]>,
        e: Box<[u8]>,
    },
}

impl Signer {
    pub(crate) fn algorithm(&self) -> Algorithm {
        match self {
            Signer::Ed25519(_) => Algorithm::EdDSA,
            Signer::Es256(..) => Algorithm::ES256,
            Signer::Rs256(..) => Algorithm::RS256,
        }
    }

    /// The public half.
    pub(crate) fn public(&self) -> Result<PublicJwk, KeyProblem> {
        match self {
            Signer::Ed25519(key) => Ok(PublicJwk::Ed25519 {
                x: key.verifying_key().to_bytes(),
            }),
            Signer::Es256(pair, _) => {
                PublicJwk::p256_point(pair.public_key().as_ref()).map_err(KeyProblem::Invalid)
            }
            Signer::Rs256(pair, _) => {
                let components: rs::RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
                PublicJwk::rsa(&components.n, &components.e).map_err(KeyProblem::Invalid)
            }
        }
    }

    /// The signature of `message` appended to `out` as base64url. A signing failure (which ring
    /// reports only for a broken random generator) leaves the signature empty: such a token
    /// verifies nowhere.
    pub(crate) fn sign(&self, message: &[u8], out: &mut String) {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        match self {
            Signer::Ed25519(key) => {
                URL_SAFE_NO_PAD.encode_string(key.sign(message).to_bytes(), out);
            }
            Signer::Es256(pair, rng) => match pair.sign(rng, message) {
                Ok(sig) => URL_SAFE_NO_PAD.encode_string(sig.as_ref(), out),
                Err(_) => tracing::error!("ES256 signing failed"),
            },
            Signer::Rs256(pair, rng) => {
                let mut sig = vec![0u8; pair.public().modulus_len()];
                match pair.sign(&rs::RSA_PKCS1_SHA256, rng, message, &mut sig) {
                    Ok(()) => URL_SAFE_NO_PAD.encode_string(&sig, out),
                    Err(_) => tracing::error!("RS256 signing failed"),
                }
            }
        }
    }

    /// A fresh key for `alg` (EdDSA, ES256, or RS256 with 2048 bits).
    pub(crate) fn generate(alg: Algorithm) -> Result<Signer, KeyProblem> {
        match alg {
            Algorithm::EdDSA => {
                let mut seed = Zeroizing::new([0u8; 32]);
                fill_random(seed.as_mut_slice());
                Ok(Signer::Ed25519(Box::new(
                    ed25519_dalek::SigningKey::from_bytes(&seed),
                )))
            }
            Algorithm::ES256 => {
                let rng = SystemRandom::new();
                let doc =
                    rs::EcdsaKeyPair::generate_pkcs8(&rs::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                        .map_err(|_| KeyProblem::Invalid("P-256 key generation failed"))?;
                Signer::from_pkcs8(doc.as_ref())
            }
            Algorithm::RS256 => {
                use rsa::pkcs8::EncodePrivateKey as _;
                let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, MIN_RSA_BITS)
                    .map_err(|_| KeyProblem::Invalid("RSA key generation failed"))?;
                let der = key
                    .to_pkcs8_der()
                    .map_err(|_| KeyProblem::Invalid("RSA key generation failed"))?;
                Signer::from_pkcs8(der.as_bytes())
            }
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Err(KeyProblem::WrongType(
                "an HMAC algorithm has no private key".into(),
            )),
        }
    }

    /// A PKCS#8 `PrivateKeyInfo` (DER) of an Ed25519, P-256 or RSA key.
    pub(crate) fn from_pkcs8(der: &[u8]) -> Result<Signer, KeyProblem> {
        let info = PrivateKeyInfo::try_from(der)
            .map_err(|_| KeyProblem::Invalid("not a PKCS#8 private key"))?;
        let oid = info.algorithm.oid;
        if oid == ED25519 {
            // CurvePrivateKey: an OCTET STRING of the 32-byte seed (RFC 8410 §7).
            let seed = match info.private_key {
                [0x04, 0x20, seed @ ..] => <&[u8; 32]>::try_from(seed).ok(),
                _ => None,
            }
            .ok_or(KeyProblem::Invalid("malformed Ed25519 private key"))?;
            let key = ed25519_dalek::SigningKey::from_bytes(seed);
            if let Some(public) = info.public_key
                && public != key.verifying_key().as_bytes()
            {
                return Err(KeyProblem::Invalid(
                    "the public key does not match the private key",
                ));
            }
            Ok(Signer::Ed25519(Box::new(key)))
        } else if oid == EC_PUBLIC_KEY {
            if info.algorithm.parameters_oid().ok() != Some(PRIME256V1) {
                return Err(KeyProblem::WrongType(
                    "an EC key on another curve than P-256 (ES256 needs P-256)".into(),
                ));
            }
            let rng = SystemRandom::new();
            let pair =
                rs::EcdsaKeyPair::from_pkcs8(&rs::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
                    .map_err(|e| KeyProblem::Invalid(rejected(e)))?;
            Ok(Signer::Es256(Box::new(pair), rng))
        } else if oid == RSA_ENCRYPTION {
            let inner = rsa::pkcs1::RsaPrivateKey::from_der(info.private_key)
                .map_err(|_| KeyProblem::Invalid("malformed RSA private key"))?;
            check_rsa_bits(inner.modulus.as_bytes())?;
            let pair =
                rs::RsaKeyPair::from_pkcs8(der).map_err(|e| KeyProblem::Invalid(rejected(e)))?;
            Ok(Signer::Rs256(Box::new(pair), SystemRandom::new()))
        } else {
            Err(KeyProblem::WrongType(format!(
                "a private key of type {oid}; Ed25519, P-256 or RSA are supported"
            )))
        }
    }
}

impl Verifier {
    /// The verifier of a checked public key; `alg` must fit it.
    pub(crate) fn new(key: &PublicJwk) -> Result<Verifier, KeyProblem> {
        match key {
            PublicJwk::Ed25519 { x } => ed25519_dalek::VerifyingKey::from_bytes(x)
                .map(|k| Verifier::Ed25519(Box::new(k)))
                .map_err(|_| KeyProblem::Invalid("not an Ed25519 point")),
            PublicJwk::P256 { x, y } => {
                let mut point = Vec::with_capacity(65);
                point.push(0x04);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                Ok(Verifier::Es256(point.into_boxed_slice()))
            }
            PublicJwk::Rsa { n, e } => Ok(Verifier::Rs256 {
                n: n.clone().into_boxed_slice(),
                e: e.clone().into_boxed_slice(),
            }),
        }
    }

    /// Checks `signature` (decoded) over `message`.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Verifier::Ed25519(key) => match <&[u8; 64]>::try_from(signature) {
                Ok(sig) => key
                    .verify_strict(message, &ed25519_dalek::Signature::from_bytes(sig))
                    .is_ok(),
                Err(_) => false,
            },
            Verifier::Es256(point) => {
                signature.len() == 64
                    && rs::UnparsedPublicKey::new(&rs::ECDSA_P256_SHA256_FIXED, point)
                        .verify(message, signature)
                        .is_ok()
            }
            Verifier::Rs256 { n, e } => {
                signature.len() == n.len()
                    && rs::RsaPublicKeyComponents { n, e }
                        .verify(&rs::RSA_PKCS1_2048_8192_SHA256, message, signature)
                        .is_ok()
            }
        }
    }
}

/// The public key of an SPKI `SubjectPublicKeyInfo` (DER), with its algorithm.
pub(crate) fn public_from_spki(der: &[u8]) -> Result<(Algorithm, PublicJwk), KeyProblem> {
    let info = SubjectPublicKeyInfoRef::try_from(der)
        .map_err(|_| KeyProblem::Invalid("not an SPKI public key"))?;
    let bits = info
        .subject_public_key
        .as_bytes()
        .ok_or(KeyProblem::Invalid("malformed public key"))?;
    let oid = info.algorithm.oid;
    if oid == ED25519 {
        let key = PublicJwk::ed25519(bits).map_err(KeyProblem::Invalid)?;
        Verifier::new(&key)?;
        Ok((Algorithm::EdDSA, key))
    } else if oid == EC_PUBLIC_KEY {
        if info.algorithm.parameters_oid().ok() != Some(PRIME256V1) {
            return Err(KeyProblem::WrongType(
                "an EC key on another curve than P-256 (ES256 needs P-256)".into(),
            ));
        }
        let key = PublicJwk::p256_point(bits)
            .map_err(|_| KeyProblem::Invalid("not an uncompressed P-256 point"))?;
        Ok((Algorithm::ES256, key))
    } else if oid == RSA_ENCRYPTION {
        let inner = rsa::pkcs1::RsaPublicKey::from_der(bits)
            .map_err(|_| KeyProblem::Invalid("malformed RSA public key"))?;
        check_rsa_bits(inner.modulus.as_bytes())?;
        let key = PublicJwk::rsa(inner.modulus.as_bytes(), inner.public_exponent.as_bytes())
            .map_err(KeyProblem::Invalid)?;
        Ok((Algorithm::RS256, key))
    } else {
        Err(KeyProblem::WrongType(format!(
            "a public key of type {oid}; Ed25519, P-256 or RSA are supported"
        )))
    }
}

fn check_rsa_bits(modulus: &[u8]) -> Result<(), KeyProblem> {
    let bits = bit_length(modulus);
    if bits < MIN_RSA_BITS {
        return Err(KeyProblem::RsaTooSmall(bits));
    }
    if bits > MAX_RSA_BITS {
        return Err(KeyProblem::Invalid("RSA key over 8192 bits"));
    }
    Ok(())
}

fn rejected(e: ring::error::KeyRejected) -> &'static str {
    match e.to_string().as_str() {
        "InconsistentComponents" => "the key's components are inconsistent",
        "PublicKeyIsMissing" => "the PKCS#8 key lacks its public key",
        "PrivateModulusLenNotMultipleOf512Bits" => {
            "RSA private keys must have a multiple of 512 bits (2048, 3072, 4096)"
        }
        "TooSmall" => "key too small",
        "TooLarge" => "key too large",
        _ => "the key was rejected",
    }
}
