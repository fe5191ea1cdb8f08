//! HMAC key material for the crate's own tokens.

use std::fmt;

use zeroize::Zeroizing;

/// The secret key that signs and verifies the crate's access and refresh tokens.
///
/// The bytes are zeroized on drop and never printed: `Debug` shows only the length and origin.
///
/// ```
/// use tower_jwt_login::JwtKey;
///
/// // An app-given secret (at least 32 random bytes are recommended for HS256).
/// let key = JwtKey::from_secret("a long random secret from the app's configuration").unwrap();
/// assert!(!key.is_random());
///
/// // Core's derivation: username + password + jwt_secret, so that a real datarhei Core and this
/// // crate accept each other's tokens.
/// let core = JwtKey::core_compatible("admin", "datarhei", "secretsecret");
/// assert_eq!(core.expose_secret(), b"admindatarheisecretsecret");
/// assert_eq!(format!("{core:?}"), "JwtKey { len: 25, origin: CoreCompatible }");
/// ```
#[derive(Clone)]
pub struct JwtKey {
    bytes: Zeroizing<Vec<u8>>,
    origin: KeyOrigin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyOrigin {
    Secret,
    CoreCompatible,
    Random,
}

/// An unusable key, or a key ring that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The secret is empty.
    Empty,
    /// A key (file) that cannot be used: `origin` names it (the file's path, or `PEM` for
    /// in-memory text), `problem` says why.
    BadKey {
        /// The file's path, or `PEM` for a key given as text.
        origin: String,
        /// What is wrong with it.
        problem: KeyProblem,
    },
    /// The configured algorithm does not fit the signing key (an HMAC secret with `EdDSA`, a
    /// P-256 key with `RS256`, …).
    AlgorithmMismatch {
        /// The configured algorithm.
        configured: super::Algorithm,
        /// The algorithm the key is for.
        key: super::Algorithm,
    },
    /// Two keys of the ring have the same `kid` (the same key listed twice, or a name reused).
    DuplicateKid(String),
    /// An asymmetric algorithm in a build without the cargo feature `asymmetric`.
    AsymmetricDisabled(super::Algorithm),
}

/// What is wrong with a key file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyProblem {
    /// The file cannot be read (the I/O error's text).
    Unreadable(String),
    /// The text is no PEM (`-----BEGIN …-----` … `-----END …-----`).
    NotPem,
    /// A PEM of a kind the ring does not take (a certificate, an encrypted or PKCS#1 / SEC 1
    /// key, a key on another curve, …); the text says which and what to do.
    WrongType(String),
    /// An RSA key with fewer than 2048 bits (the count).
    RsaTooSmall(usize),
    /// A structurally broken or inconsistent key.
    Invalid(&'static str),
    /// A private key where only a public one fits, or the reverse.
    NotPrivate,
    /// The build lacks the cargo feature `asymmetric`.
    NeedsFeature,
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyProblem::Unreadable(e) => write!(f, "cannot be read: {e}"),
            KeyProblem::NotPem => f.write_str(
                "not a PEM file (expected -----BEGIN PRIVATE KEY----- or -----BEGIN PUBLIC KEY-----)",
            ),
            KeyProblem::WrongType(what) => write!(f, "wrong key type: {what}"),
            KeyProblem::RsaTooSmall(bits) => {
                write!(f, "RSA key of {bits} bits; at least 2048 bits are required")
            }
            KeyProblem::Invalid(why) => write!(f, "invalid key: {why}"),
            KeyProblem::NotPrivate => f.write_str(
                "a public key cannot sign; give the PKCS#8 private key (-----BEGIN PRIVATE KEY-----)",
            ),
            KeyProblem::NeedsFeature => f.write_str(
                "asymmetric keys need the cargo feature `asymmetric` of tower-jwt-login",
            ),
        }
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Empty => f.write_str("the JWT secret is empty"),
            KeyError::BadKey { origin, problem } => write!(f, "{origin}: {problem}"),
            KeyError::AlgorithmMismatch { configured, key } => write!(
                f,
                "the JWT algorithm is {} but the signing key is a {} key",
                configured.as_str(),
                key.as_str()
            ),
            KeyError::DuplicateKid(kid) => write!(
                f,
                "two keys of the JWT key ring have the kid {kid:?} (is a key listed twice?)"
            ),
            KeyError::AsymmetricDisabled(alg) => write!(
                f,
                "{} needs the cargo feature `asymmetric` of tower-jwt-login",
                alg.as_str()
            ),
        }
    }
}

impl std::error::Error for KeyError {}

impl JwtKey {
    /// A key from an app-given secret. Empty secrets are refused; secrets shorter than 32 bytes
    /// are accepted with a `tracing` warning (RFC 7518 asks for at least the hash size).
    pub fn from_secret(secret: impl AsRef<[u8]>) -> Result<Self, KeyError> {
        let secret = secret.as_ref();
        if secret.is_empty() {
            return Err(KeyError::Empty);
        }
        if secret.len() < 32 {
            tracing::warn!(
                len = secret.len(),
                "JWT secret is shorter than 32 bytes; use a longer random secret"
            );
        }
        Ok(JwtKey {
            bytes: Zeroizing::new(secret.to_vec()),
            origin: KeyOrigin::Secret,
        })
    }

    /// datarhei Core's key: the concatenation `username + password + jwt_secret`, so changing
    /// the password invalidates every token. With an empty `jwt_secret`, Core uses a random
    /// secret per process, and so does this: `username + password + <32 random characters>`,
    /// with a warning that tokens die on restart.
    pub fn core_compatible(username: &str, password: &str, jwt_secret: &str) -> Self {
        let mut bytes = Zeroizing::new(Vec::with_capacity(
            username.len() + password.len() + jwt_secret.len().max(32),
        ));
        bytes.extend_from_slice(username.as_bytes());
        bytes.extend_from_slice(password.as_bytes());
        if jwt_secret.is_empty() {
            tracing::warn!(
                "no JWT secret configured: using a random one, tokens will not survive a restart"
            );
            bytes.extend_from_slice(random_alphanumeric::<32>().as_slice());
        } else {
            bytes.extend_from_slice(jwt_secret.as_bytes());
        }
        JwtKey {
            bytes,
            origin: KeyOrigin::CoreCompatible,
        }
    }

    /// A random 256-bit key, logged with a warning: tokens signed with it die on restart and are
    /// not shared between processes.
    pub fn random() -> Self {
        tracing::warn!(
            "no JWT key configured: using a random one, tokens will not survive a restart"
        );
        let mut bytes = Zeroizing::new(vec![0u8; 32]);
        fill_random(&mut bytes);
        JwtKey {
            bytes,
            origin: KeyOrigin::Random,
        }
    }

    /// Whether this key was generated at random (tokens will not survive a restart).
    pub fn is_random(&self) -> bool {
        self.origin == KeyOrigin::Random
    }

    /// The raw key bytes. Handle with care: this is the signing secret.
    pub fn expose_secret(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKey")
            .field("len", &self.bytes.len())
            .field("origin", &self.origin)
            .finish()
    }
}

/// A PEM document's label and DER contents.
#[cfg_attr(not(feature = "asymmetric"), allow(dead_code))]
pub(crate) enum Pem {
    /// `-----BEGIN PRIVATE KEY-----`: PKCS#8.
    Private(Zeroizing<Vec<u8>>),
    /// `-----BEGIN PUBLIC KEY-----`: SPKI.
    Public(Vec<u8>),
}

/// Reads the first PEM block of `text` (RFC 7468; text around it is ignored, as openssl does).
pub(crate) fn parse_pem(text: &[u8]) -> Result<Pem, KeyProblem> {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    let text = std::str::from_utf8(text).map_err(|_| KeyProblem::NotPem)?;
    let mut lines = text.lines().map(str::trim);
    let label = lines
        .by_ref()
        .find_map(|l| l.strip_prefix("-----BEGIN ")?.strip_suffix("-----"))
        .ok_or(KeyProblem::NotPem)?;
    let end = format!("-----END {label}-----");
    let mut body = Zeroizing::new(String::new());
    let mut closed = false;
    for line in lines {
        if line == end {
            closed = true;
            break;
        }
        if line.contains(':') {
            // RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`): an encrypted legacy key.
            return Err(KeyProblem::WrongType(
                "an encrypted key; decrypt it with `openssl pkey -in KEY -out PLAIN.pem`".into(),
            ));
        }
        body.push_str(line);
    }
    if !closed {
        return Err(KeyProblem::NotPem);
    }
    let der = Zeroizing::new(
        STANDARD
            .decode(body.as_bytes())
            .map_err(|_| KeyProblem::NotPem)?,
    );
    match label {
        "PRIVATE KEY" => Ok(Pem::Private(der)),
        "PUBLIC KEY" => Ok(Pem::Public(der.to_vec())),
        "ENCRYPTED PRIVATE KEY" => Err(KeyProblem::WrongType(
            "an encrypted PKCS#8 key; decrypt it with `openssl pkcs8 -in KEY -out PLAIN.pem`"
                .into(),
        )),
        "RSA PRIVATE KEY" | "EC PRIVATE KEY" => Err(KeyProblem::WrongType(format!(
            "{label} is PKCS#1 / SEC 1, not PKCS#8; convert it with \
             `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY8.pem`"
        ))),
        "RSA PUBLIC KEY" => Err(KeyProblem::WrongType(
            "an RSA PUBLIC KEY (PKCS#1); convert it to SPKI with \
             `openssl rsa -RSAPublicKey_in -in KEY -pubout -out PUB.pem`"
                .into(),
        )),
        "CERTIFICATE" => Err(KeyProblem::WrongType(
            "a certificate; give the key (`openssl x509 -in CERT -pubkey -noout`)".into(),
        )),
        other => Err(KeyProblem::WrongType(format!(
            "a PEM {other:?}; expected PRIVATE KEY (PKCS#8) or PUBLIC KEY (SPKI)"
        ))),
    }
}

/// Fills `buf` from the operating system's CSPRNG.
///
/// The OS generator failing is not an input error but a broken machine; continuing with a
/// predictable key would be worse than stopping, so this aborts the process.
pub(crate) fn fill_random(buf: &mut [u8]) {
    if getrandom::getrandom(buf).is_err() {
        tracing::error!("the operating system's random number generator failed");
        std::process::abort();
    }
}

/// `N` random characters from `[A-Za-z0-9]` (rejection sampling: no modulo bias).
pub(crate) fn random_alphanumeric<const N: usize>() -> Zeroizing<[u8; N]> {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = Zeroizing::new([0u8; N]);
    let mut filled = 0;
    let mut pool = Zeroizing::new([0u8; 64]);
    while filled < N {
        fill_random(pool.as_mut_slice());
        for &b in pool.iter() {
            // 248 = 4 * 62: bytes at or above it would bias the distribution.
            if b < 248 {
                if let (Some(slot), Some(&c)) =
                    (out.get_mut(filled), ALPHABET.get(usize::from(b % 62)))
                {
                    *slot = c;
                    filled += 1;
                }
                if filled == N {
                    break;
                }
            }
        }
    }
    out
}
