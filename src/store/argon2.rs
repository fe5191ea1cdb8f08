//! Many users with Argon2id password hashes (PHC strings).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use argon2::password_hash::{Output, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use super::{CredentialStore, Credentials};
use crate::token::fill_random;

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
    let mut salt = [0u8; 16];
    fill_random(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|_| Argon2Error::Hashing)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| Argon2Error::Hashing)
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
/// in. So an unknown name is never faster than any real user: timing can at most tell apart the
/// users on costlier parameters from the rest, never whether a name exists. (Mixed parameters are
/// accepted, not refused; to get rid of old ones, re-hash a user's password with
/// [`hash_password`] when it next logs in successfully.)
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
pub struct Argon2Store {
    users: HashMap<String, String>,
    /// A PHC string with the parameters of the costliest user and a random salt and output:
    /// checking any password against it fails, after the same work as that user's check.
    dummy: String,
    /// The cost of `dummy`'s parameters; `None` while no user is stored (then it has the
    /// crate's default parameters).
    dummy_cost: Option<Cost>,
    permits: Arc<Semaphore>,
}

/// How much work verifying against a hash takes, ordered: Argon2 fills `m` KiB blocks `t` times
/// (the lanes `p` share the `m` blocks), so `m × t` first; ties by memory, lanes, output length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Cost {
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

impl Default for Argon2Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Argon2Store {
    /// No users yet.
    pub fn new() -> Self {
        let workers = std::thread::available_parallelism().map_or(1, usize::from);
        let dummy = dummy_like(None).unwrap_or_default();
        Argon2Store {
            users: HashMap::new(),
            dummy,
            dummy_cost: None,
            permits: Arc::new(Semaphore::new(workers)),
        }
    }

    /// Adds a user with an Argon2id PHC string (as made by [`hash_password`] or any Argon2
    /// implementation), or replaces its hash. Parameters Argon2 would refuse are refused here.
    pub fn with_hash(
        mut self,
        username: impl Into<String>,
        phc: &str,
    ) -> Result<Self, Argon2Error> {
        let hash = PasswordHash::new(phc).map_err(|_| Argon2Error::InvalidHash)?;
        if hash.algorithm != Algorithm::Argon2id.ident() {
            return Err(Argon2Error::NotArgon2id);
        }
        let cost = Cost::of(&hash)?;
        let replaced = self.users.insert(username.into(), phc.to_owned());
        if replaced.is_some() {
            // The costliest hash may be the one just replaced: look at them all again.
            self.dummy_cost = None;
            let users: Vec<&String> = self.users.values().collect();
            let mut costliest: Option<(Cost, PasswordHash<'_>)> = None;
            for phc in users {
                let hash = PasswordHash::new(phc).map_err(|_| Argon2Error::InvalidHash)?;
                let cost = Cost::of(&hash)?;
                if costliest.as_ref().is_none_or(|(c, _)| cost > *c) {
                    costliest = Some((cost, hash));
                }
            }
            if let Some((cost, hash)) = costliest {
                let dummy = dummy_like(Some(&hash))?;
                self.dummy = dummy;
                self.dummy_cost = Some(cost);
            }
        } else if self.dummy_cost.is_none_or(|c| cost > c) {
            self.dummy = dummy_like(Some(&hash))?;
            self.dummy_cost = Some(cost);
        }
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
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.permits = Arc::new(Semaphore::new(n.max(1)));
        self
    }

    /// How many users are stored.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether no user is stored.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// A PHC string with `like`'s algorithm, version, parameters and output length (default Argon2id
/// parameters without one) and random salt and output.
fn dummy_like(like: Option<&PasswordHash<'_>>) -> Result<String, Argon2Error> {
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
            let params = argon2::Params::default();
            PasswordHash {
                algorithm: Algorithm::Argon2id.ident(),
                version: Some(argon2::Version::V0x13.into()),
                params: (&params).try_into().map_err(|_| Argon2Error::Hashing)?,
                salt: Some(salt.as_salt()),
                hash: Some(output),
            }
        }
    };
    Ok(hash.to_string())
}

impl fmt::Debug for Argon2Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Argon2Store")
            .field("users", &self.users.len())
            .field("available_permits", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

impl CredentialStore for Argon2Store {
    type Error = Argon2Error;

    async fn authenticate(&self, credentials: &Credentials) -> Result<Option<String>, Argon2Error> {
        let (known, phc) = match self.users.get(credentials.username()) {
            Some(phc) => (true, phc.clone()),
            None => (false, self.dummy.clone()),
        };
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| Argon2Error::TaskFailed)?;
        let password = Zeroizing::new(credentials.password().to_owned());
        let ok = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            verify_password(&password, &phc)
        })
        .await
        .map_err(|_| Argon2Error::TaskFailed)?;
        Ok((known && ok).then(|| credentials.username().to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dummy an unknown user is checked against costs what a real check costs: same
    /// algorithm, version and parameters as the stored hashes, but a salt and output of its own.
    #[test]
    fn dummy_hash_matches_the_users_cost() {
        let cheap = "$argon2id$v=19$m=8192,t=3,p=2$c2FsdHNhbHRzYWx0$\
                     AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let store = Argon2Store::new().with_hash("alice", cheap).unwrap();
        let dummy = PasswordHash::new(&store.dummy).unwrap();
        let user = PasswordHash::new(cheap).unwrap();
        assert_eq!(dummy.algorithm, user.algorithm);
        assert_eq!(dummy.version, user.version);
        assert_eq!(dummy.params, user.params);
        assert_ne!(dummy.salt, user.salt);
        assert_ne!(dummy.hash, user.hash);

        // Without users: Argon2id with the crate's default parameters.
        let empty = Argon2Store::new();
        let dummy = PasswordHash::new(&empty.dummy).unwrap();
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
            let dummy = PasswordHash::new(&store.dummy).unwrap();
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
        let dummy = PasswordHash::new(&store.dummy).unwrap();
        assert_eq!(dummy.params, PasswordHash::new(&costly).unwrap().params);
        assert_eq!(dummy.hash.unwrap().len(), 32);
        // alice re-hashed with cheap parameters: bob's are now the costliest.
        let store = store.with_hash("alice", &cheap).unwrap();
        let dummy = PasswordHash::new(&store.dummy).unwrap();
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

    #[tokio::test]
    async fn unknown_user_is_refused() {
        let store = Argon2Store::new().with_password("alice", "pw").unwrap();
        let unknown = Credentials::new("bob", "pw");
        assert_eq!(store.authenticate(&unknown).await.unwrap(), None);
    }
}
