//! The axum integration over real HTTP on 127.0.0.1: the `Claims` and `Option<Claims>`
//! extractors, `RouterExt::login_routes`, metrics and tracing of login and refresh.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use common::{INVALID_TOKEN, Req, spawn_router};
use tower_jwt_login::auth::{JwtAuthLayer, PathPolicy};
use tower_jwt_login::axum::RouterExt;
use tower_jwt_login::error::AuthError;
use tower_jwt_login::login::{LoginService, RefreshService};
use tower_jwt_login::metrics::Metrics;
use tower_jwt_login::store::PlaintextUser;
use tower_jwt_login::{Claims, Jwt, JwtConfig, JwtKey};

const USER: &str = "alice";
const PASSWORD: &str = "correct horse battery staple";

fn jwt() -> Jwt {
    JwtConfig::new(JwtKey::from_secret("a test secret of at least 32 bytes!!").unwrap())
        .build()
        .unwrap()
}

async fn required(claims: Claims) -> String {
    format!("hello {}", claims.subject())
}

async fn optional(claims: Option<Claims>, why: Option<AuthError>) -> String {
    match (claims, why) {
        (Some(c), _) => format!("hello {}", c.subject()),
        (None, Some(why)) => format!("anonymous ({why})"),
        (None, None) => "anonymous".to_owned(),
    }
}

/// `/auth` login routes; `/me` protected, `/maybe` and `/maybe-required` optional, `/open`
/// public (a misconfiguration for `Claims`).
async fn app(metrics: &Metrics) -> SocketAddr {
    let jwt = jwt();
    let login = LoginService::new(jwt.clone(), PlaintextUser::new(USER, PASSWORD))
        .failure_delay(Duration::ZERO)
        .metrics(metrics.clone());
    let refresh = RefreshService::new(jwt.clone()).metrics(metrics.clone());
    let policy = PathPolicy::new()
        .login_routes("/auth")
        .optional("/maybe")
        .optional("/maybe-required")
        .public("/open");
    let router = Router::new()
        .route("/me", get(required))
        .route("/maybe", get(optional))
        .route("/maybe-required", get(required).head(required))
        .route("/open", get(required))
        .login_routes("/auth/", login, refresh)
        .layer(
            JwtAuthLayer::new(jwt)
                .policy(policy)
                .metrics(metrics.clone()),
        );
    spawn_router(router).await
}

async fn login(addr: SocketAddr) -> (String, String) {
    common::login_at(addr, "/auth/login", USER, PASSWORD).await
}

#[tokio::test]
async fn claims_extractor_gives_the_subject() {
    let addr = app(&Metrics::new()).await;
    let (access, _) = login(addr).await;
    for path in ["/me", "/maybe-required"] {
        let reply = Req::get(path).bearer(&access).send(addr).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.text(), "hello alice");
    }
}

#[tokio::test]
async fn claims_extractor_answers_the_401_without_a_token() {
    let addr = app(&Metrics::new()).await;
    // On an optional path the layer lets the request through; the extractor refuses it.
    let reply = Req::get("/maybe-required").send(addr).await;
    reply.assert_unauthorized(false);
    assert_eq!(reply.text(), INVALID_TOKEN);
}

#[tokio::test]
async fn claims_extractor_answers_the_401_with_challenge_for_a_bad_or_refresh_token() {
    let addr = app(&Metrics::new()).await;
    let (_, refresh) = login(addr).await;
    // The extractor answers with the layer's reason.
    for (token, why) in [
        ("garbage", "malformed token"),
        (refresh.as_str(), "wrong token use"),
    ] {
        let reply = Req::get("/maybe-required").bearer(token).send(addr).await;
        reply.assert_invalid_token(why);
    }
    let reply = Req::get("/maybe-required")
        .header("Authorization", "Basic YTpi")
        .send(addr)
        .await;
    reply.assert_invalid_token("invalid Authorization header");
}

#[tokio::test]
async fn claims_extractor_head_request_has_no_body() {
    let addr = app(&Metrics::new()).await;
    let reply = Req::new("HEAD", "/maybe-required").send(addr).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    assert!(reply.body.is_empty());
}

#[tokio::test]
async fn claims_extractor_refuses_on_a_public_path_even_with_a_valid_token() {
    // The layer does not look at public paths, so there are no verified claims there.
    let addr = app(&Metrics::new()).await;
    let (access, _) = login(addr).await;
    // A token the layer never judged: `invalid_token` with no description (no reason known).
    let reply = Req::get("/open").bearer(&access).send(addr).await;
    reply.assert_error(401, "Missing or invalid JWT token");
    assert_eq!(
        reply.header("www-authenticate"),
        Some("Bearer error=\"invalid_token\"")
    );
    let reply = Req::get("/open").send(addr).await;
    reply.assert_unauthorized(false);
}

#[tokio::test]
async fn claims_extractor_refuses_grpc_requests_the_grpc_way() {
    let addr = app(&Metrics::new()).await;
    let reply = Req::post("/maybe-required")
        .header("Content-Type", "application/grpc")
        .send(addr)
        .await;
    // `/maybe-required` only routes GET and HEAD: axum answers 405 before any extractor runs.
    assert_eq!(reply.status, 405);
    let reply = Req::get("/maybe-required")
        .header("Content-Type", "application/grpc")
        .send(addr)
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("grpc-status"), Some("16"));
    assert_eq!(reply.header("content-type"), Some("application/grpc"));
    assert!(reply.body.is_empty());
}

#[tokio::test]
async fn optional_claims_are_some_with_a_token_and_none_without() {
    let addr = app(&Metrics::new()).await;
    let (access, refresh) = login(addr).await;
    let reply = Req::get("/maybe").bearer(&access).send(addr).await;
    assert_eq!((reply.status, reply.text()), (200, "hello alice"));
    let reply = Req::get("/maybe").send(addr).await;
    assert_eq!(
        (reply.status, reply.text()),
        (200, "anonymous (missing bearer token)")
    );
    let reply = Req::get("/maybe").bearer(&refresh).send(addr).await;
    assert_eq!(
        (reply.status, reply.text()),
        (200, "anonymous (invalid token: wrong token use)")
    );
}

#[tokio::test]
async fn login_routes_mount_login_and_refresh_under_the_prefix() {
    let metrics = Metrics::new();
    let addr = app(&metrics).await;
    let (access, refresh) = login(addr).await;
    let reply = Req::get("/auth/login/refresh")
        .bearer(&refresh)
        .send(addr)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let new_access = reply.json()["access_token"].as_str().unwrap().to_owned();
    let reply = Req::get("/me").bearer(&new_access).send(addr).await;
    assert_eq!(reply.status, 200);

    // Other methods on the login paths stay protected (docs/protocol.md §1) …
    for (method, path) in [("GET", "/auth/login"), ("POST", "/auth/login/refresh")] {
        let reply = Req::new(method, path).send(addr).await;
        reply.assert_unauthorized(false);
    }
    // … and with a valid access token they are 404 in the error shape, never 405.
    let reply = Req::get("/auth/login").bearer(&access).send(addr).await;
    reply.assert_error(404, "Not Found");

    let s = metrics.snapshot();
    assert_eq!((s.login_successes, s.refreshes), (1, 1));
    assert_eq!(s.rejections.missing_token, 2);
}

#[tokio::test]
async fn metrics_count_login_failures_by_reason() {
    let metrics = Metrics::new();
    let addr = app(&metrics).await;
    let reply = Req::post("/auth/login")
        .json(format!("{{\"username\":\"{USER}\",\"password\":\"nope\"}}"))
        .send(addr)
        .await;
    assert_eq!(reply.status, 401);
    let reply = Req::post("/auth/login").json("{}").send(addr).await;
    assert_eq!(reply.status, 400);
    let reply = Req::get("/auth/login/refresh")
        .bearer("x.y.z")
        .send(addr)
        .await;
    assert_eq!(reply.status, 401);
    let s = metrics.snapshot();
    assert_eq!(s.login_failures.invalid_credentials, 1);
    assert_eq!(s.login_failures.missing_credentials, 1);
    assert_eq!(s.login_failures.total(), 2);
    assert_eq!(s.refresh_failures, 1);
    assert_eq!(s.login_successes, 0);
}

#[tokio::test]
async fn about_service_answers_minimal_without_and_full_with_a_token() {
    use tower_jwt_login::discovery::About;
    let jwt = jwt();
    let about = About::new("test-core", "c0ffee")
        .login_methods(true, ["auth0 domain=d audience=a clientid=c"]);
    let router = Router::new()
        .route_service("/api", about.into_service())
        .layer(
            JwtAuthLayer::new(jwt.clone())
                .policy(PathPolicy::new().optional_for(http::Method::GET, "/api")),
        );
    let addr = spawn_router(router).await;
    let reply = Req::get("/api").send(addr).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.text(),
        "{\"app\":\"datarhei-core\",\"auths\":[\"localjwt\",\"auth0 domain=d audience=a clientid=c\"],\"version\":{\"number\":\"16.0.0\"}}\n"
    );
    let access = jwt.issue_pair("alice").access_token;
    let reply = Req::get("/api").bearer(&access).send(addr).await;
    assert_eq!(reply.status, 200);
    let v = reply.json();
    assert_eq!(v["id"], "c0ffee");
    assert_eq!(v["name"], "test-core");
    assert_eq!(v["version"]["number"], "16.16.0");
    // An invalid token on the optional path: still the minimal document, never 401.
    let reply = Req::get("/api").bearer("x.y.z").send(addr).await;
    assert_eq!(reply.status, 200);
    assert!(reply.json().get("id").is_none());
    // POST /api is protected (no rule for it): 401.
    Req::post("/api")
        .send(addr)
        .await
        .assert_unauthorized(false);
}

// ------------------------------------------------- nested routers

/// The layer on a router nested at `/api` sees the path without the prefix; the policy must
/// still be written, and matched, against the path the client sent.
#[tokio::test]
async fn nested_router_matches_the_policy_against_the_original_path() {
    let jwt = jwt();
    let login = LoginService::new(jwt.clone(), PlaintextUser::new(USER, PASSWORD))
        .failure_delay(Duration::ZERO);
    let inner = Router::new()
        .route("/whoami", get(required))
        .login_routes("/", login, RefreshService::new(jwt.clone()))
        .layer(JwtAuthLayer::new(jwt.clone()).policy(PathPolicy::new().login_routes("/api")));
    let addr = spawn_router(Router::new().nest("/api", inner)).await;

    let (access, refresh) = common::login_at(addr, "/api/login", USER, PASSWORD).await;
    let reply = Req::get("/api/whoami").bearer(&access).send(addr).await;
    assert_eq!((reply.status, reply.text()), (200, "hello alice"));
    let reply = Req::get("/api/login/refresh")
        .bearer(&refresh)
        .send(addr)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(reply.json()["access_token"].is_string());
    // Still only for their own methods.
    Req::get("/api/login")
        .send(addr)
        .await
        .assert_unauthorized(false);
    Req::get("/api/whoami")
        .send(addr)
        .await
        .assert_unauthorized(false);
}

/// A `.public("/ping")` rule on a layer inside the router nested at `/admin` must not make
/// `/admin/ping` public.
#[tokio::test]
async fn public_rule_in_a_nested_router_does_not_open_the_nested_path() {
    let jwt = jwt();
    // `/ping` does not look at the claims: only the layer stands in front of it.
    let admin = Router::new()
        .route("/ping", get(|| async { "admin pong" }))
        .route("/users", get(required))
        .layer(JwtAuthLayer::new(jwt.clone()).policy(PathPolicy::new().public("/ping")));
    let app = Router::new()
        .route("/ping", get(|| async { "pong" }))
        .nest("/admin", admin);
    let addr = spawn_router(app).await;

    for path in ["/admin/ping", "/admin/users"] {
        let reply = Req::get(path).send(addr).await;
        reply.assert_unauthorized(false);
        assert_eq!(reply.text(), INVALID_TOKEN, "{path}");
    }
    let access = jwt.issue_pair(USER).access_token;
    let reply = Req::get("/admin/ping").bearer(&access).send(addr).await;
    assert_eq!((reply.status, reply.text()), (200, "admin pong"));
    let reply = Req::get("/admin/users").bearer(&access).send(addr).await;
    assert_eq!((reply.status, reply.text()), (200, "hello alice"));
    // The top-level `/ping` is outside the layer.
    let reply = Req::get("/ping").send(addr).await;
    assert_eq!((reply.status, reply.text()), (200, "pong"));
}

/// The layer wrapped around the whole router as a service runs before routing: it sees every
/// request, matched or not, with the client's path.
#[tokio::test]
async fn layer_around_the_whole_router_runs_before_routing() {
    use axum::response::IntoResponse;
    use tower::ServiceBuilder;
    let jwt = jwt();
    let login = LoginService::new(jwt.clone(), PlaintextUser::new(USER, PASSWORD))
        .failure_delay(Duration::ZERO);
    let router = Router::new().route("/me", get(required)).nest(
        "/api",
        Router::new().login_routes("", login, RefreshService::new(jwt.clone())),
    );
    let app = ServiceBuilder::new()
        .map_response(IntoResponse::into_response)
        .layer(JwtAuthLayer::new(jwt.clone()).policy(PathPolicy::new().login_routes("/api")))
        .service(router);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
                SocketAddr,
            >(app),
        )
        .await
        .unwrap();
    });

    let (access, _) = login_at_api(addr).await;
    let reply = Req::get("/me").bearer(&access).send(addr).await;
    assert_eq!((reply.status, reply.text()), (200, "hello alice"));
    // No route: still refused first (auth before routing), axum's own 404 with a token.
    Req::get("/nowhere")
        .send(addr)
        .await
        .assert_unauthorized(false);
    let reply = Req::get("/nowhere").bearer(&access).send(addr).await;
    assert_eq!(reply.status, 404);
}

async fn login_at_api(addr: SocketAddr) -> (String, String) {
    common::login_at(addr, "/api/login", USER, PASSWORD).await
}

// ------------------------------------------- login_routes with wrapped services (item 12)

#[tokio::test]
async fn login_routes_take_services_wrapped_in_layers() {
    use tower::ServiceBuilder;
    let jwt = jwt();
    let no_store = |mut res: http::Response<_>| {
        res.headers_mut().insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-store"),
        );
        res
    };
    // Wrapped, then type-erased as apps often store their services.
    let login = tower::util::BoxCloneSyncService::new(
        ServiceBuilder::new().map_response(no_store).service(
            LoginService::new(jwt.clone(), PlaintextUser::new(USER, PASSWORD))
                .failure_delay(Duration::ZERO),
        ),
    );
    let refresh = ServiceBuilder::new()
        .map_response(no_store)
        .service(RefreshService::new(jwt.clone()));
    let router = Router::new()
        .route("/me", get(required))
        .login_routes("/auth", login, refresh)
        .layer(JwtAuthLayer::new(jwt).policy(PathPolicy::new().login_routes("/auth")));
    let addr = spawn_router(router).await;

    let reply = Req::post("/auth/login")
        .json(format!(
            "{{\"username\":\"{USER}\",\"password\":\"{PASSWORD}\"}}"
        ))
        .send(addr)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let refresh_token = reply.json()["refresh_token"].as_str().unwrap().to_owned();
    let reply = Req::get("/auth/login/refresh")
        .bearer(&refresh_token)
        .send(addr)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let access = reply.json()["access_token"].as_str().unwrap().to_owned();
    let reply = Req::get("/me").bearer(&access).send(addr).await;
    assert_eq!((reply.status, reply.text()), (200, "hello alice"));
    // A wrong password through the wrapped service: the §2 body, and the wrapper's header.
    let reply = Req::post("/auth/login")
        .json(format!("{{\"username\":\"{USER}\",\"password\":\"nope\"}}"))
        .send(addr)
        .await;
    reply.assert_error(
        401,
        "Invalid authorization credentials: invalid username or password",
    );
    assert_eq!(reply.header("cache-control"), Some("no-store"));
}
