//! [`CoreUsers`]: where a configuration's users and API keys live.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use crate::apikey::{ApiKeyHash, ApiKeyInfo, ApiKeyStore, FoundApiKey, MemoryApiKeyStore};
use crate::store::{CredentialStore, Credentials, Lookup, PlaintextUser, SetPassword};

/// The users and API keys of a [`CoreAuthConfig`](super::CoreAuthConfig): one value that is
/// the credential store, the API-key store and the password-change store of its
/// [`login_kit`](super::CoreAuthConfig::login_kit). Cheap to clone (clones share everything).
///
/// - Without `CORE_API_AUTH_DATABASE`: Core's one configured user, compared as
///   [`PlaintextUser`] does, with API keys in memory. A password changed through the password
///   change lasts until the process ends; at the next start `CORE_API_AUTH_PASSWORD` applies
///   again, and the keys are gone. Both are this instance's only: a fleet of instances needs
///   the database.
/// - With it (feature `sql`): the `SqlStore` — users, roles, keys (and second factors) survive
///   a restart.
///
/// ```
/// use tower_jwt_login::config::CoreUsers;
/// use tower_jwt_login::store::{CredentialStore, Credentials, PlaintextUser, SetPassword};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let users = CoreUsers::configured(PlaintextUser::new("admin", "datarhei"));
/// assert!(users.set_password("admin", "a new password").await.unwrap());
/// let ok = users.authenticate(&Credentials::new("admin", "a new password")).await.unwrap();
/// assert_eq!(ok.as_deref(), Some("admin"));
/// assert!(!users.set_password("bob", "whatever1").await.unwrap()); // no such user
/// # });
/// ```
#[derive(Clone)]
pub struct CoreUsers(Inner);

#[derive(Clone)]
enum Inner {
    Configured {
        user: Arc<RwLock<Arc<PlaintextUser>>>,
        keys: Arc<MemoryApiKeyStore>,
    },
    #[cfg(feature = "sql")]
    Sql(crate::store::SqlStore),
}

impl CoreUsers {
    /// Core's one user (its password changeable until the process ends), API keys in memory.
    pub fn configured(user: PlaintextUser) -> Self {
        CoreUsers(Inner::Configured {
            user: Arc::new(RwLock::new(Arc::new(user))),
            keys: Arc::new(MemoryApiKeyStore::new()),
        })
    }

    /// Users, keys and second factors in `store`.
    #[cfg(feature = "sql")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sql")))]
    pub fn sql(store: crate::store::SqlStore) -> Self {
        CoreUsers(Inner::Sql(store))
    }

    /// The SQL store, when the users live in one.
    #[cfg(feature = "sql")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sql")))]
    pub fn sql_store(&self) -> Option<&crate::store::SqlStore> {
        match &self.0 {
            Inner::Sql(store) => Some(store),
            Inner::Configured { .. } => None,
        }
    }

    /// The configured user as it is now.
    fn configured_user(user: &RwLock<Arc<PlaintextUser>>) -> Arc<PlaintextUser> {
        // Every change is one assignment: a poisoned lock holds a usable user.
        Arc::clone(&user.read().unwrap_or_else(PoisonError::into_inner))
    }
}

impl fmt::Debug for CoreUsers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Configured { user, .. } => f
                .debug_tuple("CoreUsers")
                .field(&Self::configured_user(user))
                .finish(),
            #[cfg(feature = "sql")]
            Inner::Sql(store) => f.debug_tuple("CoreUsers").field(store).finish(),
        }
    }
}

/// A failure of the store behind [`CoreUsers`] (the database's; the configured user has none).
#[derive(Debug)]
pub struct CoreUsersError(Box<dyn std::error::Error + Send + Sync>);

impl fmt::Display for CoreUsersError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for CoreUsersError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

#[cfg(feature = "sql")]
fn sql_error<E: std::error::Error + Send + Sync + 'static>(e: E) -> CoreUsersError {
    CoreUsersError(Box::new(e))
}

fn never(e: std::convert::Infallible) -> CoreUsersError {
    match e {}
}

impl CredentialStore for CoreUsers {
    type Error = CoreUsersError;

    async fn authenticate(&self, credentials: &Credentials) -> Result<Option<String>, Self::Error> {
        match &self.0 {
            Inner::Configured { user, .. } => {
                let user = Self::configured_user(user);
                user.authenticate(credentials).await.map_err(never)
            }
            #[cfg(feature = "sql")]
            Inner::Sql(store) => store.authenticate(credentials).await.map_err(sql_error),
        }
    }

    async fn principal(&self, subject: &str) -> Result<Lookup, Self::Error> {
        match &self.0 {
            Inner::Configured { .. } => {
                let _ = subject;
                Ok(Lookup::NotSupported)
            }
            #[cfg(feature = "sql")]
            Inner::Sql(store) => store.principal(subject).await.map_err(sql_error),
        }
    }
}

impl SetPassword for CoreUsers {
    async fn set_password(&self, subject: &str, password: &str) -> Result<bool, Self::Error> {
        match &self.0 {
            Inner::Configured { user, .. } => {
                let mut current = user.write().unwrap_or_else(PoisonError::into_inner);
                if current.username() != subject {
                    return Ok(false);
                }
                *current = Arc::new(PlaintextUser::new(subject, password));
                Ok(true)
            }
            #[cfg(feature = "sql")]
            Inner::Sql(store) => SetPassword::set_password(store, subject, password)
                .await
                .map_err(sql_error),
        }
    }
}

impl ApiKeyStore for CoreUsers {
    type Error = CoreUsersError;

    async fn create(&self, key: &ApiKeyInfo, hash: &ApiKeyHash) -> Result<(), Self::Error> {
        match &self.0 {
            Inner::Configured { keys, .. } => keys.create(key, hash).await.map_err(never),
            #[cfg(feature = "sql")]
            Inner::Sql(store) => store.create(key, hash).await.map_err(sql_error),
        }
    }

    async fn list(&self, subject: &str) -> Result<Vec<ApiKeyInfo>, Self::Error> {
        match &self.0 {
            Inner::Configured { keys, .. } => keys.list(subject).await.map_err(never),
            #[cfg(feature = "sql")]
            Inner::Sql(store) => ApiKeyStore::list(store, subject).await.map_err(sql_error),
        }
    }

    async fn revoke(&self, subject: &str, id: &str) -> Result<bool, Self::Error> {
        match &self.0 {
            Inner::Configured { keys, .. } => keys.revoke(subject, id).await.map_err(never),
            #[cfg(feature = "sql")]
            Inner::Sql(store) => store.revoke(subject, id).await.map_err(sql_error),
        }
    }

    async fn find_by_hash(&self, hash: &ApiKeyHash) -> Result<Option<FoundApiKey>, Self::Error> {
        match &self.0 {
            Inner::Configured { keys, .. } => keys.find_by_hash(hash).await.map_err(never),
            #[cfg(feature = "sql")]
            Inner::Sql(store) => store.find_by_hash(hash).await.map_err(sql_error),
        }
    }

    async fn find_by_id(&self, id: &str) -> Result<Option<ApiKeyInfo>, Self::Error> {
        match &self.0 {
            Inner::Configured { keys, .. } => keys.find_by_id(id).await.map_err(never),
            #[cfg(feature = "sql")]
            Inner::Sql(store) => store.find_by_id(id).await.map_err(sql_error),
        }
    }

    async fn touch(&self, id: &str, at: u64) -> Result<(), Self::Error> {
        match &self.0 {
            Inner::Configured { keys, .. } => keys.touch(id, at).await.map_err(never),
            #[cfg(feature = "sql")]
            Inner::Sql(store) => store.touch(id, at).await.map_err(sql_error),
        }
    }
}
