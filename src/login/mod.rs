//! [`LoginService`] (`POST /api/login`) and [`RefreshService`] (`GET /api/login/refresh`):
//! mountable tower services implementing PROTOCOL.md §1 and §3.
//!
//! login: body → [`Credentials`] → [`CredentialStore`] → [`Jwt::issue_pair`] → response.
//! refresh: bearer → [`Jwt::verify`] as a *refresh* token → [`Jwt::issue_access`] → response.
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http::{Request, StatusCode};
//! use http_body_util::{BodyExt, Full};
//! use tower::ServiceExt;
//! use tower_jwt_login::login::LoginService;
//! use tower_jwt_login::store::PlaintextUser;
//! use tower_jwt_login::{JwtConfig, JwtKey};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let jwt = JwtConfig::new(JwtKey::core_compatible("admin", "datarhei", "secret")).build().unwrap();
//! let login = LoginService::new(jwt, PlaintextUser::new("admin", "datarhei"))
//!     .failure_delay(Duration::ZERO);
//!
//! let req = Request::post("/api/login")
//!     .header("content-type", "application/json")
//!     .body(Full::new(Bytes::from_static(br#"{"username":"admin","password":"datarhei"}"#)))
//!     .unwrap();
//! let res = login.clone().oneshot(req).await.unwrap();
//! assert_eq!(res.status(), StatusCode::OK);
//!
//! let req = Request::post("/api/login")
//!     .header("content-type", "application/json")
//!     .body(Full::new(Bytes::from_static(br#"{"username":"admin","password":"wrong"}"#)))
//!     .unwrap();
//! let res = login.oneshot(req).await.unwrap();
//! assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
//! let body = res.into_body().collect().await.unwrap().to_bytes();
//! assert_eq!(
//!     &body[..],
//!     &b"{\"code\":401,\"message\":\"Unauthorized\",\"details\":[\"Invalid authorization credentials: invalid username or password\"]}\n"[..]
//! );
//! # });
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Deserialize;
use tower_service::Service;
use tracing::Instrument;
use tracing::field::Empty;
use zeroize::Zeroize;

use crate::auth0::{Auth0Provider, Auth0Verdict, NoAuth0};
use crate::bearer::bearer_token;
use crate::client_addr::ClientAddrResolver;
use crate::error::{LoginError, ResponseBody, error_response, json_response};
use crate::json::parse_object;
use crate::metrics::Metrics;
use crate::session::{SessionError, Sessions, new_session_id};
use crate::store::{CredentialStore, Credentials};
use crate::throttle::LoginThrottle;
use crate::token::{Grant, Jwt};

mod logout;
mod refresh;

pub use logout::LogoutService;
pub use refresh::RefreshService;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The login route. Generic over the request body; answers `POST` only (any other method gets
/// `404` in the §2 shape — with [`PathPolicy::login_routes`](crate::auth::PathPolicy::login_routes)
/// the layer answers those with 401 first, like Core).
pub struct LoginService<S, A = NoAuth0> {
    jwt: Jwt,
    store: Arc<S>,
    auth0: Arc<A>,
    failure_delay: Duration,
    body_limit: usize,
    metrics: Option<Metrics>,
    throttle: Option<LoginThrottle>,
    client_addr: ClientAddrResolver,
    sessions: Option<Sessions>,
}

impl<S, A> Clone for LoginService<S, A> {
    fn clone(&self) -> Self {
        LoginService {
            jwt: self.jwt.clone(),
            store: Arc::clone(&self.store),
            auth0: Arc::clone(&self.auth0),
            failure_delay: self.failure_delay,
            body_limit: self.body_limit,
            metrics: self.metrics.clone(),
            throttle: self.throttle.clone(),
            client_addr: self.client_addr.clone(),
            sessions: self.sessions.clone(),
        }
    }
}

impl<S, A> std::fmt::Debug for LoginService<S, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginService")
            .field("failure_delay", &self.failure_delay)
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

impl<S: CredentialStore> LoginService<S> {
    /// Core's defaults: 5 s failure delay, 16 KiB body limit, no Auth0.
    pub fn new(jwt: Jwt, store: S) -> Self {
        LoginService {
            jwt,
            store: Arc::new(store),
            auth0: Arc::new(NoAuth0),
            failure_delay: Duration::from_secs(5),
            body_limit: 16 * 1024,
            metrics: None,
            throttle: None,
            client_addr: ClientAddrResolver::new(),
            sessions: None,
        }
    }
}

impl<S: CredentialStore, A: Auth0Provider> LoginService<S, A> {
    /// Accepts Auth0 bearer tokens through `provider` (PROTOCOL.md §5). A JSON body with
    /// credentials is always the local login; only without one is a bearer given to `provider`.
    pub fn auth0<A2: Auth0Provider>(self, provider: A2) -> LoginService<S, A2> {
        LoginService {
            jwt: self.jwt,
            store: self.store,
            auth0: Arc::new(provider),
            failure_delay: self.failure_delay,
            body_limit: self.body_limit,
            metrics: self.metrics,
            throttle: self.throttle,
            client_addr: self.client_addr,
            sessions: self.sessions,
        }
    }

    /// Counts successes and failures by reason into `metrics`
    /// ([`Metrics::record_login_success`], [`Metrics::record_login_failure`]).
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Throttles failed username/password logins per account and client address
    /// ([`LoginThrottle`]): over a limit, the login answers `429 Too Many Requests` with
    /// `Retry-After` at once, without asking the store. Off by default; the example server and
    /// [`CoreAuthConfig::login_throttle`](crate::config::CoreAuthConfig::login_throttle) turn it
    /// on (10 failures per 15 minutes).
    pub fn throttle(mut self, throttle: LoginThrottle) -> Self {
        self.throttle = Some(throttle).filter(LoginThrottle::is_enabled);
        self
    }

    /// How the client address is found for the throttle (default: the
    /// [`ClientAddr`](crate::client_addr::ClientAddr) extension, no trusted proxy).
    pub fn client_addr(mut self, resolver: ClientAddrResolver) -> Self {
        self.client_addr = resolver;
        self
    }

    /// How long every failed login (400 and 401) waits before it is answered (default 5 s, like
    /// Core).
    pub fn failure_delay(mut self, delay: Duration) -> Self {
        self.failure_delay = delay;
        self
    }

    /// Starts a [session](crate::session) at every login: both tokens carry its id (`sid`), so
    /// logout and revocation can end them. While the store cannot be reached, logins answer
    /// `503` with `Retry-After` and issue no token (a token that could not be revoked).
    pub fn sessions(mut self, sessions: impl Into<Sessions>) -> Self {
        self.sessions = Some(sessions.into());
        self
    }

    /// Largest accepted body in bytes (default 16 KiB); larger bodies get 413 at once, unread.
    pub fn body_limit(mut self, limit: usize) -> Self {
        self.body_limit = limit;
        self
    }

    async fn handle<B>(self, req: Request<B>) -> Response<ResponseBody>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let method = req.method().clone();
        if method != Method::POST {
            return error_response(&method, StatusCode::NOT_FOUND, "Not Found");
        }
        match self.login(req).await {
            Ok(pair) => {
                tracing::Span::current().record("outcome", "success");
                tracing::info!(outcome = "success", "login");
                if let Some(metrics) = &self.metrics {
                    metrics.record_login_success();
                }
                json_response(&method, &pair)
            }
            Err(error) => {
                tracing::Span::current().record("outcome", error.reason());
                if let Some(metrics) = &self.metrics {
                    metrics.record_login_failure(&error);
                }
                if let LoginError::Store(source) = &error {
                    tracing::error!(error = %source, "credential store failed");
                } else {
                    tracing::info!(outcome = error.reason(), "login failed");
                }
                if error.is_delayed() && !self.failure_delay.is_zero() {
                    tokio::time::sleep(self.failure_delay).await;
                }
                error.into_response(&method)
            }
        }
    }

    async fn login<B>(&self, req: Request<B>) -> Result<crate::TokenPair, LoginError>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = req.into_parts();
        let credentials = if is_json(&parts.headers) {
            read_credentials(&parts.headers, body, self.body_limit).await?
        } else {
            None
        };
        let Some(credentials) = credentials else {
            // No usable body: a bearer may be an Auth0 token. One that no tenant claims is "no
            // credentials", exactly like a missing body (PROTOCOL.md §3).
            let Ok(bearer) = bearer_token(&parts.headers) else {
                return Err(LoginError::MissingCredentials);
            };
            return match self.auth0.verify(bearer).await {
                Auth0Verdict::Valid { subject } => {
                    tracing::Span::current().record("subject", subject.as_str());
                    tracing::info!(subject = %subject, "auth0 token accepted");
                    self.issue(&subject).await
                }
                Auth0Verdict::Invalid { reason } => Err(LoginError::Auth0Rejected(reason)),
                Auth0Verdict::NotMine => Err(LoginError::MissingCredentials),
            };
        };
        let client = self.throttle.as_ref().map(|throttle| {
            let client = self.client_addr.resolve(&parts.headers, &parts.extensions);
            if client.is_none() {
                tracing::debug!("no client address: only the per-account login ceiling applies");
            }
            (throttle, client)
        });
        if let Some((throttle, addr)) = client {
            throttle
                .begin(credentials.username(), addr)
                .map_err(|refused| {
                    // Once per window the throttle itself warns; each refusal is only debug, so
                    // a flood cannot flood the log.
                    tracing::debug!(client = ?addr, limit = refused.scope().as_str(), "login throttled");
                    LoginError::Throttled(refused)
                })?;
        }
        let outcome = self.store.authenticate(&credentials).await;
        if let Some((throttle, addr)) = client {
            match &outcome {
                Ok(Some(_)) => throttle.succeeded(credentials.username(), addr),
                Ok(None) => {}
                Err(_) => throttle.refund(credentials.username(), addr),
            }
        }
        match outcome {
            Ok(Some(subject)) => {
                tracing::Span::current().record("subject", subject.as_str());
                tracing::info!(subject = %subject, "credentials accepted");
                self.issue(&subject).await
            }
            Ok(None) => Err(LoginError::InvalidCredentials),
            Err(e) => Err(LoginError::Store(Box::new(e))),
        }
    }
}

impl<S, A> LoginService<S, A> {
    /// The login answer for `subject`: Core's stateless pair, or, with sessions, a pair of a new
    /// session that the store knows before the tokens leave.
    async fn issue(&self, subject: &str) -> Result<crate::TokenPair, LoginError> {
        let Some(sessions) = &self.sessions else {
            return Ok(self.jwt.issue_pair(subject));
        };
        let sid = new_session_id();
        let issued = self.jwt.issue(&Grant::new(subject).session(&sid));
        match sessions
            .start(
                &sid,
                subject,
                &issued.refresh_jti,
                issued.refresh_expires_at,
            )
            .await
        {
            Ok(()) => Ok(issued.tokens),
            Err(SessionError::Unavailable(why)) => {
                tracing::warn!(reason = %why, "session store unavailable: login refused");
                Err(LoginError::Unavailable {
                    retry_after_secs: sessions.retry_after_secs(),
                })
            }
            Err(error) => Err(LoginError::Store(Box::new(error))),
        }
    }
}

/// `Content-Type` starts with `application/json` (parameters such as `; charset=utf-8` allowed).
fn is_json(headers: &http::HeaderMap) -> bool {
    const JSON: &[u8] = b"application/json";
    headers.get(header::CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes()
            .get(..JSON.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(JSON))
    })
}

/// Reads at most `limit` bytes and parses `{"username":"…","password":"…"}`. `Ok(None)` for
/// anything that is not two non-empty strings in a JSON object; the buffer is zeroized after.
async fn read_credentials<B>(
    headers: &http::HeaderMap,
    body: B,
    limit: usize,
) -> Result<Option<Credentials>, LoginError>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(LoginError::PayloadTooLarge);
    }
    let bytes: Bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(LoginError::PayloadTooLarge);
        }
        Err(_) => return Ok(None),
    };
    let parsed: Option<LoginBody> = parse_object(&bytes);
    if let Ok(mut owned) = bytes.try_into_mut() {
        owned.as_mut().zeroize();
    }
    Ok(parsed.and_then(|b| {
        if b.username.is_empty() || b.password.is_empty() {
            let mut password = b.password;
            password.zeroize();
            None
        } else {
            Some(Credentials::new(b.username, b.password))
        }
    }))
}

impl<S, A, B> Service<Request<B>> for LoginService<S, A>
where
    S: CredentialStore,
    A: Auth0Provider,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let this = self.clone();
        // `subject` is recorded on success only; never the password or a token.
        let span = tracing::info_span!("login", subject = Empty, outcome = Empty);
        Box::pin(async move { Ok(this.handle(req).await) }.instrument(span))
    }
}
