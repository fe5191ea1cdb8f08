//! Core's model: one configured user with a plaintext password.

use std::convert::Infallible;
use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{CredentialStore, Credentials};

/// One user with a password from the configuration, as datarhei Core has it
/// (`CORE_API_AUTH_USERNAME` / `CORE_API_AUTH_PASSWORD`).
///
/// Both fields are always compared, in constant time, as SHA-256 digests (so neither the
/// position of the first differing byte nor the length leaks). The subject is the username.
///
/// ```
/// use tower_jwt_login::store::{CredentialStore, Credentials, PlaintextUser};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = PlaintextUser::new("admin", "datarhei");
/// let ok = store.authenticate(&Credentials::new("admin", "datarhei")).await.unwrap();
/// assert_eq!(ok.as_deref(), Some("admin"));
/// let bad = store.authenticate(&Credentials::new("admin", "datarhe")).await.unwrap();
/// assert_eq!(bad, None);
/// assert!(!format!("{store:?}").contains("datarhei"));
/// # });
/// ```
pub struct PlaintextUser {
    username: String,
    username_digest: [u8; 32],
    password_digest: Zeroizing<[u8; 32]>,
}

impl PlaintextUser {
    /// The one user.
    pub fn new(username: impl Into<String>, password: &str) -> Self {
        let username = username.into();
        PlaintextUser {
            username_digest: digest(username.as_bytes()),
            password_digest: Zeroizing::new(digest(password.as_bytes())),
            username,
        }
    }

    /// The configured username.
    pub fn username(&self) -> &str {
        &self.username
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl fmt::Debug for PlaintextUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlaintextUser")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl CredentialStore for PlaintextUser {
    type Error = Infallible;

    async fn authenticate(&self, credentials: &Credentials) -> Result<Option<String>, Infallible> {
        let user = digest(credentials.username().as_bytes());
        let pass = Zeroizing::new(digest(credentials.password().as_bytes()));
        let ok = user.ct_eq(&self.username_digest) & pass.ct_eq(&*self.password_digest);
        Ok(bool::from(ok).then(|| self.username.clone()))
    }
}
