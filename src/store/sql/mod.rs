//! [`SqlStore`]: users, roles, extra claims, API keys and second factors in PostgreSQL or
//! SQLite (feature `sql`), one implementation on sqlx.
//!
//! ```
//! use tower_jwt_login::apikey::ApiKeyStore;
//! use tower_jwt_login::store::{CredentialStore, Credentials, Lookup, SqlOptions, SqlStore};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! // `postgres://user@host/db` works the same way.
//! let store = SqlStore::connect_and_migrate("sqlite::memory:", SqlOptions::new()).await.unwrap();
//! store.add_user("alice", "wonderland").await.unwrap();
//! store.set_roles("alice", ["admin"]).await.unwrap();
//!
//! let ok = store.authenticate(&Credentials::new("alice", "wonderland")).await.unwrap();
//! assert_eq!(ok.as_deref(), Some("alice"));
//! let Lookup::Found(alice) = store.principal("alice").await.unwrap() else { panic!() };
//! assert_eq!(alice.extra_json(), Some(r#"{"roles":["admin"]}"#));
//!
//! store.set_disabled("alice", true).await.unwrap();
//! assert_eq!(store.principal("alice").await.unwrap(), Lookup::Refused);
//! # });
//! ```
//!
//! # Schema
//!
//! Tables `{prefix}users` (name, Argon2id hash, disabled, extra claims, created/updated),
//! `{prefix}user_roles`, `{prefix}api_keys` (SHA-256 of each key, never the key), the second
//! factor's `{prefix}factor_users` (sealed secrets, last step), `{prefix}factor_recovery`,
//! `{prefix}factor_devices` and `{prefix}factor_key_check` (the store is a
//! [`SecondFactorStore`](crate::factor::SecondFactorStore) too), and `{prefix}migrations`, created and upgraded by versioned migrations embedded in the crate
//! ([`SqlStore::migrate`]; [`SqlStore::connect_and_migrate`] runs them at start-up). The prefix
//! ([`SqlOptions::prefix`], default `tjl_`) lets the tables share a database with others.

mod factor;
mod migrate;

/// The sqlx this store is built on, for [`SqlStore::postgres`] and [`SqlStore::sqlite`] pools
/// of your own.
pub use sqlx;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{Row, postgres::PgConnectOptions};

use super::password::{HashParams, PasswordBackend, PasswordStore, PasswordStoreError};
use super::password::{StoredUser, checked_cost};
use super::{Argon2Error, CredentialStore, Credentials, Lookup, SetPassword};
use crate::apikey::{ApiKeyHash, ApiKeyInfo, ApiKeyStore, FoundApiKey};
use crate::token::{Principal, PrincipalError, members_of, now_secs};

/// Why the SQL store failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum SqlError {
    /// The database failed (unreachable, a constraint, …).
    Database(sqlx::Error),
    /// Hashing a password failed, or a hash to import is no Argon2id PHC string.
    Hash(Argon2Error),
    /// [`SqlStore::add_user`] for a name that exists.
    UserExists,
    /// A URL that names neither PostgreSQL (`postgres://`, `postgresql://`) nor SQLite
    /// (`sqlite:`).
    UnsupportedUrl,
    /// A table prefix other than lowercase ASCII letters, digits and `_` (at most 32, not
    /// starting with a digit).
    InvalidPrefix,
    /// Extra claims or roles that cannot go into a token (a reserved name, too large, `roles`
    /// among the extra claims, not a JSON object).
    InvalidClaims(String),
    /// The database's migrations do not match this build's.
    Migration(String),
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlError::Database(e) => write!(f, "database error: {e}"),
            SqlError::Hash(e) => e.fmt(f),
            SqlError::UserExists => f.write_str("user exists"),
            SqlError::UnsupportedUrl => f.write_str(
                "database URL must start with postgres://, postgresql:// or sqlite: (e.g. \
                 sqlite://users.db)",
            ),
            SqlError::InvalidPrefix => f.write_str(
                "table prefix must be at most 32 lowercase ASCII letters, digits and _, not \
                 starting with a digit",
            ),
            SqlError::InvalidClaims(why) => write!(f, "invalid claims: {why}"),
            SqlError::Migration(why) => write!(f, "migration: {why}"),
        }
    }
}

impl std::error::Error for SqlError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SqlError::Database(e) => Some(e),
            SqlError::Hash(e) => Some(e),
            _ => None,
        }
    }
}

impl From<sqlx::Error> for SqlError {
    fn from(e: sqlx::Error) -> Self {
        SqlError::Database(e)
    }
}

impl From<Argon2Error> for SqlError {
    fn from(e: Argon2Error) -> Self {
        SqlError::Hash(e)
    }
}

impl From<PrincipalError> for SqlError {
    fn from(e: PrincipalError) -> Self {
        SqlError::InvalidClaims(e.to_string())
    }
}

/// Settings of a [`SqlStore`].
#[derive(Debug, Clone)]
#[must_use]
pub struct SqlOptions {
    prefix: String,
    params: HashParams,
    max_concurrency: Option<usize>,
    max_connections: u32,
    acquire_timeout: Duration,
}

impl Default for SqlOptions {
    fn default() -> Self {
        SqlOptions {
            prefix: "tjl_".to_owned(),
            params: HashParams::default(),
            max_concurrency: None,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(3),
        }
    }
}

impl SqlOptions {
    /// Table prefix `tjl_`, the default [`HashParams`], one Argon2 run per CPU at a time, a
    /// pool of 10 connections waiting at most 3 s for one.
    pub fn new() -> Self {
        Self::default()
    }

    /// The prefix of every table (default `tjl_`; may be empty): lowercase ASCII letters,
    /// digits and `_`, at most 32, not starting with a digit (checked when the store is made).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The parameters of new hashes, and of re-hashing weaker ones after a successful login.
    pub fn hash_params(mut self, params: HashParams) -> Self {
        self.params = params;
        self
    }

    /// At most `n` Argon2 runs at once (default: the number of CPUs).
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = Some(n);
        self
    }

    /// The pool size of [`SqlStore::connect`] (default 10; an in-memory SQLite database always
    /// has one connection).
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// How long a query waits for a free connection before failing (default 3 s): a database
    /// that cannot be reached fails logins after this, with a 500.
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    fn checked_prefix(&self) -> Result<&str, SqlError> {
        let p = self.prefix.as_bytes();
        let valid = p.len() <= 32
            && p.first().is_none_or(|c| !c.is_ascii_digit())
            && p.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_');
        valid
            .then_some(self.prefix.as_str())
            .ok_or(SqlError::InvalidPrefix)
    }
}

/// The pool, of one database or the other.
#[derive(Clone)]
enum Db {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// Runs `$body` with `$pool` bound to the pool, whichever database it is: one source text,
/// compiled for each.
macro_rules! on_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            Db::Postgres($pool) => $body,
            Db::Sqlite($pool) => $body,
        }
    };
}

/// Every statement, with the prefix in, made once.
struct Queries {
    prefix: String,
    find_user: String,
    costliest: String,
    update_hash: String,
    user_exists: String,
    insert_user: String,
    set_hash: String,
    set_disabled: String,
    set_claims: String,
    user_id: String,
    delete_roles: String,
    insert_role: String,
    touch_user: String,
    delete_user: String,
    delete_keys_of: String,
    delete_factor_recovery: String,
    delete_factor_devices: String,
    delete_factor_user: String,
    users: String,
    user: String,
    insert_key: String,
    list_keys: String,
    revoke_key: String,
    find_key_by_hash: String,
    find_key_by_id: String,
    touch_key: String,
}

impl Queries {
    fn new(p: &str) -> Self {
        const KEY: &str = "k.id, k.subject, k.name, k.roles, k.created_at, k.expires_at, \
                           k.last_used_at";
        Queries {
            prefix: p.to_owned(),
            find_user: format!(
                "SELECT u.name, u.password_hash, u.disabled, u.claims, r.role \
                 FROM {p}users u LEFT JOIN {p}user_roles r ON r.user_id = u.id \
                 WHERE u.name = $1 ORDER BY r.role"
            ),
            costliest: format!(
                "SELECT password_hash FROM {p}users \
                 ORDER BY hash_work DESC, hash_memory DESC LIMIT 1"
            ),
            update_hash: format!(
                "UPDATE {p}users SET password_hash = $3, hash_work = $4, hash_memory = $5, \
                 updated_at = $6 WHERE name = $1 AND password_hash = $2"
            ),
            user_exists: format!("SELECT 1 FROM {p}users WHERE name = $1"),
            insert_user: format!(
                "INSERT INTO {p}users (name, password_hash, hash_work, hash_memory, disabled, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, FALSE, $5, $5) \
                 ON CONFLICT (name) DO NOTHING"
            ),
            set_hash: format!(
                "UPDATE {p}users SET password_hash = $2, hash_work = $3, hash_memory = $4, \
                 updated_at = $5 WHERE name = $1"
            ),
            set_disabled: format!(
                "UPDATE {p}users SET disabled = $2, updated_at = $3 WHERE name = $1"
            ),
            set_claims: format!("UPDATE {p}users SET claims = $2, updated_at = $3 WHERE name = $1"),
            user_id: format!("SELECT id FROM {p}users WHERE name = $1"),
            delete_roles: format!("DELETE FROM {p}user_roles WHERE user_id = $1"),
            insert_role: format!("INSERT INTO {p}user_roles (user_id, role) VALUES ($1, $2)"),
            touch_user: format!("UPDATE {p}users SET updated_at = $2 WHERE id = $1"),
            delete_user: format!("DELETE FROM {p}users WHERE name = $1"),
            delete_keys_of: format!("DELETE FROM {p}api_keys WHERE subject = $1"),
            delete_factor_recovery: format!("DELETE FROM {p}factor_recovery WHERE subject = $1"),
            delete_factor_devices: format!("DELETE FROM {p}factor_devices WHERE subject = $1"),
            delete_factor_user: format!("DELETE FROM {p}factor_users WHERE subject = $1"),
            users: format!(
                "SELECT u.name, u.disabled, u.created_at, u.updated_at, r.role \
                 FROM {p}users u LEFT JOIN {p}user_roles r ON r.user_id = u.id \
                 ORDER BY u.name, r.role"
            ),
            user: format!(
                "SELECT u.name, u.disabled, u.created_at, u.updated_at, r.role \
                 FROM {p}users u LEFT JOIN {p}user_roles r ON r.user_id = u.id \
                 WHERE u.name = $1 ORDER BY r.role"
            ),
            insert_key: format!(
                "INSERT INTO {p}api_keys (id, subject, name, key_hash, roles, created_at, \
                 expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            ),
            list_keys: format!(
                "SELECT {KEY} FROM {p}api_keys k WHERE k.subject = $1 ORDER BY k.created_at, k.id"
            ),
            revoke_key: format!("DELETE FROM {p}api_keys WHERE id = $1 AND subject = $2"),
            // The key and its owner (its state and roles) in one indexed lookup.
            find_key_by_hash: format!(
                "SELECT {KEY}, u.id AS owner_id, u.disabled, u.claims, r.role \
                 FROM {p}api_keys k \
                 LEFT JOIN {p}users u ON u.name = k.subject \
                 LEFT JOIN {p}user_roles r ON r.user_id = u.id \
                 WHERE k.key_hash = $1 ORDER BY r.role"
            ),
            find_key_by_id: format!("SELECT {KEY} FROM {p}api_keys k WHERE k.id = $1"),
            touch_key: format!("UPDATE {p}api_keys SET last_used_at = $2 WHERE id = $1"),
        }
    }
}

/// The users' side of the store, the [`PasswordBackend`] of its [`PasswordStore`].
#[derive(Clone)]
struct SqlUsers {
    db: Db,
    q: Arc<Queries>,
    factor: Arc<factor::FactorQueries>,
}

/// A user as [`SqlStore::users`] lists it (no hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    /// The login name, the subject of its tokens.
    pub name: String,
    /// Whether it is disabled.
    pub disabled: bool,
    /// Its roles, sorted.
    pub roles: Vec<String>,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds of the last change (password, roles, claims, state).
    pub updated_at: u64,
}

/// Users (Argon2id hashes, roles, extra claims, disabled or not) and API keys in PostgreSQL or
/// SQLite: a [`CredentialStore`] (through [`PasswordStore`]: Argon2 off the executor, the
/// dummy hash, re-hashing after login) and an [`ApiKeyStore`], with a management API for an
/// admin route or a CLI. Cheap to clone (clones share the pool). See the [module docs](self).
#[derive(Clone)]
pub struct SqlStore {
    passwords: PasswordStore<SqlUsers>,
}

impl fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let users = self.passwords.backend();
        f.debug_struct("SqlStore")
            .field(
                "database",
                &match users.db {
                    Db::Postgres(_) => "postgres",
                    Db::Sqlite(_) => "sqlite",
                },
            )
            .field("prefix", &users.q.prefix)
            .field("passwords", &self.passwords)
            .finish()
    }
}

/// Unix seconds as SQL's `BIGINT`.
fn now_i64() -> i64 {
    i64::try_from(now_secs()).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The cost columns of a PHC string: (m × t, m).
fn cost_columns(phc: &str) -> Result<(i64, i64), SqlError> {
    checked_cost(phc)?;
    let params = HashParams::of_phc(phc)?;
    let m = i64::from(params.memory_kib());
    Ok((m * i64::from(params.iterations()), m))
}

/// The principal of a user row: `roles` (when any) then the stored extra claims.
fn principal_of(name: &str, roles: &[String], claims: Option<&str>) -> Result<Principal, SqlError> {
    let mut builder = Principal::builder(name);
    if !roles.is_empty() {
        builder = builder.claim("roles", roles);
    }
    if let Some(claims) = claims {
        let members = members_of(claims)
            .ok_or_else(|| SqlError::InvalidClaims("stored claims are no JSON object".into()))?;
        for (member, value) in members {
            builder = builder.claim(&member, value);
        }
    }
    Ok(builder.build()?)
}

impl SqlStore {
    /// Connects to `url` (`postgres://…`, `postgresql://…`, `sqlite://path`, `sqlite::memory:`;
    /// a SQLite file is created when missing), without migrating (see
    /// [`migrate`](Self::migrate)).
    pub async fn connect(url: &str, options: SqlOptions) -> Result<Self, SqlError> {
        options.checked_prefix()?;
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let connect = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect)
                .await?;
            Self::postgres(pool, options)
        } else if url.starts_with("sqlite:") {
            let connect = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .foreign_keys(true);
            let memory = url.contains(":memory:") || url.contains("mode=memory");
            let (connect, pool) = if memory {
                // Every connection to `:memory:` is a database of its own: keep exactly one.
                (
                    connect,
                    SqlitePoolOptions::new()
                        .max_connections(1)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None),
                )
            } else {
                (
                    connect.journal_mode(SqliteJournalMode::Wal),
                    SqlitePoolOptions::new().max_connections(options.max_connections),
                )
            };
            let pool = pool
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect)
                .await?;
            Self::sqlite(pool, options)
        } else {
            Err(SqlError::UnsupportedUrl)
        }
    }

    /// [`connect`](Self::connect), then [`migrate`](Self::migrate): what a server calls at
    /// start-up.
    pub async fn connect_and_migrate(url: &str, options: SqlOptions) -> Result<Self, SqlError> {
        let store = Self::connect(url, options).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// A store on a PostgreSQL pool of yours (its connect options may set a `search_path`).
    pub fn postgres(pool: PgPool, options: SqlOptions) -> Result<Self, SqlError> {
        Self::with_db(Db::Postgres(pool), options)
    }

    /// A store on a SQLite pool of yours (enable foreign keys, sqlx's default).
    pub fn sqlite(pool: SqlitePool, options: SqlOptions) -> Result<Self, SqlError> {
        Self::with_db(Db::Sqlite(pool), options)
    }

    fn with_db(db: Db, options: SqlOptions) -> Result<Self, SqlError> {
        let prefix = options.checked_prefix()?;
        let users = SqlUsers {
            db,
            q: Arc::new(Queries::new(prefix)),
            factor: Arc::new(factor::FactorQueries::new(prefix)),
        };
        let mut passwords = PasswordStore::new(users).hash_params(options.params);
        if let Some(n) = options.max_concurrency {
            passwords = passwords.max_concurrency(n);
        }
        Ok(SqlStore { passwords })
    }

    fn db(&self) -> &Db {
        &self.passwords.backend().db
    }

    fn q(&self) -> &Queries {
        &self.passwords.backend().q
    }

    /// Applies the embedded migrations the database lacks (in one transaction, once among
    /// instances starting together); how many were applied. An error when the database was
    /// migrated by a build with other or newer migrations.
    pub async fn migrate(&self) -> Result<usize, SqlError> {
        migrate::run(self.db(), &self.q().prefix).await
    }

    /// The newest schema version this build migrates to.
    pub fn schema_version() -> i64 {
        migrate::latest()
    }

    /// The parameters an unknown name is checked with now: the costliest stored hash's (read
    /// from the database at most once a minute, and raised at once by a costlier hash met at a
    /// login).
    pub async fn dummy_params(&self) -> Result<HashParams, SqlError> {
        self.passwords.dummy_params().await
    }

    /// Closes the pool (waits for the connections in use).
    pub async fn close(&self) {
        on_pool!(self.db(), |pool| pool.close().await)
    }

    /// Hashes with the configured parameters, within the Argon2 concurrency bound.
    async fn hash(&self, password: &str) -> Result<(String, i64, i64), SqlError> {
        let phc = self.passwords.hash(password).await?;
        let (work, memory) = cost_columns(&phc)?;
        Ok((phc, work, memory))
    }

    /// Adds an enabled user without roles; [`SqlError::UserExists`] when the name is taken.
    pub async fn add_user(&self, name: &str, password: &str) -> Result<(), SqlError> {
        let (phc, work, memory) = self.hash(password).await?;
        self.insert_user(name, &phc, work, memory)
            .await?
            .then_some(())
            .ok_or(SqlError::UserExists)
    }

    /// Adds a user with an Argon2id PHC string made elsewhere (an import); refused like
    /// [`Argon2Store::with_hash`](super::Argon2Store::with_hash). A hash weaker than the
    /// configured parameters is replaced at the user's next successful login.
    pub async fn add_user_with_hash(&self, name: &str, phc: &str) -> Result<(), SqlError> {
        let (work, memory) = cost_columns(phc)?;
        self.insert_user(name, phc, work, memory)
            .await?
            .then_some(())
            .ok_or(SqlError::UserExists)
    }

    /// Adds the user when it is missing (an existing user's password is left alone); whether
    /// it was added. What a server runs at start-up for its configured user.
    pub async fn ensure_user(&self, name: &str, password: &str) -> Result<bool, SqlError> {
        let q = &self.q().user_exists;
        let exists = on_pool!(self.db(), |pool| sqlx::query(q)
            .bind(name)
            .fetch_optional(pool)
            .await?
            .is_some());
        if exists {
            return Ok(false);
        }
        let (phc, work, memory) = self.hash(password).await?;
        self.insert_user(name, &phc, work, memory).await
    }

    async fn insert_user(
        &self,
        name: &str,
        phc: &str,
        work: i64,
        memory: i64,
    ) -> Result<bool, SqlError> {
        let q = &self.q().insert_user;
        let now = now_i64();
        let inserted = on_pool!(self.db(), |pool| sqlx::query(q)
            .bind(name)
            .bind(phc)
            .bind(work)
            .bind(memory)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(inserted == 1)
    }

    /// Replaces a user's password; `Ok(false)` for no such user. Tokens already issued stay
    /// valid until they expire (end the user's sessions for that).
    pub async fn set_password(&self, name: &str, password: &str) -> Result<bool, SqlError> {
        let (phc, work, memory) = self.hash(password).await?;
        let q = &self.q().set_hash;
        let now = now_i64();
        let updated = on_pool!(self.db(), |pool| sqlx::query(q)
            .bind(name)
            .bind(&phc)
            .bind(work)
            .bind(memory)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(updated == 1)
    }

    /// Disables (or enables) a user: its logins are refused like a wrong password, its
    /// refreshes and API keys refused. `Ok(false)` for no such user.
    pub async fn set_disabled(&self, name: &str, disabled: bool) -> Result<bool, SqlError> {
        let q = &self.q().set_disabled;
        let now = now_i64();
        let updated = on_pool!(self.db(), |pool| sqlx::query(q)
            .bind(name)
            .bind(disabled)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(updated == 1)
    }

    /// Replaces a user's roles (the extra claim `roles` of its next tokens, sorted; none for an
    /// empty list). `Ok(false)` for no such user.
    pub async fn set_roles<I, R>(&self, name: &str, roles: I) -> Result<bool, SqlError>
    where
        I: IntoIterator<Item = R>,
        R: Into<String>,
    {
        let mut roles: Vec<String> = roles.into_iter().map(Into::into).collect();
        roles.sort();
        roles.dedup();
        principal_of(name, &roles, None)?;
        let q = self.q();
        let now = now_i64();
        on_pool!(self.db(), |pool| {
            let mut tx = pool.begin().await?;
            let Some(row) = sqlx::query(&q.user_id)
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?
            else {
                return Ok(false);
            };
            let id: i64 = row.try_get(0)?;
            sqlx::query(&q.delete_roles)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            for role in &roles {
                sqlx::query(&q.insert_role)
                    .bind(id)
                    .bind(role)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(&q.touch_user)
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Sets a user's extra claims besides `roles` (a JSON object such as
    /// `{"tenant":"acme"}`; `None` removes them), checked as a [`Principal`] would be
    /// (reserved names, size). `Ok(false)` for no such user.
    pub async fn set_claims(&self, name: &str, claims: Option<&str>) -> Result<bool, SqlError> {
        let claims = match claims {
            None => None,
            Some(claims) => {
                let members = members_of(claims)
                    .ok_or_else(|| SqlError::InvalidClaims("not a JSON object".into()))?;
                if members.iter().any(|(n, _)| n == "roles") {
                    return Err(SqlError::InvalidClaims(
                        "`roles` is set with set_roles".into(),
                    ));
                }
                // Checked as the tokens will carry them, and kept as the principal has them.
                principal_of(name, &[], Some(claims))?
                    .extra_json()
                    .map(str::to_owned)
            }
        };
        let q = &self.q().set_claims;
        let now = now_i64();
        let updated = on_pool!(self.db(), |pool| sqlx::query(q)
            .bind(name)
            .bind(claims.as_deref())
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(updated == 1)
    }

    /// Removes a user with its roles, API keys and second factor. Whether it existed.
    pub async fn remove_user(&self, name: &str) -> Result<bool, SqlError> {
        let q = self.q();
        on_pool!(self.db(), |pool| {
            let mut tx = pool.begin().await?;
            for statement in [
                &q.delete_keys_of,
                &q.delete_factor_recovery,
                &q.delete_factor_devices,
                &q.delete_factor_user,
            ] {
                sqlx::query(statement).bind(name).execute(&mut *tx).await?;
            }
            let removed = sqlx::query(&q.delete_user)
                .bind(name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(removed == 1)
        })
    }

    /// Every user, by name, with its roles (never a hash).
    pub async fn users(&self) -> Result<Vec<UserInfo>, SqlError> {
        let q = &self.q().users;
        let rows: Vec<UserInfoRow> =
            on_pool!(self.db(), |pool| sqlx::query_as(q).fetch_all(pool).await?);
        Ok(group_users(rows))
    }

    /// One user, if it exists.
    pub async fn user(&self, name: &str) -> Result<Option<UserInfo>, SqlError> {
        let q = &self.q().user;
        let rows: Vec<UserInfoRow> = on_pool!(self.db(), |pool| sqlx::query_as(q)
            .bind(name)
            .fetch_all(pool)
            .await?);
        Ok(group_users(rows).into_iter().next())
    }
}

type UserInfoRow = (String, bool, i64, i64, Option<String>);

/// Users from rows of (name, disabled, created, updated, role), sorted by name then role.
fn group_users(rows: Vec<UserInfoRow>) -> Vec<UserInfo> {
    let mut users: Vec<UserInfo> = Vec::new();
    for (name, disabled, created_at, updated_at, role) in rows {
        if users.last().is_none_or(|u| u.name != name) {
            users.push(UserInfo {
                name,
                disabled,
                roles: Vec::new(),
                created_at: to_u64(created_at),
                updated_at: to_u64(updated_at),
            });
        }
        if let (Some(role), Some(user)) = (role, users.last_mut()) {
            user.roles.push(role);
        }
    }
    users
}

/// (name, hash, disabled, claims, role): one row per role.
type FindRow = (String, String, bool, Option<String>, Option<String>);

/// A user row with its roles.
struct UserRow {
    name: String,
    phc: String,
    disabled: bool,
    claims: Option<String>,
    roles: Vec<String>,
}

impl SqlUsers {
    async fn find_row(&self, name: &str) -> Result<Option<UserRow>, SqlError> {
        let q = &self.q.find_user;
        let rows: Vec<FindRow> = on_pool!(&self.db, |pool| sqlx::query_as(q)
            .bind(name)
            .fetch_all(pool)
            .await?);
        let mut rows = rows.into_iter();
        let Some((name, phc, disabled, claims, role)) = rows.next() else {
            return Ok(None);
        };
        let roles = role
            .into_iter()
            .chain(rows.filter_map(|row| row.4))
            .collect();
        Ok(Some(UserRow {
            name,
            phc,
            disabled,
            claims,
            roles,
        }))
    }
}

impl PasswordBackend for SqlUsers {
    type Error = SqlError;

    async fn find(&self, name: &str) -> Result<Option<StoredUser>, SqlError> {
        let Some(row) = self.find_row(name).await? else {
            return Ok(None);
        };
        let principal = principal_of(&row.name, &row.roles, row.claims.as_deref())?;
        Ok(Some(
            StoredUser::new(row.phc, principal).disabled(row.disabled),
        ))
    }

    async fn update_hash(&self, name: &str, old: &str, new: &str) -> Result<bool, SqlError> {
        let (work, memory) = cost_columns(new)?;
        let q = &self.q.update_hash;
        let now = now_i64();
        let updated = on_pool!(&self.db, |pool| sqlx::query(q)
            .bind(name)
            .bind(old)
            .bind(new)
            .bind(work)
            .bind(memory)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(updated == 1)
    }

    async fn costliest_hash(&self) -> Result<Option<String>, SqlError> {
        let q = &self.q.costliest;
        let row: Option<(String,)> = on_pool!(&self.db, |pool| sqlx::query_as(q)
            .fetch_optional(pool)
            .await?);
        Ok(row.map(|r| r.0))
    }
}

impl CredentialStore for SqlStore {
    type Error = PasswordStoreError<SqlError>;

    async fn authenticate(&self, credentials: &Credentials) -> Result<Option<String>, Self::Error> {
        self.passwords.authenticate(credentials).await
    }

    /// The user's current roles and extra claims; [`Lookup::Refused`] for a removed or
    /// disabled user.
    async fn principal(&self, subject: &str) -> Result<Lookup, Self::Error> {
        self.passwords.principal(subject).await
    }
}

/// [`SqlStore::set_password`]: one `UPDATE`, hashed on the blocking pool.
impl SetPassword for SqlStore {
    async fn set_password(&self, subject: &str, password: &str) -> Result<bool, Self::Error> {
        SqlStore::set_password(self, subject, password)
            .await
            .map_err(PasswordStoreError::Backend)
    }
}

type KeyRow = (
    String,
    String,
    String,
    Option<String>,
    i64,
    Option<i64>,
    Option<i64>,
);

fn key_info(row: KeyRow) -> Result<ApiKeyInfo, SqlError> {
    let (id, subject, name, roles, created_at, expires_at, last_used_at) = row;
    let roles = roles
        .map(|r| serde_json::from_str::<Vec<String>>(&r))
        .transpose()
        .map_err(|e| SqlError::InvalidClaims(format!("stored key roles: {e}")))?;
    Ok(ApiKeyInfo {
        id,
        subject,
        name,
        roles,
        created_at: to_u64(created_at),
        expires_at: expires_at.map(to_u64),
        last_used_at: last_used_at.map(to_u64),
    })
}

impl ApiKeyStore for SqlStore {
    type Error = SqlError;

    async fn create(&self, key: &ApiKeyInfo, hash: &ApiKeyHash) -> Result<(), SqlError> {
        let roles = key
            .roles
            .as_ref()
            .map(|r| serde_json::to_string(r).unwrap_or_else(|_| "[]".to_owned()));
        let q = &self.q().insert_key;
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        on_pool!(self.db(), |pool| sqlx::query(q)
            .bind(&key.id)
            .bind(&key.subject)
            .bind(&key.name)
            .bind(hash.to_hex())
            .bind(roles.as_deref())
            .bind(as_i64(key.created_at))
            .bind(key.expires_at.map(as_i64))
            .execute(pool)
            .await?
            .rows_affected());
        Ok(())
    }

    async fn list(&self, subject: &str) -> Result<Vec<ApiKeyInfo>, SqlError> {
        let q = &self.q().list_keys;
        let rows: Vec<KeyRow> = on_pool!(self.db(), |pool| sqlx::query_as(q)
            .bind(subject)
            .fetch_all(pool)
            .await?);
        rows.into_iter().map(key_info).collect()
    }

    async fn revoke(&self, subject: &str, id: &str) -> Result<bool, SqlError> {
        let q = &self.q().revoke_key;
        let deleted = on_pool!(self.db(), |pool| sqlx::query(q)
            .bind(id)
            .bind(subject)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(deleted == 1)
    }

    async fn find_by_hash(&self, hash: &ApiKeyHash) -> Result<Option<FoundApiKey>, SqlError> {
        type Row = (
            String,
            String,
            String,
            Option<String>,
            i64,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<bool>,
            Option<String>,
            Option<String>,
        );
        let q = &self.q().find_key_by_hash;
        let rows: Vec<Row> = on_pool!(self.db(), |pool| sqlx::query_as(q)
            .bind(hash.to_hex())
            .fetch_all(pool)
            .await?);
        let mut rows = rows.into_iter();
        let Some(first) = rows.next() else {
            return Ok(None);
        };
        let (id, subject, name, roles, created, expires, used, owner_id, disabled, claims, role) =
            first;
        let key = key_info((id, subject, name, roles, created, expires, used))?;
        let owner = match (owner_id, disabled) {
            (None, _) => None,
            (Some(_), Some(true)) => Some(Lookup::Refused),
            (Some(_), _) => {
                let held: Vec<String> = role
                    .into_iter()
                    .chain(rows.filter_map(|row| row.10))
                    .collect();
                Some(Lookup::Found(principal_of(
                    &key.subject,
                    &held,
                    claims.as_deref(),
                )?))
            }
        };
        Ok(Some(FoundApiKey { key, owner }))
    }

    async fn find_by_id(&self, id: &str) -> Result<Option<ApiKeyInfo>, SqlError> {
        let q = &self.q().find_key_by_id;
        let row: Option<KeyRow> = on_pool!(self.db(), |pool| sqlx::query_as(q)
            .bind(id)
            .fetch_optional(pool)
            .await?);
        row.map(key_info).transpose()
    }

    async fn touch(&self, id: &str, at: u64) -> Result<(), SqlError> {
        let q = &self.q().touch_key;
        let at = i64::try_from(at).unwrap_or(i64::MAX);
        on_pool!(self.db(), |pool| sqlx::query(q)
            .bind(id)
            .bind(at)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(())
    }
}
