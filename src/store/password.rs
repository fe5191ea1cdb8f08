//! The store any password backend builds on: [`PasswordBackend`] looks users up, and
//! [`PasswordStore`] does everything else a [`CredentialStore`] must get right.
//!
//! A backend (a database table, a file, a directory service) knows one thing: for a name, the
//! stored Argon2id PHC string, whether the user is disabled, and the extra claims of its tokens.
//! [`PasswordStore`] turns it into a [`CredentialStore`]:
//!
//! - Argon2id verification on tokio's blocking pool, at most `max_concurrency` at a time (each
//!   run allocates its `m` KiB), so a burst of logins neither stalls the executor nor exhausts
//!   memory;
//! - an unknown name is checked against a **dummy hash** with the parameters of the costliest
//!   stored hash (the backend says which, see [`PasswordBackend::costliest_hash`]; a costlier
//!   hash met at a login raises it at once), so it costs what a real user costs;
//! - a disabled user is verified like anyone else and refused like a wrong password;
//! - after a successful login whose stored hash is weaker than the configured
//!   [`HashParams`], the password is hashed again with them and handed to
//!   [`PasswordBackend::update_hash`]: hashes follow the configuration without a reset.
//!
//! [`Argon2Store`](super::Argon2Store) (in memory) and, with the `sql` feature, `SqlStore`
//! (PostgreSQL and SQLite) are backends of it. Yours takes a few lines:
//!
//! ```
//! use std::collections::HashMap;
//! use std::convert::Infallible;
//! use std::sync::Mutex;
//! use tower_jwt_login::Principal;
//! use tower_jwt_login::store::{
//!     CredentialStore, Credentials, PasswordBackend, PasswordStore, StoredUser, hash_password,
//! };
//!
//! /// name -> (PHC string, roles)
//! struct MyUsers(Mutex<HashMap<String, (String, Vec<String>)>>);
//!
//! impl PasswordBackend for MyUsers {
//!     type Error = Infallible;
//!
//!     async fn find(&self, name: &str) -> Result<Option<StoredUser>, Infallible> {
//!         let users = self.0.lock().unwrap();
//!         Ok(users.get(name).map(|(phc, roles)| {
//!             let principal = Principal::builder(name).claim("roles", roles).build().unwrap();
//!             StoredUser::new(phc.clone(), principal)
//!         }))
//!     }
//!
//!     async fn update_hash(&self, name: &str, old: &str, new: &str) -> Result<bool, Infallible> {
//!         let mut users = self.0.lock().unwrap();
//!         Ok(match users.get_mut(name) {
//!             Some((phc, _)) if phc == old => {
//!                 *phc = new.to_owned();
//!                 true
//!             }
//!             _ => false, // changed meanwhile: keep the newer hash
//!         })
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let phc = hash_password("wonderland").unwrap();
//! let users = MyUsers(Mutex::new(HashMap::from([("alice".into(), (phc, vec!["admin".into()]))])));
//! let store = PasswordStore::new(users);
//! let ok = store.authenticate(&Credentials::new("alice", "wonderland")).await.unwrap();
//! assert_eq!(ok.as_deref(), Some("alice"));
//! let unknown = store.authenticate(&Credentials::new("bob", "wonderland")).await.unwrap();
//! assert_eq!(unknown, None); // after one Argon2 run against the dummy hash
//! # });
//! ```

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use argon2::password_hash::{Output, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Version};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use super::{Argon2Error, CredentialStore, Credentials, Lookup, SetPassword, verify_password};
use crate::token::{Principal, fill_random};

/// What a [`PasswordBackend`] knows about one user. `Debug` never shows the hash.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredUser {
    phc: String,
    disabled: bool,
    principal: Principal,
}

impl StoredUser {
    /// An enabled user with its Argon2id PHC string and the principal of its tokens (the
    /// subject is the user's name; its extra claims go into the tokens).
    pub fn new(phc: impl Into<String>, principal: impl Into<Principal>) -> Self {
        StoredUser {
            phc: phc.into(),
            disabled: false,
            principal: principal.into(),
        }
    }

    /// Marks the user disabled (or not): its logins are refused like a wrong password, after
    /// the same work, and its refreshes are refused.
    #[must_use]
    pub fn disabled(mut self, disabled: bool) -> Self {
        self.disabled = disabled;
        self
    }

    /// The stored PHC string.
    pub fn phc(&self) -> &str {
        &self.phc
    }

    /// Whether the user is disabled.
    pub fn is_disabled(&self) -> bool {
        self.disabled
    }

    /// The principal of the user's tokens.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }
}

impl fmt::Debug for StoredUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredUser")
            .field("principal", &self.principal)
            .field("disabled", &self.disabled)
            .field("phc", &"<redacted>")
            .finish()
    }
}

/// What only the backend knows: a user by name, and how to store a new hash. Native
/// `async fn` in traits, like [`CredentialStore`]; [`PasswordStore`] does the rest (see the
/// [module docs](self), which implement it over a `HashMap`).
pub trait PasswordBackend: Send + Sync + 'static {
    /// A failure of the backend (database down, …): the login answers a 500 without details.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The user called `name`, or `None`. Called at every login with the name as typed, and at
    /// every refresh with the subject of the token, so `find(principal.subject())` must find the
    /// same user (the subject is the canonical name).
    fn find(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<StoredUser>, Self::Error>> + Send;

    /// Replaces `name`'s hash `old_phc` with `new_phc`: the same password, hashed again with
    /// the configured parameters after a successful login, or a new password
    /// ([`SetPassword`] on [`PasswordStore`]). Only when the stored hash is still `old_phc`: a
    /// password changed meanwhile must win. Whether it was replaced; a failure is
    /// logged and the login succeeds all the same.
    fn update_hash(
        &self,
        name: &str,
        old_phc: &str,
        new_phc: &str,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// A stored PHC string with the costliest parameters (largest `m × t`, then `m`, `p` and
    /// output length), `None` without users. The dummy hash an unknown name is checked
    /// against takes its parameters, so no user is slower to check than an unknown name.
    /// [`PasswordStore`] asks at most every [`dummy_refresh`](PasswordStore::dummy_refresh);
    /// in between, a costlier hash met at a login raises the dummy at once. The default
    /// answers `None`: the dummy then has the configured [`HashParams`] (right as long as
    /// every hash was made with them, which re-hashing on login brings about).
    fn costliest_hash(&self) -> impl Future<Output = Result<Option<String>, Self::Error>> + Send {
        std::future::ready(Ok(None))
    }
}

/// Argon2id parameters: memory in KiB (`m`), iterations (`t`), lanes (`p`); 32-byte output.
/// The default is OWASP's minimum and the `argon2` crate's default: m = 19 MiB, t = 2, p = 1.
///
/// ```
/// use tower_jwt_login::store::HashParams;
///
/// let strong = HashParams::new(64 * 1024, 3, 1).unwrap();
/// assert_eq!(strong.memory_kib(), 65536);
/// assert!(HashParams::new(8, 1, 2).is_err()); // Argon2 needs m >= 8 × p
/// assert_eq!(HashParams::default(), HashParams::new(19456, 2, 1).unwrap());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    m: u32,
    t: u32,
    p: u32,
}

impl Default for HashParams {
    fn default() -> Self {
        let d = argon2::Params::default();
        HashParams {
            m: d.m_cost(),
            t: d.t_cost(),
            p: d.p_cost(),
        }
    }
}

impl HashParams {
    /// Parameters Argon2 accepts (`m >= 8 × p`, `t >= 1`, `p >= 1`), or
    /// [`Argon2Error::Hashing`].
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Self, Argon2Error> {
        argon2::Params::new(memory_kib, iterations, parallelism, None)
            .map_err(|_| Argon2Error::Hashing)?;
        Ok(HashParams {
            m: memory_kib,
            t: iterations,
            p: parallelism,
        })
    }

    /// The parameters of a PHC string (Argon2id only).
    pub fn of_phc(phc: &str) -> Result<Self, Argon2Error> {
        let hash = PasswordHash::new(phc).map_err(|_| Argon2Error::InvalidHash)?;
        if hash.algorithm != Algorithm::Argon2id.ident() {
            return Err(Argon2Error::NotArgon2id);
        }
        let params = argon2::Params::try_from(&hash).map_err(|_| Argon2Error::InvalidHash)?;
        Ok(HashParams {
            m: params.m_cost(),
            t: params.t_cost(),
            p: params.p_cost(),
        })
    }

    /// Memory in KiB (`m`).
    pub fn memory_kib(&self) -> u32 {
        self.m
    }

    /// Iterations (`t`).
    pub fn iterations(&self) -> u32 {
        self.t
    }

    /// Lanes (`p`).
    pub fn parallelism(&self) -> u32 {
        self.p
    }

    /// Hashes `password` with these parameters and a random 16-byte salt (blocking: the full
    /// Argon2 cost); the PHC string.
    pub fn hash(&self, password: &str) -> Result<String, Argon2Error> {
        let params =
            argon2::Params::new(self.m, self.t, self.p, None).map_err(|_| Argon2Error::Hashing)?;
        let mut salt = [0u8; 16];
        fill_random(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|_| Argon2Error::Hashing)?;
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|_| Argon2Error::Hashing)
    }

    /// Whether a hash of `stored` is weaker than one of these parameters: less memory, less
    /// work (`m × t`), an older Argon2 version or a shorter output. Lanes do not count (they
    /// split the same memory).
    fn stronger_than(&self, stored: &PasswordHash<'_>) -> bool {
        let Ok(params) = argon2::Params::try_from(stored) else {
            return true;
        };
        let old_version = stored
            .version
            .is_some_and(|v| v < u32::from(Version::V0x13));
        let short = stored.hash.is_none_or(|h| h.len() < 32);
        old_version
            || short
            || params.m_cost() < self.m
            || u64::from(params.m_cost()) * u64::from(params.t_cost())
                < u64::from(self.m) * u64::from(self.t)
    }
}

/// How much work verifying against a hash takes, ordered: Argon2 fills `m` KiB blocks `t` times
/// (the lanes `p` share the `m` blocks), so `m × t` first; ties by memory, lanes, output length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Cost {
    work: u64,
    memory: u32,
    lanes: u32,
    output: usize,
}

impl Cost {
    fn of(hash: &PasswordHash<'_>) -> Result<Self, Argon2Error> {
        let params = argon2::Params::try_from(hash).map_err(|_| Argon2Error::InvalidHash)?;
        Ok(Cost {
            work: u64::from(params.m_cost()) * u64::from(params.t_cost()),
            memory: params.m_cost(),
            lanes: params.p_cost(),
            output: hash.hash.map_or(0, |h| h.len()),
        })
    }
}

/// Checks a PHC string: Argon2id with parameters Argon2 accepts; its cost.
pub(crate) fn checked_cost(phc: &str) -> Result<Cost, Argon2Error> {
    let hash = PasswordHash::new(phc).map_err(|_| Argon2Error::InvalidHash)?;
    if hash.algorithm != Algorithm::Argon2id.ident() {
        return Err(Argon2Error::NotArgon2id);
    }
    Cost::of(&hash)
}

/// A PHC string with `like`'s algorithm, version, parameters and output length (`params`,
/// Argon2id v19 and a 32-byte output without one) and random salt and output: checking any
/// password against it fails, after the same work as checking against `like`.
fn dummy_like(like: Option<&PasswordHash<'_>>, params: &HashParams) -> Result<String, Argon2Error> {
    let mut salt = [0u8; 16];
    let mut output = [0u8; Output::MAX_LENGTH];
    fill_random(&mut salt);
    fill_random(&mut output);
    let salt = SaltString::encode_b64(&salt).map_err(|_| Argon2Error::Hashing)?;
    let len = like.and_then(|h| h.hash).map_or(32, |h| h.len());
    let output = output.get(..len).ok_or(Argon2Error::InvalidHash)?;
    let output = Output::new(output).map_err(|_| Argon2Error::Hashing)?;
    let hash = match like {
        Some(like) => PasswordHash {
            algorithm: like.algorithm,
            version: like.version,
            params: like.params.clone(),
            salt: Some(salt.as_salt()),
            hash: Some(output),
        },
        None => {
            let params = argon2::Params::new(params.m, params.t, params.p, None)
                .map_err(|_| Argon2Error::Hashing)?;
            PasswordHash {
                algorithm: Algorithm::Argon2id.ident(),
                version: Some(Version::V0x13.into()),
                params: (&params).try_into().map_err(|_| Argon2Error::Hashing)?,
                salt: Some(salt.as_salt()),
                hash: Some(output),
            }
        }
    };
    Ok(hash.to_string())
}

/// The dummy hash and what it was made from.
struct Dummy {
    phc: Arc<str>,
    /// The cost of the hash it imitates; `None`: the configured parameters (no stored hash).
    cost: Option<Cost>,
    /// When the backend was last asked for its costliest hash.
    checked: Option<Instant>,
}

/// Why a [`PasswordStore`] failed: its backend, or Argon2 (a task that did not finish while
/// the runtime shuts down, hashing with invalid parameters).
#[derive(Debug)]
#[non_exhaustive]
pub enum PasswordStoreError<E> {
    /// The backend failed.
    Backend(E),
    /// Hashing or verifying failed.
    Argon2(Argon2Error),
}

impl<E: fmt::Display> fmt::Display for PasswordStoreError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordStoreError::Backend(e) => write!(f, "password backend: {e}"),
            PasswordStoreError::Argon2(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for PasswordStoreError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PasswordStoreError::Backend(e) => Some(e),
            PasswordStoreError::Argon2(e) => Some(e),
        }
    }
}

/// A [`CredentialStore`] over a [`PasswordBackend`]: Argon2id off the executor with bounded
/// concurrency, the dummy hash, refusing disabled users like a wrong password, and re-hashing
/// weaker hashes on a successful login (see the [module docs](self)). The subject is the
/// principal's. Cheap to clone: clones share the backend, the permits and the dummy.
pub struct PasswordStore<B> {
    backend: Arc<B>,
    permits: Arc<Semaphore>,
    params: HashParams,
    dummy: Arc<Mutex<Dummy>>,
    refresh: Duration,
}

impl<B> Clone for PasswordStore<B> {
    fn clone(&self) -> Self {
        PasswordStore {
            backend: Arc::clone(&self.backend),
            permits: Arc::clone(&self.permits),
            params: self.params,
            dummy: Arc::clone(&self.dummy),
            refresh: self.refresh,
        }
    }
}

impl<B> fmt::Debug for PasswordStore<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordStore")
            .field("params", &self.params)
            .field("available_permits", &self.permits.available_permits())
            .field("dummy_refresh", &self.refresh)
            .finish_non_exhaustive()
    }
}

impl<B: PasswordBackend> PasswordStore<B> {
    /// The backend with the default [`HashParams`], at most one Argon2 run per CPU at a time,
    /// and the costliest stored hash asked for at most once a minute.
    pub fn new(backend: B) -> Self {
        let workers = std::thread::available_parallelism().map_or(1, usize::from);
        let params = HashParams::default();
        PasswordStore {
            backend: Arc::new(backend),
            permits: Arc::new(Semaphore::new(workers)),
            params,
            dummy: Arc::new(Mutex::new(Dummy {
                phc: dummy_like(None, &params).unwrap_or_default().into(),
                cost: None,
                checked: None,
            })),
            refresh: Duration::from_secs(60),
        }
    }

    /// The parameters new hashes get ([`hash`](Self::hash)), and that a successful login
    /// re-hashes a weaker stored hash to (default [`HashParams::default`]).
    #[must_use]
    pub fn hash_params(mut self, params: HashParams) -> Self {
        self.params = params;
        let mut dummy = self.lock_dummy();
        if dummy.cost.is_none() {
            dummy.phc = dummy_like(None, &params).unwrap_or_default().into();
        }
        drop(dummy);
        self
    }

    /// At most `n` Argon2 runs at once (at least 1; default: the number of CPUs).
    #[must_use]
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.permits = Arc::new(Semaphore::new(n.max(1)));
        self
    }

    /// How often the backend is asked for its [costliest hash](PasswordBackend::costliest_hash)
    /// (default one minute; zero: at every login, for backends that answer from memory).
    #[must_use]
    pub fn dummy_refresh(mut self, every: Duration) -> Self {
        self.refresh = every;
        self
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The configured parameters.
    pub fn params(&self) -> HashParams {
        self.params
    }

    /// Hashes `password` with the configured parameters on the blocking pool, within the
    /// concurrency bound: for the backend's "add user" and "set password".
    pub async fn hash(&self, password: &str) -> Result<String, Argon2Error> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| Argon2Error::TaskFailed)?;
        let password = Zeroizing::new(password.to_owned());
        let params = self.params;
        let phc = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            params.hash(&password)
        })
        .await
        .map_err(|_| Argon2Error::TaskFailed)??;
        if let Ok(cost) = checked_cost(&phc) {
            self.raise_dummy(&phc, cost);
        }
        Ok(phc)
    }

    /// The parameters an unknown name is checked with now: those of the costliest stored hash
    /// (asking the backend when that is due), the configured ones without any.
    pub async fn dummy_params(&self) -> Result<HashParams, B::Error> {
        let dummy = self.current_dummy().await?;
        Ok(HashParams::of_phc(&dummy).unwrap_or(self.params))
    }

    fn lock_dummy(&self) -> MutexGuard<'_, Dummy> {
        // Every change is one assignment of whole fields: a poisoned lock holds a usable dummy.
        self.dummy.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The dummy an unknown name is checked against, asking the backend for its costliest
    /// hash first when that is due.
    pub(crate) async fn current_dummy(&self) -> Result<Arc<str>, B::Error> {
        let now = Instant::now();
        let due = {
            let mut dummy = self.lock_dummy();
            let due = dummy
                .checked
                .is_none_or(|at| now.saturating_duration_since(at) >= self.refresh);
            if due {
                // Claimed: concurrent logins use the current dummy meanwhile.
                dummy.checked = Some(now);
            }
            due
        };
        if due {
            let costliest = self.backend.costliest_hash().await?;
            self.set_dummy(costliest.as_deref());
        }
        Ok(Arc::clone(&self.lock_dummy().phc))
    }

    /// Makes the dummy imitate `costliest` (the configured parameters for `None`), keeping the
    /// current one when it imitates the same cost already.
    fn set_dummy(&self, costliest: Option<&str>) {
        let parsed = costliest.and_then(|phc| {
            let hash = PasswordHash::new(phc).ok()?;
            let cost = Cost::of(&hash).ok()?;
            Some((hash, cost))
        });
        let cost = parsed.as_ref().map(|(_, c)| *c);
        if self.lock_dummy().cost == cost && cost.is_some() {
            return;
        }
        let Ok(phc) = dummy_like(parsed.as_ref().map(|(h, _)| h), &self.params) else {
            return;
        };
        let mut dummy = self.lock_dummy();
        dummy.phc = phc.into();
        dummy.cost = cost;
    }

    /// A stored hash of `cost` exists: the dummy must cost at least as much.
    fn raise_dummy(&self, phc: &str, cost: Cost) {
        if self.lock_dummy().cost.is_some_and(|c| c >= cost) {
            return;
        }
        self.set_dummy(Some(phc));
    }

    /// Verifies `password` against `phc` on the blocking pool; with `rehash`, hashes it again
    /// with the configured parameters when it matched. (match, new hash)
    async fn verify(
        &self,
        password: &str,
        phc: Arc<str>,
        rehash: bool,
    ) -> Result<(bool, Option<String>), Argon2Error> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| Argon2Error::TaskFailed)?;
        let password = Zeroizing::new(password.to_owned());
        let params = self.params;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let ok = verify_password(&password, &phc);
            let new = if ok && rehash {
                params.hash(&password).ok()
            } else {
                None
            };
            (ok, new)
        })
        .await
        .map_err(|_| Argon2Error::TaskFailed)
    }
}

/// Sets a password through the backend: the user is looked up, the new password hashed with
/// the configured parameters (on the blocking pool) and stored with
/// [`PasswordBackend::update_hash`] over the hash just read (tried again, a few times, when the
/// hash changed in between, e.g. re-hashed by a login). `Ok(false)`: no such user, or its hash
/// changed at every try (concurrent password changes, which won).
impl<B: PasswordBackend> SetPassword for PasswordStore<B> {
    async fn set_password(&self, subject: &str, password: &str) -> Result<bool, Self::Error> {
        let new = self
            .hash(password)
            .await
            .map_err(PasswordStoreError::Argon2)?;
        for _ in 0..SET_PASSWORD_TRIES {
            let Some(user) = self
                .backend
                .find(subject)
                .await
                .map_err(PasswordStoreError::Backend)?
            else {
                return Ok(false);
            };
            if self
                .backend
                .update_hash(subject, user.phc(), &new)
                .await
                .map_err(PasswordStoreError::Backend)?
            {
                return Ok(true);
            }
        }
        // Changed at every try: other password changes won.
        Ok(false)
    }
}

/// How often [`SetPassword::set_password`] reads the hash again when it changed in between.
const SET_PASSWORD_TRIES: usize = 4;

impl<B: PasswordBackend> CredentialStore for PasswordStore<B> {
    type Error = PasswordStoreError<B::Error>;

    async fn authenticate(&self, credentials: &Credentials) -> Result<Option<String>, Self::Error> {
        let dummy = self
            .current_dummy()
            .await
            .map_err(PasswordStoreError::Backend)?;
        let found = self
            .backend
            .find(credentials.username())
            .await
            .map_err(PasswordStoreError::Backend)?;
        // The user, when its hash is usable; otherwise the dummy, so that every name costs one
        // Argon2 run of the costliest parameters.
        let (user, target, weaker) = match found {
            Some(user) => match PasswordHash::new(&user.phc)
                .ok()
                .filter(|h| h.algorithm == Algorithm::Argon2id.ident())
                .and_then(|h| Some((Cost::of(&h).ok()?, self.params.stronger_than(&h))))
            {
                Some((cost, weaker)) => {
                    self.raise_dummy(&user.phc, cost);
                    let target: Arc<str> = user.phc.as_str().into();
                    (Some(user), target, weaker)
                }
                None => {
                    tracing::error!(
                        "a stored password hash is not an Argon2id PHC string: login refused"
                    );
                    (None, dummy, false)
                }
            },
            None => (None, dummy, false),
        };
        let accepted = user.as_ref().is_some_and(|u| !u.disabled);
        let (ok, rehashed) = self
            .verify(credentials.password(), target, accepted && weaker)
            .await
            .map_err(PasswordStoreError::Argon2)?;
        // A disabled user did the same work as anyone else and gets the same answer as a wrong
        // password: no oracle for the account's state.
        let Some(user) = user.filter(|_| ok && accepted) else {
            return Ok(None);
        };
        let subject = user.principal.subject().to_owned();
        if let Some(new) = rehashed {
            match self.backend.update_hash(&subject, &user.phc, &new).await {
                Ok(true) => {
                    tracing::debug!("password hash upgraded to the configured parameters");
                    if let Ok(cost) = checked_cost(&new) {
                        self.raise_dummy(&new, cost);
                    }
                }
                Ok(false) => tracing::debug!("password changed meanwhile: hash not upgraded"),
                Err(e) => tracing::warn!(error = %e, "could not store the upgraded password hash"),
            }
        }
        Ok(Some(subject))
    }

    /// The user's current principal; [`Lookup::Refused`] for an unknown or disabled one.
    async fn principal(&self, subject: &str) -> Result<Lookup, Self::Error> {
        let found = self
            .backend
            .find(subject)
            .await
            .map_err(PasswordStoreError::Backend)?;
        Ok(match found {
            Some(user) if !user.disabled => Lookup::Found(user.principal),
            _ => Lookup::Refused,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A backend in a `HashMap`, counting its calls.
    #[derive(Default)]
    struct Users {
        users: Mutex<HashMap<String, StoredUser>>,
        finds: AtomicUsize,
        updates: AtomicUsize,
    }

    impl Users {
        fn with(self, name: &str, phc: &str) -> Self {
            self.users
                .lock()
                .unwrap()
                .insert(name.to_owned(), StoredUser::new(phc, name));
            self
        }
        fn phc(&self, name: &str) -> String {
            self.users.lock().unwrap()[name].phc.clone()
        }
    }

    impl PasswordBackend for Users {
        type Error = Infallible;
        async fn find(&self, name: &str) -> Result<Option<StoredUser>, Infallible> {
            self.finds.fetch_add(1, Ordering::Relaxed);
            Ok(self.users.lock().unwrap().get(name).cloned())
        }
        async fn update_hash(&self, name: &str, old: &str, new: &str) -> Result<bool, Infallible> {
            self.updates.fetch_add(1, Ordering::Relaxed);
            let mut users = self.users.lock().unwrap();
            Ok(match users.get_mut(name) {
                Some(user) if user.phc == old => {
                    user.phc = new.to_owned();
                    true
                }
                _ => false,
            })
        }
    }

    fn cheap() -> HashParams {
        HashParams::new(1024, 1, 1).unwrap()
    }

    #[tokio::test]
    async fn a_weaker_hash_is_upgraded_after_a_successful_login_only() {
        let old = cheap().hash("pw").unwrap();
        let store = PasswordStore::new(Users::default().with("alice", &old));
        let wrong = Credentials::new("alice", "nope");
        assert_eq!(store.authenticate(&wrong).await.unwrap(), None);
        assert_eq!(
            store.backend().phc("alice"),
            old,
            "a wrong password changes nothing"
        );
        let right = Credentials::new("alice", "pw");
        assert_eq!(
            store.authenticate(&right).await.unwrap().as_deref(),
            Some("alice")
        );
        let new = store.backend().phc("alice");
        assert_ne!(new, old);
        assert_eq!(HashParams::of_phc(&new).unwrap(), HashParams::default());
        assert!(verify_password("pw", &new));
        // Up to date now: the next login writes nothing.
        assert!(store.authenticate(&right).await.unwrap().is_some());
        assert_eq!(store.backend().updates.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_disabled_user_is_refused_and_not_rehashed() {
        let old = cheap().hash("pw").unwrap();
        let users = Users::default().with("alice", &old);
        users
            .users
            .lock()
            .unwrap()
            .get_mut("alice")
            .unwrap()
            .disabled = true;
        let store = PasswordStore::new(users);
        let right = Credentials::new("alice", "pw");
        assert_eq!(store.authenticate(&right).await.unwrap(), None);
        assert_eq!(store.principal("alice").await.unwrap(), Lookup::Refused);
        assert_eq!(store.backend().updates.load(Ordering::Relaxed), 0);
        assert_eq!(store.backend().phc("alice"), old);
    }

    #[tokio::test]
    async fn a_stronger_or_equal_hash_is_left_alone() {
        let strong = HashParams::new(32 * 1024, 2, 1)
            .unwrap()
            .hash("pw")
            .unwrap();
        let store = PasswordStore::new(Users::default().with("alice", &strong));
        assert!(
            store
                .authenticate(&Credentials::new("alice", "pw"))
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(store.backend().updates.load(Ordering::Relaxed), 0);
        // Less memory but more passes is still weaker in memory: upgraded.
        let params = HashParams::default();
        let less_memory = HashParams::new(8192, 5, 1).unwrap().hash("x").unwrap();
        assert!(params.stronger_than(&PasswordHash::new(&less_memory).unwrap()));
        let more_memory = HashParams::new(65536, 1, 1).unwrap().hash("x").unwrap();
        assert!(!params.stronger_than(&PasswordHash::new(&more_memory).unwrap()));
    }

    /// A costlier hash met at a login raises the dummy at once, before the backend is asked
    /// again; the periodic refresh then follows the backend's answer (lower, too).
    #[tokio::test]
    async fn the_dummy_is_raised_by_a_costlier_user_and_follows_the_backend() {
        let costly = HashParams::new(32 * 1024, 2, 1)
            .unwrap()
            .hash("pw")
            .unwrap();
        let store = PasswordStore::new(Users::default().with("alice", &costly))
            .dummy_refresh(Duration::from_secs(3600));
        let dummy = store.current_dummy().await.unwrap();
        // The backend does not say (default `costliest_hash`): the configured parameters.
        assert_eq!(HashParams::of_phc(&dummy).unwrap(), HashParams::default());
        let _ = store
            .authenticate(&Credentials::new("alice", "wrong"))
            .await
            .unwrap();
        let dummy = store.current_dummy().await.unwrap();
        assert_eq!(
            HashParams::of_phc(&dummy).unwrap(),
            HashParams::of_phc(&costly).unwrap()
        );
        assert!(!verify_password("pw", &dummy));
    }
}
