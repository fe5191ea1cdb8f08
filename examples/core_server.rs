//! A server laid out like datarhei Core's API, guarded by tower-jwt-login.
//!
//! ```text
//! cargo run --example core_server
//! ```
//!
//! Routes: `GET /api` (minimal about without a valid access token, full about with one),
//! `POST /api/login`, `GET /api/login/refresh`, protected `GET /api/v3/process` (`[]`), public
//! `GET /ping` (`pong`), public `GET /metrics` (the crate's series in Prometheus' text format,
//! recorded through the `metrics` facade). Every other path under `/api` is protected; unknown
//! paths answer 404 in the error shape of docs/protocol.md §2.
//!
//! Configuration, as Core reads it: `CORE_ADDRESS` (default `127.0.0.1:8080`),
//! `CORE_API_AUTH_ENABLE`, `CORE_API_AUTH_USERNAME`/`RS_USERNAME`,
//! `CORE_API_AUTH_PASSWORD`/`RS_PASSWORD`, `CORE_API_AUTH_JWT_SECRET`,
//! `CORE_API_AUTH_LOGIN_FAILURE_DELAY` (seconds), and the crate's own
//! `CORE_API_AUTH_LOGIN_MAX_FAILURES` (failed logins per account and client address before 429;
//! default 10, `0` turns throttling off), `CORE_API_AUTH_LOGIN_FAILURE_WINDOW` (seconds, default
//! 900; `0` is refused), `CORE_API_AUTH_TRUSTED_PROXIES` (comma-separated proxy networks whose
//! client address header is believed; default none) and `CORE_API_AUTH_CLIENT_IP_HEADER` (the
//! one header those proxies set: `X-Forwarded-For` (default), `X-Real-IP`, `Forwarded`,
//! `CF-Connecting-IP`, `True-Client-IP`, `Fly-Client-IP`). With none set, auth is enabled for user
//! `admin` with a generated password printed once at start-up.
//!
//! Keys (docs/keys.md): `CORE_API_AUTH_JWT_ALGORITHM` (`HS256` default, `HS384`, `HS512`, and
//! with `--features asymmetric` `EdDSA`, `ES256`, `RS256`), `CORE_API_AUTH_JWT_PRIVATE_KEY` (the
//! PKCS#8 PEM file that signs; an asymmetric algorithm without one uses a fresh key, with a
//! warning), `CORE_API_AUTH_JWT_VERIFY_KEYS` (comma-separated PEM files, public or private, of
//! keys that only verify: the previous key after a rotation) and
//! `CORE_API_AUTH_JWT_PREVIOUS_SECRETS` (comma-separated previous `CORE_API_AUTH_JWT_SECRET`s).
//! With a public key in the ring, `GET /.well-known/jwks.json` publishes it. A bad key file stops
//! start-up with a message naming the file and the problem.
//!
//! Logs go to stdout at `RUST_LOG` (default `info`, `sqlx=warn`), written by a background thread
//! (`tracing-appender`'s non-blocking writer) so that no request waits for the log's output;
//! with colour only when stdout is a terminal.
//!
//! Cross-origin requests are answered as Core answers them (`Access-Control-Allow-Origin: *`,
//! preflights `204`); `CORE_API_AUTH_CORS_ORIGINS` (comma-separated origins, default `*`) limits
//! them.
//!
//! Sessions (off by default): `CORE_API_AUTH_SESSIONS` (`memory`, or `redis://…` /
//! `rediss://…` / `redis+sentinel://…` with `--features redis`) adds `POST /api/logout` and
//! `POST /api/logout/all`; `CORE_API_AUTH_REFRESH_ROTATION=true` (with
//! `CORE_API_AUTH_REFRESH_ROTATION_GRACE` seconds) rotates refresh tokens;
//! `CORE_API_AUTH_REDIS_PREFIX` (default `tjl:`), `CORE_API_AUTH_REDIS_TIMEOUT` (seconds, default
//! 1), `CORE_API_AUTH_REDIS_WAIT_REPLICAS` and `CORE_API_AUTH_REDIS_TLS_CA_FILE` tune the Redis
//! store (docs/fleet.md).
//! With sessions, `CORE_API_AUTH_COOKIES=true` turns on browser mode (the refresh token in an
//! `HttpOnly` cookie, CSRF checks; `access` puts the access token in a cookie too;
//! docs/browser.md).
//!
//! `CORE_API_AUTH_TOTP=true` with `CORE_API_AUTH_TOTP_KEY` (32 bytes, base64 or hex) turns on
//! the second factor for the configured user: the routes under `/api/v3/auth/totp` enrol it,
//! and logins then need a code (docs/second-factor.md).
//!
//! API keys and the password change are always served (docs/assembly.md): `GET`/`POST
//! /api/v3/auth/keys` and `DELETE /api/v3/auth/keys/{id}` manage the caller's keys, which
//! `POST /api/login` with `Authorization: Bearer tjl_…` exchanges for tokens;
//! `POST /api/v3/auth/password` changes the caller's password (and ends its other sessions).
//! `CORE_API_AUTH_DATABASE` (`postgres://…` or `sqlite://…`, with `--features sql`) keeps users,
//! keys and second factors in a database (migrated at start-up, the configured user created
//! when missing), so they survive a restart; without it, keys live in memory and a changed
//! password lasts until the process ends.
//!
//! The whole login — routes, throttle, sessions, CORS, cookies, second factor, keys — is one
//! `LoginKit` layer made from these variables by `CoreAuthConfig::login_kit_with`, wrapped
//! around the app's routes.
//!
//! Auth0 logins (docs/protocol.md §5) need the `auth0` feature: `CORE_API_AUTH_AUTH0_ENABLE=true
//! CORE_API_AUTH_AUTH0_TENANTS='auth0://<clientid>@<domain>?aud=<audience>&user=<sub>'
//! cargo run --features auth0 --example core_server` (several tenants comma-separated; each may
//! also be base64 of `{"domain","audience","clientid","users":[…]}`, as in Core).

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::response::IntoResponse;
use axum::routing::get;
use http::{HeaderValue, Method, StatusCode, header};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tower::Layer;
use tower_jwt_login::auth::PathPolicy;
use tower_jwt_login::auth0::{Auth0Config, Auth0Provider, NoAuth0};
use tower_jwt_login::config::{CoreAuthConfig, CoreUsers, SessionBackend, random_password};
use tower_jwt_login::discovery::About;
use tower_jwt_login::factor::SecondFactor;
use tower_jwt_login::response::error_response;
use tower_jwt_login::session::Sessions;

#[path = "core_server/page.rs"]
mod page;

type BoxError = Box<dyn std::error::Error>;

/// The whole app for an auth configuration: what `main` serves, and what the tests drive.
pub fn app(auth: &CoreAuthConfig) -> Result<Router, BoxError> {
    app_with_auth0(auth, NoAuth0, Vec::new())
}

/// The app with Auth0 logins through `auth0`, whose tenants' discovery entries are
/// `auth0_auths` (listed after `"localjwt"`).
pub fn app_with_auth0<A: Auth0Provider>(
    auth: &CoreAuthConfig,
    auth0: A,
    auth0_auths: Vec<String>,
) -> Result<Router, BoxError> {
    app_with_sessions(auth, auth0, auth0_auths, None)
}

/// The app's own routes: what Core serves besides the login, and `/metrics`.
fn routes() -> Router {
    // Installed before the first request, so that every login is counted.
    let prometheus = prometheus();
    Router::new()
        .route("/", get(page::index))
        .route("/app.js", get(page::app_js))
        .route("/api/v3/process", get(process_list))
        .route("/ping", get(|| async { "pong" }))
        .route("/metrics", get(move || metrics(prometheus)))
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
}

/// The app with sessions from `sessions` (made by [`CoreAuthConfig::connect_sessions`]): logins
/// start sessions, refresh checks them (and rotates with `CORE_API_AUTH_REFRESH_ROTATION`), the
/// layer refuses revoked tokens, and `POST /api/logout` and `POST /api/logout/all` are served.
pub fn app_with_sessions<A: Auth0Provider>(
    auth: &CoreAuthConfig,
    auth0: A,
    auth0_auths: Vec<String>,
    sessions: Option<Sessions>,
) -> Result<Router, BoxError> {
    app_with_parts(auth, auth0, auth0_auths, sessions, None)
}

/// The app with sessions and a second factor (made by [`CoreAuthConfig::second_factor`]):
/// the configured user logs in with a TOTP code once enrolled, through the management routes
/// under `/api/v3/auth/totp`.
pub fn app_with_parts<A: Auth0Provider>(
    auth: &CoreAuthConfig,
    auth0: A,
    auth0_auths: Vec<String>,
    sessions: Option<Sessions>,
    second_factor: Option<SecondFactor>,
) -> Result<Router, BoxError> {
    let users = CoreUsers::configured(auth.credential_store());
    app_with_users(auth, auth0, auth0_auths, sessions, second_factor, users)
}

/// The app over `users` (made by [`CoreAuthConfig::users`]: the database of
/// `CORE_API_AUTH_DATABASE`, or Core's one user with API keys in memory): they log in, own API
/// keys (`/api/v3/auth/keys`) and change their password (`POST /api/v3/auth/password`).
pub fn app_with_users<A: Auth0Provider>(
    auth: &CoreAuthConfig,
    auth0: A,
    auth0_auths: Vec<String>,
    sessions: Option<Sessions>,
    second_factor: Option<SecondFactor>,
    users: CoreUsers,
) -> Result<Router, BoxError> {
    // With auth off there is nothing to log in to: no `auths` at all.
    let auth0_auths = if auth.enable { auth0_auths } else { Vec::new() };
    let mut about =
        About::new("core_server", instance_id()).login_methods(auth.enable, auth0_auths);
    if let Some(factor) = &second_factor {
        // Core's one user: the about document says whether it needs a code.
        about = about.second_factor_of(factor.clone(), auth.username.clone());
    }
    if !auth.enable {
        let open = routes().route_service("/api", about.into_service());
        return Ok(open.layer(auth.cors.to_layer()?));
    }
    // Everything the login needs, from the CORE_API_AUTH_* variables: keys, Core's user, the
    // throttle, trusted proxies, sessions, rotation, CORS. The client address is the TCP peer
    // that axum records with `into_make_service_with_connect_info` (or what a trusted proxy
    // forwarded in the configured header).
    let mut login = auth.login_kit_with(auth.jwt_config()?.build()?, sessions, users)?;
    if let Some(factor) = second_factor {
        login = login.second_factor(factor);
    }
    let login = login
        .client_addr(
            auth.client_addr_resolver()
                .peer_from(|ext| ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)),
        )
        .auth0(auth0)
        .about(about)
        // Core: everything under /api needs a token; everything else is public.
        .policy(
            PathPolicy::new()
                .protected("/api")
                .protected("/api/*")
                .public("/*"),
        )
        .build()?;
    // One layer around the whole app, before routing (like Core).
    Ok(Router::new().fallback_service(login.layer(routes())))
}

/// The process's Prometheus recorder, installed as the `metrics` facade's global recorder when
/// the first app is built (a process has one global recorder: should another be installed
/// already, `/metrics` renders this one's, empty). Latencies as histograms with buckets from
/// 100 µs to 10 s (Prometheus can aggregate those across instances, unlike summaries).
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("_duration_seconds".to_owned()),
                &[
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    0.5, 1.0, 2.5, 10.0,
                ],
            )
            .unwrap_or_else(|_| PrometheusBuilder::new());
        match builder.install_recorder() {
            Ok(handle) => {
                tower_jwt_login::metrics::describe();
                handle
            }
            Err(error) => {
                tracing::warn!(%error, "GET /metrics: another metrics recorder is installed");
                PrometheusBuilder::new().build_recorder().handle()
            }
        }
    })
}

/// `GET /metrics`: every series recorded so far, in Prometheus' text format.
async fn metrics(prometheus: &'static PrometheusHandle) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        prometheus.render(),
    )
}

async fn process_list() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        "[]\n",
    )
}

async fn not_found(method: Method) -> impl IntoResponse {
    error_response(&method, StatusCode::NOT_FOUND, "Not Found")
}

fn instance_id() -> String {
    format!("{:x}", std::process::id())
}

/// Reads `CORE_ADDRESS` like Core (`:8080` means every interface).
fn listen_address() -> Result<SocketAddr, String> {
    let raw = std::env::var("CORE_ADDRESS").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let full = if raw.starts_with(':') {
        format!("0.0.0.0{raw}")
    } else {
        raw.clone()
    };
    full.parse()
        .map_err(|_| format!("CORE_ADDRESS={raw:?} is not an address like 127.0.0.1:8080"))
}

#[tokio::main]
async fn main() -> ExitCode {
    // Logs are written off the request path: a request only queues its line, and
    // tracing-appender's worker thread writes it to stdout. Not lossy: should the writer ever fall
    // 128k lines behind, logging waits rather than dropping audit events. The worker flushes
    // whenever its queue runs empty, so through a `BufWriter` a busy server writes its lines in
    // batches (one system call for many) while a quiet one still shows each line at once. The
    // guard flushes the queue when `main` returns, so keep it alive until then.
    let (writer, _log_guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("core_server-log")
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stdout(),
        ));
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        // Colour codes only for a person at a terminal, never into a file or a pipe.
        .with_ansi(std::io::stdout().is_terminal())
        .with_writer(writer)
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let generated = random_password();
    let auth = CoreAuthConfig::default()
        .enable(true)
        .username("admin")
        .password(generated.clone())
        .with_env()?;
    if auth.enable && auth.expose_password() == generated {
        println!(
            "login with username {:?} and the generated password {generated}",
            auth.username
        );
    }
    let app = app_from_env(&auth)
        .await?
        .into_make_service_with_connect_info::<SocketAddr>();
    // The recorder's upkeep (draining latency samples between scrapes), off the request path.
    tokio::spawn(async {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            prometheus().run_upkeep();
        }
    });
    let address = listen_address()?;
    let listener = tokio::net::TcpListener::bind(address).await?;
    tracing::info!(address = %listener.local_addr()?, auth = auth.enable, "core_server listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

/// The app, with Auth0 logins when `CORE_API_AUTH_AUTH0_ENABLE=true` (tenants from
/// `CORE_API_AUTH_AUTH0_TENANTS`; needs `--features auth0`). Keys are fetched on the first
/// Auth0 login, so the server starts even when a tenant's JWKS endpoint is down. With
/// `CORE_API_AUTH_SESSIONS`, the session store is set up first (a Redis one must answer).
pub async fn app_from_env(auth: &CoreAuthConfig) -> Result<Router, Box<dyn std::error::Error>> {
    let sessions = if auth.enable && auth.sessions != SessionBackend::Off {
        // The same lifetimes as the app's ring: they bound how long revocations are kept.
        auth.connect_sessions(&auth.jwt_config()?.build()?).await?
    } else {
        None
    };
    if let Some(sessions) = &sessions {
        tracing::info!(backend = ?auth.sessions, rotation = auth.refresh_rotation, ?sessions, "sessions on");
    }
    // CORE_API_AUTH_DATABASE: users, API keys and second factors in PostgreSQL or SQLite
    // (migrated, the configured user created when missing); without it, Core's one user and
    // keys in memory.
    let users = if auth.enable {
        auth.users().await?
    } else {
        CoreUsers::configured(auth.credential_store())
    };
    // CORE_API_AUTH_TOTP: the second factor for the configured user (its store in the database,
    // or on the sessions' Redis when there is one; a wrong CORE_API_AUTH_TOTP_KEY stops start-up
    // here).
    let factor = if auth.enable {
        auth.second_factor_for(&users).await?
    } else {
        None
    };
    if factor.is_some() {
        tracing::info!(user = %auth.username, "second factor (TOTP) on");
    }
    let auth0 = Auth0Config::default().with_env()?;
    if !auth0.enable {
        return app_with_users(auth, NoAuth0, Vec::new(), sessions, factor, users);
    }
    if !auth.enable {
        tracing::warn!("CORE_API_AUTH_AUTH0_ENABLE is ignored: CORE_API_AUTH_ENABLE is false");
        return app(auth);
    }
    #[cfg(feature = "auth0")]
    {
        let provider = tower_jwt_login::auth0::JwksProvider::new(auth0.tenants)?;
        for tenant in provider.tenants() {
            tracing::info!(issuer = %tenant.issuer(), users = tenant.allowed_users().len(), "auth0 tenant");
        }
        let auths = provider.auths();
        app_with_users(auth, provider, auths, sessions, factor, users)
    }
    #[cfg(not(feature = "auth0"))]
    {
        Err(
            "CORE_API_AUTH_AUTH0_ENABLE is true, but this build has no Auth0 support: \
             run `cargo run --features auth0 --example core_server`"
                .into(),
        )
    }
}
