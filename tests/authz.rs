//! Authorization over real HTTP on 127.0.0.1: a store with roles and a tenant (Argon2, changed at
//! runtime through its handle) → the extra claims in both tokens, byte for byte and in order →
//! typed reads → admin-only routes (policy requirement, `RequireLayer`, `RequireRole`) answering
//! 200 and the exact 403 → refresh re-reading the principal (role changes, disabled users) →
//! tokens without extra claims keeping Core's bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use common::*;
use tower_jwt_login::auth::{JwtAuthLayer, PathPolicy, RequireLayer, Requirement};
use tower_jwt_login::axum::{RequireRole, RoleName};
use tower_jwt_login::login::{LoginService, RefreshService};
use tower_jwt_login::store::{Argon2Store, Argon2Users};
use tower_jwt_login::token::PrincipalError;
use tower_jwt_login::{Claims, ExtraClaims, Jwt, JwtConfig, JwtKey};

const FORBIDDEN: &str =
    "{\"code\":403,\"message\":\"Forbidden\",\"details\":[\"Insufficient permissions\"]}\n";
const INSUFFICIENT_SCOPE: &str =
    "Bearer error=\"insufficient_scope\", error_description=\"insufficient permissions\"";

/// The app's own claims type.
#[derive(Clone, serde::Deserialize)]
struct App {
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    tenant: Option<String>,
}

struct Admin;
impl RoleName for Admin {
    const ROLE: &'static str = "admin";
}

struct Server {
    addr: SocketAddr,
    users: Argon2Users,
}

fn jwt() -> Jwt {
    JwtConfig::new(JwtKey::from_secret("0123456789abcdef0123456789abcdef").unwrap())
        .build()
        .unwrap()
}

/// root (admin, tenant acme), bob (no extra claims), carol (no extra claims). `lookup`: whether
/// the refresh route asks the store for the current principal.
async fn server(lookup: bool) -> Server {
    let jwt = jwt();
    let store = Arc::new(
        Argon2Store::new()
            .with_password("root", "root-pw")
            .unwrap()
            .with_password("bob", "bob-pw")
            .unwrap()
            .with_password("carol", "carol-pw")
            .unwrap(),
    );
    let users = store.users();
    assert_eq!(
        users.set_claims("root", |p| p
            .claim("roles", ["admin"])
            .claim("tenant", "acme")),
        Ok(true)
    );
    let mut refresh = RefreshService::new(jwt.clone());
    if lookup {
        refresh = refresh.principals(Arc::clone(&store));
    }
    let login = LoginService::new(jwt.clone(), store)
        .failure_delay(Duration::ZERO)
        .throttle(None);
    let app = Router::new()
        .route(
            "/api/whoami",
            get(|claims: Claims| async move { claims.subject().to_owned() }),
        )
        .route("/api/admin/stats", get(|| async { "stats" }))
        .route(
            "/api/tenant",
            get(|ExtraClaims(app): ExtraClaims<App>| async move {
                format!("{} {:?}", app.tenant.unwrap_or_default(), app.roles)
            }),
        )
        .route(
            "/api/purge",
            get(|| async { "purged" }).route_layer(RequireLayer::new(Requirement::role("admin"))),
        )
        .route(
            "/api/reindex",
            get(|admin: RequireRole<Admin>| async move {
                format!("reindexed by {}", admin.claims().subject())
            }),
        )
        .route_service("/api/login", login)
        .route_service("/api/login/refresh", refresh)
        .layer(
            JwtAuthLayer::new(jwt).claims_type::<App>().policy(
                PathPolicy::new()
                    .login_routes("/api")
                    .require("/api/admin/*", Requirement::role("admin")),
            ),
        );
    Server {
        addr: spawn_router(app).await,
        users,
    }
}

/// The claims JSON of `token`.
fn payload(token: &str) -> String {
    decode_parts(token).1
}

/// Core's claims of a minted `token` for `sub` and `usefor`, followed by `extra` (members with
/// their leading commas), rebuilt from the token's own `exp`/`iat`/`jti`: the exact bytes the
/// token must carry.
fn expected(token: &str, sub: &str, usefor: &str, ttl: u64, extra: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(&payload(token)).unwrap();
    let iat = v["iat"].as_u64().unwrap();
    format!(
        "{{\"exi\":{ttl},\"exp\":{},\"iat\":{iat},\"iss\":\"datarhei-core\",\"jti\":\"{}\",\"sub\":\"{sub}\",\"usefor\":\"{usefor}\"{extra}}}",
        iat + ttl,
        v["jti"].as_str().unwrap()
    )
}

async fn get_with(addr: SocketAddr, path: &str, token: &str) -> Reply {
    Req::get(path).bearer(token).send(addr).await
}

#[track_caller]
fn assert_forbidden(reply: &Reply) {
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert_eq!(reply.text(), FORBIDDEN);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("www-authenticate"), Some(INSUFFICIENT_SCOPE));
}

async fn refresh(addr: SocketAddr, refresh_token: &str) -> Reply {
    Req::get("/api/login/refresh")
        .bearer(refresh_token)
        .send(addr)
        .await
}

#[tokio::test]
async fn extra_claims_follow_cores_in_both_tokens_in_order() {
    let s = server(true).await;
    let (access, refresh_token) = login_at(s.addr, "/api/login", "root", "root-pw").await;
    let extra = ",\"roles\":[\"admin\"],\"tenant\":\"acme\"";
    assert_eq!(
        payload(&access),
        expected(&access, "root", "access", 600, extra)
    );
    assert_eq!(
        payload(&refresh_token),
        expected(&refresh_token, "root", "refresh", 86_400, extra)
    );
    // The refreshed access token carries them too, in the same order.
    let reply = refresh(s.addr, &refresh_token).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let new_access = reply.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        payload(&new_access),
        expected(&new_access, "root", "access", 600, extra)
    );
}

#[tokio::test]
async fn tokens_without_extra_claims_keep_cores_bytes() {
    let s = server(true).await;
    let (access, refresh_token) = login_at(s.addr, "/api/login", "carol", "carol-pw").await;
    assert_eq!(
        payload(&access),
        expected(&access, "carol", "access", 600, "")
    );
    assert_eq!(
        payload(&refresh_token),
        expected(&refresh_token, "carol", "refresh", 86_400, "")
    );
    assert_eq!(
        decode_parts(&access).0,
        "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
    );
    let reply = refresh(s.addr, &refresh_token).await;
    let new_access = reply.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        payload(&new_access),
        expected(&new_access, "carol", "access", 600, "")
    );
}

#[tokio::test]
async fn typed_claims_are_read_once_by_the_layer() {
    let s = server(true).await;
    let (root, _) = login_at(s.addr, "/api/login", "root", "root-pw").await;
    let reply = get_with(s.addr, "/api/tenant", &root).await;
    assert_eq!((reply.status, reply.text()), (200, "acme [\"admin\"]"));
    let (carol, _) = login_at(s.addr, "/api/login", "carol", "carol-pw").await;
    let reply = get_with(s.addr, "/api/tenant", &carol).await;
    assert_eq!((reply.status, reply.text()), (200, " []"));
}

#[tokio::test]
async fn admin_routes_answer_200_for_admins_and_403_for_others() {
    let s = server(true).await;
    let (root, _) = login_at(s.addr, "/api/login", "root", "root-pw").await;
    let (bob, _) = login_at(s.addr, "/api/login", "bob", "bob-pw").await;
    // The layer's policy requirement.
    let reply = get_with(s.addr, "/api/admin/stats", &root).await;
    assert_eq!((reply.status, reply.text()), (200, "stats"));
    assert_forbidden(&get_with(s.addr, "/api/admin/stats", &bob).await);
    // A non-plain path must meet every requirement: no way around `/api/admin/*`.
    assert_forbidden(&get_with(s.addr, "/api/x/../admin/stats", &bob).await);
    // Without a token it is the usual 401, never 403.
    Req::get("/api/admin/stats")
        .send(s.addr)
        .await
        .assert_unauthorized(false);
    // One route guarded with `route_layer(RequireLayer)`, one with the `RequireRole` extractor.
    let reply = get_with(s.addr, "/api/purge", &root).await;
    assert_eq!((reply.status, reply.text()), (200, "purged"));
    assert_forbidden(&get_with(s.addr, "/api/purge", &bob).await);
    let reply = get_with(s.addr, "/api/reindex", &root).await;
    assert_eq!((reply.status, reply.text()), (200, "reindexed by root"));
    let reply = get_with(s.addr, "/api/reindex", &bob).await;
    assert_eq!((reply.status, reply.text()), (403, FORBIDDEN));
    // Unguarded routes are open to both.
    assert_eq!(get_with(s.addr, "/api/whoami", &bob).await.text(), "bob");
}

#[tokio::test]
async fn refresh_picks_up_a_changed_role() {
    let s = server(true).await;
    let (_, root_refresh) = login_at(s.addr, "/api/login", "root", "root-pw").await;
    let (_, bob_refresh) = login_at(s.addr, "/api/login", "bob", "bob-pw").await;
    // Demote root, promote bob, while their tokens live.
    assert_eq!(s.users.set_roles("root", Vec::<String>::new()), Ok(true));
    assert_eq!(s.users.set_roles("bob", ["admin"]), Ok(true));

    let reply = refresh(s.addr, &root_refresh).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let root = reply.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(payload(&root), expected(&root, "root", "access", 600, ""));
    assert_forbidden(&get_with(s.addr, "/api/admin/stats", &root).await);

    let reply = refresh(s.addr, &bob_refresh).await;
    let bob = reply.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        payload(&bob),
        expected(&bob, "bob", "access", 600, ",\"roles\":[\"admin\"]")
    );
    let reply = get_with(s.addr, "/api/admin/stats", &bob).await;
    assert_eq!((reply.status, reply.text()), (200, "stats"));
}

#[tokio::test]
async fn without_the_lookup_refresh_carries_the_extra_claims_over() {
    let s = server(false).await;
    let (_, root_refresh) = login_at(s.addr, "/api/login", "root", "root-pw").await;
    s.users.set_roles("root", Vec::<String>::new()).unwrap();
    let reply = refresh(s.addr, &root_refresh).await;
    let root = reply.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        payload(&root),
        expected(
            &root,
            "root",
            "access",
            600,
            ",\"roles\":[\"admin\"],\"tenant\":\"acme\""
        )
    );
}

#[tokio::test]
async fn a_disabled_user_can_neither_refresh_nor_log_in() {
    let s = server(true).await;
    let (access, bob_refresh) = login_at(s.addr, "/api/login", "bob", "bob-pw").await;
    assert!(s.users.disable("bob"));
    let reply = refresh(s.addr, &bob_refresh).await;
    reply.assert_error(401, "Missing or invalid JWT token");
    assert_eq!(reply.text(), INVALID_TOKEN);
    assert_eq!(
        reply.header("www-authenticate"),
        Some("Bearer error=\"invalid_token\", error_description=\"token revoked\"")
    );
    // The login is refused exactly like a wrong password.
    let login = |password: &str| {
        Req::post("/api/login")
            .json(serde_json::json!({ "username": "bob", "password": password }).to_string())
    };
    let disabled = login("bob-pw").send(s.addr).await;
    let wrong = login("nope").send(s.addr).await;
    assert_eq!(disabled.text(), INVALID_CREDENTIALS);
    assert_eq!(
        (disabled.status, disabled.headers.len()),
        (wrong.status, wrong.headers.len())
    );
    assert_eq!(disabled.body, wrong.body);
    // The access token already issued lives out its lifetime (stateless, as documented).
    assert_eq!(get_with(s.addr, "/api/whoami", &access).await.status, 200);
    // Enabled again: refresh works. Removed: refused.
    assert!(s.users.enable("bob"));
    assert_eq!(refresh(s.addr, &bob_refresh).await.status, 200);
    assert!(s.users.remove("bob"));
    assert_eq!(refresh(s.addr, &bob_refresh).await.text(), INVALID_TOKEN);
}

#[tokio::test]
async fn a_changed_password_takes_effect_at_the_next_login() {
    let s = server(true).await;
    login_at(s.addr, "/api/login", "bob", "bob-pw").await;
    let users = s.users.clone();
    tokio::task::spawn_blocking(move || users.set_password("bob", "new-pw"))
        .await
        .unwrap()
        .unwrap();
    let old = Req::post("/api/login")
        .json(r#"{"username":"bob","password":"bob-pw"}"#)
        .send(s.addr)
        .await;
    assert_eq!(old.text(), INVALID_CREDENTIALS);
    login_at(s.addr, "/api/login", "bob", "new-pw").await;
    let users = s.users.clone();
    tokio::task::spawn_blocking(move || users.add_user("dave", "dave-pw"))
        .await
        .unwrap()
        .unwrap();
    login_at(s.addr, "/api/login", "dave", "dave-pw").await;
}

#[test]
fn reserved_and_oversized_claims_are_refused_when_set() {
    let store = Argon2Store::new();
    let users = store.users();
    users
        .set_hash(
            "eve",
            "$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )
        .unwrap();
    for name in [
        "sub", "exp", "usefor", "iss", "jti", "exi", "iat", "nbf", "aud", "sid",
    ] {
        assert_eq!(
            users.set_claims("eve", |p| p.claim(name, "x")),
            Err(PrincipalError::Reserved(name.to_owned()))
        );
    }
    let big = "x".repeat(1024);
    assert!(matches!(
        users.set_claims("eve", |p| p.claim("blob", &big)),
        Err(PrincipalError::TooLarge { limit: 1024, .. })
    ));
    assert_eq!(
        users.set_claims("eve", |p| p.max_extra_len(2048).claim("blob", &big)),
        Ok(true)
    );
    assert_eq!(
        users.set_claims("nobody", |p| p.claim("roles", ["x"])),
        Ok(false)
    );
}
