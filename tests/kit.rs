//! The assembly (`kit::LoginKit`) over real HTTP: one layer serves login, refresh and logout
//! and guards the app; the same answers wherever the layer sits; browser mode (cookies, CSRF);
//! CORS; contradictions refused at start-up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use common::{INVALID_TOKEN, NOT_FOUND, Reply, Req, core_config, spawn_router};
use tower::Layer;
use tower_jwt_login::auth::{PathPolicy, Requirement};
use tower_jwt_login::browser::Browser;
use tower_jwt_login::kit::{Cors, KitError, LoginKit, LoginLayer};
use tower_jwt_login::session::MemorySessionStore;
use tower_jwt_login::store::Argon2Store;
use tower_jwt_login::{Claims, Jwt, JwtConfig, JwtKey, TokenUse};

const SECRET: &str = "a secret of at least 32 random bytes!!";
const FORBIDDEN: &str =
    "{\"code\":403,\"message\":\"Forbidden\",\"details\":[\"Insufficient permissions\"]}\n";
const CSRF_FAILED: &str =
    "{\"code\":403,\"message\":\"Forbidden\",\"details\":[\"CSRF check failed\"]}\n";

fn jwt() -> Jwt {
    JwtConfig::new(JwtKey::from_secret(SECRET).unwrap())
        .build()
        .unwrap()
}

fn users() -> Argon2Store {
    let store = Argon2Store::new()
        .with_password("alice", "alice-pw")
        .unwrap()
        .with_password("bob", "bob-pw")
        .unwrap();
    store.users().set_roles("alice", ["admin"]).unwrap();
    store
}

/// The notes app of a new user: a protected route, an admin route, a fallback.
fn notes() -> Router {
    Router::new()
        .route(
            "/api/notes",
            get(|claims: Claims| async move { format!("notes of {}", claims.subject()) }),
        )
        .route("/api/notes", post(|| async { "created" }))
        .route("/api/admin/users", get(|| async { "all users" }))
        .route("/health", get(|| async { "ok" }))
}

fn kit(jwt: &Jwt) -> LoginKit<Argon2Store> {
    LoginKit::new(jwt.clone(), users())
        .sessions(MemorySessionStore::new(jwt))
        .rotation(Duration::ZERO)
        .failure_delay(Duration::ZERO)
        .public("/health")
        .require("/api/admin/*", Requirement::role("admin"))
}

async fn serve(layer: &LoginLayer, app: Router) -> SocketAddr {
    spawn_router(Router::new().fallback_service(layer.layer(app))).await
}

async fn login(addr: SocketAddr, user: &str, password: &str) -> Reply {
    let body = serde_json::json!({ "username": user, "password": password }).to_string();
    Req::post("/api/login").json(body).send(addr).await
}

/// A login from a browser page of the same origin (it sends Fetch Metadata).
async fn browser_login(addr: SocketAddr, user: &str, password: &str) -> Reply {
    let body = serde_json::json!({ "username": user, "password": password }).to_string();
    Req::post("/api/login")
        .header("sec-fetch-site", "same-origin")
        .json(body)
        .send(addr)
        .await
}

fn tokens(reply: &Reply) -> (String, String) {
    assert_eq!(reply.status, 200, "{}", reply.text());
    let v = reply.json();
    (
        v["access_token"].as_str().unwrap().to_owned(),
        v["refresh_token"].as_str().unwrap_or_default().to_owned(),
    )
}

fn set_cookies(reply: &Reply) -> Vec<&str> {
    reply
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The value a `Set-Cookie` list gives cookie `name` (the first with that name).
fn cookie_value<'a>(cookies: &[&'a str], name: &str) -> &'a str {
    cookies
        .iter()
        .find_map(|c| c.strip_prefix(name)?.strip_prefix('='))
        .map(|rest| rest.split(';').next().unwrap())
        .unwrap_or_else(|| panic!("no {name} in {cookies:?}"))
}

/// The whole login of an app with roles and sessions, from one builder and one layer.
async fn assert_the_whole_login(addr: SocketAddr, jwt: &Jwt) {
    // Public path and the app's own routes.
    let reply = Req::get("/health").send(addr).await;
    assert_eq!((reply.status, reply.text()), (200, "ok"));
    let reply = Req::get("/api/notes").send(addr).await;
    reply.assert_unauthorized(false);
    assert_eq!(reply.text(), INVALID_TOKEN);

    // Login; the tokens carry a session.
    let (access, refresh) = tokens(&login(addr, "bob", "bob-pw").await);
    let claims = jwt.verify(&access, TokenUse::Access).unwrap();
    assert!(claims.session_id().is_some());
    let reply = login(addr, "bob", "wrong").await;
    reply.assert_error(
        401,
        "Invalid authorization credentials: invalid username or password",
    );

    let reply = Req::get("/api/notes").bearer(&access).send(addr).await;
    assert_eq!((reply.status, reply.text()), (200, "notes of bob"));
    // A role the token lacks: 403, exact body.
    let reply = Req::get("/api/admin/users")
        .bearer(&access)
        .send(addr)
        .await;
    assert_eq!((reply.status, reply.text()), (403, FORBIDDEN));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    // An unknown path: 401 without a token, the app's 404 with one.
    Req::get("/api/nothing")
        .send(addr)
        .await
        .assert_unauthorized(false);
    assert_eq!(
        Req::get("/api/nothing")
            .bearer(&access)
            .send(addr)
            .await
            .status,
        404
    );
    // Another method on the login routes: protected, then 404 (never 405).
    Req::get("/api/login")
        .send(addr)
        .await
        .assert_unauthorized(false);
    let reply = Req::get("/api/login").bearer(&access).send(addr).await;
    assert_eq!((reply.status, reply.text()), (404, NOT_FOUND));

    // Rotation: the pair is replaced, the spent refresh token ends the session.
    let reply = Req::get("/api/login/refresh")
        .bearer(&refresh)
        .send(addr)
        .await;
    let (access2, refresh2) = tokens(&reply);
    assert!(!refresh2.is_empty() && refresh2 != refresh);
    let reply = Req::get("/api/login/refresh")
        .bearer(&refresh)
        .send(addr)
        .await;
    reply.assert_invalid_token("token revoked");
    // Reuse ended the session: its access tokens are refused at once (revocations wired).
    Req::get("/api/notes")
        .bearer(&access2)
        .send(addr)
        .await
        .assert_invalid_token("token revoked");

    // Logout: 204, and the logged-out access token is refused at once.
    let (access, _) = tokens(&login(addr, "alice", "alice-pw").await);
    let reply = Req::get("/api/admin/users")
        .bearer(&access)
        .send(addr)
        .await;
    assert_eq!((reply.status, reply.text()), (200, "all users"));
    let reply = Req::post("/api/logout").bearer(&access).send(addr).await;
    assert_eq!((reply.status, reply.body.len()), (204, 0));
    Req::get("/api/notes")
        .bearer(&access)
        .send(addr)
        .await
        .assert_invalid_token("token revoked");

    // Logout everywhere.
    let (a1, _) = tokens(&login(addr, "alice", "alice-pw").await);
    let (a2, _) = tokens(&login(addr, "alice", "alice-pw").await);
    assert_eq!(
        Req::post("/api/logout/all")
            .bearer(&a1)
            .send(addr)
            .await
            .status,
        204
    );
    Req::get("/api/notes")
        .bearer(&a2)
        .send(addr)
        .await
        .assert_invalid_token("token revoked");
}

#[tokio::test]
async fn one_builder_and_one_layer_make_the_whole_login() {
    let jwt = jwt();
    let layer = kit(&jwt).build().unwrap();
    let addr = serve(&layer, notes()).await;
    assert_the_whole_login(addr, &jwt).await;
}

#[tokio::test]
async fn the_layer_runs_before_routing_or_refuses_loudly() {
    // Around a router nested inside the app: paths are matched as the client sent them.
    let jwt = jwt();
    let layer = kit(&jwt).build().unwrap();
    let inner = Router::new()
        .route(
            "/api/notes",
            get(|claims: Claims| async move { format!("notes of {}", claims.subject()) }),
        )
        .route("/api/admin/users", get(|| async { "all users" }));
    let app = Router::new()
        .merge(Router::new().fallback_service(layer.layer(inner)))
        .route("/health", get(|| async { "ok" }));
    let addr = spawn_router(app).await;
    let (access, _) = tokens(&login(addr, "bob", "bob-pw").await);
    let reply = Req::get("/api/notes").bearer(&access).send(addr).await;
    assert_eq!((reply.status, reply.text()), (200, "notes of bob"));
    let reply = Req::get("/api/admin/users")
        .bearer(&access)
        .send(addr)
        .await;
    assert_eq!((reply.status, reply.text()), (403, FORBIDDEN));
    Req::get("/api/notes")
        .send(addr)
        .await
        .assert_unauthorized(false);

    // `Router::layer` runs after routing, where the login routes cannot be served: instead of
    // half working (the login 404, the routes guarded), every request is refused with a 500.
    let jwt = self::jwt();
    let layer = kit(&jwt).build().unwrap();
    let addr = spawn_router(notes().layer(layer)).await;
    for req in [
        Req::get("/api/notes"),
        Req::get("/health"),
        Req::post("/api/login"),
    ] {
        let reply = req.send(addr).await;
        reply.assert_error(500, "Internal Server Error");
    }
}

#[tokio::test]
async fn a_prefix_moves_every_route_of_the_crate() {
    let jwt = jwt();
    let layer = LoginKit::new(jwt.clone(), users())
        .prefix("/auth")
        .sessions(MemorySessionStore::new(&jwt))
        .failure_delay(Duration::ZERO)
        .build()
        .unwrap();
    let addr = serve(&layer, notes()).await;
    let body = r#"{"username":"bob","password":"bob-pw"}"#;
    let (access, refresh) = tokens(&Req::post("/auth/login").json(body).send(addr).await);
    assert_eq!(
        Req::get("/auth/login/refresh")
            .bearer(&refresh)
            .send(addr)
            .await
            .status,
        200
    );
    assert_eq!(
        Req::post("/auth/logout")
            .bearer(&access)
            .send(addr)
            .await
            .status,
        204
    );
    // The old paths are the app's (protected).
    Req::post("/api/login")
        .json(body)
        .send(addr)
        .await
        .assert_unauthorized(false);
}

#[test]
fn contradictions_are_refused_at_start_up() {
    let jwt = jwt();
    let err = LoginKit::new(jwt.clone(), users())
        .rotation(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(err, KitError::RotationWithoutSessions);
    assert_eq!(
        err.to_string(),
        "refresh-token rotation needs sessions: add `.sessions(…)` (a memory or Redis session store)"
    );
    let err = LoginKit::new(jwt.clone(), users())
        .policy(PathPolicy::new().public("/admin/*"))
        .require("/admin/users", Requirement::role("admin"))
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        KitError::RequirementOnPublicPath("/admin/users".into())
    );
    let err = LoginKit::new(jwt.clone(), users())
        .browser(Browser::new())
        .build()
        .unwrap_err();
    assert_eq!(err, KitError::BrowserWithoutSessions);
    let with_sessions =
        || LoginKit::new(jwt.clone(), users()).sessions(MemorySessionStore::new(&jwt));
    let err = with_sessions()
        .browser(Browser::new().origins(["http://ui.example.com"]))
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        KitError::InsecureOrigin("http://ui.example.com".into())
    );
    let err = with_sessions()
        .cors(Cors::core())
        .browser(Browser::new().origins(["https://ui.example.com"]))
        .build()
        .unwrap_err();
    assert_eq!(err, KitError::WildcardOriginWithCredentials);
    let err = with_sessions()
        .cors(Cors::origins(["ui.example.com"]))
        .build()
        .unwrap_err();
    assert_eq!(err, KitError::InvalidOrigin("ui.example.com".into()));
    let err = LoginKit::new(jwt.clone(), users())
        .prefix("api")
        .build()
        .unwrap_err();
    assert_eq!(err, KitError::InvalidPrefix("api".into()));
    // Cookies same-origin only, Bearer clients from anywhere: fine.
    with_sessions()
        .cors(Cors::core())
        .browser(Browser::new())
        .build()
        .unwrap();
}

// ---- Browser mode ----------------------------------------------------------------------------

async fn browser_app(browser: Browser) -> (SocketAddr, Jwt) {
    let jwt = jwt();
    let layer = kit(&jwt).browser(browser).build().unwrap();
    (serve(&layer, notes()).await, jwt)
}

#[tokio::test]
async fn browser_mode_keeps_the_refresh_token_in_an_http_only_cookie() {
    let (addr, jwt) = browser_app(Browser::new()).await;
    let reply = browser_login(addr, "bob", "bob-pw").await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(
        body.as_object().unwrap().len(),
        1,
        "no refresh token in the body: {body}"
    );
    let access = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(reply.text(), format!("{{\"access_token\":\"{access}\"}}\n"));
    let cookies = set_cookies(&reply);
    assert_eq!(cookies.len(), 3, "{cookies:?}");
    let refresh = cookie_value(&cookies, "__Secure-refresh_token").to_owned();
    let csrf = cookie_value(&cookies, "__Host-csrf_token").to_owned();
    assert_eq!(
        jwt.verify(&refresh, TokenUse::Refresh).unwrap().subject(),
        "bob"
    );
    assert_eq!(
        cookies[0],
        format!(
            "__Secure-refresh_token={refresh}; Path=/api/login/refresh; Max-Age=86400; HttpOnly; Secure; SameSite=Strict"
        )
    );
    assert_eq!(
        cookies[1],
        format!(
            "__Secure-refresh_token={refresh}; Path=/api/logout; Max-Age=86400; HttpOnly; Secure; SameSite=Strict"
        )
    );
    assert_eq!(
        cookies[2],
        format!("__Host-csrf_token={csrf}; Path=/; Max-Age=86400; Secure; SameSite=Strict")
    );
    assert_eq!(csrf.len(), 43);

    let jar = format!("__Secure-refresh_token={refresh}; __Host-csrf_token={csrf}");
    // No Fetch Metadata and no CSRF header: refused, nothing minted.
    let reply = Req::get("/api/login/refresh")
        .header("cookie", &jar)
        .send(addr)
        .await;
    assert_eq!((reply.status, reply.text()), (403, CSRF_FAILED));
    assert!(set_cookies(&reply).is_empty());
    // A page of another origin (same site): refused.
    let reply = Req::get("/api/login/refresh")
        .header("cookie", &jar)
        .header("sec-fetch-site", "same-site")
        .header("origin", "http://127.0.0.1:1")
        .send(addr)
        .await;
    assert_eq!((reply.status, reply.text()), (403, CSRF_FAILED));
    // The double submit: a refresh through the cookie, rotated.
    let reply = Req::get("/api/login/refresh")
        .header("cookie", &jar)
        .header("x-csrf-token", &csrf)
        .send(addr)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json().as_object().unwrap().len(), 1);
    let cookies = set_cookies(&reply);
    let rotated = cookie_value(&cookies, "__Secure-refresh_token").to_owned();
    assert_ne!(rotated, refresh);
    assert_eq!(
        cookie_value(&cookies, "__Host-csrf_token"),
        csrf,
        "the CSRF token is kept"
    );
    // Fetch Metadata from the same origin: no header needed.
    let jar = format!("__Secure-refresh_token={rotated}; __Host-csrf_token={csrf}");
    let reply = Req::get("/api/login/refresh")
        .header("cookie", &jar)
        .header("sec-fetch-site", "same-origin")
        .send(addr)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let rotated2 = cookie_value(&set_cookies(&reply), "__Secure-refresh_token").to_owned();
    // The spent cookie again: reuse ends the session and clears the cookies.
    let reply = Req::get("/api/login/refresh")
        .header("cookie", &jar)
        .header("sec-fetch-site", "same-origin")
        .send(addr)
        .await;
    reply.assert_invalid_token("token revoked");
    let cleared = set_cookies(&reply);
    assert!(
        cleared.iter().all(|c| c.contains("Max-Age=0")),
        "{cleared:?}"
    );
    assert_eq!(cleared.len(), 3);
    let jar = format!("__Secure-refresh_token={rotated2}; __Host-csrf_token={csrf}");
    let reply = Req::get("/api/login/refresh")
        .header("cookie", &jar)
        .header("x-csrf-token", &csrf)
        .send(addr)
        .await;
    reply.assert_invalid_token("token revoked");

    // API clients are unchanged: a Bearer login body still carries no refresh token in this
    // mode, but a Bearer refresh with a refresh token answers the JSON pair.
    let reply = browser_login(addr, "bob", "bob-pw").await;
    let refresh = cookie_value(&set_cookies(&reply), "__Secure-refresh_token").to_owned();
    let reply = Req::get("/api/login/refresh")
        .bearer(&refresh)
        .send(addr)
        .await;
    let (_, next) = tokens(&reply);
    assert!(!next.is_empty());
    assert!(set_cookies(&reply).is_empty());
    let _ = access;
}

#[tokio::test]
async fn browser_logout_through_the_cookie_clears_every_cookie() {
    let (addr, _jwt) = browser_app(Browser::new()).await;
    let reply = browser_login(addr, "bob", "bob-pw").await;
    let access = reply.json()["access_token"].as_str().unwrap().to_owned();
    let cookies = set_cookies(&reply);
    let jar = format!(
        "__Secure-refresh_token={}; __Host-csrf_token={}",
        cookie_value(&cookies, "__Secure-refresh_token"),
        cookie_value(&cookies, "__Host-csrf_token")
    );
    // A cross-site form post: refused, the session lives on.
    let reply = Req::post("/api/logout")
        .header("cookie", &jar)
        .header("sec-fetch-site", "cross-site")
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .send(addr)
        .await;
    assert_eq!((reply.status, reply.text()), (403, CSRF_FAILED));
    assert_eq!(
        Req::get("/api/notes")
            .bearer(&access)
            .send(addr)
            .await
            .status,
        200
    );
    // The page's own logout.
    let reply = Req::post("/api/logout")
        .header("cookie", &jar)
        .header("sec-fetch-site", "same-origin")
        .send(addr)
        .await;
    assert_eq!(reply.status, 204);
    assert_eq!(
        set_cookies(&reply),
        [
            "__Secure-refresh_token=; Path=/api/login/refresh; Max-Age=0; HttpOnly; Secure; SameSite=Strict",
            "__Secure-refresh_token=; Path=/api/logout; Max-Age=0; HttpOnly; Secure; SameSite=Strict",
            "__Host-csrf_token=; Path=/; Max-Age=0; Secure; SameSite=Strict",
        ]
    );
    Req::get("/api/notes")
        .bearer(&access)
        .send(addr)
        .await
        .assert_invalid_token("token revoked");
}

#[tokio::test]
async fn the_access_cookie_authenticates_and_unsafe_methods_need_the_csrf_check() {
    let (addr, _jwt) = browser_app(Browser::new().access_cookie(true)).await;
    let reply = browser_login(addr, "bob", "bob-pw").await;
    let cookies = set_cookies(&reply);
    assert_eq!(cookies.len(), 4);
    let access = cookie_value(&cookies, "__Host-access_token");
    assert!(cookies.iter().any(|c| *c
        == format!(
            "__Host-access_token={access}; Path=/; Max-Age=600; HttpOnly; Secure; SameSite=Strict"
        )));
    let csrf = cookie_value(&cookies, "__Host-csrf_token");
    let jar = format!("__Host-access_token={access}; __Host-csrf_token={csrf}");
    let reply = Req::get("/api/notes")
        .header("cookie", &jar)
        .send(addr)
        .await;
    assert_eq!((reply.status, reply.text()), (200, "notes of bob"));
    let reply = Req::post("/api/notes")
        .header("cookie", &jar)
        .send(addr)
        .await;
    assert_eq!((reply.status, reply.text()), (403, CSRF_FAILED));
    let reply = Req::post("/api/notes")
        .header("cookie", &jar)
        .header("x-csrf-token", csrf)
        .send(addr)
        .await;
    assert_eq!((reply.status, reply.text()), (200, "created"));

    // The user's own routes read the cookie too: the session list, and ending a session (an
    // unsafe method) only with the CSRF check.
    let reply = Req::get("/api/v3/auth/sessions")
        .header("cookie", &jar)
        .send(addr)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let list = reply.json();
    let sessions = list.as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["current"], true);
    let sid = sessions[0]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v3/auth/sessions/{sid}");
    let reply = Req::new("DELETE", &path)
        .header("cookie", &jar)
        .send(addr)
        .await;
    assert_eq!((reply.status, reply.text()), (403, CSRF_FAILED));
    let reply = Req::new("DELETE", &path)
        .header("cookie", &jar)
        .header("x-csrf-token", csrf)
        .send(addr)
        .await;
    assert_eq!((reply.status, reply.text()), (204, ""));
    let reply = Req::get("/api/notes")
        .header("cookie", &jar)
        .send(addr)
        .await;
    reply.assert_invalid_token("token revoked");
}

// ---- Metrics, through the example server -----------------------------------------------------

/// The value of the sample line `series` (name and labels exactly as rendered), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?.strip_prefix(' ')?;
        rest.parse().ok()
    })
}

#[tokio::test]
async fn the_example_server_serves_its_metrics_to_prometheus_without_a_token() {
    let addr = common::spawn_core(core_config(Duration::ZERO)).await;
    let wrong = r#"{"username":"admin","password":"wrong"}"#;
    assert_eq!(
        Req::post("/api/login").json(wrong).send(addr).await.status,
        401
    );
    Req::get("/api/v3/process")
        .send(addr)
        .await
        .assert_unauthorized(false);
    let reply = Req::post("/api/login")
        .json(r#"{"username":"admin","password":"datarhei"}"#)
        .send(addr)
        .await;
    let (_, refresh) = tokens(&reply);
    let reply = Req::get("/api/login/refresh")
        .bearer(&refresh)
        .send(addr)
        .await;
    assert_eq!(reply.status, 200);

    // Public: a scraper has no token. Other tests of this binary record too: at least ours.
    let reply = Req::get("/metrics").send(addr).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = reply.text();
    for (series, at_least) in [
        ("jwt_login_successes_total{via=\"password\"}", 1.0),
        (
            "jwt_login_failures_total{reason=\"invalid_credentials\"}",
            1.0,
        ),
        ("jwt_auth_rejections_total{reason=\"missing_token\"}", 1.0),
        ("jwt_refreshes_total", 1.0),
        ("jwt_login_duration_seconds_count{outcome=\"success\"}", 1.0),
        (
            "jwt_login_duration_seconds_bucket{outcome=\"success\",le=\"+Inf\"}",
            1.0,
        ),
        (
            "jwt_refresh_duration_seconds_count{outcome=\"success\"}",
            1.0,
        ),
    ] {
        let value = sample(text, series);
        assert!(value.is_some_and(|v| v >= at_least), "{series} in:\n{text}");
    }
    for described in [
        "# TYPE jwt_login_successes_total counter\n",
        "# HELP jwt_login_failures_total Failed logins",
        "# TYPE jwt_login_duration_seconds histogram\n",
        "# TYPE jwt_refresh_duration_seconds histogram\n",
    ] {
        assert!(text.contains(described), "{described:?} in:\n{text}");
    }
    // Nothing secret in it.
    assert!(!text.contains("datarhei") && !text.contains(&refresh));
}

// ---- CORS, through the example server --------------------------------------------------------

#[tokio::test]
async fn the_example_server_answers_cross_origin_requests_like_core() {
    let addr = common::spawn_core(core_config(Duration::ZERO)).await;
    // A preflight of the JSON login: never 401, Core's headers.
    let reply = Req::new("OPTIONS", "/api/login")
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send(addr)
        .await;
    assert_eq!(reply.status, 204, "{}", reply.text());
    assert!(reply.body.is_empty());
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        reply.header("access-control-allow-methods"),
        Some("GET,HEAD,PUT,POST,DELETE,PATCH")
    );
    assert_eq!(
        reply.header("access-control-allow-headers"),
        Some("origin,content-length,content-type,authorization")
    );
    assert_eq!(reply.header("access-control-max-age"), Some("86400"));
    assert_eq!(reply.header("vary"), Some("origin"));
    // The same for a protected path.
    let reply = Req::new("OPTIONS", "/api/v3/process")
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "GET")
        .send(addr)
        .await;
    assert_eq!(reply.status, 204);
    // The cross-origin login and a protected call.
    let reply = Req::post("/api/login")
        .header("origin", "http://localhost:3000")
        .json(r#"{"username":"admin","password":"datarhei"}"#)
        .send(addr)
        .await;
    let (access, _) = tokens(&reply);
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        reply.header("access-control-expose-headers"),
        Some("content-length")
    );
    assert_eq!(reply.header("vary"), Some("origin"));
    let reply = Req::get("/api")
        .header("origin", "http://localhost:3000")
        .send(addr)
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    let reply = Req::get("/api/v3/process")
        .header("origin", "http://localhost:3000")
        .bearer(&access)
        .send(addr)
        .await;
    assert_eq!((reply.status, reply.text()), (200, "[]\n"));
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    // A refused request carries the CORS headers too, so the page can read the 401.
    let reply = Req::get("/api/v3/process")
        .header("origin", "http://localhost:3000")
        .send(addr)
        .await;
    reply.assert_unauthorized(false);
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
}

#[tokio::test]
async fn listed_origins_only() {
    let mut config = core_config(Duration::ZERO);
    config.cors = Cors::parse("https://ui.example.com, http://localhost:3000");
    let addr = common::spawn_core(config).await;
    let preflight = |origin: &'static str| {
        Req::new("OPTIONS", "/api/login")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
    };
    let reply = preflight("https://ui.example.com").send(addr).await;
    assert_eq!(reply.status, 204);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://ui.example.com")
    );
    assert_eq!(reply.header("access-control-allow-credentials"), None);
    let reply = preflight("https://evil.example").send(addr).await;
    assert_eq!(reply.status, 204);
    assert_eq!(reply.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn around_a_plain_hyper_service() {
    use hyper::body::Incoming;
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;

    let jwt = jwt();
    let layer = kit(&jwt).build().unwrap();
    let app = tower::service_fn(|req: http::Request<Incoming>| async move {
        let who = req
            .extensions()
            .get::<Claims>()
            .map(|c| c.subject().to_owned())
            .unwrap_or_default();
        Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
            bytes::Bytes::from(format!("hello {who}")),
        )))
    });
    let service = layer.layer(app);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let (access, refresh) = tokens(&login(addr, "bob", "bob-pw").await);
    let reply = Req::get("/anything").bearer(&access).send(addr).await;
    assert_eq!((reply.status, reply.text()), (200, "hello bob"));
    Req::get("/anything")
        .send(addr)
        .await
        .assert_unauthorized(false);
    assert_eq!(
        Req::get("/api/login/refresh")
            .bearer(&refresh)
            .send(addr)
            .await
            .status,
        200
    );
    assert_eq!(
        Req::post("/api/logout")
            .bearer(&access)
            .send(addr)
            .await
            .status,
        204
    );
    Req::get("/anything")
        .bearer(&access)
        .send(addr)
        .await
        .assert_invalid_token("token revoked");
}

// ---- The second factor, through the example server -----------------------------------------

#[tokio::test]
async fn the_example_server_serves_the_second_factor_from_its_configuration() {
    use tower_jwt_login::factor::totp_code;

    let mut config = core_config(Duration::ZERO)
        .totp(true)
        .totp_key("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=");
    config.sessions = tower_jwt_login::config::SessionBackend::Memory;
    let app = common::core_server::app_from_env(&config).await.unwrap();
    let addr = spawn_router(app).await;
    let admin = r#"{"username":"admin","password":"datarhei"}"#;

    // Not enrolled: Core's login, byte for byte; the about document says no code is needed.
    let (access, _) = tokens(&Req::post("/api/login").json(admin).send(addr).await);
    let about = Req::get("/api").send(addr).await;
    assert_eq!(about.json()["totp_required"], serde_json::json!(false));
    // The management routes need a valid access token.
    Req::get("/api/v3/auth/totp")
        .send(addr)
        .await
        .assert_unauthorized(false);
    let reply = Req::get("/api/v3/auth/totp")
        .bearer(&access)
        .send(addr)
        .await;
    assert_eq!(
        (reply.status, reply.text()),
        (
            200,
            "{\"enabled\":false,\"pending\":false,\"recovery_codes_left\":0}\n"
        )
    );
    // Enrol: setup, then enable with a current code.
    let setup = Req::post("/api/v3/auth/totp/setup")
        .bearer(&access)
        .send(addr)
        .await;
    assert_eq!(setup.status, 200, "{}", setup.text());
    let secret = setup.json()["secret"].as_str().unwrap().to_owned();
    let now = common::now();
    let code = totp_code(&secret, now).unwrap();
    let enable = Req::post("/api/v3/auth/totp/enable")
        .bearer(&access)
        .json(format!("{{\"code\":\"{code}\"}}"))
        .send(addr)
        .await;
    assert_eq!(enable.status, 200, "{}", enable.text());
    assert_eq!(
        enable.json()["recovery_codes"].as_array().unwrap().len(),
        10
    );
    assert_eq!(
        Req::get("/api").send(addr).await.json()["totp_required"],
        serde_json::json!(true)
    );

    // Now a password alone is not enough; a code is (the next step's: this one was used).
    let reply = Req::post("/api/login").json(admin).send(addr).await;
    reply.assert_error(401, "TOTP code required");
    let code = totp_code(&secret, now + 30).unwrap();
    let body = format!(
        r#"{{"username":"admin","password":"datarhei","totp_code":"{code}","remember_device":"30d"}}"#
    );
    let reply = Req::post("/api/login").json(&body).send(addr).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let device = reply.json()["device_trust_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (access, _) = tokens(&reply);
    // The same code again: refused.
    Req::post("/api/login")
        .json(&body)
        .send(addr)
        .await
        .assert_error(401, "Invalid TOTP code");
    // The remembered device skips the code …
    let with_device =
        format!(r#"{{"username":"admin","password":"datarhei","device_trust_token":"{device}"}}"#);
    assert_eq!(
        Req::post("/api/login")
            .json(&with_device)
            .send(addr)
            .await
            .status,
        200
    );
    // … until "log out everywhere".
    assert_eq!(
        Req::post("/api/logout/all")
            .bearer(&access)
            .send(addr)
            .await
            .status,
        204
    );
    Req::post("/api/login")
        .json(&with_device)
        .send(addr)
        .await
        .assert_error(401, "TOTP code required");
}
