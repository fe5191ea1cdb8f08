//! Many users with Argon2id password hashes (PHC strings).

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordVerifier};

use super::password::{Cost, HashParams, PasswordBackend, PasswordStore, PasswordStoreError};
use super::password::{StoredUser, checked_cost};
use super::{CredentialStore, Credentials, Lookup, SetPassword};
use crate::token::{Principal, PrincipalBuilder, PrincipalError};

/// Why a hash was refused or could not be checked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Argon2Error {
    /// Not a valid PHC string.
    InvalidHash,
    /// A valid PHC string of another algorithm than Argon2id.
    NotArgon2id,
    /// Hashing failed (invalid parameters).
    Hashing,
    /// The blocking verification task did not finish (runtime shutting down).
    TaskFailed,
}

impl fmt::Display for Argon2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Argon2Error::InvalidHash => "not a valid PHC password hash",
            Argon2Error::NotArgon2id => "password hash is not Argon2id",
            Argon2Error::Hashing => "password hashing failed",
            Argon2Error::TaskFailed => "password verification task failed",
        })
    }
}

impl std::error::Error for Argon2Error {}

/// Hashes `password` with Argon2id (the crate's default parameters, OWASP's minimum: m=19 MiB,
/// t=2, p=1) and a random salt; returns the PHC string.
pub fn hash_password(password: &str) -> Result<String, Argon2Error> {
    HashParams::default().hash(password)
}

/// Checks `password` against a PHC string (blocking; compare in constant time). `false` for a
/// wrong password and for a malformed hash.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .and_then(|hash| Argon2::default().verify_password(password.as_bytes(), &hash))
        .is_ok()
}

/// Users with Argon2id PHC hashes. The subject is the username.
///
/// Verification runs on tokio's blocking pool, at most `max_concurrency` at a time (default: the
/// number of CPUs), so a burst of logins neither stalls the async executor nor exhausts memory
/// (each Argon2 run allocates its `m` KiB).
///
/// An unknown user is checked against a dummy hash, so that it costs a full verification like a
/// wrong password. Stored hashes may differ in cost (parameters raised over the years, hashes
/// imported from elsewhere); the dummy takes the parameters of the **costliest** stored hash
/// (largest `m × t`, then `m`, `p` and output length), whatever the order the users were added
/// in, and is recomputed whenever users change at runtime. So an unknown name is never faster
/// than any real user: timing can at most tell apart the users on costlier parameters from the
/// rest, never whether a name exists. Mixed parameters are accepted, not refused: a hash weaker
/// than the configured [`hash_params`](Self::hash_params) (default those of [`hash_password`])
/// is replaced with a fresh one of them after the user's next successful login.
///
/// The users can change while the server runs: [`Argon2Store::users`] gives an [`Argon2Users`]
/// handle (cheap to clone, shared with the store) that adds, removes, re-hashes, disables and
/// enables users and sets their extra claims (roles, …). Every login reads the current table
/// (a short read lock; logins are not the hot path). A disabled user's login is refused exactly
/// like a wrong password (after the same verification work), and its refresh is refused.
///
/// ```
/// use tower_jwt_login::store::{Argon2Store, CredentialStore, Credentials, hash_password};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = Argon2Store::new().with_hash("alice", &hash_password("wonderland").unwrap()).unwrap();
/// let ok = store.authenticate(&Credentials::new("alice", "wonderland")).await.unwrap();
/// assert_eq!(ok.as_deref(), Some("alice"));
/// let unknown = store.authenticate(&Credentials::new("bob", "wonderland")).await.unwrap();
/// assert_eq!(unknown, None);
/// # });
/// ```
///
/// It is a [`PasswordStore`] over its users (the [`Argon2Users`] handle is the
/// [`PasswordBackend`]): the verification, the dummy hash and the re-hashing of weaker hashes
/// after a successful login are the adapter's.
pub struct Argon2Store {
    inner: PasswordStore<Argon2Users>,
}

/// The users, and the costliest stored hash (what the dummy an unknown user is checked
/// against imitates).
struct Table {
    users: HashMap<String, User>,
    /// The PHC string of the costliest user and its cost; `None` while no user is stored (then
    /// the dummy has the crate's default parameters).
    costliest: Option<(Cost, String)>,
}

struct User {
    phc: String,
    cost: Cost,
    disabled: bool,
    /// The extra claims of the user's tokens.
    extra: Option<Principal>,
}

impl Table {
    fn new() -> Self {
        Table {
            users: HashMap::new(),
            costliest: None,
        }
    }

    /// Sets `username`'s hash (adding the user, enabled and without claims, if new).
    fn set_hash(&mut self, username: String, phc: &str, cost: Cost) {
        let replaced = match self.users.get_mut(&username) {
            Some(user) => {
                user.phc = phc.to_owned();
                user.cost = cost;
                true
            }
            None => {
                self.users.insert(
                    username,
                    User {
                        phc: phc.to_owned(),
                        cost,
                        disabled: false,
                        extra: None,
                    },
                );
                false
            }
        };
        if replaced {
            // The costliest hash may be the one just replaced: look at them all again.
            self.recompute_costliest();
        } else if self.costliest.as_ref().is_none_or(|(c, _)| cost > *c) {
            self.costliest = Some((cost, phc.to_owned()));
        }
    }

    /// The costliest stored hash (none without users).
    fn recompute_costliest(&mut self) {
        self.costliest = self
            .users
            .values()
            .max_by_key(|u| u.cost)
            .map(|user| (user.cost, user.phc.clone()));
    }
}

impl Default for Argon2Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Argon2Store {
    /// No users yet.
    pub fn new() -> Self {
        let users = Argon2Users {
            table: Arc::new(RwLock::new(Table::new())),
        };
        Argon2Store {
            // The costliest hash is read from memory at every login: the dummy follows every
            // change at once.
            inner: PasswordStore::new(users).dummy_refresh(Duration::ZERO),
        }
    }

    /// Adds a user with an Argon2id PHC string (as made by [`hash_password`] or any Argon2
    /// implementation), or replaces its hash. Parameters Argon2 would refuse are refused here.
    pub fn with_hash(self, username: impl Into<String>, phc: &str) -> Result<Self, Argon2Error> {
        self.users().set_hash(username, phc)?;
        Ok(self)
    }

    /// Adds a user, hashing `password` now with [`hash_password`].
    pub fn with_password(
        self,
        username: impl Into<String>,
        password: &str,
    ) -> Result<Self, Argon2Error> {
        let phc = hash_password(password)?;
        self.with_hash(username, &phc)
    }

    /// At most `n` verifications at once (at least 1).
    #[must_use]
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.inner = self.inner.max_concurrency(n);
        self
    }

    /// The parameters a successful login re-hashes a weaker stored hash to (default
    /// [`HashParams::default`], the parameters of [`hash_password`]).
    #[must_use]
    pub fn hash_params(mut self, params: HashParams) -> Self {
        self.inner = self.inner.hash_params(params);
        self
    }

    /// The handle that changes this store's users while it serves logins. See [`Argon2Users`].
    pub fn users(&self) -> Argon2Users {
        self.inner.backend().clone()
    }

    /// How many users are stored.
    pub fn len(&self) -> usize {
        self.users().len()
    }

    /// Whether no user is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// A panic while holding the lock cannot leave the table half-changed (every change is a single
// insertion, removal or field assignment), so a poisoned lock is used as it is.
fn read(table: &RwLock<Table>) -> RwLockReadGuard<'_, Table> {
    table.read().unwrap_or_else(PoisonError::into_inner)
}

fn write(table: &RwLock<Table>) -> RwLockWriteGuard<'_, Table> {
    table.write().unwrap_or_else(PoisonError::into_inner)
}

/// A shared handle to an [`Argon2Store`]'s users: changes apply to the next login and refresh.
/// Cheap to clone; hand it to your admin API.
///
/// Hashing a new password ([`add_user`](Self::add_user), [`set_password`](Self::set_password))
/// takes Argon2's full cost (tens of milliseconds) on the calling thread: call them from
/// `tokio::task::spawn_blocking` in async code, or hash with [`hash_password`] there and use the
/// `_hash` variants.
///
/// ```
/// use tower_jwt_login::store::{Argon2Store, CredentialStore, Credentials, Lookup};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = Argon2Store::new();
/// let users = store.users();
/// users.add_user("alice", "wonderland").unwrap();
/// users.set_roles("alice", ["admin"]).unwrap();
/// let alice = Credentials::new("alice", "wonderland");
/// assert_eq!(store.authenticate(&alice).await.unwrap().as_deref(), Some("alice"));
/// let Lookup::Found(principal) = store.principal("alice").await.unwrap() else { panic!() };
/// assert_eq!(principal.extra_json(), Some(r#"{"roles":["admin"]}"#));
///
/// users.disable("alice");
/// assert_eq!(store.authenticate(&alice).await.unwrap(), None); // like a wrong password
/// assert_eq!(store.principal("alice").await.unwrap(), Lookup::Refused);
/// users.enable("alice");
/// users.set_password("alice", "looking-glass").unwrap();
/// assert_eq!(store.authenticate(&alice).await.unwrap(), None);
/// assert!(users.remove("alice"));
/// assert!(users.is_empty());
/// # });
/// ```
#[derive(Clone)]
pub struct Argon2Users {
    table: Arc<RwLock<Table>>,
}

impl Argon2Users {
    /// Adds a user (or replaces its password), hashing `password` now with [`hash_password`].
    /// A new user is enabled and has no extra claims; an existing one keeps them.
    pub fn add_user(&self, username: impl Into<String>, password: &str) -> Result<(), Argon2Error> {
        let phc = hash_password(password)?;
        self.set_hash(username, &phc)
    }

    /// Adds a user with an Argon2id PHC string, or replaces its hash (refused like
    /// [`Argon2Store::with_hash`]).
    pub fn set_hash(&self, username: impl Into<String>, phc: &str) -> Result<(), Argon2Error> {
        let cost = checked_cost(phc)?;
        write(&self.table).set_hash(username.into(), phc, cost);
        Ok(())
    }

    /// Re-hashes an existing user's password. `Ok(false)` when there is no such user (nothing
    /// is added).
    pub fn set_password(&self, username: &str, password: &str) -> Result<bool, Argon2Error> {
        if !self.contains(username) {
            return Ok(false);
        }
        let phc = hash_password(password)?;
        let cost = checked_cost(&phc)?;
        let mut table = write(&self.table);
        if !table.users.contains_key(username) {
            return Ok(false); // removed meanwhile
        }
        table.set_hash(username.to_owned(), &phc, cost);
        Ok(true)
    }

    /// Removes a user: its logins and refreshes are refused from now on. Whether it existed.
    pub fn remove(&self, username: &str) -> bool {
        let mut table = write(&self.table);
        let removed = table.users.remove(username).is_some();
        if removed {
            table.recompute_costliest();
        }
        removed
    }

    /// Disables a user: its logins are refused like a wrong password, its refreshes refused.
    /// Whether the user exists.
    pub fn disable(&self, username: &str) -> bool {
        self.set_disabled(username, true)
    }

    /// Enables a disabled user again. Whether the user exists.
    pub fn enable(&self, username: &str) -> bool {
        self.set_disabled(username, false)
    }

    fn set_disabled(&self, username: &str, disabled: bool) -> bool {
        let mut table = write(&self.table);
        match table.users.get_mut(username) {
            Some(user) => {
                user.disabled = disabled;
                true
            }
            None => false,
        }
    }

    /// Whether the user exists and is disabled.
    pub fn is_disabled(&self, username: &str) -> bool {
        read(&self.table)
            .users
            .get(username)
            .is_some_and(|u| u.disabled)
    }

    /// Sets the user's extra claims, built from scratch by `build` (see
    /// [`PrincipalBuilder`]); they replace the previous ones in the next tokens (at login, and at
    /// refresh). `Ok(false)` when there is no such user.
    ///
    /// ```
    /// # use tower_jwt_login::store::Argon2Store;
    /// let store = Argon2Store::new().with_password("bob", "pw").unwrap();
    /// let ok = store.users().set_claims("bob", |p| p.claim("roles", ["reader"]).claim("tenant", "acme"));
    /// assert_eq!(ok, Ok(true));
    /// ```
    pub fn set_claims(
        &self,
        username: &str,
        build: impl FnOnce(PrincipalBuilder) -> PrincipalBuilder,
    ) -> Result<bool, PrincipalError> {
        let principal = build(Principal::builder(username)).build()?;
        let mut table = write(&self.table);
        match table.users.get_mut(username) {
            Some(user) => {
                user.extra = principal.extra_json().is_some().then_some(principal);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Sets the user's extra claims to `{"roles":[…]}` (what
    /// [`Requirement::role`](crate::auth::Requirement::role) checks); an empty list removes them.
    pub fn set_roles<I, R>(&self, username: &str, roles: I) -> Result<bool, PrincipalError>
    where
        I: IntoIterator<Item = R>,
        R: Into<String>,
    {
        let roles: Vec<String> = roles.into_iter().map(Into::into).collect();
        self.set_claims(username, |p| {
            if roles.is_empty() {
                p
            } else {
                p.claim("roles", &roles)
            }
        })
    }

    /// Whether the user exists.
    pub fn contains(&self, username: &str) -> bool {
        read(&self.table).users.contains_key(username)
    }

    /// How many users are stored.
    pub fn len(&self) -> usize {
        read(&self.table).users.len()
    }

    /// Whether no user is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Argon2Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Argon2Users")
            .field("users", &self.len())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Argon2Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Argon2Store")
            .field("users", &self.len())
            .field("store", &self.inner)
            .finish_non_exhaustive()
    }
}

impl PasswordBackend for Argon2Users {
    type Error = Infallible;

    async fn find(&self, name: &str) -> Result<Option<StoredUser>, Infallible> {
        let table = read(&self.table);
        Ok(table.users.get(name).map(|user| {
            let principal = user.extra.clone().unwrap_or_else(|| Principal::new(name));
            StoredUser::new(user.phc.clone(), principal).disabled(user.disabled)
        }))
    }

    async fn update_hash(&self, name: &str, old: &str, new: &str) -> Result<bool, Infallible> {
        let Ok(cost) = checked_cost(new) else {
            return Ok(false);
        };
        let mut table = write(&self.table);
        if table.users.get(name).is_none_or(|user| user.phc != old) {
            return Ok(false);
        }
        table.set_hash(name.to_owned(), new, cost);
        Ok(true)
    }

    async fn costliest_hash(&self) -> Result<Option<String>, Infallible> {
        Ok(read(&self.table)
            .costliest
            .as_ref()
            .map(|(_, phc)| phc.clone()))
    }
}

/// The store's only failures are Argon2's (the backend is memory).
fn argon2_error(error: PasswordStoreError<Infallible>) -> Argon2Error {
    match error {
        PasswordStoreError::Argon2(e) => e,
        PasswordStoreError::Backend(never) => match never {},
    }
}

/// Hashes on the blocking pool (see [`PasswordStore`]'s implementation).
impl SetPassword for Argon2Store {
    async fn set_password(&self, subject: &str, password: &str) -> Result<bool, Argon2Error> {
        self.inner
            .set_password(subject, password)
            .await
            .map_err(argon2_error)
    }
}

impl CredentialStore for Argon2Store {
    type Error = Argon2Error;

    async fn authenticate(&self, credentials: &Credentials) -> Result<Option<String>, Argon2Error> {
        self.inner
            .authenticate(credentials)
            .await
            .map_err(argon2_error)
    }

    /// The user's current extra claims; [`Lookup::Refused`] for a removed or disabled user.
    async fn principal(&self, subject: &str) -> Result<Lookup, Argon2Error> {
        self.inner.principal(subject).await.map_err(argon2_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Argon2Store {
        /// The dummy an unknown user is checked against now.
        fn dummy(&self) -> String {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            rt.block_on(self.inner.current_dummy()).unwrap().to_string()
        }
    }

    /// The dummy an unknown user is checked against costs what a real check costs: same
    /// algorithm, version and parameters as the stored hashes, but a salt and output of its own.
    #[test]
    fn dummy_hash_matches_the_users_cost() {
        let cheap = "$argon2id$v=19$m=8192,t=3,p=2$c2FsdHNhbHRzYWx0$\
                     AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let store = Argon2Store::new().with_hash("alice", cheap).unwrap();
        let dummy_phc = store.dummy();
        let dummy = PasswordHash::new(&dummy_phc).unwrap();
        let user = PasswordHash::new(cheap).unwrap();
        assert_eq!(dummy.algorithm, user.algorithm);
        assert_eq!(dummy.version, user.version);
        assert_eq!(dummy.params, user.params);
        assert_ne!(dummy.salt, user.salt);
        assert_ne!(dummy.hash, user.hash);

        // Without users: Argon2id with the crate's default parameters.
        let empty = Argon2Store::new();
        let dummy_phc = empty.dummy();
        let dummy = PasswordHash::new(&dummy_phc).unwrap();
        let reference = hash_password("x").unwrap();
        let default = PasswordHash::new(&reference).unwrap();
        assert_eq!(dummy.algorithm, default.algorithm);
        assert_eq!(dummy.params, default.params);
    }

    /// Unknown users cost what the costliest stored hash costs, whatever the order the users
    /// were added in (the first user used to set the dummy's parameters).
    #[test]
    fn dummy_hash_takes_the_costliest_parameters_in_any_order() {
        let phc = |params: &str| {
            format!(
                "$argon2id$v=19${params}$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
            )
        };
        let cheap = phc("m=8192,t=1,p=1");
        let middle = phc("m=19456,t=2,p=1");
        let costly = phc("m=65536,t=3,p=4");
        let orders = [
            [&cheap, &middle, &costly],
            [&cheap, &costly, &middle],
            [&middle, &cheap, &costly],
            [&middle, &costly, &cheap],
            [&costly, &cheap, &middle],
            [&costly, &middle, &cheap],
        ];
        let expected = PasswordHash::new(&costly).unwrap();
        let mut matching = 0;
        for order in orders {
            let mut store = Argon2Store::new();
            for (i, hash) in order.iter().enumerate() {
                store = store.with_hash(format!("user{i}"), hash).unwrap();
            }
            let dummy_phc = store.dummy();
            let dummy = PasswordHash::new(&dummy_phc).unwrap();
            assert_eq!(dummy.algorithm, expected.algorithm);
            assert_eq!(dummy.version, expected.version);
            if dummy.params == expected.params {
                matching += 1;
            }
        }
        assert_eq!(matching, orders.len());
    }

    #[test]
    fn replacing_the_costliest_hash_lowers_the_dummy_and_output_length_follows() {
        let phc = |params: &str, output: &str| {
            format!("$argon2id$v=19${params}$c2FsdHNhbHRzYWx0${output}")
        };
        let out32 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let out64 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let middle = phc("m=19456,t=2,p=1", out64);
        let costly = phc("m=65536,t=3,p=4", out32);
        let cheap = phc("m=8192,t=1,p=1", out32);
        let store = Argon2Store::new()
            .with_hash("bob", &middle)
            .unwrap()
            .with_hash("alice", &costly)
            .unwrap();
        let dummy_phc = store.dummy();
        let dummy = PasswordHash::new(&dummy_phc).unwrap();
        assert_eq!(dummy.params, PasswordHash::new(&costly).unwrap().params);
        assert_eq!(dummy.hash.unwrap().len(), 32);
        // alice re-hashed with cheap parameters: bob's are now the costliest.
        let store = store.with_hash("alice", &cheap).unwrap();
        let dummy_phc = store.dummy();
        let dummy = PasswordHash::new(&dummy_phc).unwrap();
        assert_eq!(dummy.params, PasswordHash::new(&middle).unwrap().params);
        assert_eq!(dummy.hash.unwrap().len(), 64);
        // Parameters Argon2 refuses are refused on insertion (m < 8 × p).
        assert_eq!(
            Argon2Store::new()
                .with_hash("x", &phc("m=8,t=1,p=2", out32))
                .unwrap_err(),
            Argon2Error::InvalidHash
        );
    }

    /// A user imported with a weaker hash gets one of the configured parameters at its next
    /// successful login; the dummy follows it.
    #[tokio::test]
    async fn a_weaker_imported_hash_is_upgraded_at_login() {
        let weak = HashParams::new(1024, 1, 1).unwrap().hash("pw").unwrap();
        let store = Argon2Store::new().with_hash("alice", &weak).unwrap();
        let ok = store
            .authenticate(&Credentials::new("alice", "pw"))
            .await
            .unwrap();
        assert_eq!(ok.as_deref(), Some("alice"));
        let stored = read(&store.users().table).users["alice"].phc.clone();
        assert_ne!(stored, weak);
        assert_eq!(HashParams::of_phc(&stored).unwrap(), HashParams::default());
        let dummy = store.inner.current_dummy().await.unwrap();
        assert_eq!(
            HashParams::of_phc(&dummy).unwrap(),
            HashParams::default(),
            "the dummy imitates the upgraded hash"
        );
    }

    #[tokio::test]
    async fn unknown_user_is_refused() {
        let store = Argon2Store::new().with_password("alice", "pw").unwrap();
        let unknown = Credentials::new("bob", "pw");
        assert_eq!(store.authenticate(&unknown).await.unwrap(), None);
    }

    /// Runtime changes move the dummy: adding a costlier user raises it, removing that user
    /// lowers it again, removing everyone returns to the default parameters.
    #[test]
    fn the_dummy_follows_runtime_changes() {
        let phc = |params: &str| {
            format!(
                "$argon2id$v=19${params}$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
            )
        };
        let cheap = phc("m=8192,t=1,p=1");
        let costly = phc("m=65536,t=3,p=4");
        let store = Argon2Store::new().with_hash("a", &cheap).unwrap();
        let users = store.users();
        let params = |store: &Argon2Store| {
            let dummy = store.dummy();
            PasswordHash::new(&dummy).unwrap().params.to_string()
        };
        let cheap_params = PasswordHash::new(&cheap).unwrap().params.to_string();
        let costly_params = PasswordHash::new(&costly).unwrap().params.to_string();
        assert_eq!(params(&store), cheap_params);
        users.set_hash("b", &costly).unwrap();
        assert_eq!(params(&store), costly_params);
        assert!(users.remove("b"));
        assert_eq!(params(&store), cheap_params);
        users.set_hash("a", &costly).unwrap();
        assert_eq!(params(&store), costly_params);
        assert!(users.remove("a"));
        let default = hash_password("x").unwrap();
        assert_eq!(
            params(&store),
            PasswordHash::new(&default).unwrap().params.to_string()
        );
        assert_eq!(users.set_hash("c", "nope"), Err(Argon2Error::InvalidHash));
        assert!(users.is_empty());
    }
}
