//! The key ring: one signing key and any number of verification-only keys, each with its own
//! algorithm and `kid`. Minting (mint.rs) signs with the ring's signing key; verifying
//! (verify.rs) picks the ring's key by the token's `kid`.
//!
//! - Every asymmetric key has a `kid`: the RFC 7638 JWK thumbprint unless the app names one.
//! - HMAC keys get a `kid` only when the ring holds more than one key (the first 16 characters
//!   of the thumbprint of the `oct` JWK, never published), so a lone secret mints Core's exact
//!   header `{"alg":"HS256","typ":"JWT"}`; a lone secret also ignores a `kid` in a token, as
//!   before (there is only one key to try).
//! - With `kid`s, a token's `kid` selects the key; an unknown `kid` is refused. The key accepts
//!   exactly its own algorithm, whatever the header says: no algorithm confusion (an HS256
//!   header on a token for an RSA key is refused before any MAC is computed).
//! - A token without `kid` is tried against the signing key and, only if that fails, against
//!   the first [`MAX_PREVIOUS_SECRETS`] HMAC verification keys: a lone secret mints tokens
//!   without `kid`, and they keep working once a new key signs and the old secret verifies.
//!   Each of those keys too accepts only its own algorithm, and asymmetric verification keys
//!   are never tried without a `kid`.
//!
//! ```
//! use tower_jwt_login::{JwtConfig, JwtKey, TokenUse, VerificationKey};
//!
//! let old = JwtKey::from_secret("the previous secret, 32 bytes or more!").unwrap();
//! let new = JwtKey::from_secret("the current secret, 32 bytes or more!!").unwrap();
//! let lone = JwtConfig::new(old.clone()).build().unwrap();
//! let kidless = lone.issue_access("bob"); // Core's header: no `kid`
//! let before = JwtConfig::new(old.clone())
//!     .verification_key(VerificationKey::hmac(new.clone()))
//!     .build()
//!     .unwrap();
//! let token = before.issue_access("alice");
//! // Rotated: the new secret signs, the old one still verifies what it signed, with or
//! // without `kid`.
//! let after = JwtConfig::new(new).verification_key(VerificationKey::hmac(old)).build().unwrap();
//! assert_eq!(after.verify(&token, TokenUse::Access).unwrap().subject(), "alice");
//! assert_eq!(after.verify(&kidless, TokenUse::Access).unwrap().subject(), "bob");
//! assert_ne!(after.kid(), before.kid());
//! ```

use std::fmt;
use std::path::Path;
#[cfg(feature = "asymmetric")]
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[cfg(feature = "asymmetric")]
use super::asym;
use super::jwk::{JwkAlg, JwkJson, PublicJwk, oct_thumbprint};
use super::key::{KeyProblem, Pem, parse_pem};
use super::mac::PreKeyed;
use super::{Algorithm, JwtKey, KeyError};

/// How many previous HMAC secrets a token without `kid` is tried against, at most: the first
/// this many HMAC [verification keys](VerificationKey::hmac) of a ring, in the order they were
/// added (`CORE_API_AUTH_JWT_PREVIOUS_SECRETS` may list no more). Such a token is tried against
/// them only after it failed the signing key, so a valid token of the signing key costs nothing
/// more, and a forged one costs at most this many extra HMACs.
pub const MAX_PREVIOUS_SECRETS: usize = 4;

/// The key that signs the crate's tokens: an HMAC secret ([`JwtKey`], the default and Core's) or,
/// with the cargo feature `asymmetric`, an Ed25519, P-256 or RSA private key.
///
/// ```
/// use tower_jwt_login::{JwtKey, SigningKey};
///
/// let key = SigningKey::hmac(JwtKey::from_secret("a secret of at least 32 random bytes!!").unwrap());
/// assert_eq!(key.key_algorithm(), None); // HMAC: the configured algorithm, HS256 by default
/// let err = SigningKey::from_pem("no PEM here").unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "PEM: not a PEM file (expected -----BEGIN PRIVATE KEY----- or -----BEGIN PUBLIC KEY-----)"
/// );
/// ```
#[derive(Clone)]
pub struct SigningKey {
    kind: SigningKind,
    kid: Option<String>,
}

#[derive(Clone)]
enum SigningKind {
    Hmac {
        secret: JwtKey,
        alg: Option<Algorithm>,
    },
    #[cfg(feature = "asymmetric")]
    Private(Arc<asym::Signer>),
}

/// A key that only verifies: a previous HMAC secret, or (feature `asymmetric`) a public key —
/// from an SPKI PEM, or the public half of a PKCS#8 private key.
#[derive(Clone)]
pub struct VerificationKey {
    kind: VerificationKind,
    kid: Option<String>,
}

#[derive(Clone)]
enum VerificationKind {
    Hmac {
        secret: JwtKey,
        alg: Option<Algorithm>,
    },
    #[cfg(feature = "asymmetric")]
    Public { alg: Algorithm, key: PublicJwk },
}

impl From<JwtKey> for SigningKey {
    fn from(secret: JwtKey) -> Self {
        SigningKey::hmac(secret)
    }
}

impl From<JwtKey> for VerificationKey {
    fn from(secret: JwtKey) -> Self {
        VerificationKey::hmac(secret)
    }
}

/// Reads a key file; the error names the file.
fn read_pem(path: &Path) -> Result<Pem, KeyError> {
    let origin = || path.display().to_string();
    let text = std::fs::read(path).map_err(|e| KeyError::BadKey {
        origin: origin(),
        problem: KeyProblem::Unreadable(e.to_string()),
    })?;
    parse_pem(&text).map_err(|problem| KeyError::BadKey {
        origin: origin(),
        problem,
    })
}

fn bad(origin: &str, problem: KeyProblem) -> KeyError {
    KeyError::BadKey {
        origin: origin.to_owned(),
        problem,
    }
}

impl SigningKey {
    /// An HMAC secret; its algorithm is the configured one
    /// ([`JwtConfig::algorithm`](super::JwtConfig::algorithm), HS256 by default).
    pub fn hmac(secret: JwtKey) -> Self {
        SigningKey {
            kind: SigningKind::Hmac { secret, alg: None },
            kid: None,
        }
    }

    /// A PKCS#8 private key (`-----BEGIN PRIVATE KEY-----`): Ed25519 signs EdDSA, P-256 ES256,
    /// RSA (2048 bits or more) RS256. Needs the cargo feature `asymmetric`.
    pub fn from_pem(pem: impl AsRef<[u8]>) -> Result<Self, KeyError> {
        let parsed = parse_pem(pem.as_ref()).map_err(|p| bad("PEM", p))?;
        Self::from_parsed(parsed, "PEM")
    }

    /// [`from_pem`](Self::from_pem) of a file; errors name the file.
    pub fn from_pem_file(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        Self::from_parsed(read_pem(path)?, &path.display().to_string())
    }

    #[cfg(feature = "asymmetric")]
    fn from_parsed(pem: Pem, origin: &str) -> Result<Self, KeyError> {
        match pem {
            Pem::Private(der) => {
                let signer = asym::Signer::from_pkcs8(&der).map_err(|p| bad(origin, p))?;
                Ok(SigningKey {
                    kind: SigningKind::Private(Arc::new(signer)),
                    kid: None,
                })
            }
            Pem::Public(_) => Err(bad(origin, KeyProblem::NotPrivate)),
        }
    }

    #[cfg(not(feature = "asymmetric"))]
    fn from_parsed(_pem: Pem, origin: &str) -> Result<Self, KeyError> {
        Err(bad(origin, KeyProblem::NeedsFeature))
    }

    /// A fresh private key for `alg` (EdDSA, ES256, RS256 with 2048 bits), logged with a
    /// warning: tokens signed with it die on restart, and other services must re-read the
    /// JWKS. An HMAC algorithm gives a random 256-bit secret ([`JwtKey::random`]).
    pub fn generate(alg: Algorithm) -> Result<Self, KeyError> {
        if alg.is_hmac() {
            return Ok(SigningKey::hmac(JwtKey::random()).algorithm(alg));
        }
        #[cfg(feature = "asymmetric")]
        {
            tracing::warn!(
                algorithm = alg.as_str(),
                "no JWT private key configured: using a fresh one, tokens will not survive a restart"
            );
            let signer = asym::Signer::generate(alg).map_err(|p| bad("generated key", p))?;
            Ok(SigningKey {
                kind: SigningKind::Private(Arc::new(signer)),
                kid: None,
            })
        }
        #[cfg(not(feature = "asymmetric"))]
        Err(KeyError::AsymmetricDisabled(alg))
    }

    /// Names the key: tokens carry this `kid` instead of the default.
    #[must_use]
    pub fn kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Pins the algorithm of an HMAC secret (HS256, HS384, HS512). For a private key, whose
    /// algorithm is its own, a different one makes the ring fail to build.
    #[allow(irrefutable_let_patterns)] // without the `asymmetric` feature
    #[must_use]
    pub fn algorithm(mut self, alg: Algorithm) -> Self {
        if let SigningKind::Hmac { alg: a, .. } = &mut self.kind {
            *a = Some(alg);
        }
        self
    }

    /// The key's own algorithm: `None` for an HMAC secret without a pinned algorithm.
    pub fn key_algorithm(&self) -> Option<Algorithm> {
        match &self.kind {
            SigningKind::Hmac { alg, .. } => *alg,
            #[cfg(feature = "asymmetric")]
            SigningKind::Private(signer) => Some(signer.algorithm()),
        }
    }

    /// The key that verifies what this one signs (its public half, or the secret itself): what
    /// a rotation keeps in the ring after a new signing key takes over.
    pub fn verification_key(&self) -> Result<VerificationKey, KeyError> {
        let kind = match &self.kind {
            SigningKind::Hmac { secret, alg } => VerificationKind::Hmac {
                secret: secret.clone(),
                alg: *alg,
            },
            #[cfg(feature = "asymmetric")]
            SigningKind::Private(signer) => VerificationKind::Public {
                alg: signer.algorithm(),
                key: signer.public().map_err(|p| bad("key", p))?,
            },
        };
        Ok(VerificationKey {
            kind,
            kid: self.kid.clone(),
        })
    }
}

impl VerificationKey {
    /// A previous HMAC secret, with the ring's HMAC algorithm (the signing key's when it is an
    /// HMAC secret, HS256 otherwise) unless [pinned](Self::algorithm).
    pub fn hmac(secret: JwtKey) -> Self {
        VerificationKey {
            kind: VerificationKind::Hmac { secret, alg: None },
            kid: None,
        }
    }

    /// An SPKI public key (`-----BEGIN PUBLIC KEY-----`), or the public half of a PKCS#8
    /// private key (`-----BEGIN PRIVATE KEY-----`); the private part is not kept. Needs the cargo
    /// feature `asymmetric`.
    pub fn from_pem(pem: impl AsRef<[u8]>) -> Result<Self, KeyError> {
        let parsed = parse_pem(pem.as_ref()).map_err(|p| bad("PEM", p))?;
        Self::from_parsed(parsed, "PEM")
    }

    /// [`from_pem`](Self::from_pem) of a file; errors name the file.
    pub fn from_pem_file(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        Self::from_parsed(read_pem(path)?, &path.display().to_string())
    }

    #[cfg(feature = "asymmetric")]
    fn from_parsed(pem: Pem, origin: &str) -> Result<Self, KeyError> {
        let (alg, key) = match pem {
            Pem::Private(der) => {
                let signer = asym::Signer::from_pkcs8(&der).map_err(|p| bad(origin, p))?;
                let key = signer.public().map_err(|p| bad(origin, p))?;
                (signer.algorithm(), key)
            }
            Pem::Public(der) => asym::public_from_spki(&der).map_err(|p| bad(origin, p))?,
        };
        Ok(VerificationKey {
            kind: VerificationKind::Public { alg, key },
            kid: None,
        })
    }

    #[cfg(not(feature = "asymmetric"))]
    fn from_parsed(_pem: Pem, origin: &str) -> Result<Self, KeyError> {
        Err(bad(origin, KeyProblem::NeedsFeature))
    }

    /// Names the key: the `kid` its tokens carry (must match the name it had when it signed).
    #[must_use]
    pub fn kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Pins the algorithm of an HMAC secret. For a public key, whose algorithm is its own, a
    /// different one makes the ring fail to build.
    #[allow(irrefutable_let_patterns)] // without the `asymmetric` feature
    #[must_use]
    pub fn algorithm(mut self, alg: Algorithm) -> Self {
        if let VerificationKind::Hmac { alg: a, .. } = &mut self.kind {
            *a = Some(alg);
        }
        self
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.key_algorithm())
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let alg = match &self.kind {
            VerificationKind::Hmac { alg, .. } => *alg,
            #[cfg(feature = "asymmetric")]
            VerificationKind::Public { alg, .. } => Some(*alg),
        };
        f.debug_struct("VerificationKey")
            .field("algorithm", &alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// How a ring key checks a signature. The keyed HMAC state stays inline: the hot path reads it
/// without a pointer chase.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Verifier {
    Hmac(PreKeyed),
    #[cfg(feature = "asymmetric")]
    Public(asym::Verifier),
}

/// How the ring's signing key signs.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Signer {
    Hmac(PreKeyed),
    #[cfg(feature = "asymmetric")]
    Private(Arc<asym::Signer>),
}

/// One key of a built ring.
pub(crate) struct RingKey {
    pub(crate) alg: Algorithm,
    /// `None` only for a lone HMAC secret.
    pub(crate) kid: Option<Box<str>>,
    /// The base64url header this key's tokens carry: `{"alg":…[,"kid":…],"typ":"JWT"}`.
    pub(crate) header_b64: String,
    pub(crate) verifier: Verifier,
    /// The public key, published in the JWKS.
    pub(crate) public: Option<PublicJwk>,
}

/// The built ring.
pub(crate) struct Ring {
    pub(crate) signer: Signer,
    pub(crate) signing: RingKey,
    pub(crate) others: Vec<RingKey>,
    /// Whether keys are picked by `kid` (false only for a lone HMAC secret without a name).
    pub(crate) by_kid: bool,
}

/// The key's own algorithm as a JWK `alg`.
fn jwk_alg(alg: Algorithm) -> Option<JwkAlg> {
    match alg {
        Algorithm::EdDSA => Some(JwkAlg::EdDSA),
        Algorithm::ES256 => Some(JwkAlg::ES256),
        Algorithm::RS256 => Some(JwkAlg::RS256),
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => None,
    }
}

/// The header of a key's tokens, in this order: `alg`, `kid`, `typ`.
fn header_b64(alg: Algorithm, kid: Option<&str>) -> String {
    let json = match kid {
        None => format!("{{\"alg\":\"{}\",\"typ\":\"JWT\"}}", alg.as_str()),
        Some(kid) => format!(
            "{{\"alg\":\"{}\",\"kid\":{},\"typ\":\"JWT\"}}",
            alg.as_str(),
            serde_json::Value::from(kid)
        ),
    };
    URL_SAFE_NO_PAD.encode(json)
}

/// A key before its `kid` is settled.
struct Pending {
    alg: Algorithm,
    kid: Option<String>,
    default_kid: String,
    verifier: Verifier,
    public: Option<PublicJwk>,
}

fn hmac_pending(secret: &JwtKey, alg: Algorithm, kid: Option<String>) -> Result<Pending, KeyError> {
    Ok(hmac_keyed(secret, alg, kid)?.0)
}

/// An HMAC key of the ring, and its keyed state.
fn hmac_keyed(
    secret: &JwtKey,
    alg: Algorithm,
    kid: Option<String>,
) -> Result<(Pending, PreKeyed), KeyError> {
    if !alg.is_hmac() {
        return Err(KeyError::AlgorithmMismatch {
            configured: alg,
            key: Algorithm::HS256,
        });
    }
    let mac = PreKeyed::new(alg, secret.expose_secret()).ok_or(KeyError::Empty)?;
    let thumbprint = oct_thumbprint(secret.expose_secret());
    let pending = Pending {
        alg,
        kid,
        default_kid: thumbprint.get(..16).unwrap_or(&thumbprint).to_owned(),
        verifier: Verifier::Hmac(mac.clone()),
        public: None,
    };
    Ok((pending, mac))
}

impl Ring {
    /// Settles algorithms and `kid`s and keys every key once.
    pub(crate) fn build(
        signing: SigningKey,
        verification: Vec<VerificationKey>,
        configured: Option<Algorithm>,
    ) -> Result<Ring, KeyError> {
        let lone_hmac = verification.is_empty() && matches!(signing.kind, SigningKind::Hmac { .. });
        let (signer, first) = match &signing.kind {
            SigningKind::Hmac { secret, alg } => {
                let alg = alg.or(configured).unwrap_or_default();
                let (pending, mac) = hmac_keyed(secret, alg, signing.kid.clone())?;
                (Signer::Hmac(mac), pending)
            }
            #[cfg(feature = "asymmetric")]
            SigningKind::Private(signer) => {
                let alg = signer.algorithm();
                if let Some(configured) = configured.filter(|c| *c != alg) {
                    return Err(KeyError::AlgorithmMismatch {
                        configured,
                        key: alg,
                    });
                }
                let public = signer.public().map_err(|p| bad("signing key", p))?;
                let verifier = asym::Verifier::new(&public).map_err(|p| bad("signing key", p))?;
                (
                    Signer::Private(Arc::clone(signer)),
                    Pending {
                        alg,
                        kid: signing.kid.clone(),
                        default_kid: public.thumbprint(),
                        verifier: Verifier::Public(verifier),
                        public: Some(public),
                    },
                )
            }
        };
        let hmac_alg = if first.alg.is_hmac() {
            first.alg
        } else {
            Algorithm::HS256
        };
        let mut pending = vec![first];
        for key in verification {
            pending.push(match key.kind {
                VerificationKind::Hmac { secret, alg } => {
                    hmac_pending(&secret, alg.unwrap_or(hmac_alg), key.kid)?
                }
                #[cfg(feature = "asymmetric")]
                VerificationKind::Public { alg, key: public } => {
                    let verifier =
                        asym::Verifier::new(&public).map_err(|p| bad("verification key", p))?;
                    Pending {
                        alg,
                        kid: key.kid,
                        default_kid: public.thumbprint(),
                        verifier: Verifier::Public(verifier),
                        public: Some(public),
                    }
                }
            });
        }

        let by_kid = !(lone_hmac && signing.kid.is_none());
        let mut keys = Vec::with_capacity(pending.len());
        for p in pending {
            let kid = by_kid.then(|| p.kid.unwrap_or(p.default_kid));
            if let Some(kid) = &kid
                && keys
                    .iter()
                    .any(|k: &RingKey| k.kid.as_deref() == Some(kid.as_str()))
            {
                return Err(KeyError::DuplicateKid(kid.clone()));
            }
            keys.push(RingKey {
                alg: p.alg,
                header_b64: header_b64(p.alg, kid.as_deref()),
                kid: kid.map(String::into_boxed_str),
                verifier: p.verifier,
                public: p.public,
            });
        }
        let mut keys = keys.into_iter();
        let signing = keys.next().ok_or(KeyError::Empty)?;
        Ok(Ring {
            signer,
            signing,
            others: keys.collect(),
            by_kid,
        })
    }

    /// The keys a token without `kid` is tried against, in a ring with `kid`s, after the
    /// signing key refused it: the first [`MAX_PREVIOUS_SECRETS`] HMAC verification keys (the
    /// previous secrets of a rotation away from a lone secret, whose tokens carry no `kid`), of
    /// those the ones for `alg`. Never an asymmetric verification key: a kid-less token meets
    /// only the signing key and secrets.
    pub(crate) fn previous_secrets(&self, alg: Algorithm) -> impl Iterator<Item = &RingKey> {
        self.others
            .iter()
            .filter(|k| k.alg.is_hmac() && matches!(k.verifier, Verifier::Hmac(_)))
            .take(MAX_PREVIOUS_SECRETS)
            .filter(move |k| k.alg == alg)
    }

    /// The key named `kid`.
    pub(crate) fn find(&self, kid: &str) -> Option<&RingKey> {
        std::iter::once(&self.signing)
            .chain(&self.others)
            .find(|k| k.kid.as_deref() == Some(kid))
    }

    /// The JWKs of the ring's public keys, signing key first.
    pub(crate) fn public_jwks(&self) -> Vec<JwkJson<'_>> {
        std::iter::once(&self.signing)
            .chain(&self.others)
            .filter_map(|k| {
                let public = k.public.as_ref()?;
                Some(public.to_json(k.kid.as_deref()?, jwk_alg(k.alg)?))
            })
            .collect()
    }
}
