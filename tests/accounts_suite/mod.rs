//! One suite for every account backend: API keys created, listed, exchanged and revoked over
//! real HTTP on 127.0.0.1 (an axum router with `JwtAuthLayer` around `LoginService` and
//! `ApiKeyService`), and password logins through the backend's credential store. Run against
//! `Argon2Store` + `MemoryApiKeyStore` (tests/apikeys.rs) and against the SQL store on
//! PostgreSQL and SQLite (tests/sql.rs).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, async_fn_in_trait)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};
use tower_jwt_login::apikey::{ApiKey, ApiKeyInfo, ApiKeyService, ApiKeyStore};
use tower_jwt_login::auth::{JwtAuthLayer, PathPolicy, Requirement};
use tower_jwt_login::login::{LoginService, RefreshService};
use tower_jwt_login::store::CredentialStore;
use tower_jwt_login::throttle::LoginThrottle;
use tower_jwt_login::{Claims, Jwt, JwtConfig, JwtKey, TokenUse};

use crate::common::{INVALID_CREDENTIALS, Reply, Req, decode_parts, spawn_router};

/// What the suite needs of a backend: its stores and the user management it is tested with.
pub trait Accounts: Send + Sync + 'static {
    /// The credential store (users, passwords, roles).
    type Creds: CredentialStore;
    /// The API key store.
    type Keys: ApiKeyStore;

    fn creds(&self) -> Arc<Self::Creds>;
    fn keys(&self) -> Arc<Self::Keys>;
    async fn add_user(&self, name: &str, password: &str, roles: &[&str]);
    async fn set_roles(&self, name: &str, roles: &[&str]);
    async fn set_disabled(&self, name: &str, disabled: bool);
}

pub fn jwt() -> Jwt {
    JwtConfig::new(JwtKey::from_secret("0123456789abcdef0123456789abcdef").unwrap())
        .build()
        .unwrap()
}

pub const KEYS: &str = "/api/v3/auth/keys";

/// The app: login (passwords and API keys), refresh (asking the store), the key routes, a
/// protected `/api/whoami` (subject and extra claims) and the admin-only `/api/admin`.
pub async fn serve<A: Accounts>(
    accounts: &A,
    delay: Duration,
    throttle: Option<LoginThrottle>,
) -> SocketAddr {
    let jwt = jwt();
    let login = LoginService::new(jwt.clone(), accounts.creds())
        .api_keys(accounts.keys())
        .failure_delay(delay)
        .throttle(throttle);
    let refresh = RefreshService::new(jwt.clone()).principals(accounts.creds());
    let keys = ApiKeyService::new(accounts.keys());
    let app = Router::new()
        .route(
            "/api/whoami",
            get(|claims: Claims| async move {
                format!(
                    "{} {}",
                    claims.subject(),
                    claims.extra_json().unwrap_or("{}")
                )
            }),
        )
        .route("/api/admin", get(|| async { "admin only" }))
        .route_service("/api/login", login)
        .route_service("/api/login/refresh", refresh)
        .route_service(KEYS, keys.clone())
        .route_service("/api/v3/auth/keys/{id}", keys)
        .layer(
            JwtAuthLayer::new(jwt).policy(
                PathPolicy::new()
                    .login_routes("/api")
                    .require("/api/admin", Requirement::role("admin")),
            ),
        );
    spawn_router(app).await
}

pub async fn password_login(addr: SocketAddr, user: &str, password: &str) -> Reply {
    Req::post("/api/login")
        .json(json!({ "username": user, "password": password }).to_string())
        .send(addr)
        .await
}

/// Logs in with a password; the access token.
pub async fn access(addr: SocketAddr, user: &str, password: &str) -> String {
    let reply = password_login(addr, user, password).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["access_token"].as_str().unwrap().to_owned()
}

pub async fn exchange(addr: SocketAddr, key: &str) -> Reply {
    Req::post("/api/login").bearer(key).send(addr).await
}

pub async fn create(addr: SocketAddr, access: &str, body: Value) -> Reply {
    Req::post(KEYS)
        .bearer(access)
        .json(body.to_string())
        .send(addr)
        .await
}

pub async fn list(addr: SocketAddr, access: &str) -> Reply {
    Req::get(KEYS).bearer(access).send(addr).await
}

pub async fn revoke(addr: SocketAddr, access: &str, id: &str) -> Reply {
    Req::new("DELETE", &format!("{KEYS}/{id}"))
        .bearer(access)
        .send(addr)
        .await
}

pub async fn whoami(addr: SocketAddr, access: &str) -> Reply {
    Req::get("/api/whoami").bearer(access).send(addr).await
}

fn now() -> u64 {
    crate::common::now()
}

/// The created key's (id, key), after checking the whole 201 answer.
#[track_caller]
fn created(reply: &Reply, name: &str, expires_in: Option<u64>) -> (String, String) {
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert!(reply.text().ends_with("}\n"));
    let v = reply.json();
    let object = v.as_object().unwrap();
    let mut members: Vec<&str> = object.keys().map(String::as_str).collect();
    members.sort_unstable();
    assert_eq!(
        members,
        ["created_at", "expires_at", "id", "key", "name"],
        "exactly these members"
    );
    let id = v["id"].as_str().unwrap().to_owned();
    let key = v["key"].as_str().unwrap().to_owned();
    assert_eq!(v["name"], name);
    let created_at = v["created_at"].as_u64().unwrap();
    assert!(created_at.abs_diff(now()) <= 5, "{created_at}");
    match expires_in {
        None => assert_eq!(v["expires_at"], Value::Null),
        Some(s) => assert_eq!(v["expires_at"].as_u64().unwrap(), created_at + s),
    }
    assert!(ApiKey::parse(&key).is_some(), "{key}");
    // The reply's text is exactly what the members say (compact, in this order).
    assert_eq!(
        reply.text(),
        format!(
            "{{\"id\":{},\"name\":{},\"key\":\"{key}\",\"created_at\":{created_at},\"expires_at\":{}}}\n",
            serde_json::to_string(&id).unwrap(),
            serde_json::to_string(name).unwrap(),
            v["expires_at"]
        )
    );
    (id, key)
}

/// The pair of a successful exchange: (access, refresh), after checking the answer.
#[track_caller]
fn pair(reply: &Reply) -> (String, String) {
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let v = reply.json();
    (
        v["access_token"].as_str().unwrap().to_owned(),
        v["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// The whole life of a key: created (shown once), listed without the secret, exchanged for a
/// pair of the owner whose claims name the key (last use recorded), revoked (204), and then
/// refused like a wrong password; revoking it again is a 404.
pub async fn keys_are_created_listed_exchanged_and_revoked<A: Accounts>(accounts: A) {
    accounts.add_user("alice", "alice-pw", &[]).await;
    let addr = serve(&accounts, Duration::ZERO, None).await;
    let alice = access(addr, "alice", "alice-pw").await;

    let reply = list(addr, &alice).await;
    assert_eq!((reply.status, reply.text()), (200, "[]\n"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));

    let reply = create(addr, &alice, json!({ "name": "ci" })).await;
    let (id, key) = created(&reply, "ci", None);
    let created_at = reply.json()["created_at"].as_u64().unwrap();

    let reply = list(addr, &alice).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.text(),
        format!(
            "[{{\"id\":\"{id}\",\"name\":\"ci\",\"roles\":null,\"created_at\":{created_at},\"expires_at\":null,\"last_used_at\":null}}]\n"
        )
    );
    assert!(!reply.text().contains(&key[4..]), "never the key");

    let (access_token, refresh_token) = pair(&exchange(addr, &key).await);
    let claims = jwt().verify(&access_token, TokenUse::Access).unwrap();
    assert_eq!(claims.subject(), "alice");
    assert_eq!(
        claims.extra_json(),
        Some(format!("{{\"api_key\":\"{id}\"}}").as_str())
    );
    let refresh = jwt().verify(&refresh_token, TokenUse::Refresh).unwrap();
    assert_eq!(refresh.extra_json(), claims.extra_json());
    let reply = whoami(addr, &access_token).await;
    assert_eq!(
        (reply.status, reply.text().to_owned()),
        (200, format!("alice {{\"api_key\":\"{id}\"}}"))
    );

    let listed = list(addr, &alice).await.json();
    let last_used = listed[0]["last_used_at"].as_u64().unwrap();
    assert!(last_used >= created_at && last_used.abs_diff(now()) <= 5);

    let reply = revoke(addr, &alice, &id).await;
    assert_eq!(reply.status, 204);
    assert!(reply.body.is_empty());
    assert_eq!(reply.header("content-type"), None);
    let reply = exchange(addr, &key).await;
    assert_eq!((reply.status, reply.text()), (401, INVALID_CREDENTIALS));
    revoke(addr, &alice, &id)
        .await
        .assert_error(404, "API key not found");
    let reply = list(addr, &alice).await;
    assert_eq!((reply.status, reply.text()), (200, "[]\n"));
}

/// A key's tokens carry the owner's current roles restricted to the key's: never a role the
/// key was not given, never a role the owner lost since; asking for a role one does not hold
/// is a 400. A refresh that asks the store keeps the restriction only once it honours the key
/// claim, so this checks the exchanged tokens themselves.
pub async fn a_key_carries_at_most_its_roles<A: Accounts>(accounts: A) {
    accounts
        .add_user("root", "root-pw", &["admin", "viewer"])
        .await;
    let addr = serve(&accounts, Duration::ZERO, None).await;
    let root = access(addr, "root", "root-pw").await;
    assert_eq!(
        Req::get("/api/admin").bearer(&root).send(addr).await.text(),
        "admin only"
    );

    let reply = create(
        addr,
        &root,
        json!({ "name": "read-only", "roles": ["viewer"], "expires_in": 3600 }),
    )
    .await;
    let (viewer_id, viewer_key) = created(&reply, "read-only", Some(3600));
    let (all_id, all_key) = created(
        &create(addr, &root, json!({ "name": "all" })).await,
        "all",
        None,
    );

    let (token, _) = pair(&exchange(addr, &viewer_key).await);
    let claims = jwt().verify(&token, TokenUse::Access).unwrap();
    assert_eq!(
        claims.extra_json(),
        Some(format!("{{\"roles\":[\"viewer\"],\"api_key\":\"{viewer_id}\"}}").as_str())
    );
    Req::get("/api/admin")
        .bearer(&token)
        .send(addr)
        .await
        .assert_error(403, "Insufficient permissions");
    let (token, _) = pair(&exchange(addr, &all_key).await);
    assert_eq!(
        decode_parts(&token).1.split(",\"sub\"").nth(1).unwrap(),
        format!(
            ":\"root\",\"usefor\":\"access\",\"roles\":[\"admin\",\"viewer\"],\"api_key\":\"{all_id}\"}}"
        )
    );

    let listed = list(addr, &root).await.json();
    let roles_of = |id: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == id)
            .unwrap()["roles"]
            .clone()
    };
    assert_eq!(roles_of(&viewer_id), json!(["viewer"]));
    assert_eq!(roles_of(&all_id), Value::Null);

    // The owner loses `viewer`: the key restricted to it now mints no role at all.
    accounts.set_roles("root", &["admin"]).await;
    let (token, _) = pair(&exchange(addr, &viewer_key).await);
    let claims = jwt().verify(&token, TokenUse::Access).unwrap();
    assert_eq!(
        claims.extra_json(),
        Some(format!("{{\"roles\":[],\"api_key\":\"{viewer_id}\"}}").as_str())
    );

    // Checked against the caller's token: a fresh one, without `viewer`.
    let root = access(addr, "root", "root-pw").await;
    create(
        addr,
        &root,
        json!({ "name": "escalate", "roles": ["viewer"] }),
    )
    .await
    .assert_error(
        400,
        "Invalid API key request: roles must be a subset of your own roles",
    );
}

/// A disabled user's keys stop working (the same 401 as a wrong key) and work again once it is
/// enabled; the user's password login is refused meanwhile too.
pub async fn keys_of_a_disabled_user_stop_working<A: Accounts>(accounts: A) {
    accounts.add_user("alice", "alice-pw", &[]).await;
    let addr = serve(&accounts, Duration::ZERO, None).await;
    let alice = access(addr, "alice", "alice-pw").await;
    let (_, key) = created(
        &create(addr, &alice, json!({ "name": "ci" })).await,
        "ci",
        None,
    );
    pair(&exchange(addr, &key).await);

    accounts.set_disabled("alice", true).await;
    let reply = exchange(addr, &key).await;
    assert_eq!((reply.status, reply.text()), (401, INVALID_CREDENTIALS));
    let reply = password_login(addr, "alice", "alice-pw").await;
    assert_eq!((reply.status, reply.text()), (401, INVALID_CREDENTIALS));

    accounts.set_disabled("alice", false).await;
    pair(&exchange(addr, &key).await);
}

/// Keys are per user: bob neither sees nor revokes alice's key (404, exactly like a key that
/// does not exist).
pub async fn another_users_key_is_not_found<A: Accounts>(accounts: A) {
    accounts.add_user("alice", "alice-pw", &[]).await;
    accounts.add_user("bob", "bob-pw", &[]).await;
    let addr = serve(&accounts, Duration::ZERO, None).await;
    let alice = access(addr, "alice", "alice-pw").await;
    let bob = access(addr, "bob", "bob-pw").await;
    let (id, key) = created(
        &create(addr, &alice, json!({ "name": "mine" })).await,
        "mine",
        None,
    );

    let reply = list(addr, &bob).await;
    assert_eq!((reply.status, reply.text()), (200, "[]\n"));
    let theirs = revoke(addr, &bob, &id).await;
    theirs.assert_error(404, "API key not found");
    let none = revoke(addr, &bob, "no-such-key").await;
    assert_eq!(theirs.body, none.body);
    // Still alice's, still working.
    pair(&exchange(addr, &key).await);
    assert_eq!(list(addr, &alice).await.json()[0]["id"], id.as_str());
}

/// An expired key is refused like a wrong one (the key is made in the store directly, with an
/// expiry in the past).
pub async fn an_expired_key_is_refused<A: Accounts>(accounts: A) {
    accounts.add_user("alice", "alice-pw", &[]).await;
    let addr = serve(&accounts, Duration::ZERO, None).await;
    let key = ApiKey::generate();
    let info = |id: &str, expires_at| ApiKeyInfo {
        id: id.into(),
        subject: "alice".into(),
        name: id.into(),
        roles: None,
        created_at: now() - 100,
        expires_at: Some(expires_at),
        last_used_at: None,
    };
    accounts
        .keys()
        .create(&info("old", now() - 1), &key.hash())
        .await
        .unwrap();
    let reply = exchange(addr, key.expose_secret()).await;
    assert_eq!((reply.status, reply.text()), (401, INVALID_CREDENTIALS));
    let fresh = ApiKey::generate();
    accounts
        .keys()
        .create(&info("fresh", now() + 3600), &fresh.hash())
        .await
        .unwrap();
    pair(&exchange(addr, fresh.expose_secret()).await);
}

/// A wrong key costs what a wrong password costs: the failure delay, and a charge against the
/// throttle (here 3 failures per account and address: the fourth try of the same wrong key is
/// refused with 429 at once, a made-up key and a key of the right shape alike); a valid key
/// from another address still works.
pub async fn a_wrong_key_costs_what_a_wrong_password_costs<A: Accounts>(accounts: A) {
    accounts.add_user("alice", "alice-pw", &[]).await;
    let delay = Duration::from_millis(300);
    let throttle = LoginThrottle::new(3, Duration::from_secs(600)).unwrap();
    let addr = serve(&accounts, delay, Some(throttle)).await;
    let attacker: std::net::IpAddr = "127.0.0.3".parse().unwrap();
    let user: std::net::IpAddr = "127.0.0.4".parse().unwrap();

    let wrong = ApiKey::generate();
    let mut typo = wrong.expose_secret().to_owned();
    typo.pop();
    typo.push(if wrong.expose_secret().ends_with('a') {
        'b'
    } else {
        'a'
    });
    for key in [wrong.expose_secret(), typo.as_str()] {
        for _ in 0..3 {
            let started = Instant::now();
            let reply = Req::post("/api/login")
                .bearer(key)
                .send_from(addr, attacker)
                .await;
            assert_eq!((reply.status, reply.text()), (401, INVALID_CREDENTIALS));
            assert!(started.elapsed() >= delay, "the failure delay applies");
        }
        let reply = Req::post("/api/login")
            .bearer(key)
            .send_from(addr, attacker)
            .await;
        reply.assert_error(429, "Too many failed login attempts, try again later");
        assert!(reply.header("retry-after").is_some());
    }

    let body = json!({ "username": "alice", "password": "alice-pw" }).to_string();
    let reply = Req::post("/api/login")
        .json(body)
        .send_from(addr, user)
        .await;
    let alice = reply.json()["access_token"].as_str().unwrap().to_owned();
    let (_, key) = created(
        &create(addr, &alice, json!({ "name": "ci" })).await,
        "ci",
        None,
    );
    let reply = Req::post("/api/login")
        .bearer(&key)
        .send_from(addr, user)
        .await;
    pair(&reply);
}

/// Bad requests get the §2 error with a clear detail; no claims (the service without the
/// layer's verification) is the 401; a token that was itself exchanged for a key cannot manage
/// keys (403).
pub async fn bad_key_requests_get_clear_errors<A: Accounts>(accounts: A) {
    accounts.add_user("alice", "alice-pw", &["viewer"]).await;
    let addr = serve(&accounts, Duration::ZERO, None).await;
    let alice = access(addr, "alice", "alice-pw").await;
    let shape = "Invalid API key request: expected a JSON object with a name (1 to 100 \
                 characters) and optionally expires_in (seconds) and roles (an array of strings)";
    for body in [
        json!({}),
        json!({ "name": "" }),
        json!({ "name": "   " }),
        json!({ "name": "x".repeat(101) }),
        json!({ "name": "tab\there" }),
        json!({ "name": 7 }),
        json!({ "name": "ci", "roles": "viewer" }),
        json!({ "name": "ci", "expires_in": -1 }),
        json!({ "name": "ci", "scope": "all" }),
        json!(["ci"]),
    ] {
        create(addr, &alice, body).await.assert_error(400, shape);
    }
    create(addr, &alice, json!({ "name": "ci", "expires_in": 0 }))
        .await
        .assert_error(
            400,
            "Invalid API key request: expires_in must be between 1 and 315360000 seconds",
        );
    Req::post(KEYS)
        .bearer(&alice)
        .body("name=ci")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send(addr)
        .await
        .assert_error(415, "Expected Content-Type: application/json");
    Req::new("PUT", KEYS)
        .bearer(&alice)
        .send(addr)
        .await
        .assert_error(404, "Not Found");
    Req::get(&format!("{KEYS}/abc"))
        .bearer(&alice)
        .send(addr)
        .await
        .assert_error(404, "Not Found");
    // Without a token the layer refuses before the service.
    Req::get(KEYS).send(addr).await.assert_unauthorized(false);

    let (_, key) = created(
        &create(addr, &alice, json!({ "name": "ci" })).await,
        "ci",
        None,
    );
    let (key_token, _) = pair(&exchange(addr, &key).await);
    for reply in [
        list(addr, &key_token).await,
        create(addr, &key_token, json!({ "name": "more" })).await,
        revoke(addr, &key_token, "x").await,
    ] {
        reply.assert_error(403, "API key tokens cannot manage API keys");
    }
}

/// Password logins through the backend's store: right, wrong, unknown and disabled, with the
/// same 401 for every failure; roles in the tokens; a refresh re-reads them.
pub async fn password_logins_through_the_store<A: Accounts>(accounts: A) {
    accounts.add_user("alice", "wonderland", &["admin"]).await;
    let addr = serve(&accounts, Duration::ZERO, None).await;
    let reply = password_login(addr, "alice", "wonderland").await;
    let (access_token, refresh_token) = pair(&reply);
    let claims = jwt().verify(&access_token, TokenUse::Access).unwrap();
    assert_eq!(claims.subject(), "alice");
    assert_eq!(claims.extra_json(), Some("{\"roles\":[\"admin\"]}"));
    for (user, password) in [("alice", "looking-glass"), ("bob", "wonderland")] {
        let reply = password_login(addr, user, password).await;
        assert_eq!((reply.status, reply.text()), (401, INVALID_CREDENTIALS));
    }
    accounts.set_roles("alice", &["viewer", "editor"]).await;
    let reply = Req::get("/api/login/refresh")
        .bearer(&refresh_token)
        .send(addr)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let access_token = reply.json()["access_token"].as_str().unwrap().to_owned();
    let claims = jwt().verify(&access_token, TokenUse::Access).unwrap();
    assert_eq!(
        claims.extra_json(),
        Some("{\"roles\":[\"editor\",\"viewer\"]}")
    );
    accounts.set_disabled("alice", true).await;
    let reply = Req::get("/api/login/refresh")
        .bearer(&refresh_token)
        .send(addr)
        .await;
    assert_eq!(reply.status, 401, "a disabled user cannot refresh");
}
