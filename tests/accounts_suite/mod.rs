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
use tower_jwt_login::kit::LoginKit;
use tower_jwt_login::login::{LoginService, RefreshService};
use tower_jwt_login::session::{
    KeyTag, MemorySessionStore, NewSession, RefreshVerdict, Revocations, Rotation, SessionError,
    SessionInfo, SessionKey, SessionStore, Sessions, StartVerdict,
};
use tower_jwt_login::store::{CredentialStore, SetPassword};
use tower_jwt_login::throttle::LoginThrottle;
use tower_jwt_login::{Claims, Jwt, JwtConfig, JwtKey, TokenUse};

use crate::common::{INVALID_CREDENTIALS, Reply, Req, decode_parts, spawn_router};

/// What the suite needs of a backend: its stores and the user management it is tested with.
pub trait Accounts: Send + Sync + 'static {
    /// The credential store (users, passwords, roles), which can also set passwords.
    type Creds: CredentialStore + SetPassword;
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
    let refresh = RefreshService::new(jwt.clone()).credentials(accounts.creds());
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

// ---------------------------------------------------------------------------------------------
// Through the assembly: `LoginKit::api_keys` and `LoginKit::password_change` over the backend.

/// A memory session store that lists sessions (by the sessions it saw start and not end), or
/// — with `listing` false — answers `Unsupported` like a store without a session index.
pub struct Listed {
    inner: MemorySessionStore,
    listing: bool,
    /// (subject, session)
    live: std::sync::Mutex<Vec<(String, SessionInfo)>>,
}

impl Listed {
    pub fn new(listing: bool) -> Self {
        Listed {
            inner: MemorySessionStore::new(&jwt()),
            listing,
            live: std::sync::Mutex::new(Vec::new()),
        }
    }
}

impl SessionStore for Listed {
    async fn start(&self, session: NewSession<'_>) -> Result<StartVerdict, SessionError> {
        let verdict = self.inner.start(session).await?;
        if let StartVerdict::Started { evicted } = &verdict {
            let mut live = self.live.lock().unwrap();
            live.retain(|(_, s)| !evicted.contains(&s.sid));
            let info = SessionInfo {
                sid: session.sid().to_owned(),
                created_at: now(),
                refreshed_at: None,
                expires_at: session.expires_at(),
                client: session.client_addr(),
                user_agent: session.user_agent_str().map(str::to_owned),
                api_key: session.api_key_tag().map(|KeyTag { id, name }| SessionKey {
                    id: id.to_owned(),
                    name: name.to_owned(),
                }),
            };
            live.push((session.subject().to_owned(), info));
        }
        Ok(verdict)
    }

    async fn refresh(
        &self,
        sid: &str,
        subject: &str,
        presented_jti: &str,
        rotation: Option<Rotation<'_>>,
    ) -> Result<RefreshVerdict, SessionError> {
        self.inner
            .refresh(sid, subject, presented_jti, rotation)
            .await
    }

    async fn end(&self, sid: &str) -> Result<(), SessionError> {
        self.live.lock().unwrap().retain(|(_, s)| s.sid != sid);
        self.inner.end(sid).await
    }

    async fn end_all(&self, subject: &str) -> Result<(), SessionError> {
        self.inner.end_all(subject).await?;
        self.live.lock().unwrap().retain(|(s, _)| s != subject);
        Ok(())
    }

    fn revocations(&self) -> &Revocations {
        self.inner.revocations()
    }

    async fn list(&self, subject: &str) -> Result<Vec<SessionInfo>, SessionError> {
        if !self.listing {
            return Err(SessionError::Unsupported);
        }
        let live = self.live.lock().unwrap();
        Ok(live
            .iter()
            .filter(|(s, _)| s == subject)
            .map(|(_, info)| info.clone())
            .collect())
    }
}

pub const PASSWORD_PATH: &str = "/api/v3/auth/password";

/// The app through `LoginKit`: the backend's users, its keys (`api_keys`) and password change
/// (`password_change`), the sessions given, a protected `/api/whoami` and the admin-only
/// `/api/admin`. The kit's throttle is `throttle`, its failure delay `delay`.
pub async fn serve_kit<A: Accounts>(
    accounts: &A,
    sessions: Option<Sessions>,
    delay: Duration,
    throttle: Option<LoginThrottle>,
) -> SocketAddr {
    let mut kit = LoginKit::new(jwt(), accounts.creds())
        .api_keys(accounts.keys())
        .password_change(accounts.creds())
        .failure_delay(delay)
        .throttle(throttle)
        .require("/api/admin", Requirement::role("admin"));
    if let Some(sessions) = sessions {
        kit = kit.sessions(sessions);
    }
    let layer = kit.build().unwrap();
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
        .route("/api/admin", get(|| async { "admin only" }));
    spawn_router(layer.wrap(app)).await
}

pub async fn refresh(addr: SocketAddr, refresh_token: &str) -> Reply {
    Req::get("/api/login/refresh")
        .bearer(refresh_token)
        .send(addr)
        .await
}

pub async fn change_password(addr: SocketAddr, access: &str, body: Value) -> Reply {
    Req::post(PASSWORD_PATH)
        .bearer(access)
        .json(body.to_string())
        .send(addr)
        .await
}

/// A pair from a password login: (access, refresh).
pub async fn login_pair(addr: SocketAddr, user: &str, password: &str) -> (String, String) {
    pair(&password_login(addr, user, password).await)
}

/// The access token of a successful refresh.
#[track_caller]
fn refreshed(reply: &Reply) -> String {
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let v = reply.json();
    assert_eq!(v.as_object().unwrap().len(), 1, "{}", reply.text());
    v["access_token"].as_str().unwrap().to_owned()
}

/// Through the assembly with sessions: a key with a role subset is created, exchanged and
/// refreshed — the refreshed access token keeps only the key's roles — then revoked: the
/// refresh of its tokens is refused, and its session is ended, so its access token is refused
/// by the layer at once; the owner's own session goes on.
pub async fn kit_keys_refresh_with_their_roles_and_revoking_ends_their_session<A: Accounts>(
    accounts: A,
) {
    accounts
        .add_user("root", "root-pw", &["admin", "viewer"])
        .await;
    let sessions = Sessions::new(Listed::new(true));
    let addr = serve_kit(&accounts, Some(sessions), Duration::ZERO, None).await;
    let (root, root_refresh) = login_pair(addr, "root", "root-pw").await;

    let reply = create(
        addr,
        &root,
        json!({ "name": "reader", "roles": ["viewer"] }),
    )
    .await;
    let (id, key) = created(&reply, "reader", None);
    let reply = list(addr, &root).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()[0]["id"], id.as_str());
    assert_eq!(reply.json()[0]["roles"], json!(["viewer"]));

    let (key_access, key_refresh) = pair(&exchange(addr, &key).await);
    let expected = format!("{{\"roles\":[\"viewer\"],\"api_key\":\"{id}\"}}");
    let claims = jwt().verify(&key_access, TokenUse::Access).unwrap();
    assert_eq!(claims.extra_json(), Some(expected.as_str()));
    assert!(
        claims.session_id().is_some(),
        "the exchange started a session"
    );
    Req::get("/api/admin")
        .bearer(&key_access)
        .send(addr)
        .await
        .assert_error(403, "Insufficient permissions");

    // The refresh asks the store for root's roles now, and restricts them to the key's.
    let again = refreshed(&refresh(addr, &key_refresh).await);
    let claims = jwt().verify(&again, TokenUse::Access).unwrap();
    assert_eq!(claims.subject(), "root");
    assert_eq!(claims.extra_json(), Some(expected.as_str()));
    let reply = whoami(addr, &again).await;
    assert_eq!(
        (reply.status, reply.text().to_owned()),
        (200, format!("root {expected}"))
    );

    let reply = revoke(addr, &root, &id).await;
    assert_eq!(reply.status, 204);
    assert!(reply.body.is_empty());
    // The refresh is refused, and the key's access tokens are refused at once.
    refresh(addr, &key_refresh)
        .await
        .assert_invalid_token("token revoked");
    whoami(addr, &again)
        .await
        .assert_invalid_token("token revoked");
    whoami(addr, &key_access)
        .await
        .assert_invalid_token("token revoked");
    let reply = exchange(addr, &key).await;
    assert_eq!((reply.status, reply.text()), (401, INVALID_CREDENTIALS));
    // Root's own session is not the key's.
    let reply = whoami(addr, &root).await;
    assert_eq!(
        (reply.status, reply.text()),
        (200, "root {\"roles\":[\"admin\",\"viewer\"]}")
    );
    refreshed(&refresh(addr, &root_refresh).await);
}

/// Through the assembly without sessions: a revoked key's refresh is refused all the same (the
/// refresh checks the key), and a disabled owner's key stops: neither exchanged nor refreshed.
pub async fn kit_keys_of_a_disabled_owner_stop<A: Accounts>(accounts: A) {
    accounts.add_user("alice", "alice-pw", &["viewer"]).await;
    let addr = serve_kit(&accounts, None, Duration::ZERO, None).await;
    let alice = access(addr, "alice", "alice-pw").await;
    let (_, key) = created(
        &create(addr, &alice, json!({ "name": "ci" })).await,
        "ci",
        None,
    );
    let (_, key_refresh) = pair(&exchange(addr, &key).await);
    refreshed(&refresh(addr, &key_refresh).await);

    accounts.set_disabled("alice", true).await;
    let reply = exchange(addr, &key).await;
    assert_eq!((reply.status, reply.text()), (401, INVALID_CREDENTIALS));
    refresh(addr, &key_refresh)
        .await
        .assert_invalid_token("token revoked");

    accounts.set_disabled("alice", false).await;
    refreshed(&refresh(addr, &key_refresh).await);
    let (id, key2) = created(
        &create(addr, &alice, json!({ "name": "second" })).await,
        "second",
        None,
    );
    let (_, refresh2) = pair(&exchange(addr, &key2).await);
    assert_eq!(revoke(addr, &alice, &id).await.status, 204);
    refresh(addr, &refresh2)
        .await
        .assert_invalid_token("token revoked");
    // The other key is untouched.
    refreshed(&refresh(addr, &key_refresh).await);
}

/// Through the assembly: bob's `DELETE` of alice's key is the 404 of a key that does not exist,
/// and the key keeps working; without a token the key routes are the layer's 401.
pub async fn kit_another_users_key_is_not_found<A: Accounts>(accounts: A) {
    accounts.add_user("alice", "alice-pw", &[]).await;
    accounts.add_user("bob", "bob-pw", &[]).await;
    let addr = serve_kit(&accounts, None, Duration::ZERO, None).await;
    let alice = access(addr, "alice", "alice-pw").await;
    let bob = access(addr, "bob", "bob-pw").await;
    let (id, key) = created(
        &create(addr, &alice, json!({ "name": "mine" })).await,
        "mine",
        None,
    );
    let theirs = revoke(addr, &bob, &id).await;
    theirs.assert_error(404, "API key not found");
    assert_eq!(theirs.body, revoke(addr, &bob, "nope").await.body);
    let reply = list(addr, &bob).await;
    assert_eq!((reply.status, reply.text()), (200, "[]\n"));
    pair(&exchange(addr, &key).await);
    Req::get(KEYS).send(addr).await.assert_unauthorized(false);
    Req::new("DELETE", &format!("{KEYS}/{id}"))
        .send(addr)
        .await
        .assert_unauthorized(false);
    Req::get(KEYS)
        .bearer("not-a-token")
        .send(addr)
        .await
        .assert_invalid_token("malformed token");
    assert_eq!(list(addr, &alice).await.json()[0]["id"], id.as_str());
}

/// The password change through the assembly with sessions that list: the current password is
/// checked (wrong: the login's 401 after the failure delay, counted by the throttle), the new
/// one must be long enough (400), and a change ends the user's other sessions — a key's
/// included — but not the caller's; the old password stops, the new one logs in.
pub async fn kit_password_change_ends_the_other_sessions<A: Accounts>(accounts: A) {
    accounts.add_user("alice", "alice-pw", &[]).await;
    accounts.add_user("bob", "bob-pw", &[]).await;
    let delay = Duration::from_millis(200);
    let throttle = LoginThrottle::new(3, Duration::from_secs(600)).unwrap();
    let sessions = Sessions::new(Listed::new(true));
    let addr = serve_kit(&accounts, Some(sessions), delay, Some(throttle)).await;
    let (mine, my_refresh) = login_pair(addr, "alice", "alice-pw").await;
    let (other, other_refresh) = login_pair(addr, "alice", "alice-pw").await;
    let (bobs, bobs_refresh) = login_pair(addr, "bob", "bob-pw").await;
    let (_, key) = created(
        &create(addr, &mine, json!({ "name": "ci" })).await,
        "ci",
        None,
    );
    let (key_access, _) = pair(&exchange(addr, &key).await);

    // Too short: 400 at once, nothing checked.
    change_password(
        addr,
        &mine,
        json!({ "password": "alice-pw", "new_password": "short12" }),
    )
    .await
    .assert_error(
        400,
        "Invalid password change request: new_password must be at least 8 characters",
    );
    for body in [
        json!({ "password": "alice-pw" }),
        json!({ "password": "alice-pw", "new_password": 12345678 }),
        json!({ "password": "alice-pw", "new_password": "long enough", "x": 1 }),
        json!(["alice-pw", "long enough"]),
    ] {
        change_password(addr, &mine, body).await.assert_error(
            400,
            "Invalid password change request: expected a JSON object with password (the \
             current one) and new_password",
        );
    }
    Req::post(PASSWORD_PATH)
        .bearer(&mine)
        .body("password=x")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send(addr)
        .await
        .assert_error(415, "Expected Content-Type: application/json");
    Req::post(PASSWORD_PATH)
        .bearer(&mine)
        .json(format!("{{\"password\":\"{}\"}}", "x".repeat(5000)))
        .send(addr)
        .await
        .assert_error(413, "Request body too large");
    Req::post(PASSWORD_PATH)
        .json(json!({ "password": "alice-pw", "new_password": "long enough" }).to_string())
        .send(addr)
        .await
        .assert_unauthorized(false);
    // A key's token cannot change the password.
    change_password(
        addr,
        &key_access,
        json!({ "password": "alice-pw", "new_password": "long enough" }),
    )
    .await
    .assert_error(403, "API key tokens cannot change the password");

    // A wrong current password: the login's 401, after the delay; the third is the limit.
    for _ in 0..3 {
        let started = Instant::now();
        let reply = change_password(
            addr,
            &mine,
            json!({ "password": "guess", "new_password": "long enough" }),
        )
        .await;
        assert_eq!((reply.status, reply.text()), (401, INVALID_CREDENTIALS));
        assert!(started.elapsed() >= delay, "the failure delay applies");
    }
    let reply = change_password(
        addr,
        &mine,
        json!({ "password": "alice-pw", "new_password": "long enough" }),
    )
    .await;
    reply.assert_error(429, "Too many failed login attempts, try again later");
    assert!(reply.header("retry-after").is_some());
    // Nothing changed: every session is live.
    assert_eq!(whoami(addr, &other).await.status, 200);

    // Bob's right password from his own counters: changed.
    let reply = change_password(
        addr,
        &bobs,
        json!({ "password": "bob-pw", "new_password": "bob's new password" }),
    )
    .await;
    assert_eq!(reply.status, 204, "{}", reply.text());
    assert!(reply.body.is_empty());
    assert_eq!(reply.header("content-type"), None);
    // The caller's own session goes on: its access token and its refresh.
    assert_eq!(whoami(addr, &bobs).await.status, 200);
    refreshed(&refresh(addr, &bobs_refresh).await);
    let reply = password_login(addr, "bob", "bob-pw").await;
    assert_eq!((reply.status, reply.text()), (401, INVALID_CREDENTIALS));
    login_pair(addr, "bob", "bob's new password").await;
    // Alice was not touched.
    assert_eq!(whoami(addr, &other).await.status, 200);
    assert_eq!(whoami(addr, &key_access).await.status, 200);
    refreshed(&refresh(addr, &other_refresh).await);
    refreshed(&refresh(addr, &my_refresh).await);
}

/// Alice's change (from a fresh address: the throttle's counters are per address) ends her
/// other password session and her key's session, not the caller's.
pub async fn kit_password_change_keeps_only_the_callers_session<A: Accounts>(accounts: A) {
    accounts.add_user("alice", "alice-pw", &[]).await;
    let sessions = Sessions::new(Listed::new(true));
    let addr = serve_kit(&accounts, Some(sessions), Duration::ZERO, None).await;
    let (mine, my_refresh) = login_pair(addr, "alice", "alice-pw").await;
    let (other, other_refresh) = login_pair(addr, "alice", "alice-pw").await;
    let (_, key) = created(
        &create(addr, &mine, json!({ "name": "ci" })).await,
        "ci",
        None,
    );
    let (key_access, key_refresh) = pair(&exchange(addr, &key).await);

    let reply = change_password(
        addr,
        &mine,
        json!({ "password": "alice-pw", "new_password": "through the looking-glass" }),
    )
    .await;
    assert_eq!((reply.status, reply.text()), (204, ""));
    whoami(addr, &other)
        .await
        .assert_invalid_token("token revoked");
    refresh(addr, &other_refresh)
        .await
        .assert_invalid_token("token revoked");
    whoami(addr, &key_access)
        .await
        .assert_invalid_token("token revoked");
    refresh(addr, &key_refresh)
        .await
        .assert_invalid_token("token revoked");
    assert_eq!(whoami(addr, &mine).await.status, 200);
    refreshed(&refresh(addr, &my_refresh).await);
    let reply = password_login(addr, "alice", "alice-pw").await;
    assert_eq!((reply.status, reply.text()), (401, INVALID_CREDENTIALS));
    login_pair(addr, "alice", "through the looking-glass").await;
    // The key itself was not revoked: a new exchange works, with the new password irrelevant.
    pair(&exchange(addr, &key).await);
}

/// With a session store that cannot list sessions, a password change logs the user out
/// everywhere — the caller included — and still answers 204.
pub async fn kit_password_change_without_a_session_list_ends_every_session<A: Accounts>(
    accounts: A,
) {
    accounts.add_user("alice", "alice-pw", &[]).await;
    let sessions = Sessions::new(Listed::new(false));
    let addr = serve_kit(&accounts, Some(sessions), Duration::ZERO, None).await;
    let (mine, my_refresh) = login_pair(addr, "alice", "alice-pw").await;
    let (other, _) = login_pair(addr, "alice", "alice-pw").await;
    let reply = change_password(
        addr,
        &mine,
        json!({ "password": "alice-pw", "new_password": "another password" }),
    )
    .await;
    assert_eq!((reply.status, reply.text()), (204, ""));
    whoami(addr, &other)
        .await
        .assert_invalid_token("token revoked");
    whoami(addr, &mine)
        .await
        .assert_invalid_token("token revoked");
    refresh(addr, &my_refresh)
        .await
        .assert_invalid_token("token revoked");
    login_pair(addr, "alice", "another password").await;
}
