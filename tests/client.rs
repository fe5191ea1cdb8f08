//! The client side (`client` feature) end to end over loopback: `TokenSource` and
//! `LoginClientLayer` on hyper-util's client against the example server (and, for rotation and
//! logout, a small server built here from the crate's pieces). Every server records what it was
//! sent — method, path, the Bearer token presented, the status answered — so the tests count
//! logins and refreshes on the server side, and see which token each request carried.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(feature = "auth0")]
mod auth0_support;
mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Request as AxumRequest;
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use bytes::Bytes;
use common::{
    CORE_HEADER, INVALID_TOKEN, PASSWORD, SECRET, USER, core_claims, core_config, core_key,
    core_server, now, sign_hs256, spawn_router,
};
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, ServiceExt};
use tower_jwt_login::auth::{JwtAuthLayer, PathPolicy};
use tower_jwt_login::client::{
    ClientError, Credentials, Discovery, LoginClient, Logout, RequestError, TokenSource, TokenState,
};
use tower_jwt_login::config::CoreAuthConfig;
use tower_jwt_login::discovery::About;
use tower_jwt_login::login::{LoginService, LogoutService, RefreshService};
use tower_jwt_login::response::error_response;
use tower_jwt_login::session::{MemorySessionStore, Sessions};
use tower_jwt_login::{Jwt, JwtConfig, TokenUse};

// ---------------------------------------------------------------- the server's record

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    method: String,
    path: String,
    bearer: Option<String>,
    status: u16,
}

/// Everything a server answered, in order.
#[derive(Clone, Default)]
struct Record(Arc<Mutex<Vec<Seen>>>);

impl Record {
    fn all(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }
    /// Requests to `method path` (any status).
    fn count(&self, method: &str, path: &str) -> usize {
        self.all()
            .iter()
            .filter(|s| s.method == method && s.path == path)
            .count()
    }
    fn logins(&self) -> usize {
        self.count("POST", "/api/login")
    }
    fn refreshes(&self) -> usize {
        self.count("GET", "/api/login/refresh")
    }
    /// `(method path status)` lines, for exact sequence assertions.
    fn lines(&self) -> Vec<String> {
        self.all()
            .iter()
            .map(|s| format!("{} {} {}", s.method, s.path, s.status))
            .collect()
    }
}

/// `app` with every request recorded, outermost (before the auth layer and routing).
fn recorded(app: Router, record: Record) -> Router {
    app.layer(axum::middleware::from_fn(
        move |req: AxumRequest, next: Next| {
            let record = record.clone();
            async move {
                let method = req.method().to_string();
                let path = req.uri().path().to_owned();
                let bearer = req
                    .headers()
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .map(str::to_owned);
                let res = next.run(req).await;
                record.0.lock().unwrap().push(Seen {
                    method,
                    path,
                    bearer,
                    status: res.status().as_u16(),
                });
                res
            }
        },
    ))
}

/// The example server (`core_server::app`, admin/datarhei/secretsecret, no failure delay),
/// recorded.
async fn example_server() -> (String, Record) {
    example_server_with(core_config(Duration::ZERO)).await
}

async fn example_server_with(config: CoreAuthConfig) -> (String, Record) {
    let record = Record::default();
    let app = recorded(core_server::app(&config).unwrap(), record.clone());
    let addr = spawn_router(app).await;
    (format!("http://{addr}"), record)
}

/// The example server's layout built from the crate's pieces with other token lifetimes
/// (`CoreAuthConfig` has no lifetime setting): about, login, refresh, the guard, the process
/// list, and `POST /api/v3/echo` answering the body it got.
fn short_lived_app(access: Duration, refresh: Duration) -> Router {
    let config = core_config(Duration::ZERO);
    let jwt = JwtConfig::new(config.jwt_key())
        .access_ttl(access)
        .refresh_ttl(refresh)
        .build()
        .unwrap();
    let login =
        LoginService::new(jwt.clone(), config.credential_store()).failure_delay(Duration::ZERO);
    base_routes(&jwt)
        .route_service("/api/login", login)
        .route_service("/api/login/refresh", RefreshService::new(jwt.clone()))
        .layer(JwtAuthLayer::new(jwt).policy(core_policy()))
}

fn core_policy() -> PathPolicy {
    PathPolicy::new()
        .login_routes("/api")
        .optional_for(Method::GET, "/api")
        .public_for(Method::POST, "/api/logout")
        .protected("/api")
        .protected("/api/*")
        .public("/*")
}

fn base_routes(_jwt: &Jwt) -> Router {
    let about = About::new("client-test", "1").login_methods(true, [] as [&str; 0]);
    Router::new()
        .route_service("/api", about.into_service())
        .route(
            "/api/v3/process",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], "[]\n") }),
        )
        .route("/api/v3/echo", post(|body: Bytes| async move { body }))
        .route(
            "/api/v3/refuse",
            get(|| async {
                (
                    StatusCode::UNAUTHORIZED,
                    [(header::CONTENT_TYPE, "application/json")],
                    INVALID_TOKEN,
                )
            }),
        )
        .fallback(|method: Method| async move {
            error_response(&method, StatusCode::NOT_FOUND, "Not Found")
        })
}

async fn serve(app: Router) -> (String, Record) {
    let record = Record::default();
    let addr: SocketAddr = spawn_router(recorded(app, record.clone())).await;
    (format!("http://{addr}"), record)
}

// ------------------------------------------------------------------------- the client

type Http = Client<HttpConnector, Full<Bytes>>;

fn client(source: &TokenSource) -> LoginClient<Http> {
    let http: Http = Client::builder(TokioExecutor::new()).build_http();
    source.layer().layer(http)
}

/// `method url` with `body` through the layer: (status, body text).
async fn send(
    client: &LoginClient<Http>,
    method: Method,
    url: &str,
    body: &'static str,
) -> Result<(u16, String), RequestError<hyper_util::client::legacy::Error>> {
    let req = Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap();
    let res = client.clone().oneshot(req).await?;
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    Ok((status, String::from_utf8(body.to_vec()).unwrap()))
}

async fn get_process(client: &LoginClient<Http>, base: &str) -> (u16, String) {
    send(client, Method::GET, &format!("{base}/api/v3/process"), "")
        .await
        .unwrap()
}

fn password_source(base: &str) -> TokenSource {
    TokenSource::with_password(base, USER, PASSWORD).unwrap()
}

/// A token signed with the example server's key (Core's key for admin/datarhei/secretsecret).
fn mint(usefor: &str, iat: u64, ttl: u64) -> String {
    sign_hs256(&core_key(), CORE_HEADER, &core_claims(usefor, iat, ttl))
}

/// The same claims under a key the server does not have.
fn forged(usefor: &str, iat: u64, ttl: u64) -> String {
    sign_hs256(
        b"not the server's key",
        CORE_HEADER,
        &core_claims(usefor, iat, ttl),
    )
}

/// State with these tokens for `base`.
fn state(base: &str, access: &str, refresh: Option<&str>) -> TokenState {
    TokenState::new(base, access, refresh.map(str::to_owned))
}

// ------------------------------------------------------------------------------ login

#[tokio::test]
async fn first_request_reads_discovery_logs_in_and_attaches_the_token() {
    let (base, record) = example_server().await;
    let source = password_source(&base);
    let client = client(&source);
    assert_eq!(get_process(&client, &base).await, (200, "[]\n".to_owned()));
    assert_eq!(
        record.lines(),
        [
            "GET /api 200",
            "POST /api/login 200",
            "GET /api/v3/process 200"
        ]
    );
    // The request carried the access token the login answered, and nothing went to the login
    // routes with a token.
    let seen = record.all();
    let access = source.access_token().await.unwrap();
    assert_eq!(seen[2].bearer.as_deref(), Some(access.as_str()));
    assert_eq!(seen[0].bearer, None);
    assert_eq!(seen[1].bearer, None);
    // Further requests reuse the token: no new login, no refresh.
    for _ in 0..3 {
        assert_eq!(get_process(&client, &base).await.0, 200);
    }
    assert_eq!((record.logins(), record.refreshes()), (1, 0));
    assert_eq!(record.count("GET", "/api"), 1);
}

#[tokio::test]
async fn wrong_password_is_a_typed_login_refusal() {
    let (base, record) = example_server().await;
    let source = TokenSource::with_password(&base, USER, "wrong").unwrap();
    let err = source.access_token().await.unwrap_err();
    let ClientError::LoginRefused {
        request,
        status,
        detail,
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(request, &format!("POST {base}/api/login"));
    assert_eq!(*status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        detail,
        "Invalid authorization credentials: invalid username or password"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "login refused: POST {base}/api/login answered 401 Unauthorized: Invalid \
             authorization credentials: invalid username or password"
        )
    );
    assert_eq!(
        format!("{err:?}"),
        format!(
            "LoginRefused {{ request: \"POST {base}/api/login\", status: 401, detail: \
             \"Invalid authorization credentials: invalid username or password\" }}"
        )
    );
    // Through the layer the request is not sent at all.
    let e = send(
        &client(&source),
        Method::GET,
        &format!("{base}/api/v3/process"),
        "",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e, RequestError::Token(ClientError::LoginRefused { .. })),
        "{e:?}"
    );
    assert_eq!(record.count("GET", "/api/v3/process"), 0);
}

#[tokio::test]
async fn a_server_without_localjwt_is_refused_before_any_login() {
    // The example server with auth switched off lists no login method.
    let (base, record) = example_server_with(CoreAuthConfig::default().enable(false)).await;
    let source = password_source(&base);
    let err = source.access_token().await.unwrap_err();
    let ClientError::NotOffered {
        request,
        wanted,
        offered,
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(request, &format!("GET {base}/api"));
    assert_eq!(wanted, "localjwt");
    assert!(offered.is_empty());
    assert_eq!(
        err.to_string(),
        format!(
            "the server does not offer the login this client was given: wanted `localjwt`, \
             GET {base}/api lists auths []"
        )
    );
    assert_eq!(record.lines(), ["GET /api 200"]);
}

#[tokio::test]
async fn invalid_base_urls_are_refused() {
    for url in [
        "127.0.0.1:8080",
        "ftp://host",
        "http://",
        "http://h/?q=1",
        "not a url",
    ] {
        let err = TokenSource::with_password(url, USER, PASSWORD).unwrap_err();
        assert!(matches!(err, ClientError::InvalidUrl(_)), "{url}: {err:?}");
    }
    let source = TokenSource::with_password("http://127.0.0.1:8080/", USER, PASSWORD).unwrap();
    assert_eq!(source.url(), "http://127.0.0.1:8080");
}

#[tokio::test]
async fn endpoint_paths_that_are_not_paths_are_refused() {
    let builder = || TokenSource::builder("http://127.0.0.1:8080/base/");
    for (built, text) in [
        (
            builder().login_path("auth/login").build(),
            "invalid URL: the login path \"auth/login\" is not a path",
        ),
        (
            builder().refresh_path("").build(),
            "invalid URL: the refresh path \"\" is not a path",
        ),
        (
            builder().logout_path("/a b").build(),
            "invalid URL: the logout path \"/a b\" is not a path",
        ),
        (
            builder().about_path("/api#x").build(),
            "invalid URL: the about path \"/api#x\" is not a path",
        ),
    ] {
        let err = built.unwrap_err();
        assert!(matches!(err, ClientError::InvalidUrl(_)), "{err:?}");
        assert_eq!(err.to_string(), text);
    }
    // Paths follow the base URL's own path.
    let config = core_config(Duration::ZERO);
    let jwt = JwtConfig::new(config.jwt_key()).build().unwrap();
    let login = LoginService::new(jwt, config.credential_store()).failure_delay(Duration::ZERO);
    let (base, record) = serve(Router::new().route_service("/base/auth/login", login)).await;
    let source = TokenSource::builder(format!("{base}/base/"))
        .credentials(Credentials::password(USER, PASSWORD))
        .discovery(Discovery::Off)
        .login_path("/auth/login")
        .build()
        .unwrap();
    source.login().await.unwrap();
    assert_eq!(record.lines(), ["POST /base/auth/login 200"]);
}

// -------------------------------------------------------------------------- staying fresh

#[tokio::test]
async fn a_token_near_expiry_is_refreshed_before_the_call() {
    // 4 s access tokens: the margin is capped at half the lifetime, 2 s.
    let (base, record) = serve(short_lived_app(
        Duration::from_secs(4),
        Duration::from_secs(60),
    ))
    .await;
    let source = password_source(&base);
    let client = client(&source);
    assert_eq!(get_process(&client, &base).await, (200, "[]\n".to_owned()));
    let first = source.export().unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(get_process(&client, &base).await, (200, "[]\n".to_owned()));
    assert_eq!(
        record.lines(),
        [
            "GET /api 200",
            "POST /api/login 200",
            "GET /api/v3/process 200",
            "GET /api/login/refresh 200",
            "GET /api/v3/process 200",
        ]
    );
    // The refresh presented the login's refresh token; the second call a new access token.
    let seen = record.all();
    let first_json = serde_json::to_value(&first).unwrap();
    assert_eq!(
        seen[3].bearer.as_deref(),
        first_json["refresh_token"].as_str()
    );
    assert_ne!(seen[4].bearer, seen[2].bearer);
    assert_eq!(
        seen[4].bearer.as_deref(),
        Some(source.access_token().await.unwrap().as_str())
    );
}

#[tokio::test]
async fn a_resumed_token_expiring_within_the_margin_is_refreshed_first() {
    let (base, record) = example_server().await;
    let t = now();
    // exp in 10 s, 600 s lifetime: within the default 30 s margin.
    let source = password_source(&base);
    source
        .resume(state(
            &base,
            &mint("access", t - 590, 600),
            Some(&mint("refresh", t, 86_400)),
        ))
        .unwrap();
    assert_eq!(
        get_process(&client(&source), &base).await,
        (200, "[]\n".to_owned())
    );
    assert_eq!(
        record.lines(),
        ["GET /api/login/refresh 200", "GET /api/v3/process 200"]
    );
}

#[tokio::test]
async fn a_401_refreshes_once_and_retries_the_request_with_its_body() {
    let (base, record) = serve(short_lived_app(
        Duration::from_secs(600),
        Duration::from_secs(600),
    ))
    .await;
    let t = now();
    // An access token the client believes valid (exp in 10 min) but the server refuses.
    let source = TokenSource::builder(&base)
        .state(state(
            &base,
            &forged("access", t, 600),
            Some(&mint("refresh", t, 600)),
        ))
        .build()
        .unwrap();
    let client = client(&source);
    let reply = send(
        &client,
        Method::POST,
        &format!("{base}/api/v3/echo"),
        "{\"replayed\":true}",
    )
    .await
    .unwrap();
    assert_eq!(reply, (200, "{\"replayed\":true}".to_owned()));
    assert_eq!(
        record.lines(),
        [
            "POST /api/v3/echo 401",
            "GET /api/login/refresh 200",
            "POST /api/v3/echo 200",
        ]
    );
    let seen = record.all();
    assert_eq!(
        seen[0].bearer.as_deref(),
        Some(forged("access", t, 600).as_str())
    );
    assert_eq!(
        seen[2].bearer.as_deref(),
        Some(source.access_token().await.unwrap().as_str())
    );
}

#[tokio::test]
async fn a_request_whose_body_cannot_be_replayed_gets_its_401_and_the_next_one_refreshes() {
    use http_body_util::combinators::UnsyncBoxBody;
    type Streaming = UnsyncBoxBody<Bytes, std::convert::Infallible>;

    let (base, record) = serve(short_lived_app(
        Duration::from_secs(600),
        Duration::from_secs(600),
    ))
    .await;
    let t = now();
    let source = TokenSource::builder(&base)
        .state(state(
            &base,
            &forged("access", t, 600),
            Some(&mint("refresh", t, 600)),
        ))
        .build()
        .unwrap();
    let http: Client<HttpConnector, Streaming> = Client::builder(TokioExecutor::new()).build_http();
    let client = source.layer().layer(http);
    let request = || {
        Request::post(format!("{base}/api/v3/echo"))
            .body(Full::new(Bytes::from_static(b"stream")).boxed_unsync())
            .unwrap()
    };
    // A boxed (streaming) body is not replayed: the 401 comes back as the server sent it.
    let res = client.clone().oneshot(request()).await.unwrap();
    assert_eq!(res.status(), 401);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], INVALID_TOKEN.as_bytes());
    assert_eq!(record.lines(), ["POST /api/v3/echo 401"]);
    // The refused token is marked: the next request refreshes before it is sent.
    let res = client.clone().oneshot(request()).await.unwrap();
    assert_eq!(res.status(), 200);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"stream");
    assert_eq!(
        record.lines(),
        [
            "POST /api/v3/echo 401",
            "GET /api/login/refresh 200",
            "POST /api/v3/echo 200",
        ]
    );
}

#[tokio::test]
async fn an_unreadable_token_is_used_until_the_server_refuses_it() {
    let (base, record) = example_server().await;
    let t = now();
    // Not a JWT the client can read: no proactive refresh, only on the 401.
    let source = TokenSource::builder(&base)
        .state(state(
            &base,
            "opaque-token",
            Some(&mint("refresh", t, 86_400)),
        ))
        .build()
        .unwrap();
    assert_eq!(
        get_process(&client(&source), &base).await,
        (200, "[]\n".to_owned())
    );
    assert_eq!(
        record.lines(),
        [
            "GET /api/v3/process 401",
            "GET /api/login/refresh 200",
            "GET /api/v3/process 200",
        ]
    );
    assert_eq!(record.all()[0].bearer.as_deref(), Some("opaque-token"));
}

#[tokio::test]
async fn a_second_401_is_returned_as_is_without_another_refresh() {
    // `/api/v3/refuse` answers 401 even to a valid token: one refresh, one retry, then the 401.
    let (base, record) = serve(short_lived_app(
        Duration::from_secs(600),
        Duration::from_secs(600),
    ))
    .await;
    let source = password_source(&base);
    source.login().await.unwrap();
    let client = client(&source);
    let reply = send(&client, Method::GET, &format!("{base}/api/v3/refuse"), "")
        .await
        .unwrap();
    assert_eq!(reply, (401, INVALID_TOKEN.to_owned()));
    assert_eq!(
        record.lines(),
        [
            "GET /api 200",
            "POST /api/login 200",
            "GET /api/v3/refuse 401",
            "GET /api/login/refresh 200",
            "GET /api/v3/refuse 401",
        ]
    );
}

#[tokio::test]
async fn a_401_with_a_refused_refresh_and_no_credentials_is_a_typed_error() {
    let (base, record) = example_server().await;
    let t = now();
    let source = TokenSource::builder(&base)
        .state(state(
            &base,
            &forged("access", t, 600),
            Some(&forged("refresh", t, 86_400)),
        ))
        .build()
        .unwrap();
    let err = send(
        &client(&source),
        Method::GET,
        &format!("{base}/api/v3/process"),
        "",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, RequestError::Token(ClientError::NoCredentials)),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "no access token: a new login is needed (no usable refresh token) but the client holds \
         no credentials"
    );
    assert_eq!(
        record.lines(),
        ["GET /api/v3/process 401", "GET /api/login/refresh 401"]
    );
}

#[tokio::test]
async fn a_refused_refresh_token_means_logging_in_again() {
    let (base, record) = example_server().await;
    let t = now();
    // The access token has expired and the refresh token is one the server refuses (as after a
    // key change).
    let source = password_source(&base);
    source
        .resume(state(
            &base,
            &mint("access", t - 700, 600),
            Some(&forged("refresh", t, 86_400)),
        ))
        .unwrap();
    assert_eq!(
        get_process(&client(&source), &base).await,
        (200, "[]\n".to_owned())
    );
    assert_eq!(
        record.lines(),
        [
            "GET /api/login/refresh 401",
            "GET /api 200",
            "POST /api/login 200",
            "GET /api/v3/process 200",
        ]
    );
}

#[tokio::test]
async fn an_expired_refresh_token_is_not_sent_the_client_logs_in() {
    let (base, record) = example_server().await;
    let t = now();
    let source = password_source(&base);
    source
        .resume(state(
            &base,
            &mint("access", t - 90_000, 600),
            Some(&mint("refresh", t - 90_000, 86_400)),
        ))
        .unwrap();
    assert_eq!(
        get_process(&client(&source), &base).await,
        (200, "[]\n".to_owned())
    );
    assert_eq!(
        record.lines(),
        [
            "GET /api 200",
            "POST /api/login 200",
            "GET /api/v3/process 200"
        ]
    );
}

#[tokio::test]
async fn without_credentials_an_expired_session_is_a_typed_error() {
    let (base, record) = example_server().await;
    let t = now();
    let source = TokenSource::builder(&base)
        .state(state(
            &base,
            &mint("access", t - 90_000, 600),
            Some(&mint("refresh", t - 90_000, 86_400)),
        ))
        .build()
        .unwrap();
    assert!(!source.has_credentials());
    let err = source.access_token().await.unwrap_err();
    assert!(matches!(err, ClientError::NoCredentials), "{err:?}");
    assert!(record.all().is_empty());
}

// ------------------------------------------------------------------------- single flight

#[tokio::test]
async fn a_hundred_concurrent_requests_on_a_stale_token_cause_one_refresh() {
    let (base, record) = example_server().await;
    let t = now();
    let source = password_source(&base);
    source
        .resume(state(
            &base,
            &mint("access", t - 700, 600),
            Some(&mint("refresh", t, 86_400)),
        ))
        .unwrap();
    let client = client(&source);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let client = client.clone();
        let base = base.clone();
        tasks.spawn(async move { get_process(&client, &base).await });
    }
    while let Some(reply) = tasks.join_next().await {
        assert_eq!(reply.unwrap(), (200, "[]\n".to_owned()));
    }
    assert_eq!(record.refreshes(), 1);
    assert_eq!(record.logins(), 0);
    let seen = record.all();
    let calls: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.path == "/api/v3/process")
        .collect();
    assert_eq!(calls.len(), 100);
    // All with the one new token, none with the stale one.
    let tokens: HashSet<_> = calls.iter().map(|s| s.bearer.clone().unwrap()).collect();
    assert_eq!(tokens.len(), 1);
    assert!(calls.iter().all(|s| s.status == 200));
    assert_eq!(seen[0].path, "/api/login/refresh");
}

#[tokio::test]
async fn concurrent_callers_share_a_failed_login_instead_of_repeating_it() {
    let (base, record) = example_server().await;
    let source = TokenSource::with_password(&base, USER, "wrong").unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let source = source.clone();
        tasks.spawn(async move { source.access_token().await });
    }
    while let Some(result) = tasks.join_next().await {
        let err = result.unwrap().unwrap_err();
        assert!(matches!(err, ClientError::LoginRefused { .. }), "{err:?}");
    }
    assert_eq!(record.logins(), 1);
}

// ------------------------------------------------------------------------------ rotation

/// Spent refresh-token ids, and logouts seen, of the rotating server.
#[derive(Clone, Default)]
struct Rotation {
    spent: Arc<Mutex<HashSet<String>>>,
    logged_out: Arc<Mutex<Vec<String>>>,
}

/// A server that rotates refresh tokens (its refresh answers `{"access_token","refresh_token"}`
/// and refuses a spent refresh token) and offers `POST /api/logout` (204 for a valid access or
/// refresh token), as the crate's session support does.
fn rotating_app(rotation: Rotation) -> Router {
    let config = core_config(Duration::ZERO);
    let jwt = JwtConfig::new(config.jwt_key()).build().unwrap();
    let login =
        LoginService::new(jwt.clone(), config.credential_store()).failure_delay(Duration::ZERO);
    let refresh_jwt = jwt.clone();
    let spent = rotation.spent.clone();
    let refresh = get(move |headers: http::HeaderMap| {
        let jwt = refresh_jwt.clone();
        let spent = spent.clone();
        async move {
            let token = tower_jwt_login::bearer::bearer_token(&headers).ok();
            let claims = token.and_then(|t| jwt.verify(t, TokenUse::Refresh).ok());
            let fresh = claims
                .as_ref()
                .is_some_and(|c| spent.lock().unwrap().insert(c.jti().unwrap().to_owned()));
            match claims.filter(|_| fresh) {
                Some(claims) => {
                    let pair = jwt.issue_pair(claims.subject());
                    let body = serde_json::json!({
                        "access_token": pair.access_token,
                        "refresh_token": pair.refresh_token,
                    });
                    axum::Json(body).into_response()
                }
                None => (
                    StatusCode::UNAUTHORIZED,
                    [(header::CONTENT_TYPE, "application/json")],
                    INVALID_TOKEN,
                )
                    .into_response(),
            }
        }
    });
    let logout_jwt = jwt.clone();
    let logged_out = rotation.logged_out.clone();
    let logout = post(move |headers: http::HeaderMap| {
        let jwt = logout_jwt.clone();
        let logged_out = logged_out.clone();
        async move {
            let token = tower_jwt_login::bearer::bearer_token(&headers).ok();
            let valid = token.filter(|t| {
                jwt.verify(t, TokenUse::Access).is_ok() || jwt.verify(t, TokenUse::Refresh).is_ok()
            });
            match valid {
                Some(t) => {
                    logged_out.lock().unwrap().push(t.to_owned());
                    StatusCode::NO_CONTENT.into_response()
                }
                None => StatusCode::UNAUTHORIZED.into_response(),
            }
        }
    });
    base_routes(&jwt)
        .route_service("/api/login", login)
        .route("/api/login/refresh", refresh)
        .route("/api/logout", logout)
        .layer(JwtAuthLayer::new(jwt).policy(core_policy()))
}

fn refresh_token_of(state: &TokenState) -> String {
    serde_json::to_value(state).unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_rotated_refresh_token_replaces_the_old_one_at_once() {
    let (base, record) = serve(rotating_app(Rotation::default())).await;
    let source = password_source(&base);
    source.login().await.unwrap();
    let r0 = refresh_token_of(&source.export().unwrap());
    source.refresh().await.unwrap();
    let r1 = refresh_token_of(&source.export().unwrap());
    source.refresh().await.unwrap();
    let r2 = refresh_token_of(&source.export().unwrap());
    assert!(r0 != r1 && r1 != r2 && r0 != r2);
    let presented: Vec<String> = record
        .all()
        .into_iter()
        .filter(|s| s.path == "/api/login/refresh")
        .map(|s| {
            assert_eq!(s.status, 200);
            s.bearer.unwrap()
        })
        .collect();
    // Each refresh presented the newest refresh token; the old one never again.
    assert_eq!(presented, [r0, r1]);
    assert_eq!(
        get_process(&client(&source), &base).await,
        (200, "[]\n".to_owned())
    );

    // A stale access token with 100 concurrent requests: one rotation, so no spent token is
    // ever presented (the server would refuse it with 401).
    let t = now();
    source
        .resume(state(&base, &mint("access", t - 700, 600), Some(&r2)))
        .unwrap();
    let client = client(&source);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let client = client.clone();
        let base = base.clone();
        tasks.spawn(async move { get_process(&client, &base).await });
    }
    while let Some(reply) = tasks.join_next().await {
        assert_eq!(reply.unwrap(), (200, "[]\n".to_owned()));
    }
    let refreshes: Vec<Seen> = record
        .all()
        .into_iter()
        .filter(|s| s.path == "/api/login/refresh")
        .collect();
    assert_eq!(refreshes.len(), 3);
    assert_eq!(refreshes[2].bearer.as_deref(), Some(r2.as_str()));
    assert_eq!(refreshes[2].status, 200);
    assert_ne!(refresh_token_of(&source.export().unwrap()), r2);
    assert_eq!(record.logins(), 1);
}

// ------------------------------------------------------------------------ export, resume

#[tokio::test]
async fn export_then_resume_makes_no_new_login() {
    let (base, record) = example_server().await;
    let first = password_source(&base);
    assert_eq!(get_process(&client(&first), &base).await.0, 200);
    let saved = serde_json::to_string(&first.export().unwrap()).unwrap();
    assert!(saved.starts_with(&format!("{{\"url\":\"{base}\",\"access_token\":\"ey")));
    drop(first);

    // A new client — even one holding credentials — resumes without logging in.
    let resumed = TokenSource::builder(&base)
        .credentials(Credentials::password(USER, PASSWORD))
        .state(serde_json::from_str(&saved).unwrap())
        .build()
        .unwrap();
    assert_eq!(
        get_process(&client(&resumed), &base).await,
        (200, "[]\n".to_owned())
    );
    assert_eq!(record.logins(), 1);
    assert_eq!(record.refreshes(), 0);
    let seen = record.all();
    assert_eq!(seen.last().unwrap().bearer, seen[2].bearer);
    assert_eq!(
        serde_json::to_string(&resumed.export().unwrap()).unwrap(),
        saved
    );

    // State saved for another server is refused.
    let other = TokenSource::builder("http://127.0.0.1:1")
        .state(serde_json::from_str(&saved).unwrap())
        .build()
        .unwrap_err();
    assert!(
        matches!(other, ClientError::WrongServer { .. }),
        "{other:?}"
    );
}

#[tokio::test]
async fn debug_output_never_shows_tokens_or_passwords() {
    let (base, _record) = example_server().await;
    let source = TokenSource::builder(&base)
        .credentials(Credentials::password(USER, "s3cret-password"))
        .build()
        .unwrap();
    let t = now();
    let (access, refresh) = (mint("access", t, 600), mint("refresh", t, 86_400));
    source
        .resume(state(&base, &access, Some(&refresh)))
        .unwrap();
    let texts = [
        format!("{source:?}"),
        format!("{:?}", source.export().unwrap()),
        format!("{:?}", Credentials::auth0(access.clone())),
        format!("{:?}", client(&source)),
    ];
    for text in texts {
        for secret in ["s3cret-password", access.as_str(), refresh.as_str(), SECRET] {
            assert!(!text.contains(secret), "{text}");
        }
    }
    assert_eq!(
        format!("{:?}", source.export().unwrap()),
        format!(
            "TokenState {{ url: \"{base}\", access_token: \"<redacted>\", refresh_token: Some(\"<redacted>\") }}"
        )
    );
}

// -------------------------------------------------------------------------------- logout

#[tokio::test]
async fn logout_where_the_server_offers_it_ends_the_session() {
    let rotation = Rotation::default();
    let (base, record) = serve(rotating_app(rotation.clone())).await;
    let source = password_source(&base);
    let access = source.access_token().await.unwrap();
    assert_eq!(source.logout().await.unwrap(), Logout::LoggedOut);
    assert_eq!(*rotation.logged_out.lock().unwrap(), [access]);
    assert_eq!(record.lines().last().unwrap(), "POST /api/logout 204");
    assert!(source.export().is_none());
    assert_eq!(source.logout().await.unwrap(), Logout::NoTokens);
}

#[tokio::test]
async fn logout_with_a_stale_access_token_presents_the_refresh_token() {
    let rotation = Rotation::default();
    let (base, record) = serve(rotating_app(rotation.clone())).await;
    let t = now();
    let refresh = mint("refresh", t, 86_400);
    let source = TokenSource::builder(&base)
        .state(state(&base, &mint("access", t - 700, 600), Some(&refresh)))
        .build()
        .unwrap();
    assert_eq!(source.logout().await.unwrap(), Logout::LoggedOut);
    assert_eq!(*rotation.logged_out.lock().unwrap(), [refresh]);
    // No refresh or login just to log out.
    assert_eq!(record.lines(), ["POST /api/logout 204"]);
}

#[tokio::test]
async fn logout_where_the_server_has_none_just_forgets_the_tokens() {
    let (base, record) = example_server().await;
    let source = password_source(&base);
    let client = client(&source);
    assert_eq!(get_process(&client, &base).await.0, 200);
    assert_eq!(source.logout().await.unwrap(), Logout::NotOffered);
    assert_eq!(record.lines().last().unwrap(), "POST /api/logout 404");
    assert!(source.export().is_none());
    // The next request logs in again.
    assert_eq!(get_process(&client, &base).await.0, 200);
    assert_eq!(record.logins(), 2);
}

// --------------------------------------------------------------------------------- Auth0

#[cfg(feature = "auth0")]
mod auth0 {
    use super::*;
    use crate::auth0_support::{
        ALLOWED, AUDIENCE, CLIENT_ID, JwksServer, Mode, claims, fast_settings, keys, standard_jwks,
        test_pki,
    };
    use jsonwebtoken::Algorithm;
    use serde_json::json;
    use tower_jwt_login::auth0::{Auth0Tenant, HttpsFetcher, JwksProvider};

    /// The example server with Auth0 logins for a tenant whose JWKS is served over TLS by a
    /// loopback server (test CA); the tenant's domain is that server's address.
    async fn auth0_server() -> (String, Record, String, JwksServer) {
        let pki = test_pki();
        let jwks =
            JwksServer::start_tls(Mode::Serve(standard_jwks()), Arc::clone(&pki.server)).await;
        let domain = jwks.addr.to_string();
        let tenant = Auth0Tenant::new(&domain, AUDIENCE)
            .clientid(CLIENT_ID)
            .user(ALLOWED);
        let fetcher = HttpsFetcher::with_root_certificates_pem(pki.ca_pem.as_bytes()).unwrap();
        let provider = JwksProvider::with_fetcher([tenant], fast_settings(), fetcher);
        let auths = provider.auths();
        let app =
            core_server::app_with_auth0(&core_config(Duration::ZERO), provider, auths).unwrap();
        let (base, record) = serve(app).await;
        (base, record, domain, jwks)
    }

    fn auth0_token(domain: &str) -> String {
        let mut c = claims(ALLOWED);
        c["iss"] = json!(format!("https://{domain}/"));
        keys().ec.token(Algorithm::ES256, "ec", &c)
    }

    #[tokio::test]
    async fn an_auth0_token_logs_in_with_the_bearer_login() {
        let (base, record, domain, jwks) = auth0_server().await;
        let token = auth0_token(&domain);
        let source = TokenSource::builder(&base)
            .credentials(Credentials::auth0(token.clone()))
            .build()
            .unwrap();
        let client = client(&source);
        assert_eq!(get_process(&client, &base).await, (200, "[]\n".to_owned()));
        assert_eq!(
            record.lines(),
            [
                "GET /api 200",
                "POST /api/login 200",
                "GET /api/v3/process 200"
            ]
        );
        let seen = record.all();
        assert_eq!(seen[1].bearer.as_deref(), Some(token.as_str()));
        // The crate's own token for the Auth0 subject, not the Auth0 token, on the request.
        let access = seen[2].bearer.clone().unwrap();
        assert_ne!(access, token);
        let (_, payload) = common::decode_parts(&access);
        assert!(
            payload.contains(&format!("\"sub\":\"{ALLOWED}\"")),
            "{payload}"
        );
        assert_eq!(jwks.hits(), 1);

        // When the refresh token is refused, it logs in again with the Auth0 token.
        let t = now();
        source
            .resume(state(
                &base,
                &mint("access", t - 700, 600),
                Some(&forged("refresh", t, 86_400)),
            ))
            .unwrap();
        assert_eq!(get_process(&client, &base).await.0, 200);
        assert_eq!(record.logins(), 2);
        assert_eq!(record.all()[4].bearer.as_deref(), Some(token.as_str()));
    }

    #[tokio::test]
    async fn an_auth0_token_for_a_tenant_the_server_lacks_is_refused() {
        let (base, record, domain, _jwks) = auth0_server().await;
        let source = TokenSource::builder(&base)
            .credentials(Credentials::auth0(auth0_token("other.auth0.test")))
            .build()
            .unwrap();
        let err = source.access_token().await.unwrap_err();
        let ClientError::NotOffered {
            request,
            wanted,
            offered,
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!(request, &format!("GET {base}/api"));
        assert_eq!(wanted, "auth0 domain=other.auth0.test");
        assert_eq!(
            offered,
            &[
                "localjwt".to_owned(),
                format!("auth0 domain={domain} audience={AUDIENCE} clientid={CLIENT_ID}")
            ]
        );
        assert_eq!(record.lines(), ["GET /api 200"]);

        // And a password client against the Auth0 server is fine (it lists localjwt).
        let source = password_source(&base);
        assert!(source.access_token().await.is_ok());
    }
}

// ------------------------------------------------- against the example server with sessions

/// The example server with in-memory sessions and refresh rotation (`CORE_API_AUTH_SESSIONS=memory`,
/// `CORE_API_AUTH_REFRESH_ROTATION=true`), recorded.
async fn example_server_with_sessions() -> (String, Record) {
    let mut config = core_config(Duration::ZERO);
    config.sessions = tower_jwt_login::config::SessionBackend::Memory;
    config.refresh_rotation = true;
    let record = Record::default();
    let app = core_server::app_from_env(&config).await.unwrap();
    let addr = spawn_router(recorded(app, record.clone())).await;
    (format!("http://{addr}"), record)
}

#[tokio::test]
async fn against_the_example_server_rotation_is_followed_and_logout_ends_the_session() {
    let (base, record) = example_server_with_sessions().await;
    let source = password_source(&base);
    let http = client(&source);
    assert_eq!(get_process(&http, &base).await, (200, "[]\n".to_owned()));
    let r0 = refresh_token_of(&source.export().unwrap());
    source.refresh().await.unwrap();
    let r1 = refresh_token_of(&source.export().unwrap());
    source.refresh().await.unwrap();
    let r2 = refresh_token_of(&source.export().unwrap());
    assert!(r0 != r1 && r1 != r2);
    // The server rotated, and the client presented the newest refresh token each time.
    let presented: Vec<(String, u16)> = record
        .all()
        .into_iter()
        .filter(|s| s.path == "/api/login/refresh")
        .map(|s| (s.bearer.unwrap(), s.status))
        .collect();
    assert_eq!(presented, [(r0, 200), (r1, 200)]);
    assert_eq!(get_process(&http, &base).await, (200, "[]\n".to_owned()));

    // Logout ends the session on the server: the access token it held is refused afterwards.
    let access = source.access_token().await.unwrap();
    assert_eq!(source.logout().await.unwrap(), Logout::LoggedOut);
    assert_eq!(record.lines().last().unwrap(), "POST /api/logout 204");
    assert!(source.export().is_none());
    let before = record.all().len();
    let stale = TokenSource::builder(&base)
        .state(state(&base, &access, Some(&r2)))
        .build()
        .unwrap();
    let err = send(
        &client(&stale),
        Method::GET,
        &format!("{base}/api/v3/process"),
        "",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, RequestError::Token(ClientError::NoCredentials)),
        "{err:?}"
    );
    // The revoked access token was refused, and so was the refresh token of the ended session.
    assert_eq!(
        record.lines()[before..],
        ["GET /api/v3/process 401", "GET /api/login/refresh 401"]
    );
    assert_eq!(record.logins(), 1);
}

// ---------------------------------------- an app from the crate's parts under other paths

/// An app built from the crate's services the way an application mounts them, not Core's
/// layout: login, refresh and logout under `/auth` (sessions in memory), its API under `/v1`,
/// no about document — every other path is guarded, so `GET /api` answers 401. `POST
/// /auth/broken` answers a 500 HTML page quoting the request's body and `Authorization`, as a
/// careless proxy might.
fn auth_app() -> Router {
    let config = core_config(Duration::ZERO);
    let jwt = JwtConfig::new(config.jwt_key()).build().unwrap();
    let sessions = Sessions::new(MemorySessionStore::new(&jwt));
    let login = LoginService::new(jwt.clone(), config.credential_store())
        .failure_delay(Duration::ZERO)
        .sessions(sessions.clone());
    let refresh = RefreshService::new(jwt.clone()).sessions(sessions.clone());
    let policy = PathPolicy::new()
        .public_for(Method::POST, "/auth/login")
        .public_for(Method::GET, "/auth/refresh")
        .public_for(Method::POST, "/auth/logout")
        .public_for(Method::POST, "/auth/broken");
    Router::new()
        .route_service("/auth/login", login)
        .route_service("/auth/refresh", refresh)
        .route_service(
            "/auth/logout",
            LogoutService::new(jwt.clone(), sessions.clone()),
        )
        .route(
            "/auth/broken",
            post(|headers: http::HeaderMap, body: Bytes| async move {
                let authorization = headers
                    .get(header::AUTHORIZATION)
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default();
                let page = format!(
                    "<html>\n<h1>Internal error</h1>\n<p>authorization: {authorization}</p>\n\
                     <p>body: {}</p>\n</html>\n",
                    String::from_utf8_lossy(&body)
                );
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [(header::CONTENT_TYPE, "text/html")],
                    page,
                )
            }),
        )
        .route(
            "/v1/items",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], "[]\n") }),
        )
        .fallback(|method: Method| async move {
            error_response(&method, StatusCode::NOT_FOUND, "Not Found")
        })
        .layer(
            JwtAuthLayer::new(jwt.clone())
                .revocations(sessions.revocations())
                .policy(policy),
        )
}

/// A token source for the `/auth` app with these discovery settings and its paths.
fn auth_source(base: &str, discovery: Discovery) -> TokenSource {
    TokenSource::builder(base)
        .credentials(Credentials::password(USER, PASSWORD))
        .discovery(discovery)
        .login_path("/auth/login")
        .refresh_path("/auth/refresh")
        .logout_path("/auth/logout")
        .build()
        .unwrap()
}

const ABOUT_EXPECTED: &str = "200 and Core's about document (JSON with an \"auths\" list)";

#[tokio::test]
async fn core_about_discovery_of_an_app_without_one_says_what_was_called_expected_and_answered() {
    let (base, record) = serve(auth_app()).await;
    let source = auth_source(&base, Discovery::CoreAbout);
    let err = send(
        &client(&source),
        Method::GET,
        &format!("{base}/v1/items"),
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(
        format!("{err:?}"),
        format!(
            "Token(Discovery {{ request: \"GET {base}/api\", expected: \"200 and Core's about \
             document (JSON with an \\\"auths\\\" list)\", status: 401, body: \
             \"{{\\\"code\\\":401,\\\"message\\\":\\\"Unauthorized\\\",\\\"details\\\":\
             [\\\"Missing or invalid JWT token\\\"]}}\" }})"
        )
    );
    assert_eq!(
        err.to_string(),
        format!(
            "no access token: GET {base}/api answered 401 Unauthorized: \
             {{\"code\":401,\"message\":\"Unauthorized\",\"details\":[\"Missing or invalid JWT \
             token\"]}}; expected {ABOUT_EXPECTED} (for a server without one, use \
             Discovery::IfPresent or Discovery::Off)"
        )
    );
    let RequestError::Token(ClientError::Discovery {
        request,
        expected,
        status,
        body,
    }) = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(request, &format!("GET {base}/api"));
    assert_eq!(*expected, ABOUT_EXPECTED);
    assert_eq!(*status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, INVALID_TOKEN.trim_end());
    // Nothing was sent with the credentials, and the request itself was not sent.
    assert_eq!(record.lines(), ["GET /api 401"]);
}

#[tokio::test]
async fn if_present_discovery_and_its_own_paths_log_in_refresh_and_log_out_of_an_app_under_auth() {
    let (base, record) = serve(auth_app()).await;
    let source = auth_source(&base, Discovery::IfPresent);
    let http = client(&source);
    let items = format!("{base}/v1/items");
    assert_eq!(
        send(&http, Method::GET, &items, "").await.unwrap(),
        (200, "[]\n".to_owned())
    );
    assert_eq!(
        record.lines(),
        ["GET /api 401", "POST /auth/login 200", "GET /v1/items 200"]
    );
    let first = source.access_token().await.unwrap();
    assert_eq!(record.all()[2].bearer.as_deref(), Some(first.as_str()));

    // The refresh goes to its path, with the refresh token; discovery is not repeated.
    source.refresh().await.unwrap();
    let second = source.access_token().await.unwrap();
    assert_ne!(first, second);
    assert_eq!(send(&http, Method::GET, &items, "").await.unwrap().0, 200);
    assert_eq!(
        record.lines()[3..],
        ["GET /auth/refresh 200", "GET /v1/items 200"]
    );
    assert_eq!(record.all()[4].bearer.as_deref(), Some(second.as_str()));

    // The logout goes to its path and ends the session: the token is refused afterwards.
    assert_eq!(source.logout().await.unwrap(), Logout::LoggedOut);
    assert_eq!(record.lines().last().unwrap(), "POST /auth/logout 204");
    assert_eq!(
        record.all().last().unwrap().bearer.as_deref(),
        Some(second.as_str())
    );
    let stale = TokenSource::builder(&base)
        .state(state(&base, &second, None))
        .build()
        .unwrap();
    assert_eq!(
        send(&client(&stale), Method::GET, &items, "")
            .await
            .unwrap_err()
            .to_string(),
        "no access token: a new login is needed (no usable refresh token) but the client holds \
         no credentials"
    );
    assert_eq!(record.lines().last().unwrap(), "GET /v1/items 401");
}

#[tokio::test]
async fn with_discovery_off_the_login_is_the_first_request() {
    let (base, record) = serve(auth_app()).await;
    let source = auth_source(&base, Discovery::Off);
    assert_eq!(
        send(
            &client(&source),
            Method::GET,
            &format!("{base}/v1/items"),
            ""
        )
        .await
        .unwrap(),
        (200, "[]\n".to_owned())
    );
    assert_eq!(
        record.lines(),
        ["POST /auth/login 200", "GET /v1/items 200"]
    );
    // And Core's paths still work unchanged against Core's layout with discovery off.
    let (base, record) = example_server().await;
    let source = TokenSource::builder(&base)
        .credentials(Credentials::password(USER, PASSWORD))
        .discovery(Discovery::Off)
        .build()
        .unwrap();
    assert_eq!(get_process(&client(&source), &base).await.0, 200);
    assert_eq!(
        record.lines(),
        ["POST /api/login 200", "GET /api/v3/process 200"]
    );
}

#[tokio::test]
async fn if_present_discovery_still_checks_the_about_document_a_server_serves() {
    // Core's layout serves one: it is read, and its auths are checked.
    let (base, record) = example_server().await;
    let source = TokenSource::builder(&base)
        .credentials(Credentials::password(USER, PASSWORD))
        .discovery(Discovery::IfPresent)
        .build()
        .unwrap();
    assert_eq!(get_process(&client(&source), &base).await.0, 200);
    assert_eq!(
        record.lines(),
        [
            "GET /api 200",
            "POST /api/login 200",
            "GET /api/v3/process 200"
        ]
    );
    // With login switched off it lists no login method: refused before any credentials go.
    let (base, record) = example_server_with(CoreAuthConfig::default().enable(false)).await;
    let source = TokenSource::builder(&base)
        .credentials(Credentials::password(USER, PASSWORD))
        .discovery(Discovery::IfPresent)
        .build()
        .unwrap();
    let err = source.access_token().await.unwrap_err();
    assert_eq!(
        format!("{err:?}"),
        format!("NotOffered {{ request: \"GET {base}/api\", wanted: \"localjwt\", offered: [] }}")
    );
    assert_eq!(record.lines(), ["GET /api 200"]);
}

#[tokio::test]
async fn a_login_path_the_server_lacks_is_an_error_naming_the_url_the_expectation_and_the_answer() {
    let (base, record) = serve(auth_app()).await;
    let source = TokenSource::builder(&base)
        .credentials(Credentials::password(USER, PASSWORD))
        .discovery(Discovery::Off)
        .login_path("/auth/signin")
        .build()
        .unwrap();
    // Only the app's own routes are public: a wrong login path meets the guard's 401.
    let err = source.access_token().await.unwrap_err();
    assert_eq!(
        format!("{err:?}"),
        format!(
            "LoginRefused {{ request: \"POST {base}/auth/signin\", status: 401, detail: \
             \"Missing or invalid JWT token\" }}"
        )
    );
    assert_eq!(
        err.to_string(),
        format!(
            "login refused: POST {base}/auth/signin answered 401 Unauthorized: Missing or \
             invalid JWT token"
        )
    );
    assert_eq!(record.lines(), ["POST /auth/signin 401"]);

    // A path the router does not know, behind no guard: 404, a typed status error.
    let (base, record) = serve(Router::new().fallback(|method: Method| async move {
        error_response(&method, StatusCode::NOT_FOUND, "Not Found")
    }))
    .await;
    let source = TokenSource::builder(&base)
        .credentials(Credentials::password(USER, PASSWORD))
        .discovery(Discovery::Off)
        .build()
        .unwrap();
    let err = source.access_token().await.unwrap_err();
    assert_eq!(
        format!("{err:?}"),
        format!(
            "Status {{ request: \"POST {base}/api/login\", expected: \"200 and a token pair\", \
             status: 404, detail: \"Not Found\", retry_after: None }}"
        )
    );
    assert_eq!(
        err.to_string(),
        format!(
            "POST {base}/api/login answered 404 Not Found: Not Found; expected 200 and a token \
             pair"
        )
    );
    assert_eq!(record.lines(), ["POST /api/login 404"]);
}

#[tokio::test]
async fn an_error_quotes_a_bounded_body_without_the_password_key_or_tokens_it_was_sent() {
    let (base, record) = serve(auth_app()).await;
    let password = "correct horse battery staple";
    let source = TokenSource::builder(&base)
        .credentials(Credentials::password(USER, password))
        .discovery(Discovery::Off)
        .login_path("/auth/broken")
        .build()
        .unwrap();
    let err = source.access_token().await.unwrap_err();
    let expected_detail = "<html> <h1>Internal error</h1> <p>authorization: </p> <p>body: \
         {\"username\":\"admin\",\"password\":\"<redacted>\"}</p> </html>";
    let ClientError::Status { detail, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(detail, expected_detail);
    assert_eq!(
        err.to_string(),
        format!(
            "POST {base}/auth/broken answered 500 Internal Server Error: {expected_detail}; \
             expected 200 and a token pair"
        )
    );
    assert!(!format!("{err:?}").contains("horse"), "{err:?}");

    // An API key echoed back is redacted the same way.
    let key = "tjl_k3y";
    let source = TokenSource::builder(&base)
        .credentials(Credentials::api_key(key))
        .discovery(Discovery::Off)
        .login_path("/auth/broken")
        .build()
        .unwrap();
    let err = source.access_token().await.unwrap_err();
    assert_eq!(
        format!("{err:?}"),
        format!(
            "Status {{ request: \"POST {base}/auth/broken\", expected: \"200 and a token pair\", \
             status: 500, detail: \"<html> <h1>Internal error</h1> <p>authorization: Bearer \
             <redacted></p> <p>body: </p> </html>\", retry_after: None }}"
        )
    );
    assert_eq!(record.logins(), 0);
}

// ------------------------------------------------------------------------------- API keys

/// One login request as the API-key server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyLogin {
    authorization: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

/// A server that exchanges the API key `KEY` for a token pair at `POST /auth/login`
/// (`Authorization: Bearer <key>`, no body) and guards `/v1/items` with the crate's layer.
/// Any other login is refused as the crate refuses bad credentials.
const KEY: &str = "tjl_live_5f2c9a0e7d3b4c1a";

fn api_key_app(seen: Arc<Mutex<Vec<KeyLogin>>>) -> Router {
    let jwt = JwtConfig::new(core_config(Duration::ZERO).jwt_key())
        .build()
        .unwrap();
    let issuer = jwt.clone();
    let login = post(move |headers: http::HeaderMap, body: Bytes| {
        let jwt = issuer.clone();
        let seen = seen.clone();
        async move {
            let header = |name| {
                headers
                    .get(name)
                    .map(|v: &http::HeaderValue| v.to_str().unwrap().to_owned())
            };
            let login = KeyLogin {
                authorization: header(header::AUTHORIZATION),
                content_type: header(header::CONTENT_TYPE),
                body: body.to_vec(),
            };
            let valid = login.authorization.as_deref() == Some(&format!("Bearer {KEY}"))
                && login.body.is_empty();
            seen.lock().unwrap().push(login);
            if valid {
                let pair = jwt.issue_pair("service-account");
                axum::Json(serde_json::json!({
                    "access_token": pair.access_token,
                    "refresh_token": pair.refresh_token,
                }))
                .into_response()
            } else {
                (
                    StatusCode::UNAUTHORIZED,
                    [(header::CONTENT_TYPE, "application/json")],
                    common::INVALID_CREDENTIALS,
                )
                    .into_response()
            }
        }
    });
    let policy = PathPolicy::new()
        .public_for(Method::POST, "/auth/login")
        .public_for(Method::GET, "/auth/refresh");
    Router::new()
        .route("/auth/login", login)
        .route_service("/auth/refresh", RefreshService::new(jwt.clone()))
        .route(
            "/v1/items",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], "[]\n") }),
        )
        .layer(JwtAuthLayer::new(jwt).policy(policy))
}

fn api_key_source(base: &str, key: &str) -> TokenSource {
    TokenSource::builder(base)
        .credentials(Credentials::api_key(key))
        .discovery(Discovery::IfPresent)
        .login_path("/auth/login")
        .refresh_path("/auth/refresh")
        .build()
        .unwrap()
}

#[tokio::test]
async fn an_api_key_logs_in_with_a_bearer_post_without_a_body_and_again_when_the_refresh_runs_out()
{
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (base, record) = serve(api_key_app(seen.clone())).await;
    let source = api_key_source(&base, KEY);
    let http = client(&source);
    let items = format!("{base}/v1/items");
    assert_eq!(
        send(&http, Method::GET, &items, "").await.unwrap(),
        (200, "[]\n".to_owned())
    );
    assert_eq!(
        record.lines(),
        ["GET /api 401", "POST /auth/login 200", "GET /v1/items 200"]
    );
    let login = KeyLogin {
        authorization: Some(format!("Bearer {KEY}")),
        content_type: None,
        body: Vec::new(),
    };
    assert_eq!(*seen.lock().unwrap(), std::slice::from_ref(&login));
    // The request carried the server's access token, not the key.
    let access = source.access_token().await.unwrap();
    assert_eq!(record.all()[2].bearer.as_deref(), Some(access.as_str()));
    let (_, payload) = common::decode_parts(&access);
    assert!(payload.contains("\"sub\":\"service-account\""), "{payload}");

    // With an expired refresh token the client logs in with the key again.
    let t = now();
    source
        .resume(state(
            &base,
            &mint("access", t - 90_000, 600),
            Some(&mint("refresh", t - 90_000, 86_400)),
        ))
        .unwrap();
    assert_eq!(send(&http, Method::GET, &items, "").await.unwrap().0, 200);
    assert_eq!(
        record.lines()[3..],
        ["POST /auth/login 200", "GET /v1/items 200"]
    );
    assert_eq!(*seen.lock().unwrap(), [login.clone(), login]);
    assert_eq!(
        format!("{:?}", Credentials::api_key(KEY)),
        "ApiKey { key: \"<redacted>\" }"
    );
}

#[tokio::test]
async fn a_refused_api_key_is_a_login_refusal_that_never_shows_the_key() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (base, record) = serve(api_key_app(seen.clone())).await;
    let wrong = "tjl_live_0000000000000000";
    let err = api_key_source(&base, wrong)
        .access_token()
        .await
        .unwrap_err();
    assert_eq!(
        format!("{err:?}"),
        format!(
            "LoginRefused {{ request: \"POST {base}/auth/login\", status: 401, detail: \
             \"Invalid authorization credentials: invalid username or password\" }}"
        )
    );
    assert!(!err.to_string().contains(wrong));
    assert_eq!(record.lines(), ["GET /api 401", "POST /auth/login 401"]);
    assert_eq!(
        seen.lock().unwrap()[0].authorization.as_deref(),
        Some(format!("Bearer {wrong}").as_str())
    );
}

// ------------------------------------------------------------------ credentials on demand

#[tokio::test]
async fn credentials_on_demand_are_asked_for_only_when_a_login_is_needed() {
    let (base, record) = example_server().await;
    let asked = Arc::new(Mutex::new(0));
    let counter = asked.clone();
    let t = now();
    let source = TokenSource::builder(&base)
        .credentials_on_demand(move || {
            *counter.lock().unwrap() += 1;
            async { Ok::<_, std::io::Error>(Credentials::password(USER, PASSWORD)) }
        })
        .state(state(
            &base,
            &mint("access", t, 600),
            Some(&mint("refresh", t, 86_400)),
        ))
        .build()
        .unwrap();
    assert!(source.has_credentials());
    let http = client(&source);
    // Good saved tokens: used as they are, nobody is asked.
    assert_eq!(get_process(&http, &base).await.0, 200);
    assert_eq!(*asked.lock().unwrap(), 0);
    assert_eq!(record.lines(), ["GET /api/v3/process 200"]);
    // Tokens that no longer work: asked once, then the login.
    source
        .resume(state(
            &base,
            &mint("access", t - 90_000, 600),
            Some(&mint("refresh", t - 90_000, 86_400)),
        ))
        .unwrap();
    assert_eq!(get_process(&http, &base).await.0, 200);
    assert_eq!(*asked.lock().unwrap(), 1);
    assert_eq!(
        record.lines()[1..],
        [
            "GET /api 200",
            "POST /api/login 200",
            "GET /api/v3/process 200"
        ]
    );
    // The credentials are kept for the next login.
    source.login().await.unwrap();
    assert_eq!(*asked.lock().unwrap(), 1);
    assert_eq!(record.logins(), 2);
}

#[tokio::test]
async fn credentials_on_demand_that_fail_or_are_refused_are_asked_for_again() {
    let (base, record) = example_server().await;
    // First no answer, then a wrong password, then the right one.
    let answers = Arc::new(Mutex::new(vec![Some(PASSWORD), Some("wrong"), None]));
    let queue = answers.clone();
    let source = TokenSource::builder(&base)
        .credentials_on_demand(move || {
            let answer = queue.lock().unwrap().pop().unwrap();
            async move {
                answer
                    .map(|p| Credentials::password(USER, p))
                    .ok_or_else(|| std::io::Error::other("no password: stdin is closed"))
            }
        })
        .build()
        .unwrap();
    let err = source.access_token().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "a new login is needed (no usable refresh token) but no credentials could be had: no \
         password: stdin is closed"
    );
    assert!(
        format!("{err:?}").starts_with("CredentialsUnavailable { source: Custom {"),
        "{err:?}"
    );
    assert!(record.all().is_empty());
    let err = source.access_token().await.unwrap_err();
    assert!(matches!(err, ClientError::LoginRefused { .. }), "{err:?}");
    assert!(!format!("{err:?}").contains("wrong"));
    source.access_token().await.unwrap();
    assert!(answers.lock().unwrap().is_empty());
    assert_eq!(
        record.lines(),
        ["GET /api 200", "POST /api/login 401", "POST /api/login 200"]
    );
}

// ------------------------------------------------------------------------ the example client

/// The example binary, as `cargo run --features client --example login_client` builds it.
fn login_client_bin() -> std::path::PathBuf {
    // target/<profile>/deps/client-… → target/<profile>/examples/login_client
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/login_client");
    assert!(
        bin.exists(),
        "{} is missing: run the whole suite (`cargo test --all-features`), which builds the \
         examples, or `cargo build --all-features --example login_client`",
        bin.display()
    );
    bin
}

/// What a run of the example ended with.
#[derive(Debug, PartialEq, Eq)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the example with `args`, no `CORE_PASSWORD`, and `stdin` as its standard input (`None`:
/// closed at once).
async fn login_client(args: &[&str], stdin: Option<&str>) -> Run {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(login_client_bin())
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(if stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(text.as_bytes()).await.unwrap();
    }
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("login_client did not finish within 30 s")
        .unwrap();
    Run {
        code: output.status.code().unwrap(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// A directory of its own under the system's temporary directory, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "tower-jwt-login-client-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_owned()
    }
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write_state(path: &str, state: &TokenState) {
    std::fs::write(path, serde_json::to_vec(state).unwrap()).unwrap();
}

fn read_state(path: &str) -> TokenState {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.ends_with("}\n"), "{text}");
    serde_json::from_str(&text).unwrap()
}

const PROCESS_LIST: &str = "200 OK\n[]\n";

#[tokio::test]
async fn the_example_resumes_good_saved_tokens_with_stdin_closed_without_asking_for_a_password() {
    let (base, record) = example_server().await;
    let dir = TempDir::new();
    let file = dir.path("tokens.json");
    let t = now();
    let access = mint("access", t, 600);
    write_state(
        &file,
        &state(&base, &access, Some(&mint("refresh", t, 86_400))),
    );
    let run = login_client(
        &[
            "--url",
            &base,
            "--resume",
            &file,
            "--username",
            USER,
            "GET",
            "/api/v3/process",
        ],
        None,
    )
    .await;
    assert_eq!(
        run,
        Run {
            code: 0,
            stdout: PROCESS_LIST.to_owned(),
            stderr: String::new()
        }
    );
    assert_eq!(record.lines(), ["GET /api/v3/process 200"]);
    assert_eq!(record.all()[0].bearer.as_deref(), Some(access.as_str()));
}

#[tokio::test]
async fn the_example_asks_for_the_password_only_when_a_login_is_needed() {
    let (base, record) = example_server().await;
    let dir = TempDir::new();
    let file = dir.path("tokens.json");
    let t = now();
    let expired = state(
        &base,
        &mint("access", t - 90_000, 600),
        Some(&mint("refresh", t - 90_000, 86_400)),
    );
    write_state(&file, &expired);
    let args = [
        "--url",
        &base,
        "--resume",
        &file,
        "--username",
        USER,
        "--save",
        &file,
        "GET",
        "/api/v3/process",
    ];
    // The saved tokens have run out: a login is needed, and with stdin closed there is no
    // password. Nothing was sent.
    assert_eq!(
        login_client(&args, None).await,
        Run {
            code: 1,
            stdout: String::new(),
            stderr: "login_client: no access token: a new login is needed (no usable refresh \
                     token) but no credentials could be had: no password: set CORE_PASSWORD or \
                     give it on stdin\n"
                .to_owned()
        }
    );
    assert!(record.all().is_empty());
    // With the password on stdin it logs in, and saves the new tokens.
    let run = login_client(&args, Some(&format!("{PASSWORD}\n"))).await;
    assert_eq!(
        run,
        Run {
            code: 0,
            stdout: PROCESS_LIST.to_owned(),
            stderr: String::new()
        }
    );
    assert_eq!(
        record.lines(),
        [
            "GET /api 200",
            "POST /api/login 200",
            "GET /api/v3/process 200"
        ]
    );
    let saved = read_state(&file);
    assert_ne!(saved, expired);
    assert_eq!(saved.url(), base);
    assert_eq!(
        serde_json::to_value(&saved).unwrap()["access_token"].as_str(),
        record.all()[2].bearer.as_deref()
    );
}

#[cfg(unix)]
#[tokio::test]
async fn the_example_saves_over_a_symlink_without_following_it_and_leaves_mode_0600() {
    use std::os::unix::fs::PermissionsExt;

    let (base, record) = example_server().await;
    let dir = TempDir::new();
    let victim = dir.path("victim");
    let file = dir.path("tokens.json");
    std::fs::write(&victim, "untouched\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::symlink(&victim, &file).unwrap();
    let mode = |path: &str| {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };

    let run = login_client(
        &[
            "--url",
            &base,
            "--username",
            USER,
            "--save",
            &file,
            "GET",
            "/api/v3/process",
        ],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, PROCESS_LIST),
        "{run:?}"
    );
    // The symlink was replaced by the state file; the file it pointed to is as it was.
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched\n");
    assert_eq!(mode(&victim), 0o644);
    assert!(
        std::fs::symlink_metadata(&file)
            .unwrap()
            .file_type()
            .is_file()
    );
    assert_eq!(mode(&file), 0o600);
    assert_eq!(read_state(&file).url(), base);
    assert_eq!(dir.names(), ["tokens.json", "victim"]);

    // A file someone left readable by all is replaced by one that is not.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = login_client(
        &[
            "--url",
            &base,
            "--resume",
            &file,
            "--save",
            &file,
            "GET",
            "/api/v3/process",
        ],
        None,
    )
    .await;
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, PROCESS_LIST),
        "{run:?}"
    );
    assert_eq!(mode(&file), 0o600);
    assert_eq!(read_state(&file).url(), base);
    assert_eq!(dir.names(), ["tokens.json", "victim"]);
    assert_eq!(record.logins(), 1);
}
