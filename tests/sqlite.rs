//! The own-schema example (examples/sqlite_store.rs: a `PasswordBackend` over an existing SQLite
//! table) against a real SQLite file in a temporary directory, over real HTTP on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[path = "../examples/sqlite_store.rs"]
#[allow(dead_code, unreachable_pub)]
mod sqlite_store;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{INVALID_CREDENTIALS, Req, spawn_router};
use sqlite_store::{SqliteStore, add_user, app, command, set_password};
use tower_jwt_login::store::sql::sqlx;
use tower_jwt_login::store::{CredentialStore, Credentials};
use tower_jwt_login::{Jwt, JwtConfig, JwtKey, TokenUse};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tower-jwt-login-sqlite-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn db(&self) -> PathBuf {
        self.0.join("users.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn jwt() -> Jwt {
    JwtConfig::new(JwtKey::from_secret("a test secret of at least 32 bytes!!").unwrap())
        .build()
        .unwrap()
}

fn body(user: &str, password: &str) -> String {
    serde_json::json!({ "username": user, "password": password }).to_string()
}

async fn serve(store: &SqliteStore) -> SocketAddr {
    spawn_router(app(store.clone(), jwt(), Duration::ZERO)).await
}

async fn login(addr: SocketAddr, user: &str, password: &str) -> common::Reply {
    Req::post("/api/login")
        .json(body(user, password))
        .send(addr)
        .await
}

async fn open(db: &Path) -> SqliteStore {
    sqlite_store::open(db).await.unwrap()
}

#[tokio::test]
async fn added_user_logs_in_over_http_and_reaches_a_protected_route() {
    let dir = TempDir::new();
    let store = open(&dir.db()).await;
    add_user(&store, "alice", "wonderland", None).await.unwrap();
    let addr = serve(&store).await;

    let reply = login(addr, "alice", "wonderland").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let access = reply.json()["access_token"].as_str().unwrap().to_owned();
    let claims = jwt().verify(&access, TokenUse::Access).unwrap();
    assert_eq!(claims.subject(), "alice");

    let reply = Req::get("/api/whoami").bearer(&access).send(addr).await;
    assert_eq!((reply.status, reply.text()), (200, "alice\n"));
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_the_same_401() {
    let dir = TempDir::new();
    let store = open(&dir.db()).await;
    add_user(&store, "alice", "wonderland", None).await.unwrap();
    let addr = serve(&store).await;

    let wrong = login(addr, "alice", "looking-glass").await;
    wrong.assert_error(
        401,
        "Invalid authorization credentials: invalid username or password",
    );
    let unknown = login(addr, "bob", "looking-glass").await;
    assert_eq!(unknown.text(), INVALID_CREDENTIALS);
    // Byte-for-byte the same answer.
    assert_eq!(wrong.status, unknown.status);
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(wrong.header("content-type"), unknown.header("content-type"));
}

#[tokio::test]
async fn password_change_invalidates_the_old_password() {
    let dir = TempDir::new();
    let store = open(&dir.db()).await;
    add_user(&store, "alice", "old-password", None)
        .await
        .unwrap();
    let addr = serve(&store).await;
    assert_eq!(login(addr, "alice", "old-password").await.status, 200);

    set_password(&store, "alice", "new-password").await.unwrap();
    login(addr, "alice", "old-password").await.assert_error(
        401,
        "Invalid authorization credentials: invalid username or password",
    );
    assert_eq!(login(addr, "alice", "new-password").await.status, 200);
}

#[tokio::test]
async fn users_persist_in_the_file_and_migration_runs_once() {
    let dir = TempDir::new();
    {
        let store = open(&dir.db()).await;
        add_user(&store, "alice", "wonderland", None).await.unwrap();
        assert_eq!(
            add_user(&store, "alice", "again", None)
                .await
                .unwrap_err()
                .to_string(),
            "user exists"
        );
        assert_eq!(
            set_password(&store, "nobody", "x")
                .await
                .unwrap_err()
                .to_string(),
            "no such user"
        );
    }
    // Reopening migrates nothing twice and keeps the user.
    let store = open(&dir.db()).await;
    let ok = store
        .authenticate(&Credentials::new("alice", "wonderland"))
        .await
        .unwrap();
    assert_eq!(ok.as_deref(), Some("alice"));
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.db().display()))
        .await
        .unwrap();
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&pool)
        .await
        .unwrap();
    // Two schema steps: the table, then its role column.
    assert_eq!(version, 2);
    let hash: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE username = 'alice'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains("wonderland"));
}

#[tokio::test]
async fn add_user_command_reads_the_password_from_stdin() {
    let dir = TempDir::new();
    let db = dir.db().to_string_lossy().into_owned();
    let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let out = command(
        &args(&["--db", &db, "add-user", "carol"]),
        &b"s3cret pass\n"[..],
    )
    .await
    .unwrap();
    assert!(out.is_none());
    let out = command(&args(&["--db", &db, "passwd", "carol"]), &b"changed\n"[..])
        .await
        .unwrap();
    assert!(out.is_none());
    assert!(
        command(&args(&["--db", &db, "add-user", "dave"]), &b"\n"[..])
            .await
            .is_err()
    );
    assert_eq!(
        command(&args(&["--db", &db]), &b""[..]).await.unwrap(),
        Some(dir.db())
    );

    let store = open(&dir.db()).await;
    let addr = serve(&store).await;
    assert_eq!(login(addr, "carol", "s3cret pass").await.status, 401);
    assert_eq!(login(addr, "carol", "changed").await.status, 200);
    assert_eq!(login(addr, "dave", "x").await.status, 401);
}

/// The example mounts login the way production code should: throttled per client address.
#[tokio::test]
async fn the_example_throttles_failed_logins_per_client_address() {
    let dir = TempDir::new();
    let store = open(&dir.db()).await;
    add_user(&store, "alice", "wonderland", None).await.unwrap();
    let addr = serve(&store).await;
    let attacker: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let wrong = || Req::post("/api/login").json(body("alice", "guess"));
    for _ in 0..10 {
        wrong().send_from(addr, attacker).await.assert_error(
            401,
            "Invalid authorization credentials: invalid username or password",
        );
    }
    let reply = wrong().send_from(addr, attacker).await;
    reply.assert_error(429, "Too many failed login attempts, try again later");
    assert!(reply.header("retry-after").is_some());
    let reply = Req::post("/api/login")
        .json(body("alice", "wonderland"))
        .send_from(addr, "127.0.0.2".parse().unwrap())
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

/// The role column: `add-user NAME --role admin` makes an administrator whose tokens carry
/// `"roles":["admin"]` and who reaches the admin-only route; anyone else gets the exact 403; a
/// role granted with `role NAME admin` arrives with the next refresh.
#[tokio::test]
async fn role_column_guards_the_admin_route_and_refresh_follows_role_changes() {
    let dir = TempDir::new();
    let db = dir.db().to_string_lossy().into_owned();
    let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    command(
        &args(&["--db", &db, "add-user", "root", "--role", "admin"]),
        &b"root-pw\n"[..],
    )
    .await
    .unwrap();
    command(
        &args(&["--db", &db, "add-user", "alice"]),
        &b"alice-pw\n"[..],
    )
    .await
    .unwrap();
    let store = open(&dir.db()).await;
    let addr = serve(&store).await;

    let tokens = |reply: common::Reply| {
        assert_eq!(reply.status, 200, "{}", reply.text());
        let v = reply.json();
        (
            v["access_token"].as_str().unwrap().to_owned(),
            v["refresh_token"].as_str().unwrap().to_owned(),
        )
    };
    let (root, _) = tokens(login(addr, "root", "root-pw").await);
    let claims = common::decode_parts(&root).1;
    assert!(
        claims.ends_with(",\"sub\":\"root\",\"usefor\":\"access\",\"roles\":[\"admin\"]}"),
        "{claims}"
    );
    let reply = Req::get("/api/admin/users").bearer(&root).send(addr).await;
    assert_eq!((reply.status, reply.text()), (200, "alice -\nroot admin\n"));

    let (alice, alice_refresh) = tokens(login(addr, "alice", "alice-pw").await);
    let reply = Req::get("/api/admin/users").bearer(&alice).send(addr).await;
    reply.assert_error(403, "Insufficient permissions");

    command(&args(&["--db", &db, "role", "alice", "admin"]), &b""[..])
        .await
        .unwrap();
    let reply = Req::get("/api/login/refresh")
        .bearer(&alice_refresh)
        .send(addr)
        .await;
    let alice = reply.json()["access_token"].as_str().unwrap().to_owned();
    let reply = Req::get("/api/admin/users").bearer(&alice).send(addr).await;
    assert_eq!(
        (reply.status, reply.text()),
        (200, "alice admin\nroot admin\n")
    );
}
