//! # tower-jwt-login
//!
//! The JWT login protocol of [datarhei Core](https://github.com/datarhei/core) (the media server
//! behind Restreamer) for any tower app — axum, tonic, plain hyper:
//!
//! - [`kit::LoginKit`] assembles the whole login into **one** tower layer that serves the login
//!   routes itself and guards the rest of the app (sessions, rotation, throttling, CORS, browser
//!   mode, Auth0, roles: each one builder call);
//! - [`auth::JwtAuthLayer`] guards routes with `Authorization: Bearer <access token>`;
//! - [`login::LoginService`] (`POST /api/login`) and [`login::RefreshService`]
//!   (`GET /api/login/refresh`) mint Core's HS256 access (600 s) and refresh (24 h) tokens;
//! - [`store::CredentialStore`] says where users come from ([`store::PlaintextUser`] for Core's
//!   one configured user, [`store::Argon2Store`] for Argon2id hashes, or your own).
//!
//! Tokens are byte-compatible with Core's (header, claim order, `exi`, `usefor`, and — with
//! [`JwtKey::core_compatible`] — the key), so Core's clients log in unchanged. Validation is
//! strict where Core is lax; every error is answered in Core's JSON error shape, never a panic.
//!
//! ```
//! use axum::{Router, routing::get};
//! use tower::Layer;
//! use tower_jwt_login::kit::LoginKit;
//! use tower_jwt_login::store::PlaintextUser;
//! use tower_jwt_login::{JwtConfig, JwtKey};
//!
//! let jwt = JwtConfig::new(JwtKey::from_secret("a secret of at least 32 random bytes!!").unwrap())
//!     .build()
//!     .unwrap();
//! let login = LoginKit::new(jwt, PlaintextUser::new("admin", "datarhei")).build().unwrap();
//! let app = Router::new().route("/api/v3/process", get(|| async { "[]" }));
//! // One layer around the whole app: POST /api/login and GET /api/login/refresh are served by
//! // it, everything else needs a valid access token (`login.wrap(app)` with the `axum` feature).
//! let app: Router = Router::new().fallback_service(login.layer(app));
//! # use tower::ServiceExt as _;
//! # let req = http::Request::get("/api/v3/process").body(axum::body::Body::empty()).unwrap();
//! # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! # assert_eq!(rt.block_on(app.oneshot(req)).unwrap().status(), 401);
//! ```
//!
//! Serve it with `axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())`,
//! so the login throttle sees the client address (docs/assembly.md).
//!
//! Modules: [`kit`] assembles, [`browser`] keeps tokens in cookies, [`token`] mints and verifies, [`auth`] guards, [`login`] serves the login routes,
//! [`store`] checks credentials, [`error`] holds the error types and [`response`] renders
//! every error, [`config`] reads Core's
//! environment variables, [`discovery`] renders Core's about documents, [`bearer`] parses
//! `Authorization`, [`throttle`] limits failed logins per account and client address, whose
//! address [`client_addr`] finds, [`session`] adds opt-in sessions (logout, revocation across a
//! fleet, refresh-token rotation with reuse detection; on Redis with the `redis` feature, see
//! docs/fleet.md), [`factor`] adds the opt-in second factor (TOTP codes, recovery codes,
//! remembered devices; docs/second-factor.md).
//!
//! Observability: with the `metrics` feature the crate records logins, refreshes, logouts,
//! rejections, throttling, second-factor outcomes, JWKS fetches, Redis errors and latencies into
//! the `metrics` facade ([`metrics`]); without it, [`metrics::Metrics`] counts the main ones.
//! Every outcome is one audit event (target `tower_jwt_login::audit`, OpenTelemetry field
//! names); login, refresh and rejection run in `tracing` spans (`login`, `refresh`,
//! `jwt_auth.reject`) carrying the subject and the outcome, never a password, token or secret.
//!
//! Integrations: `axum` (feature `axum`: the `Claims` extractor, `RouterExt::login_routes`) and
//! `tonic` (feature `tonic`: `ClaimsExt` for `tonic::Request`; the layer itself guards tonic
//! servers and refuses gRPC requests with `grpc-status: 16`, no feature needed).
//!
//! Client side (feature `client`): `client::TokenSource` logs in to a server speaking this
//! protocol (Core, or an app built with this crate), keeps the access token fresh with one
//! refresh at a time, follows refresh-token rotation, saves and resumes its tokens and logs out;
//! `client::LoginClientLayer` attaches the token to any tower HTTP client, such as hyper-util's
//! (the module shows it on one).
//!
//! Crypto: the crate's own HS256/384/512 path uses RustCrypto's `hmac` and `sha2` directly
//! (pre-keyed, constant-time). `jsonwebtoken` is only needed for Auth0's asymmetric tokens, so it
//! comes with the `auth0` feature; its backend is chosen by the features `rust_crypto` (default:
//! pure Rust, no C toolchain, fastest to build on small machines) or `aws_lc_rs`. With both (as
//! `--all-features` does) aws-lc-rs is installed, see [`ensure_jsonwebtoken_backend`].
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs, unreachable_pub, clippy::return_self_not_must_use)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod apikey;
mod audit;
pub mod auth;
pub mod auth0;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
pub mod bearer;
pub mod browser;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod client;
pub mod client_addr;
pub mod config;
pub mod discovery;
mod env;
pub mod error;
pub mod factor;
mod json;
pub mod jwks;
pub mod kit;
pub mod login;
pub mod metrics;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
pub mod response;
pub mod session;
pub mod store;
pub mod throttle;
#[cfg(any(feature = "redis", feature = "auth0"))]
mod tls;
pub mod token;
#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
pub mod tonic;

pub use token::{
    Algorithm, Claims, ExtraClaims, Grant, IssuedPair, Jwt, JwtConfig, JwtKey, KeyError,
    KeyProblem, Principal, SigningKey, TokenPair, TokenUse, VerificationKey,
};

/// The README's quick start, run as a doctest: an axum app with sessions in Redis, served on
/// loopback and called over HTTP. It needs the `axum` and `redis` features and Redis on
/// 127.0.0.1:6379 (`cargo test --all-features`, as CI runs it); plain `cargo test` skips it.
#[cfg(all(doctest, feature = "axum", feature = "redis"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// docs/integrations.md (axum by hand, CORS by hand, tonic), run as doctests with the `axum` and
/// `tonic` features.
#[cfg(all(doctest, feature = "axum", feature = "tonic"))]
#[doc = include_str!("../docs/integrations.md")]
struct IntegrationsDocDoctests;

/// docs/auth0.md, run as doctests with the `auth0` feature.
#[cfg(all(doctest, feature = "auth0"))]
#[doc = include_str!("../docs/auth0.md")]
struct Auth0DocDoctests;

/// docs/operations.md (the metrics export), run as doctests with the `axum` feature.
#[cfg(all(doctest, feature = "axum"))]
#[doc = include_str!("../docs/operations.md")]
struct OperationsDocDoctests;

/// docs/authorization.md, run as doctests with the `axum` and `tonic` features.
#[cfg(all(doctest, feature = "axum", feature = "tonic"))]
#[doc = include_str!("../docs/authorization.md")]
struct AuthorizationDocDoctests;

/// docs/assembly.md and docs/browser.md, run as doctests with the `axum` feature.
#[cfg(all(doctest, feature = "axum"))]
#[doc = include_str!("../docs/assembly.md")]
#[doc = include_str!("../docs/browser.md")]
struct AssemblyDocDoctests;

/// docs/second-factor.md, run as doctests with the `axum` feature.
#[cfg(all(doctest, feature = "axum"))]
#[doc = include_str!("../docs/second-factor.md")]
struct SecondFactorDocDoctests;

/// docs/accounts.md, run as doctests with the `sql` feature.
#[cfg(all(doctest, feature = "sql"))]
#[doc = include_str!("../docs/accounts.md")]
struct AccountsDocDoctests;

/// docs/client.md, run as doctests with the `client` feature.
#[cfg(all(doctest, feature = "client"))]
#[doc = include_str!("../docs/client.md")]
struct ClientDocDoctests;

#[cfg(all(
    feature = "auth0",
    not(any(feature = "rust_crypto", feature = "aws_lc_rs"))
))]
compile_error!(
    "the `auth0` feature needs a jsonwebtoken backend: enable `rust_crypto` or `aws_lc_rs`"
);

/// Gives `jsonwebtoken` a process-wide crypto backend when it cannot pick one itself.
///
/// With exactly one of the features `rust_crypto` / `aws_lc_rs`, jsonwebtoken chooses on its own
/// and this does nothing. With both (as `--all-features` does) jsonwebtoken would panic on first
/// use; this installs aws-lc-rs's provider (the explicit, non-default choice wins). The crate
/// calls it before its own first use of jsonwebtoken (the Auth0 path); call it yourself first if
/// your code uses jsonwebtoken directly in such a build. Idempotent.
///
/// ```
/// tower_jwt_login::ensure_jsonwebtoken_backend();
/// tower_jwt_login::ensure_jsonwebtoken_backend();
/// ```
pub fn ensure_jsonwebtoken_backend() {
    #[cfg(all(feature = "auth0", feature = "rust_crypto", feature = "aws_lc_rs"))]
    {
        // Err only means a provider is installed already: fine either way.
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    }
}
