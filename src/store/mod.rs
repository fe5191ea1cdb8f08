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
pub mod password;
mod plaintext;
#[cfg(feature = "sql")]
#[cfg_attr(docsrs, doc(cfg(feature = "sql")))]
pub mod sql;

use std::fmt;
use std::future::Future;

use zeroize::Zeroizing;

pub use crate::token::Lookup;

pub use argon2::{Argon2Error, Argon2Store, Argon2Users, hash_password, verify_password};
pub use password::{HashParams, PasswordBackend, PasswordStore, PasswordStoreError, StoredUser};
pub use plaintext::PlaintextUser;
#[cfg(feature = "sql")]
#[cfg_attr(docsrs, doc(cfg(feature = "sql")))]
pub use sql::{SqlError, SqlOptions, SqlStore, UserInfo};

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

/// Checks username/password logins, and says what the user may do.
///
/// Native `async fn` in traits: implement it with `async fn authenticate(...)`. Two questions:
///
/// - [`authenticate`](Self::authenticate) (required): are these credentials valid, and for which
///   subject?
/// - [`principal`](Self::principal) (optional): what extra claims (roles, a tenant, …) does this
///   subject's token carry *now*, or is the subject refused (disabled, removed)? Asked at login,
///   after `authenticate` accepted, and at every refresh, so a changed role reaches the next
///   access token (at the latest one access-token lifetime after the change) and a disabled user
///   cannot refresh. The default answers [`Lookup::NotSupported`]: the login mints Core's plain
///   tokens and a refresh carries the refresh token's extra claims over.
///
/// A store that only knows subjects implements `authenticate` alone (the example in the
/// [module docs](self)); a store with roles adds `principal`:
///
/// ```
/// use tower_jwt_login::Principal;
/// use tower_jwt_login::store::{CredentialStore, Credentials, Lookup};
///
/// struct Staff;
///
/// impl CredentialStore for Staff {
///     type Error = std::convert::Infallible;
///
///     async fn authenticate(&self, c: &Credentials) -> Result<Option<String>, Self::Error> {
///         // A real store checks a password hash (see `Argon2Store`).
///         Ok((c.password() == "let-me-in").then(|| c.username().to_owned()))
///     }
///
///     async fn principal(&self, subject: &str) -> Result<Lookup, Self::Error> {
///         Ok(match subject {
///             "root" => Lookup::Found(
///                 Principal::builder(subject).claim("roles", ["admin"]).build().unwrap(),
///             ),
///             "mallory" => Lookup::Refused,
///             _ => Lookup::Found(Principal::from(subject)),
///         })
///     }
/// }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let Lookup::Found(root) = Staff.principal("root").await.unwrap() else { unreachable!() };
/// assert!(root.has_role("admin"));
/// assert_eq!(Staff.principal("mallory").await.unwrap(), Lookup::Refused);
/// # });
/// ```
pub trait CredentialStore: Send + Sync + 'static {
    /// A failure of the store itself (database down, …). Answered as a 500 without details;
    /// wrong credentials are `Ok(None)`, not an error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// `Ok(Some(subject))` for valid credentials, `Ok(None)` for wrong ones.
    fn authenticate(
        &self,
        credentials: &Credentials,
    ) -> impl Future<Output = Result<Option<String>, Self::Error>> + Send;

    /// The subject's current [`Principal`](crate::Principal) (its extra claims), at login and
    /// at refresh; see the [trait docs](Self). A [`Lookup::Found`] principal for another subject
    /// is refused (a store bug, logged). The default is [`Lookup::NotSupported`].
    fn principal(&self, subject: &str) -> impl Future<Output = Result<Lookup, Self::Error>> + Send {
        let _ = subject;
        std::future::ready(Ok(Lookup::NotSupported))
    }
}

/// A credential store that can also set a user's password: what the self-service password
/// change ([`PasswordChangeService`](crate::login::PasswordChangeService), served by
/// [`LoginKit::password_change`](crate::kit::LoginKit::password_change)) needs. The current
/// password is checked with [`CredentialStore::authenticate`] under the subject's name, so the
/// store's subjects must be its login names (true of [`PasswordStore`], [`Argon2Store`] and
/// `SqlStore`).
///
/// ```
/// use std::sync::Mutex;
/// use tower_jwt_login::store::{CredentialStore, Credentials, SetPassword};
///
/// /// One user, for the example (a real store keeps Argon2 hashes: see `PasswordStore`).
/// struct One(Mutex<String>);
///
/// impl CredentialStore for One {
///     type Error = std::convert::Infallible;
///
///     async fn authenticate(&self, c: &Credentials) -> Result<Option<String>, Self::Error> {
///         let ok = c.username() == "alice" && *self.0.lock().unwrap() == c.password();
///         Ok(ok.then(|| "alice".to_owned()))
///     }
/// }
///
/// impl SetPassword for One {
///     async fn set_password(&self, subject: &str, password: &str) -> Result<bool, Self::Error> {
///         if subject != "alice" {
///             return Ok(false);
///         }
///         *self.0.lock().unwrap() = password.to_owned();
///         Ok(true)
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = One(Mutex::new("old password".into()));
/// assert!(store.set_password("alice", "new password").await.unwrap());
/// let ok = store.authenticate(&Credentials::new("alice", "new password")).await.unwrap();
/// assert_eq!(ok.as_deref(), Some("alice"));
/// # });
/// ```
pub trait SetPassword: CredentialStore {
    /// Replaces `subject`'s password with `password` (the store hashes it); `Ok(false)` when
    /// there is no such user. Tokens already issued stay valid: the password change ends the
    /// user's other sessions itself.
    fn set_password(
        &self,
        subject: &str,
        password: &str,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;
}

/// A shared store can set passwords when the store can.
impl<S: SetPassword> SetPassword for std::sync::Arc<S> {
    fn set_password(
        &self,
        subject: &str,
        password: &str,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send {
        (**self).set_password(subject, password)
    }
}

/// A shared store is a store: give the same `Arc` to the [`LoginService`](crate::login::LoginService)
/// and to [`RefreshService::credentials`](crate::login::RefreshService::credentials).
impl<S: CredentialStore> CredentialStore for std::sync::Arc<S> {
    type Error = S::Error;

    fn authenticate(
        &self,
        credentials: &Credentials,
    ) -> impl Future<Output = Result<Option<String>, Self::Error>> + Send {
        (**self).authenticate(credentials)
    }

    fn principal(&self, subject: &str) -> impl Future<Output = Result<Lookup, Self::Error>> + Send {
        (**self).principal(subject)
    }
}
