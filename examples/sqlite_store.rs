//! Your own user table as the crate's credential store: a `PasswordBackend` over an existing
//! SQLite schema (`users(username, password_hash, role)`), and a server that logs users in from
//! it. Only the schema-specific part is here; `PasswordStore` does the rest (Argon2id on the
//! blocking pool, bounded; the dummy hash for unknown names; re-hashing weaker hashes after a
//! successful login). For a ready-made schema with roles, API keys and migrations, use
//! `SqlStore` (examples/accounts.rs, docs/accounts.md).
//!
//! ```text
//! cargo run --features sql --example sqlite_store -- add-user alice   # password from stdin (or $USER_PASSWORD)
//! cargo run --features sql --example sqlite_store -- add-user root --role admin
//! cargo run --features sql --example sqlite_store -- passwd alice
//! cargo run --features sql --example sqlite_store -- role alice admin # `role alice -` removes it
//! cargo run --features sql --example sqlite_store                     # serve on 127.0.0.1:8080
//! ```
//!
//! The database file is `USERS_DB` (default `users.db`; `--db PATH` before the command wins). The
//! server reads `ADDRESS` (default `127.0.0.1:8080`) and `JWT_SECRET` (at least 32 bytes; without
//! it a random key, and tokens die on restart). Routes: `POST /api/login`,
//! `GET /api/login/refresh`, protected `GET /api/whoami` (the caller's subject) and the admin-only
//! `GET /api/admin/users` (the users and their roles; 403 for anyone without the role `admin`).
//! A user's `role` column becomes the extra claim `"roles":["<role>"]` of its tokens; the refresh
//! route asks the store again, so a role change reaches the next refreshed access token, and a
//! removed user cannot refresh. `PRAGMA user_version` says which schema steps already ran.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Extension};
use axum::routing::get;
use tower_jwt_login::auth::{JwtAuthLayer, PathPolicy, Requirement};
use tower_jwt_login::client_addr::ClientAddrResolver;
use tower_jwt_login::login::{LoginService, RefreshService};
use tower_jwt_login::store::sql::sqlx::{self, SqlitePool, sqlite::SqliteConnectOptions};
use tower_jwt_login::store::{PasswordBackend, PasswordStore, StoredUser};
use tower_jwt_login::{Claims, Jwt, JwtConfig, JwtKey, Principal};
use zeroize::Zeroizing;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

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

/// The schema-specific part: the `users` table.
pub struct Users {
    pool: SqlitePool,
}

impl PasswordBackend for Users {
    type Error = sqlx::Error;

    async fn find(&self, name: &str) -> Result<Option<StoredUser>, sqlx::Error> {
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT password_hash, role FROM users WHERE username = ?1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(phc, role)| {
            let principal = match role {
                Some(role) => Principal::builder(name)
                    .claim("roles", [role])
                    .build()
                    .unwrap_or_else(|_| Principal::new(name)),
                None => Principal::new(name),
            };
            StoredUser::new(phc, principal)
        }))
    }

    async fn update_hash(&self, name: &str, old: &str, new: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE users SET password_hash = ?3, updated_at = strftime('%s', 'now')
             WHERE username = ?1 AND password_hash = ?2",
        )
        .bind(name)
        .bind(old)
        .bind(new)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// The users as a credential store.
pub type SqliteStore = PasswordStore<Users>;

/// Opens (or creates) the database at `path` and brings its schema up to date.
pub async fn open(path: &Path) -> Result<SqliteStore, BoxError> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePool::connect_with(options).await?;
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let applied: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut *tx)
        .await?;
    for (version, step) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        sqlx::raw_sql(step).execute(&mut *tx).await?;
        sqlx::raw_sql(&format!("PRAGMA user_version = {}", version + 1))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(PasswordStore::new(Users { pool }))
}

/// Adds a user (`role`: `None` for none); an error when the name is taken.
pub async fn add_user(
    store: &SqliteStore,
    username: &str,
    password: &str,
    role: Option<&str>,
) -> Result<(), BoxError> {
    let phc = store.hash(password).await?;
    let done = sqlx::query(
        "INSERT INTO users (username, password_hash, role) VALUES (?1, ?2, ?3)
         ON CONFLICT (username) DO NOTHING",
    )
    .bind(username)
    .bind(phc)
    .bind(role)
    .execute(&store.backend().pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err("user exists".into());
    }
    Ok(())
}

/// Replaces a user's password; an error for no such user.
pub async fn set_password(
    store: &SqliteStore,
    username: &str,
    password: &str,
) -> Result<(), BoxError> {
    let phc = store.hash(password).await?;
    let done = sqlx::query(
        "UPDATE users SET password_hash = ?2, updated_at = strftime('%s', 'now')
         WHERE username = ?1",
    )
    .bind(username)
    .bind(phc)
    .execute(&store.backend().pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err("no such user".into());
    }
    Ok(())
}

/// Sets (or with `None` removes) a user's role; the next refresh carries it.
pub async fn set_role(
    store: &SqliteStore,
    username: &str,
    role: Option<&str>,
) -> Result<(), BoxError> {
    let done = sqlx::query(
        "UPDATE users SET role = ?2, updated_at = strftime('%s', 'now') WHERE username = ?1",
    )
    .bind(username)
    .bind(role)
    .execute(&store.backend().pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err("no such user".into());
    }
    Ok(())
}

/// Every user and its role, by name.
pub async fn users(store: &SqliteStore) -> Result<Vec<(String, Option<String>)>, BoxError> {
    Ok(
        sqlx::query_as("SELECT username, role FROM users ORDER BY username")
            .fetch_all(&store.backend().pool)
            .await?,
    )
}

/// The server: login and refresh from the users, a protected `GET /api/whoami` and the
/// admin-only `GET /api/admin/users`. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so that the login throttle (on by
/// default) counts per client address.
pub fn app(store: SqliteStore, jwt: Jwt, failure_delay: Duration) -> Router {
    let store = Arc::new(store);
    let admin_store = Arc::clone(&store);
    // The TCP peer that `into_make_service_with_connect_info` records (spelled out, so that the
    // example works without the crate's `axum` feature too).
    let client_addr = ClientAddrResolver::new()
        .peer_from(|ext| ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0));
    let login = LoginService::new(jwt.clone(), Arc::clone(&store))
        .failure_delay(failure_delay)
        .client_addr(client_addr);
    let refresh = RefreshService::new(jwt.clone()).credentials(store);
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
                    match users(&store).await {
                        Ok(users) => users
                            .into_iter()
                            .map(|(name, role)| format!("{name} {}\n", role.as_deref().unwrap_or("-")))
                            .collect::<String>(),
                        Err(_) => "store unavailable\n".to_owned(),
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

/// Runs one command line (without the program name); `input` is stdin. `Ok(Some(db))` means
/// "serve from `db`".
pub async fn command(args: &[String], input: impl BufRead) -> Result<Option<PathBuf>, BoxError> {
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
            add_user(&open(&db).await?, username, &password, Some(role)).await?;
            println!(
                "added user {username:?} with role {role:?} to {}",
                db.display()
            );
            Ok(None)
        }
        [cmd, username, role] if cmd == "role" => {
            let role = (role != "-").then_some(role.as_str());
            set_role(&open(&db).await?, username, role).await?;
            println!(
                "set the role of {username:?} to {role:?} in {}",
                db.display()
            );
            Ok(None)
        }
        [cmd, username] if cmd == "add-user" || cmd == "passwd" => {
            let password = read_password(input)?;
            let store = open(&db).await?;
            if cmd == "add-user" {
                add_user(&store, username, &password, None).await?;
                println!("added user {username:?} to {}", db.display());
            } else {
                set_password(&store, username, &password).await?;
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
    let store = open(db).await?;
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
    let result = match command(&args, std::io::stdin().lock()).await {
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
