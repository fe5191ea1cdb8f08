//! Where enrolments live: the [`SecondFactorStore`] trait and [`MemoryFactorStore`].

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// A failure of the second-factor store itself.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FactorStoreError {
    /// The store cannot be reached in time: the login answers `503` with `Retry-After`.
    Unavailable(String),
    /// The store answered with an error (a bug, a misconfiguration): answered as a `500`.
    Store(String),
}

impl fmt::Display for FactorStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FactorStoreError::Unavailable(why) => {
                write!(f, "second-factor store unavailable: {why}")
            }
            FactorStoreError::Store(why) => write!(f, "second-factor store error: {why}"),
        }
    }
}

impl std::error::Error for FactorStoreError {}

/// What the store holds about one user. Secrets are sealed (see
/// [`FactorKey`](super::FactorKey)): the store never sees one in clear.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct FactorRecord {
    /// The confirmed secret, sealed: the user has the second factor on.
    pub secret: Option<Vec<u8>>,
    /// A secret from `setup` awaiting confirmation, sealed, with the Unix time it lapses at.
    pub pending: Option<(Vec<u8>, u64)>,
    /// How many unused recovery codes are left.
    pub recovery_codes_left: usize,
}

impl fmt::Debug for FactorRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FactorRecord")
            .field("enabled", &self.secret.is_some())
            .field("pending_until", &self.pending.as_ref().map(|p| p.1))
            .field("recovery_codes_left", &self.recovery_codes_left)
            .finish()
    }
}

/// Where second-factor enrolments live: sealed secrets, recovery-code hashes, the last used
/// time step and remembered-device hashes, per user (the subject of the tokens). Native
/// `async fn` in traits, like [`CredentialStore`](crate::store::CredentialStore).
///
/// The crate brings [`MemoryFactorStore`] (one instance) and, with the `redis` feature,
/// `RedisFactorStore` (a fleet sharing one Redis). Every method is one atomic step: two
/// instances claiming the same step, or using the same recovery code, at the same moment get
/// one `true` between them.
///
/// ```
/// use tower_jwt_login::factor::{MemoryFactorStore, SecondFactorStore};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryFactorStore::new();
/// store.begin_setup("alice", b"sealed", u64::MAX).await.unwrap();
/// assert!(store.activate("alice", b"sealed", &["h1".into(), "h2".into()]).await.unwrap());
/// let record = store.load("alice").await.unwrap();
/// assert!(record.secret.is_some());
/// assert_eq!(record.recovery_codes_left, 2);
/// // Each step, and each recovery code, once.
/// assert!(store.claim_step("alice", 57_000_000).await.unwrap());
/// assert!(!store.claim_step("alice", 57_000_000).await.unwrap());
/// assert!(!store.claim_step("alice", 56_999_999).await.unwrap());
/// assert!(store.use_recovery("alice", "h1").await.unwrap());
/// assert!(!store.use_recovery("alice", "h1").await.unwrap());
/// # });
/// ```
pub trait SecondFactorStore: Send + Sync + 'static {
    /// The user's record (an empty one for a user the store does not know).
    fn load(
        &self,
        subject: &str,
    ) -> impl Future<Output = Result<FactorRecord, FactorStoreError>> + Send;

    /// Keeps `sealed` as the user's pending secret until `expires_at` (Unix seconds), replacing
    /// any pending one. A user with no confirmed secret is forgotten at `expires_at`.
    fn begin_setup(
        &self,
        subject: &str,
        sealed: &[u8],
        expires_at: u64,
    ) -> impl Future<Output = Result<(), FactorStoreError>> + Send;

    /// When the pending secret is still `sealed`: makes it the confirmed secret and replaces
    /// the recovery codes with `recovery_hashes`; `false` (and nothing changed) otherwise.
    fn activate(
        &self,
        subject: &str,
        sealed: &[u8],
        recovery_hashes: &[String],
    ) -> impl Future<Output = Result<bool, FactorStoreError>> + Send;

    /// Replaces the recovery codes of a user with a confirmed secret; `false` for any other.
    fn replace_recovery(
        &self,
        subject: &str,
        recovery_hashes: &[String],
    ) -> impl Future<Output = Result<bool, FactorStoreError>> + Send;

    /// Spends the recovery code with this hash: `true` once, `false` after (or for a code the
    /// user never had).
    fn use_recovery(
        &self,
        subject: &str,
        hash: &str,
    ) -> impl Future<Output = Result<bool, FactorStoreError>> + Send;

    /// Records that the code of time step `step` was used: `true` when `step` is later than
    /// every step used before by this user, `false` otherwise (a replay, or an older code) and
    /// for a user the store does not know.
    fn claim_step(
        &self,
        subject: &str,
        step: u64,
    ) -> impl Future<Output = Result<bool, FactorStoreError>> + Send;

    /// Forgets everything about the user: secrets, recovery codes, remembered devices.
    fn remove(&self, subject: &str) -> impl Future<Output = Result<(), FactorStoreError>> + Send;

    /// Remembers a device by its token's hash until `expires_at`; `now` lets the store drop
    /// the user's lapsed devices meanwhile.
    fn trust_device(
        &self,
        subject: &str,
        device_hash: &str,
        expires_at: u64,
        now: u64,
    ) -> impl Future<Output = Result<(), FactorStoreError>> + Send;

    /// Whether the device with this hash is remembered for the user and `now` is before its
    /// expiry.
    fn is_trusted(
        &self,
        subject: &str,
        device_hash: &str,
        now: u64,
    ) -> impl Future<Output = Result<bool, FactorStoreError>> + Send;

    /// Forgets every remembered device of the user.
    fn forget_devices(
        &self,
        subject: &str,
    ) -> impl Future<Output = Result<(), FactorStoreError>> + Send;

    /// The store's key-check value: keeps `candidate` when the store has none yet, and answers
    /// the kept one either way. It tells at start-up whether the application key is the one the
    /// stored secrets were sealed with.
    fn key_check(
        &self,
        candidate: &[u8],
    ) -> impl Future<Output = Result<Vec<u8>, FactorStoreError>> + Send;
}

/// One instance's enrolments in memory (lost at a restart: users then log in with their
/// password alone until they enrol again). For a fleet, or to keep enrolments, use the Redis
/// store (feature `redis`) or your own [`SecondFactorStore`].
#[derive(Default)]
pub struct MemoryFactorStore {
    users: Mutex<HashMap<String, User>>,
    check: Mutex<Option<Vec<u8>>>,
    setups: std::sync::atomic::AtomicUsize,
}

#[derive(Default)]
struct User {
    secret: Option<Vec<u8>>,
    pending: Option<(Vec<u8>, u64)>,
    last_step: Option<u64>,
    recovery: HashSet<String>,
    devices: HashMap<String, u64>,
}

impl MemoryFactorStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn users(&self) -> MutexGuard<'_, HashMap<String, User>> {
        self.users.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for MemoryFactorStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryFactorStore")
            .field("users", &self.users().len())
            .finish()
    }
}

impl SecondFactorStore for MemoryFactorStore {
    async fn load(&self, subject: &str) -> Result<FactorRecord, FactorStoreError> {
        Ok(self
            .users()
            .get(subject)
            .map(|user| FactorRecord {
                secret: user.secret.clone(),
                pending: user.pending.clone(),
                recovery_codes_left: user.recovery.len(),
            })
            .unwrap_or_default())
    }

    async fn begin_setup(
        &self,
        subject: &str,
        sealed: &[u8],
        expires_at: u64,
    ) -> Result<(), FactorStoreError> {
        let mut users = self.users();
        // Setups nobody confirmed are dropped every so many setups (a pass over every user),
        // so abandoned ones cannot pile up.
        let setups = self
            .setups
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if setups % 256 == 255 {
            let now = crate::token::now_secs();
            users
                .retain(|_, u| u.secret.is_some() || u.pending.as_ref().is_some_and(|p| p.1 > now));
        }
        users.entry(subject.to_owned()).or_default().pending = Some((sealed.to_vec(), expires_at));
        Ok(())
    }

    async fn activate(
        &self,
        subject: &str,
        sealed: &[u8],
        recovery_hashes: &[String],
    ) -> Result<bool, FactorStoreError> {
        let mut users = self.users();
        let Some(user) = users.get_mut(subject) else {
            return Ok(false);
        };
        if user.pending.as_ref().is_none_or(|p| p.0 != sealed) {
            return Ok(false);
        }
        user.pending = None;
        user.secret = Some(sealed.to_vec());
        user.recovery = recovery_hashes.iter().cloned().collect();
        Ok(true)
    }

    async fn replace_recovery(
        &self,
        subject: &str,
        recovery_hashes: &[String],
    ) -> Result<bool, FactorStoreError> {
        let mut users = self.users();
        match users.get_mut(subject) {
            Some(user) if user.secret.is_some() => {
                user.recovery = recovery_hashes.iter().cloned().collect();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn use_recovery(&self, subject: &str, hash: &str) -> Result<bool, FactorStoreError> {
        Ok(self
            .users()
            .get_mut(subject)
            .is_some_and(|user| user.recovery.remove(hash)))
    }

    async fn claim_step(&self, subject: &str, step: u64) -> Result<bool, FactorStoreError> {
        let mut users = self.users();
        let Some(user) = users.get_mut(subject) else {
            return Ok(false);
        };
        if user.last_step.is_some_and(|last| step <= last) {
            return Ok(false);
        }
        user.last_step = Some(step);
        Ok(true)
    }

    async fn remove(&self, subject: &str) -> Result<(), FactorStoreError> {
        self.users().remove(subject);
        Ok(())
    }

    async fn trust_device(
        &self,
        subject: &str,
        device_hash: &str,
        expires_at: u64,
        now: u64,
    ) -> Result<(), FactorStoreError> {
        let mut users = self.users();
        let Some(user) = users.get_mut(subject) else {
            return Ok(());
        };
        user.devices.retain(|_, until| *until > now);
        user.devices.insert(device_hash.to_owned(), expires_at);
        Ok(())
    }

    async fn is_trusted(
        &self,
        subject: &str,
        device_hash: &str,
        now: u64,
    ) -> Result<bool, FactorStoreError> {
        Ok(self
            .users()
            .get(subject)
            .and_then(|user| user.devices.get(device_hash))
            .is_some_and(|until| now < *until))
    }

    async fn forget_devices(&self, subject: &str) -> Result<(), FactorStoreError> {
        if let Some(user) = self.users().get_mut(subject) {
            user.devices.clear();
        }
        Ok(())
    }

    async fn key_check(&self, candidate: &[u8]) -> Result<Vec<u8>, FactorStoreError> {
        let mut check = self.check.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(check.get_or_insert_with(|| candidate.to_vec()).clone())
    }
}

/// A shared store is a store: several [`SecondFactor`](super::SecondFactor) handles (or an
/// admin tool next to the services) can use one `Arc`.
impl<S: SecondFactorStore> SecondFactorStore for std::sync::Arc<S> {
    fn load(
        &self,
        subject: &str,
    ) -> impl Future<Output = Result<FactorRecord, FactorStoreError>> + Send {
        (**self).load(subject)
    }
    fn begin_setup(
        &self,
        subject: &str,
        sealed: &[u8],
        expires_at: u64,
    ) -> impl Future<Output = Result<(), FactorStoreError>> + Send {
        (**self).begin_setup(subject, sealed, expires_at)
    }
    fn activate(
        &self,
        subject: &str,
        sealed: &[u8],
        recovery_hashes: &[String],
    ) -> impl Future<Output = Result<bool, FactorStoreError>> + Send {
        (**self).activate(subject, sealed, recovery_hashes)
    }
    fn replace_recovery(
        &self,
        subject: &str,
        recovery_hashes: &[String],
    ) -> impl Future<Output = Result<bool, FactorStoreError>> + Send {
        (**self).replace_recovery(subject, recovery_hashes)
    }
    fn use_recovery(
        &self,
        subject: &str,
        hash: &str,
    ) -> impl Future<Output = Result<bool, FactorStoreError>> + Send {
        (**self).use_recovery(subject, hash)
    }
    fn claim_step(
        &self,
        subject: &str,
        step: u64,
    ) -> impl Future<Output = Result<bool, FactorStoreError>> + Send {
        (**self).claim_step(subject, step)
    }
    fn remove(&self, subject: &str) -> impl Future<Output = Result<(), FactorStoreError>> + Send {
        (**self).remove(subject)
    }
    fn trust_device(
        &self,
        subject: &str,
        device_hash: &str,
        expires_at: u64,
        now: u64,
    ) -> impl Future<Output = Result<(), FactorStoreError>> + Send {
        (**self).trust_device(subject, device_hash, expires_at, now)
    }
    fn is_trusted(
        &self,
        subject: &str,
        device_hash: &str,
        now: u64,
    ) -> impl Future<Output = Result<bool, FactorStoreError>> + Send {
        (**self).is_trusted(subject, device_hash, now)
    }
    fn forget_devices(
        &self,
        subject: &str,
    ) -> impl Future<Output = Result<(), FactorStoreError>> + Send {
        (**self).forget_devices(subject)
    }
    fn key_check(
        &self,
        candidate: &[u8],
    ) -> impl Future<Output = Result<Vec<u8>, FactorStoreError>> + Send {
        (**self).key_check(candidate)
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
type Outcome<'a, T> = BoxFuture<'a, Result<T, FactorStoreError>>;

/// [`SecondFactorStore`] made object-safe, so the handle holds any store without a type
/// parameter.
pub(crate) trait ErasedFactorStore: Send + Sync + 'static {
    fn load<'a>(&'a self, subject: &'a str) -> Outcome<'a, FactorRecord>;
    fn begin_setup<'a>(&'a self, subject: &'a str, sealed: &'a [u8], at: u64) -> Outcome<'a, ()>;
    fn activate<'a>(
        &'a self,
        subject: &'a str,
        sealed: &'a [u8],
        hashes: &'a [String],
    ) -> Outcome<'a, bool>;
    fn replace_recovery<'a>(&'a self, subject: &'a str, hashes: &'a [String]) -> Outcome<'a, bool>;
    fn use_recovery<'a>(&'a self, subject: &'a str, hash: &'a str) -> Outcome<'a, bool>;
    fn claim_step<'a>(&'a self, subject: &'a str, step: u64) -> Outcome<'a, bool>;
    fn remove<'a>(&'a self, subject: &'a str) -> Outcome<'a, ()>;
    fn trust_device<'a>(
        &'a self,
        subject: &'a str,
        hash: &'a str,
        expires_at: u64,
        now: u64,
    ) -> Outcome<'a, ()>;
    fn is_trusted<'a>(&'a self, subject: &'a str, hash: &'a str, now: u64) -> Outcome<'a, bool>;
    fn forget_devices<'a>(&'a self, subject: &'a str) -> Outcome<'a, ()>;
    fn key_check<'a>(&'a self, candidate: &'a [u8]) -> Outcome<'a, Vec<u8>>;
}

impl<S: SecondFactorStore> ErasedFactorStore for S {
    fn load<'a>(&'a self, subject: &'a str) -> Outcome<'a, FactorRecord> {
        Box::pin(SecondFactorStore::load(self, subject))
    }
    fn begin_setup<'a>(&'a self, subject: &'a str, sealed: &'a [u8], at: u64) -> Outcome<'a, ()> {
        Box::pin(SecondFactorStore::begin_setup(self, subject, sealed, at))
    }
    fn activate<'a>(
        &'a self,
        subject: &'a str,
        sealed: &'a [u8],
        hashes: &'a [String],
    ) -> Outcome<'a, bool> {
        Box::pin(SecondFactorStore::activate(self, subject, sealed, hashes))
    }
    fn replace_recovery<'a>(&'a self, subject: &'a str, hashes: &'a [String]) -> Outcome<'a, bool> {
        Box::pin(SecondFactorStore::replace_recovery(self, subject, hashes))
    }
    fn use_recovery<'a>(&'a self, subject: &'a str, hash: &'a str) -> Outcome<'a, bool> {
        Box::pin(SecondFactorStore::use_recovery(self, subject, hash))
    }
    fn claim_step<'a>(&'a self, subject: &'a str, step: u64) -> Outcome<'a, bool> {
        Box::pin(SecondFactorStore::claim_step(self, subject, step))
    }
    fn remove<'a>(&'a self, subject: &'a str) -> Outcome<'a, ()> {
        Box::pin(SecondFactorStore::remove(self, subject))
    }
    fn trust_device<'a>(
        &'a self,
        subject: &'a str,
        hash: &'a str,
        expires_at: u64,
        now: u64,
    ) -> Outcome<'a, ()> {
        Box::pin(SecondFactorStore::trust_device(
            self, subject, hash, expires_at, now,
        ))
    }
    fn is_trusted<'a>(&'a self, subject: &'a str, hash: &'a str, now: u64) -> Outcome<'a, bool> {
        Box::pin(SecondFactorStore::is_trusted(self, subject, hash, now))
    }
    fn forget_devices<'a>(&'a self, subject: &'a str) -> Outcome<'a, ()> {
        Box::pin(SecondFactorStore::forget_devices(self, subject))
    }
    fn key_check<'a>(&'a self, candidate: &'a [u8]) -> Outcome<'a, Vec<u8>> {
        Box::pin(SecondFactorStore::key_check(self, candidate))
    }
}
