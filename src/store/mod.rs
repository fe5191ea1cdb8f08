//! Where users come from: the [`CredentialStore`] trait and two built-in stores.
//!
//! A store answers one question: are these credentials valid, and if so, for which subject (the
//! `sub` of the minted tokens)? Implement it over your own user database:
//!
//! ```
//! use std::collections::HashMap;
//! use tower_jwt_login::store::{Argon2Store, CredentialStore, Credentials};
//!
//! /// Users whose subject differs from their login name (e.g. a database id).
//! struct MyUsers {
//!     by_name: HashMap<String, (u64, String)>, // name -> (id, Argon2id PHC string)
//! }
//!
//! impl CredentialStore for MyUsers {
//!     type Error = std::convert::Infallible;
//!
//!     async fn authenticate(&self, credentials: &Credentials) -> Result<Option<String>, Self::Error> {
//!         // Real stores verify off the executor and equalize unknown users; see `Argon2Store`.
//!         let Some((id, phc)) = self.by_name.get(credentials.username()) else {
//!             return Ok(None);
//!         };
//!         let ok = tower_jwt_login::store::verify_password(credentials.password(), phc);
//!         Ok(ok.then(|| format!("user-{id}")))
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let phc = tower_jwt_login::store::hash_password("s3cret").unwrap();
//! let users = MyUsers { by_name: HashMap::from([("alice".to_owned(), (7, phc))]) };
//! let good = Credentials::new("alice", "s3cret");
//! assert_eq!(users.authenticate(&good).await.unwrap().as_deref(), Some("user-7"));
//! let bad = Credentials::new("alice", "guess");
//! assert_eq!(users.authenticate(&bad).await.unwrap(), None);
//! # });
//! ```

mod argon2;
mod plaintext;

use std::fmt;
use std::future::Future;

use zeroize::Zeroizing;

pub use argon2::{Argon2Error, Argon2Store, hash_password, verify_password};
pub use plaintext::PlaintextUser;

/// A username and password from a login body. `Debug` never shows the password; the password is
/// zeroized on drop.
#[derive(Clone)]
pub struct Credentials {
    username: String,
    password: Zeroizing<String>,
}

impl Credentials {
    /// Wraps a username and password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: Zeroizing::new(password.into()),
        }
    }

    /// The username as sent.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The password as sent.
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Checks username/password logins. Native `async fn` in traits: implement it with
/// `async fn authenticate(...)`.
pub trait CredentialStore: Send + Sync + 'static {
    /// A failure of the store itself (database down, …). Answered as a 500 without details;
    /// wrong credentials are `Ok(None)`, not an error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// `Ok(Some(subject))` for valid credentials, `Ok(None)` for wrong ones.
    fn authenticate(
        &self,
        credentials: &Credentials,
    ) -> impl Future<Output = Result<Option<String>, Self::Error>> + Send;
}
