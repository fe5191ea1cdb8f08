//! Your own user database: a `CredentialStore` over SQLite with Argon2id password hashes, and a
//! server that logs users in from it.
//!
//! ```text
//! cargo run --example sqlite_store -- add-user alice     # password from stdin (or $USER_PASSWORD)
//! cargo run --example sqlite_store -- add-user root --role admin   # an administrator
//! cargo run --example sqlite_store -- passwd alice       # change it
//! cargo run --example sqlite_store -- role alice admin   # grant a role (`role alice -` removes it)
//! cargo run --example sqlite_store                       # serve on 127.0.0.1:8080
//! ```
//!
//! The database file is `USERS_DB` (default `users.db`; `--db PATH` before the command wins). The
//! server reads `ADDRESS` (default `127.0.0.1:8080`) and `JWT_SECRET` (at least 32 bytes; without
//! it a random key, and tokens die on restart). Routes: `POST /api/login`,
//! `GET /api/login/refresh`, protected `GET /api/whoami` (the caller's subject) and the admin-only
//! `GET /api/admin/users` (the users and their roles; 403 for anyone without the role `admin`).
//!
//! Roles: a user's `role` column becomes the extra claim `"roles":["<role>"]` of its tokens
//! (`CredentialStore::principal`); the layer's policy requires `admin` on `/api/admin/*`. The
//! refresh route asks the store again, so a role granted or withdrawn with `role` reaches the
//! next refreshed access token, and a removed user cannot refresh.
//!
//! What a real store must get right, and how this one does it:
//! - **Hashes, not passwords**: one `users` row per user with an Argon2id PHC string, made by the
//!   crate's `hash_password` and checked by its `verify_password` (constant time).
//! - **No timing oracle**: an unknown user is checked against a dummy hash with the same
//!   parameters, so it costs exactly one Argon2 verification, like a wrong password.
//! - **Off the executor, bounded**: the query and the verification run on tokio's blocking pool,
//!   at most one per CPU at a time (each Argon2 run allocates 19 MiB).
//! - **Throttled, per client address**: `LoginService` throttles failed logins by default (10 per
//!   account and address in 15 minutes, then 429 without an Argon2 run), and the server is served
//!   with `into_make_service_with_connect_info`, so the address is the TCP peer. Failed logins
//!   wait 5 s, like Core.
//! - **Migrations on start**: SQLite's `user_version` says which schema steps already ran.

use std::fmt;
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Extension};
use axum::routing::get;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::Semaphore;
use tower_jwt_login::auth::{JwtAuthLayer, PathPolicy, Requirement};
use tower_jwt_login::client_addr::ClientAddrResolver;
use tower_jwt_login::login::{LoginService, RefreshService};
use tower_jwt_login::store::{
    Argon2Error, CredentialStore, Credentials, Lookup, hash_password, verify_password,
};
use tower_jwt_login::{Claims, Jwt, JwtConfig, JwtKey, Principal};
use zeroize::Zeroizing;

/// Schema steps, applied in order; `PRAGMA user_version` counts the ones already applied.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE users (
        username      TEXT PRIMARY KEY NOT NULL,
        password_hash TEXT NOT NULL,
        created_at    INTEGER NOT NULL DEFAULT (strftime('%s', 'now')),
        updated_at    INTEGER NOT NULL DEFAULT (strftime('%s', 'now'))
    ) STRICT",
    // Roles (NULL: none).
    "ALTER TABLE users ADD COLUMN role TEXT",
];

/// What can go wrong in the store itself (a wrong password is not an error).
#[derive(Debug)]
pub enum StoreError {
    /// SQLite failed.
    Db(rusqlite::Error),
    /// Hashing a new password failed.
    Hash(Argon2Error),
    /// `add_user` for a name that exists.
    UserExists,
    /// `set_password` for a name that does not exist.
    NoSuchUser,
    /// The blocking task died (runtime shutting down) or a lock was poisoned.
    TaskFailed,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Db(e) => write!(f, "database error: {e}"),
            StoreError::Hash(e) => write!(f, "{e}"),
            StoreError::UserExists => f.write_str("user exists"),
            StoreError::NoSuchUser => f.write_str("no such user"),
            StoreError::TaskFailed => f.write_str("store task failed"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Db(e)
    }
}

/// Users in a SQLite file. Cheap to clone (all clones share the connection and the counters).
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// An Argon2id PHC string of a random password: unknown users are verified against it.
    dummy: Arc<str>,
    permits: Arc<Semaphore>,
    verifications: Arc<AtomicU64>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the hashes.
        f.debug_struct("SqliteStore")
            .field("verifications", &self.verifications())
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (or creates) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        migrate(&mut conn)?;
        let dummy =
            hash_password(&tower_jwt_login::config::random_password()).map_err(StoreError::Hash)?;
        let workers = std::thread::available_parallelism().map_or(1, usize::from);
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            dummy: dummy.into(),
            permits: Arc::new(Semaphore::new(workers)),
            verifications: Arc::new(AtomicU64::new(0)),
        })
    }

    fn with_conn<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.conn.lock().map_err(|_| StoreError::TaskFailed)?;
        f(&conn)
    }

    /// Adds a user without a role (blocking: hashes with Argon2id, then one `INSERT`).
    pub fn add_user(&self, username: &str, password: &str) -> Result<(), StoreError> {
        self.add_user_with_role(username, password, None)
    }

    /// Adds a user with a role (`None`: none).
    pub fn add_user_with_role(
        &self,
        username: &str,
        password: &str,
        role: Option<&str>,
    ) -> Result<(), StoreError> {
        let phc = hash_password(password).map_err(StoreError::Hash)?;
        self.with_conn(|conn| {
            let inserted = conn.execute(
                "INSERT INTO users (username, password_hash, role) VALUES (?1, ?2, ?3)
                 ON CONFLICT (username) DO NOTHING",
                params![username, phc, role],
            )?;
            if inserted == 0 {
                return Err(StoreError::UserExists);
            }
            Ok(())
        })
    }

    /// Replaces a user's password (blocking). The old password stops working at once; tokens
    /// already issued stay valid until they expire (the key is the app's, not the password).
    pub fn set_password(&self, username: &str, password: &str) -> Result<(), StoreError> {
        let phc = hash_password(password).map_err(StoreError::Hash)?;
        self.with_conn(|conn| {
            let updated = conn.execute(
                "UPDATE users SET password_hash = ?2, updated_at = strftime('%s', 'now')
                 WHERE username = ?1",
                params![username, phc],
            )?;
            if updated == 0 {
                return Err(StoreError::NoSuchUser);
            }
            Ok(())
        })
    }

    /// Sets (or with `None` removes) a user's role; the next refresh carries it.
    pub fn set_role(&self, username: &str, role: Option<&str>) -> Result<(), StoreError> {
        self.with_conn(|conn| {
            let updated = conn.execute(
                "UPDATE users SET role = ?2, updated_at = strftime('%s', 'now')
                 WHERE username = ?1",
                params![username, role],
            )?;
            if updated == 0 {
                return Err(StoreError::NoSuchUser);
            }
            Ok(())
        })
    }

    /// Every user and its role, by name.
    pub fn users(&self) -> Result<Vec<(String, Option<String>)>, StoreError> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare("SELECT username, role FROM users ORDER BY username")?;
            let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// How many Argon2 verifications this store has run (one per login attempt, known user or
    /// not).
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    let applied: usize = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    for (version, step) in MIGRATIONS.iter().enumerate().skip(applied) {
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", version + 1)?;
    }
    tx.commit()?;
    Ok(())
}

impl CredentialStore for SqliteStore {
    type Error = StoreError;

    async fn authenticate(&self, credentials: &Credentials) -> Result<Option<String>, StoreError> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::TaskFailed)?;
        let store = self.clone();
        let username = credentials.username().to_owned();
        let password = Zeroizing::new(credentials.password().to_owned());
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let stored: Option<String> = store.with_conn(|conn| {
                Ok(conn
                    .query_row(
                        "SELECT password_hash FROM users WHERE username = ?1",
                        [&username],
                        |row| row.get(0),
                    )
                    .optional()?)
            })?;
            // Exactly one verification either way: an unknown user costs what a wrong password
            // costs.
            let (known, phc) = match &stored {
                Some(phc) => (true, phc.as_str()),
                None => (false, &*store.dummy),
            };
            store.verifications.fetch_add(1, Ordering::Relaxed);
            let ok = verify_password(&password, phc);
            Ok((known && ok).then_some(username))
        })
        .await
        .map_err(|_| StoreError::TaskFailed)?
    }

    /// The user's role as the extra claim `roles`, at login and at every refresh; a user that
    /// no longer exists is refused (its refresh token stops working).
    async fn principal(&self, subject: &str) -> Result<Lookup, StoreError> {
        let store = self.clone();
        let subject = subject.to_owned();
        tokio::task::spawn_blocking(move || {
            let row: Option<Option<String>> = store.with_conn(|conn| {
                Ok(conn
                    .query_row(
                        "SELECT role FROM users WHERE username = ?1",
                        [&subject],
                        |row| row.get(0),
                    )
                    .optional()?)
            })?;
            Ok(match row {
                None => Lookup::Refused,
                Some(None) => Lookup::Found(Principal::new(subject)),
                Some(Some(role)) => Lookup::Found(
                    Principal::builder(subject)
                        .claim("roles", [role])
                        .build()
                        .map_err(|_| StoreError::TaskFailed)?,
                ),
            })
        })
        .await
        .map_err(|_| StoreError::TaskFailed)?
    }
}

/// The server: login and refresh from the SQLite users, a protected `GET /api/whoami` and the
/// admin-only `GET /api/admin/users`. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so that the login throttle (on by
/// default) counts per client address.
pub fn app(store: SqliteStore, jwt: Jwt, failure_delay: Duration) -> Router {
    let store = Arc::new(store);
    let admin_store = Arc::clone(&store);
    // The TCP peer that `into_make_service_with_connect_info` records. With the crate's `axum`
    // feature the default resolver reads it without this line; spelled out, the example works
    // without the feature too.
    let client_addr = ClientAddrResolver::new()
        .peer_from(|ext| ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0));
    let login = LoginService::new(jwt.clone(), Arc::clone(&store))
        .failure_delay(failure_delay)
        .client_addr(client_addr);
    // The refresh route asks the store for the current role (and refuses removed users).
    let refresh = RefreshService::new(jwt.clone()).principals(store);
    Router::new()
        .route(
            "/api/whoami",
            get(|Extension(claims): Extension<Claims>| async move {
                format!("{}\n", claims.subject())
            }),
        )
        .route(
            "/api/admin/users",
            get(move || {
                let store = Arc::clone(&admin_store);
                async move {
                    let users = tokio::task::spawn_blocking(move || store.users()).await;
                    match users {
                        Ok(Ok(users)) => users
                            .into_iter()
                            .map(|(name, role)| format!("{name} {}\n", role.as_deref().unwrap_or("-")))
                            .collect::<String>(),
                        _ => "store unavailable\n".to_owned(),
                    }
                }
            }),
        )
        .route_service("/api/login", login)
        .route_service("/api/login/refresh", refresh)
        .layer(
            JwtAuthLayer::new(jwt).policy(
                PathPolicy::new()
                    .login_routes("/api")
                    .require("/api/admin/*", Requirement::role("admin")),
            ),
        )
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs one command line (without the program name); `input` is stdin. `Ok(Some(db))` means
/// "serve from `db`".
pub fn command(args: &[String], input: impl BufRead) -> Result<Option<PathBuf>, BoxError> {
    let mut db = PathBuf::from(std::env::var("USERS_DB").unwrap_or_else(|_| "users.db".into()));
    let mut rest = args;
    if let [flag, path, tail @ ..] = rest
        && flag == "--db"
    {
        db = PathBuf::from(path);
        rest = tail;
    }
    match rest {
        [] => Ok(Some(db)),
        [cmd] if cmd == "serve" => Ok(Some(db)),
        [cmd, username, flag, role] if cmd == "add-user" && flag == "--role" => {
            let password = read_password(input)?;
            let store = SqliteStore::open(&db)?;
            store.add_user_with_role(username, &password, Some(role))?;
            println!(
                "added user {username:?} with role {role:?} to {}",
                db.display()
            );
            Ok(None)
        }
        [cmd, username, role] if cmd == "role" => {
            let store = SqliteStore::open(&db)?;
            let role = (role != "-").then_some(role.as_str());
            store.set_role(username, role)?;
            println!(
                "set the role of {username:?} to {role:?} in {}",
                db.display()
            );
            Ok(None)
        }
        [cmd, username] if cmd == "add-user" || cmd == "passwd" => {
            let password = read_password(input)?;
            let store = SqliteStore::open(&db)?;
            if cmd == "add-user" {
                store.add_user(username, &password)?;
                println!("added user {username:?} to {}", db.display());
            } else {
                store.set_password(username, &password)?;
                println!("changed the password of {username:?} in {}", db.display());
            }
            Ok(None)
        }
        _ => Err(
            "usage: sqlite_store [--db PATH] [serve | add-user NAME [--role ROLE] | \
                  passwd NAME | role NAME ROLE|-]"
                .into(),
        ),
    }
}

/// `$USER_PASSWORD`, else the first line of `input`.
fn read_password(mut input: impl BufRead) -> Result<Zeroizing<String>, BoxError> {
    if let Ok(p) = std::env::var("USER_PASSWORD")
        && !p.is_empty()
    {
        return Ok(Zeroizing::new(p));
    }
    eprintln!("password (one line on stdin):");
    let mut line = Zeroizing::new(String::new());
    input.read_line(&mut line)?;
    let password = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
    if password.is_empty() {
        return Err("empty password".into());
    }
    Ok(password)
}

async fn serve(db: &Path) -> Result<(), BoxError> {
    let store = SqliteStore::open(db)?;
    let key = match std::env::var("JWT_SECRET") {
        Ok(secret) => JwtKey::from_secret(secret)?,
        Err(_) => JwtKey::random(),
    };
    let jwt = JwtConfig::new(key).build()?;
    let address: SocketAddr = std::env::var("ADDRESS")
        .unwrap_or_else(|_| "127.0.0.1:8080".into())
        .parse()?;
    let listener = tokio::net::TcpListener::bind(address).await?;
    tracing::info!(address = %listener.local_addr()?, db = %db.display(), "sqlite_store listening");
    // With the peer address: the login throttle counts per client address.
    let app =
        app(store, jwt, Duration::from_secs(5)).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match command(&args, std::io::stdin().lock()) {
        Ok(Some(db)) => serve(&db).await,
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
