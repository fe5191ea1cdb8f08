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

/// An unusable key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The secret is empty.
    Empty,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Empty => f.write_str("the JWT secret is empty"),
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
