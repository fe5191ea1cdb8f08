//! Authorization over real HTTP on 127.0.0.1: a store with roles and a tenant (Argon2, changed at
//! runtime through its handle) → the extra claims in both tokens, byte for byte and in order →
//! typed reads → admin-only routes (policy requirement, `RequireLayer`, `RequireRole`) answering
//! 200 and the exact 403 → refresh re-reading the principal (role changes, disabled users) →
//! tokens without extra claims keeping Core's bytes → requirements that hold for every way of
//! reaching a guarded handler: `HEAD` under a `GET` requirement, the bare path of a nested
//! router, percent-encoded and `;`-parameter spellings (a property test over real HTTP).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::routing::get;
use common::*;
use http::Method;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use tower_jwt_login::auth::{JwtAuthLayer, PathPolicy, RequireLayer, Requirement};
use tower_jwt_login::axum::{RequireRole, RoleName};
use tower_jwt_login::login::{LoginService, RefreshService};
use tower_jwt_login::store::{Argon2Store, Argon2Users};
use tower_jwt_login::token::PrincipalError;
use tower_jwt_login::{Claims, ExtraClaims, Jwt, JwtConfig, JwtKey, Principal};

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
        refresh = refresh.credentials(Arc::clone(&store));
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

/// How often a guarded handler ran: a refused request must leave the count as it was.
#[derive(Clone, Default)]
struct Runs(Arc<AtomicUsize>);

impl Runs {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
    fn ran(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// An app whose guarded handlers count their runs: `GET /reports/daily` under a `GET`-only
/// requirement, a router nested at `/admin` (routes `/` and `/x`) under `require("/admin/*")`,
/// and `/api/v3/{section}/users` (answering the section axum decoded) under
/// `require("/api/v3/admin/*")`. All three need the role `admin`.
fn paths_app(runs: &Runs) -> Router {
    let admin_home = {
        let runs = runs.clone();
        move || async move {
            runs.ran();
            "admin home"
        }
    };
    let admin_x = {
        let runs = runs.clone();
        move || async move {
            runs.ran();
            "admin x"
        }
    };
    let daily = {
        let runs = runs.clone();
        move || async move {
            runs.ran();
            "daily"
        }
    };
    let users = {
        let runs = runs.clone();
        move |Path(section): Path<String>| async move {
            runs.ran();
            format!("users of {section}")
        }
    };
    let admin = Router::new()
        .route("/", get(admin_home))
        .route("/x", get(admin_x));
    Router::new()
        .route("/reports/daily", get(daily))
        .route("/api/v3/{section}/users", get(users))
        .nest("/admin", admin)
        .layer(
            JwtAuthLayer::new(jwt()).policy(
                PathPolicy::new()
                    .require_for(Method::GET, "/reports/*", Requirement::role("admin"))
                    .require("/admin/*", Requirement::role("admin"))
                    .require("/api/v3/admin/*", Requirement::role("admin")),
            ),
        )
}

/// Access tokens of an admin and of a viewer.
fn admin_and_viewer() -> (String, String) {
    let jwt = jwt();
    let token = |subject: &str, role: &str| {
        let principal = Principal::builder(subject)
            .claim("roles", [role])
            .build()
            .unwrap();
        jwt.issue_pair_for(&principal).access_token
    };
    (token("root", "admin"), token("vera", "viewer"))
}

async fn send_as(addr: SocketAddr, method: &str, path: &str, token: &str) -> Reply {
    Req::new(method, path).bearer(token).send(addr).await
}

/// The 403 of a `HEAD` request: the status and headers of the `GET` one, no body.
#[track_caller]
fn assert_forbidden_head(reply: &Reply) {
    assert_eq!(reply.status, 403);
    assert!(reply.body.is_empty());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("www-authenticate"), Some(INSUFFICIENT_SCOPE));
}

#[tokio::test]
async fn head_is_refused_under_a_get_requirement() {
    let runs = Runs::default();
    let addr = spawn_router(paths_app(&runs)).await;
    let (admin, viewer) = admin_and_viewer();
    // axum runs the GET handler for HEAD: a GET requirement must hold for HEAD too.
    assert_forbidden_head(&send_as(addr, "HEAD", "/reports/daily", &viewer).await);
    assert_forbidden(&send_as(addr, "GET", "/reports/daily", &viewer).await);
    assert_eq!(runs.count(), 0);
    let reply = send_as(addr, "HEAD", "/reports/daily", &admin).await;
    assert_eq!(reply.status, 200);
    assert!(reply.body.is_empty());
    assert_eq!(runs.count(), 1);
    let reply = send_as(addr, "GET", "/reports/daily", &admin).await;
    assert_eq!((reply.status, reply.text()), (200, "daily"));
    assert_eq!(runs.count(), 2);
    // A method the requirement does not name is not covered (axum answers 405 for POST here).
    let reply = send_as(addr, "POST", "/reports/daily", &viewer).await;
    assert_eq!(reply.status, 405);
    assert_eq!(runs.count(), 2);
}

#[tokio::test]
async fn a_prefix_requirement_covers_the_bare_path_of_a_nested_router() {
    let runs = Runs::default();
    let addr = spawn_router(paths_app(&runs)).await;
    let (admin, viewer) = admin_and_viewer();
    for path in ["/admin", "/admin/x"] {
        assert_forbidden(&send_as(addr, "GET", path, &viewer).await);
        assert_forbidden_head(&send_as(addr, "HEAD", path, &viewer).await);
    }
    assert_eq!(runs.count(), 0);
    let reply = send_as(addr, "GET", "/admin", &admin).await;
    assert_eq!((reply.status, reply.text()), (200, "admin home"));
    let reply = send_as(addr, "GET", "/admin/x", &admin).await;
    assert_eq!((reply.status, reply.text()), (200, "admin x"));
    assert_eq!(runs.count(), 2);
    // Without a token: the usual 401, never 403.
    Req::get("/admin")
        .send(addr)
        .await
        .assert_unauthorized(false);
}

#[tokio::test]
async fn other_spellings_of_a_required_path_meet_the_requirement() {
    let runs = Runs::default();
    let addr = spawn_router(paths_app(&runs)).await;
    let (admin, viewer) = admin_and_viewer();
    // Each reaches the `{section}` handler (the admin's 200 shows it), so each must be refused
    // to the viewer before it does.
    for (path, section) in [
        ("/api/v3/%61dmin/users", "admin"),
        ("/api/v3/adm%69n/users", "admin"),
        ("/api/v3/%61%64%6D%69%6e/users", "admin"),
        ("/api/v3/admin;x=1/users", "admin;x=1"),
        ("/api/v3/%61dmin;/users", "admin;"),
        ("/api/v3/admin%3bx=1/users", "admin;x=1"),
        // Any byte still percent-encoded after normalization: every requirement applies.
        ("/api/v3/my%20stuff/users", "my stuff"),
    ] {
        let before = runs.count();
        assert_forbidden(&send_as(addr, "GET", path, &viewer).await);
        assert_forbidden_head(&send_as(addr, "HEAD", path, &viewer).await);
        assert_eq!(runs.count(), before, "{path}");
        let reply = send_as(addr, "GET", path, &admin).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        assert_eq!(reply.text(), format!("users of {section}"), "{path}");
        assert_eq!(runs.count(), before + 1, "{path}");
    }
    // The plain spelling of another section is open to the viewer.
    let reply = send_as(addr, "GET", "/api/v3/process/users", &viewer).await;
    assert_eq!((reply.status, reply.text()), (200, "users of process"));
}

/// One way to write a path segment: each character kept or percent-encoded (either case of hex
/// digit), then optionally a `;` parameter.
fn spelling_of(segment: &'static str) -> impl Strategy<Value = String> {
    let chars = segment
        .bytes()
        .map(|b| {
            prop_oneof![
                2 => Just((b as char).to_string()),
                1 => (any::<bool>(), any::<bool>()).prop_map(move |(upper_hi, upper_lo)| {
                    let hex = format!("{b:02x}");
                    let mut out = String::from("%");
                    for (c, upper) in hex.chars().zip([upper_hi, upper_lo]) {
                        out.push(if upper { c.to_ascii_uppercase() } else { c });
                    }
                    out
                }),
            ]
        })
        .collect::<Vec<_>>();
    let param = prop_oneof![
        3 => Just(String::new()),
        1 => "(;[a-z=0-9]{0,6}){1,2}",
        1 => "%3[bB][a-z=0-9]{0,6}",
    ];
    (chars, param).prop_map(|(chars, param)| chars.concat() + &param)
}

/// Spellings of `/api/v3/admin/users` that axum routes to the `{section}` handler: only the
/// section is respelled.
fn section_spellings() -> impl Strategy<Value = String> {
    spelling_of("admin").prop_map(|section| format!("/api/v3/{section}/users"))
}

/// Spellings where any segment may change: axum routes some elsewhere (or nowhere).
fn any_spellings() -> impl Strategy<Value = String> {
    (
        spelling_of("api"),
        spelling_of("v3"),
        spelling_of("admin"),
        spelling_of("users"),
    )
        .prop_map(|(a, b, c, d)| format!("/{a}/{b}/{c}/{d}"))
}

/// No spelling of `/api/v3/admin/users` gets a viewer past `require("/api/v3/admin/*")`: the
/// handler never runs for them, over real HTTP through axum, for `GET` and `HEAD`. Those that
/// axum routes to the handler answer the viewer the exact 403 and the admin 200 with the
/// section axum decoded, which shows the request did reach the guarded handler.
#[test]
fn no_spelling_of_a_required_path_reaches_its_handler() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let runs = Runs::default();
    let addr = rt.block_on(spawn_router(paths_app(&runs)));
    let (admin, viewer) = admin_and_viewer();
    let config = ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    };

    let mut runner = TestRunner::new(config.clone());
    let head = any::<bool>();
    runner
        .run(&(section_spellings(), head), |(path, head)| {
            let method = if head { "HEAD" } else { "GET" };
            let before = runs.count();
            let reply = rt.block_on(send_as(addr, method, &path, &viewer));
            prop_assert_eq!(runs.count(), before, "{} {}", method, path);
            prop_assert_eq!(reply.status, 403, "{} {}", method, path);
            prop_assert_eq!(reply.header("www-authenticate"), Some(INSUFFICIENT_SCOPE));
            if !head {
                prop_assert_eq!(reply.text(), FORBIDDEN);
            }
            let reply = rt.block_on(send_as(addr, "GET", &path, &admin));
            prop_assert_eq!(reply.status, 200, "{}", path);
            let section = percent_decode(
                path.trim_start_matches("/api/v3/")
                    .trim_end_matches("/users"),
            );
            prop_assert_eq!(reply.text(), format!("users of {section}"));
            prop_assert_eq!(runs.count(), before + 1);
            Ok(())
        })
        .unwrap();

    let mut runner = TestRunner::new(config);
    runner
        .run(&(any_spellings(), any::<bool>()), |(path, head)| {
            let method = if head { "HEAD" } else { "GET" };
            let before = runs.count();
            let reply = rt.block_on(send_as(addr, method, &path, &viewer));
            prop_assert_eq!(runs.count(), before, "{} {}", method, path);
            // Refused, or routed nowhere: never the handler.
            prop_assert!(
                matches!(reply.status, 403 | 404),
                "{} {}: {}",
                method,
                path,
                reply.status
            );
            Ok(())
        })
        .unwrap();
}

/// Percent-decodes `s` (the test's own decoder, to predict what axum hands the handler).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}
