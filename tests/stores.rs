//! Credential stores behind the real login route: Argon2id hashes, Core's plaintext user, a
//! custom store with its own subjects, and a failing store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum::Router;
use common::*;
use tower_jwt_login::auth::{JwtAuthLayer, PathPolicy};
use tower_jwt_login::login::{LoginService, RefreshService};
use tower_jwt_login::store::{
    Argon2Error, Argon2Store, CredentialStore, Credentials, PlaintextUser, hash_password,
    verify_password,
};
use tower_jwt_login::{Claims, Jwt, JwtConfig, JwtKey};

fn jwt() -> Jwt {
    JwtConfig::new(JwtKey::from_secret("0123456789abcdef0123456789abcdef").unwrap())
        .build()
        .unwrap()
}

/// A protected `/api/whoami` answering the subject, plus the login routes for `store`.
async fn serve<S: CredentialStore>(store: S) -> (std::net::SocketAddr, Jwt) {
    let jwt = jwt();
    let app = Router::new()
        .route(
            "/api/whoami",
            axum::routing::get(|claims: axum::Extension<Claims>| async move {
                claims.subject().to_owned()
            }),
        )
        .route_service(
            "/api/login",
            LoginService::new(jwt.clone(), store).failure_delay(Duration::ZERO),
        )
        .route_service("/api/login/refresh", RefreshService::new(jwt.clone()))
        .layer(JwtAuthLayer::new(jwt.clone()).policy(PathPolicy::new().login_routes("/api")));
    (spawn_router(app).await, jwt)
}

fn body(user: &str, pass: &str) -> String {
    serde_json::json!({ "username": user, "password": pass }).to_string()
}

/// Asserts that `user`/`pass` is refused with Core's 401.
async fn assert_refused(addr: std::net::SocketAddr, user: &str, pass: &str) {
    let reply = Req::post("/api/login")
        .json(body(user, pass))
        .send(addr)
        .await;
    reply.assert_error(
        401,
        "Invalid authorization credentials: invalid username or password",
    );
}

async fn whoami(addr: std::net::SocketAddr, user: &str, pass: &str) -> String {
    let reply = Req::post("/api/login")
        .json(body(user, pass))
        .send(addr)
        .await;
    assert_eq!(reply.status, 200, "{user}: {}", reply.text());
    let access = reply.json()["access_token"].as_str().unwrap().to_owned();
    let reply = Req::get("/api/whoami").bearer(&access).send(addr).await;
    assert_eq!(reply.status, 200);
    reply.text().to_owned()
}

#[tokio::test]
async fn argon2_store_over_http() {
    let alice = hash_password("wonderland").unwrap();
    assert!(
        alice.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{alice}"
    );
    let store = Argon2Store::new()
        .with_hash("alice", &alice)
        .unwrap()
        .with_password("bob", "builder")
        .unwrap();
    assert_eq!(store.len(), 2);
    let (addr, _) = serve(store).await;

    assert_eq!(whoami(addr, "alice", "wonderland").await, "alice");
    assert_eq!(whoami(addr, "bob", "builder").await, "bob");
    for (user, pass) in [
        ("alice", "builder"),
        ("bob", "wonderland"),
        ("carol", "wonderland"),
        ("Alice", "wonderland"),
    ] {
        assert_refused(addr, user, pass).await;
    }
}

#[tokio::test]
async fn argon2_store_refuses_bad_hashes() {
    assert_eq!(
        Argon2Store::new().with_hash("a", "not a hash").unwrap_err(),
        Argon2Error::InvalidHash
    );
    // A valid PHC string of Argon2i (not id) is refused.
    let argon2i = hash_password("x")
        .unwrap()
        .replacen("$argon2id$", "$argon2i$", 1);
    assert_eq!(
        Argon2Store::new().with_hash("a", &argon2i).unwrap_err(),
        Argon2Error::NotArgon2id
    );
    assert!(verify_password("x", &hash_password("x").unwrap()));
    assert!(!verify_password("x", "garbage"));
}

#[tokio::test]
async fn plaintext_user_needs_both_fields_exactly() {
    let (addr, _) = serve(PlaintextUser::new("admin", "datarhei")).await;
    assert_eq!(whoami(addr, "admin", "datarhei").await, "admin");
    for (user, pass) in [
        ("Admin", "datarhei"),
        ("admin", "datarhei "),
        ("admi", "datarhei"),
        ("adminx", "datarhei"),
        ("datarhei", "admin"),
    ] {
        assert_refused(addr, user, pass).await;
    }
}

/// A store whose subjects are ids, not login names.
struct ById;

impl CredentialStore for ById {
    type Error = std::convert::Infallible;
    async fn authenticate(&self, c: &Credentials) -> Result<Option<String>, Self::Error> {
        Ok((c.username() == "carol" && c.password() == "pw").then(|| "user-0042".to_owned()))
    }
}

#[tokio::test]
async fn custom_store_decides_the_subject() {
    let (addr, jwt) = serve(ById).await;
    assert_eq!(whoami(addr, "carol", "pw").await, "user-0042");
    // The refresh token carries the same subject.
    let reply = Req::post("/api/login")
        .json(body("carol", "pw"))
        .send(addr)
        .await;
    let refresh = reply.json()["refresh_token"].as_str().unwrap().to_owned();
    let claims = jwt
        .verify(&refresh, tower_jwt_login::TokenUse::Refresh)
        .unwrap();
    assert_eq!(claims.subject(), "user-0042");
}

#[derive(Debug)]
struct DbDown;
impl std::fmt::Display for DbDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection refused: postgres://admin:hunter2@db")
    }
}
impl std::error::Error for DbDown {}

struct Failing;
impl CredentialStore for Failing {
    type Error = DbDown;
    async fn authenticate(&self, _: &Credentials) -> Result<Option<String>, DbDown> {
        Err(DbDown)
    }
}

#[tokio::test]
async fn failing_store_is_a_500_that_leaks_nothing() {
    let (addr, _) = serve(Failing).await;
    let reply = Req::post("/api/login")
        .json(body("admin", "x"))
        .send(addr)
        .await;
    reply.assert_error(500, "Internal Server Error");
    assert!(!reply.text().contains("hunter2"));
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let creds = Credentials::new("alice", "wonderland");
    assert!(!format!("{creds:?}").contains("wonderland"));
    let store = PlaintextUser::new("admin", "datarhei");
    assert!(!format!("{store:?}").contains("datarhei"));
    let key = JwtKey::from_secret("super-secret-key-material-000000").unwrap();
    assert!(!format!("{key:?}").contains("super"));
    let pair = jwt().issue_pair("admin");
    assert_eq!(format!("{pair:?}"), "TokenPair { .. }");
}
