//! The client side (feature `client`): log in to a server that speaks the Core login protocol
//! (datarhei Core itself, or any app built with this crate), stay logged in, save and resume.
//!
//! - [`TokenSource`] holds the credentials ([`Credentials`]: username/password, an Auth0 access
//!   token or an API key; given, or asked for [only when a login is
//!   needed](TokenSourceBuilder::credentials_on_demand)), the base URL and the tokens. It reads
//!   the about document (`GET /api`) before the first login and refuses a server that does not
//!   offer the login it was given — or, for an app without one, reads it only if present or not
//!   at all ([`Discovery`]); the login, refresh and logout paths are Core's unless set
//!   otherwise ([`TokenSourceBuilder::login_path`] and its siblings). It refreshes the access token
//!   before it expires (one refresh however many requests are waiting); logs in again when the
//!   refresh token runs out; follows refresh-token rotation; [exports](TokenSource::export) and
//!   [resumes](TokenSource::resume) its state; and [logs out](TokenSource::logout). Use
//!   [`TokenSource::access_token`] directly with any HTTP client (reqwest, …).
//! - [`LoginClientLayer`] wraps any tower HTTP client (`Service<http::Request<B>>`) in a
//!   [`LoginClient`] that attaches `Authorization: Bearer <access token>` to every request to
//!   that server, and on a `401` refreshes once and sends the request again — when its body can
//!   be replayed ([`ReplayBody`]: in-memory bodies can, streams cannot).
//!
//! The wire is docs/protocol.md §1 (login, refresh), §4 (the tokens, whose `exp` and `exi` the
//! client reads without verifying them) and §6 (discovery).
//!
//! On hyper-util's client, over HTTP/1 on loopback (here against a small server built from the
//! crate's own services):
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Empty};
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_jwt_login::client::{Credentials, TokenSource};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let addr = serve_a_core().await;
//! let base = format!("http://{addr}");
//! let source = TokenSource::builder(&base)
//!     .credentials(Credentials::password("admin", "datarhei"))
//!     .build()?;
//! let client = ServiceBuilder::new()
//!     .layer(source.layer())
//!     .service(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());
//!
//! // Logs in on first use (GET /api, POST /api/login), then attaches the access token.
//! let req = http::Request::get(format!("{base}/api/v3/process")).body(Empty::new())?;
//! let res = client.clone().oneshot(req).await?;
//! assert_eq!(res.status(), 200);
//! assert_eq!(&res.into_body().collect().await?.to_bytes()[..], b"[]");
//!
//! // Save the tokens; a later run resumes without logging in again.
//! let saved = serde_json::to_string(&source.export().unwrap())?;
//! let resumed = TokenSource::builder(&base).state(serde_json::from_str(&saved)?).build()?;
//! assert!(!resumed.access_token().await?.is_empty());
//! # Ok(())
//! # }
//! #
//! # async fn serve_a_core() -> std::net::SocketAddr {
//! #     use axum::{Router, routing::get};
//! #     use tower_jwt_login::auth::{JwtAuthLayer, PathPolicy};
//! #     use tower_jwt_login::discovery::About;
//! #     use tower_jwt_login::login::{LoginService, RefreshService};
//! #     use tower_jwt_login::store::PlaintextUser;
//! #     use tower_jwt_login::{JwtConfig, JwtKey};
//! #     let jwt = JwtConfig::new(JwtKey::from_secret("a secret of at least 32 random bytes!!").unwrap())
//! #         .build()
//! #         .unwrap();
//! #     let about = About::new("core", "id").login_methods(true, [] as [&str; 0]);
//! #     let policy = PathPolicy::new().login_routes("/api").optional_for(http::Method::GET, "/api");
//! #     let app = Router::new()
//! #         .route_service("/api", about.into_service())
//! #         .route("/api/v3/process", get(|| async { "[]" }))
//! #         .route_service("/api/login", LoginService::new(jwt.clone(), PlaintextUser::new("admin", "datarhei")))
//! #         .route_service("/api/login/refresh", RefreshService::new(jwt.clone()))
//! #         .layer(JwtAuthLayer::new(jwt).policy(policy));
//! #     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! #     let addr = listener.local_addr().unwrap();
//! #     tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
//! #     addr
//! # }
//! ```
//!
//! Against an app built with this crate that mounts its services elsewhere and serves no about
//! document:
//!
//! ```no_run
//! use tower_jwt_login::client::{Credentials, Discovery, TokenSource};
//!
//! # async fn run() -> Result<(), tower_jwt_login::client::ClientError> {
//! let source = TokenSource::builder("http://127.0.0.1:3000")
//!     .credentials(Credentials::password("alice", "alice's password"))
//!     .discovery(Discovery::IfPresent)
//!     .login_path("/auth/login")
//!     .refresh_path("/auth/refresh")
//!     .logout_path("/auth/logout")
//!     .build()?;
//! let token = source.access_token().await?; // POST /auth/login
//! # let _ = token;
//! # Ok(())
//! # }
//! ```
//!
//! An error names the request it made, what it expected and what came back; printed with `{:?}`
//! (as `main` returning `Result` does) that reads
//! `Discovery { request: "GET http://127.0.0.1:3000/api", expected: "200 and Core's about
//! document (JSON with an \"auths\" list)", status: 401, body: "{\"code\":401,…}" }`.
//!
//! The token source makes its own requests with hyper-util's HTTP/1 client over plain TCP; for
//! an `https://` server give it a client with TLS ([`TokenSourceBuilder::http_client`]) and wrap
//! that same client in the layer. Token requests are bounded by a timeout (default 10 s) and
//! need a tokio runtime with its timer enabled.
//!
//! Nothing here writes a token or a password to a log, and every `Debug` redacts them.

mod error;
mod future;
mod layer;
mod payload;
mod source;
mod transport;

pub use error::{ClientError, RequestError};
pub use future::ResponseFuture;
pub use layer::{LoginClient, LoginClientLayer, ReplayBody};
pub use source::{Credentials, Discovery, Logout, TokenSource, TokenSourceBuilder, TokenState};
