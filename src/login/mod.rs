//! [`LoginService`] (`POST /api/login`) and [`RefreshService`] (`GET /api/login/refresh`):
//! mountable tower services implementing docs/protocol.md §1 and §3.
//!
//! login: body → [`Credentials`] → throttle → [`CredentialStore`] → [`Jwt::issue_pair`] →
//! response. refresh: bearer → [`Jwt::verify`] as a *refresh* token → [`Jwt::issue_access`] →
//! response.
//!
//! Secure by default: a [`LoginService`] throttles failed logins with the standard limits
//! ([`ThrottleConfig::default`](crate::throttle::ThrottleConfig::default)) per account and
//! client address, and finds the client address under axum and tonic without wiring (see
//! [`client_addr`](crate::client_addr)). Opt out explicitly with
//! [`throttle(None)`](LoginService::throttle).
//!
//! # Audit log
//!
//! Every login, refresh and logout outcome writes exactly one `tracing` event at INFO with the
//! target `tower_jwt_login::audit`, as do the [second factor](crate::factor)'s and the
//! [API keys](crate::apikey)' changes (everything else the routes log is DEBUG, except a failing
//! store (ERROR), the throttle's once-per-window limit warning and the one-time missing-address
//! warning). The event's `tracing` name and message say what happened (`login`, `refresh`,
//! `logout`, `session_evicted`, …); fields carry OpenTelemetry's semantic-convention names
//! where one exists, so that the events map onto OpenTelemetry log records unchanged:
//!
//! - `outcome`: `success`, `failure` (400/401/413), `throttled` (429), `unavailable` (503,
//!   the [session store](crate::session) or the [second-factor store](crate::factor) cannot be
//!   reached) or `error` (500, a store failed);
//! - `enduser.id`: the subject, when it is known (a success; a logout's verified token) —
//!   never a failed login's attempted username;
//! - `client.address`: the client address, `unknown` when none was found;
//! - `http.request.method`: the request's method;
//! - `error.type`: on anything but success — for a login `invalid_credentials`,
//!   `missing_credentials`, `auth0_rejected`, `payload_too_large`, `throttled` (with `limit`,
//!   the refusing [scope](crate::throttle::ThrottleScope), and `retry_after`),
//!   `session_store_unavailable`, `store_error`, with the second factor `totp_required`,
//!   `invalid_totp` and `second_factor_store_unavailable`; for a refresh or logout, the refused
//!   token's kind (`token_expired`, `token_revoked`, `missing_token`, …),
//!   `session_store_unavailable` or `store_error`;
//! - `via`: on a login success, `password`, `auth0` or `api_key` (an [API key](crate::apikey)
//!   exchanged); with the second factor on for the user, `password+totp`,
//!   `password+recovery_code` (a recovery code was spent) or `password+trusted_device`;
//! - `scope`: on a logout, `session` or `all`.
//!
//! docs/operations.md has the whole table: every event, field and `error.type`.
//!
//! With [sessions](LoginService::sessions), a login that ends one of the subject's sessions to
//! stay within the store's per-subject limit also writes one event per ended session, before
//! its own: `session_evicted` with `enduser.id` and `client.address`.
//!
//! A login during which its subject was logged out everywhere (a password change, a disabled
//! account, `POST /api/logout/all` — see [`SessionStore::end_all`](crate::session::SessionStore::end_all))
//! gets no session for the credentials it checked before: the store refuses the start, and the
//! service checks the credentials (or the Auth0 token) once more. Still good, the login
//! succeeds with a session started after the logout; no longer good, it fails as usual (`401`).
//! Refused a second time (logged out everywhere again meanwhile), it answers the `503` with
//! `Retry-After` of an unavailable store (`error.type="session_store_unavailable"`): try again.
//!
//! The routes run in DEBUG spans (`login`, `refresh`, `logout`) with `subject` and `outcome`, for
//! correlating the DEBUG lines of one request; at INFO they are not built, and the audit event
//! is the one line an outcome costs.
//!
//! Never a password, a token or a secret. Nor the *attempted* username of a failed login: a
//! username field regularly receives a password typed one field too early, and audit logs travel
//! further than password databases. Attacks on one account show as `throttled` events with
//! `limit="account"`; per address they show by `client.address`.
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
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, header};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Deserialize;
use tower_service::Service;
use tracing::Instrument;
use tracing::field::Empty;
use zeroize::{Zeroize, Zeroizing};

use crate::apikey::{ApiKey, DynApiKeys};
use crate::audit::{AUDIT, AuditClient};
use crate::auth0::{Auth0Provider, Auth0Verdict, NoAuth0};
use crate::bearer::bearer_token;
use crate::client_addr::ClientAddrResolver;
use crate::error::LoginError;
use crate::factor::{LoginFactor, LoginFactorError, RememberDevice, SecondFactor};
use crate::json::parse_object;
use crate::metrics::Metrics;
use crate::response::{ResponseBody, ResponseFuture, json_bytes_response, wrong_method};
use crate::session::{KeyTag, NewSession, SessionError, Sessions, StartVerdict, new_session_id};
use crate::store::{CredentialStore, Credentials, Lookup};
use crate::throttle::LoginThrottle;
use crate::token::{Grant, Jwt, Principal};

mod apikey;
mod logout;
mod password;
mod refresh;

pub use logout::LogoutService;
pub use password::{DEFAULT_MIN_PASSWORD_LEN, PasswordChangeService};
pub use refresh::RefreshService;

use crate::error::BoxError;

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
    /// API keys exchanged for tokens ([`LoginService::api_keys`]).
    api_keys: Option<Arc<dyn DynApiKeys>>,
    second_factor: Option<SecondFactor>,
    /// Whether the missing-address warning was written (shared by clones).
    warned_no_addr: Arc<AtomicBool>,
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
            api_keys: self.api_keys.clone(),
            second_factor: self.second_factor.clone(),
            warned_no_addr: Arc::clone(&self.warned_no_addr),
        }
    }
}

impl<S, A> std::fmt::Debug for LoginService<S, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginService")
            .field("failure_delay", &self.failure_delay)
            .field("body_limit", &self.body_limit)
            .field("throttle", &self.throttle)
            .field("client_addr", &self.client_addr)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
    // The second factor's members (docs/protocol.md §8): strings, or ignored like any unknown
    // member, so that a login without the second factor reads exactly what it always did.
    #[serde(default, deserialize_with = "string_or_ignored")]
    totp_code: Option<String>,
    #[serde(default, deserialize_with = "string_or_ignored")]
    device_trust_token: Option<String>,
    #[serde(default, deserialize_with = "string_or_ignored")]
    remember_device: Option<String>,
}

/// A JSON string, or `None` for any other value.
fn string_or_ignored<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    })
}

impl<S: CredentialStore> LoginService<S> {
    /// Core's defaults (5 s failure delay, 16 KiB body limit, no Auth0), throttled with the
    /// standard limits (10 failures per account and address in 15 minutes, see
    /// [`ThrottleConfig::default`](crate::throttle::ThrottleConfig::default)), the client address
    /// found by [`ClientAddrResolver::new`] (the TCP peer under axum and tonic, no trusted
    /// proxy).
    pub fn new(jwt: Jwt, store: S) -> Self {
        LoginService {
            jwt,
            store: Arc::new(store),
            auth0: Arc::new(NoAuth0),
            failure_delay: Duration::from_secs(5),
            body_limit: 16 * 1024,
            metrics: None,
            throttle: Some(LoginThrottle::standard()),
            client_addr: ClientAddrResolver::new(),
            sessions: None,
            api_keys: None,
            second_factor: None,
            warned_no_addr: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl<S: CredentialStore, A: Auth0Provider> LoginService<S, A> {
    /// Accepts Auth0 bearer tokens through `provider` (docs/protocol.md §5). A JSON body with
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
            api_keys: self.api_keys,
            second_factor: self.second_factor,
            warned_no_addr: self.warned_no_addr,
        }
    }

    /// Counts successes and failures by reason into `metrics`
    /// ([`Metrics::record_login_success`], [`Metrics::record_login_failure`]).
    #[must_use]
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Throttles failed username/password logins per account and client address with these
    /// limits ([`LoginThrottle`]): over a limit, the login answers `429 Too Many Requests` with
    /// `Retry-After` at once, without asking the store. On by default with the standard limits;
    /// `throttle(None)` turns it off (for a test, or when something in front of the service
    /// limits logins already). Clones of a service share its throttle; give several services one
    /// throttle to share counters between them.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jwt_login::login::LoginService;
    /// use tower_jwt_login::store::PlaintextUser;
    /// use tower_jwt_login::throttle::ThrottleConfig;
    /// use tower_jwt_login::{JwtConfig, JwtKey};
    ///
    /// let jwt = JwtConfig::new(JwtKey::random()).build().unwrap();
    /// let strict = ThrottleConfig::new(5, Duration::from_secs(3600)).build().unwrap();
    /// let login = LoginService::new(jwt.clone(), PlaintextUser::new("admin", "pw")).throttle(strict);
    /// let unthrottled = LoginService::new(jwt, PlaintextUser::new("admin", "pw")).throttle(None);
    /// # let _ = (login, unthrottled);
    /// ```
    #[must_use]
    pub fn throttle(mut self, throttle: impl Into<Option<LoginThrottle>>) -> Self {
        self.throttle = throttle.into();
        self
    }

    /// How the client address is found for the throttle and the audit log (default
    /// [`ClientAddrResolver::new`]: [`ClientAddr`](crate::client_addr::ClientAddr), axum's
    /// `ConnectInfo` or tonic's `TcpConnectInfo`; no trusted proxy).
    #[must_use]
    pub fn client_addr(mut self, resolver: ClientAddrResolver) -> Self {
        self.client_addr = resolver;
        self
    }

    /// How long every failed login (400 and 401) waits before it is answered (default 5 s, like
    /// Core).
    #[must_use]
    pub fn failure_delay(mut self, delay: Duration) -> Self {
        self.failure_delay = delay;
        self
    }

    /// Starts a [session](crate::session) at every login: both tokens carry its id (`sid`), so
    /// logout and revocation can end them. While the store cannot be reached, logins answer
    /// `503` with `Retry-After` and issue no token (a token that could not be revoked).
    #[must_use]
    pub fn sessions(mut self, sessions: impl Into<Sessions>) -> Self {
        self.sessions = Some(sessions.into());
        self
    }

    /// Adds the [second factor](crate::factor) as one step after the password is accepted: a
    /// user who has it on also needs a current code or a recovery code in `totp_code`, or the
    /// `device_trust_token` of a remembered device, else `401` with `TOTP code required`
    /// (after the failure delay, without counting as a failure); a wrong code is `401`
    /// `Invalid TOTP code` and counts against the throttle like a wrong password. With
    /// `remember_device` (`"30d"` or `"1y"`) a login with a code also answers a
    /// `device_trust_token`. Users without it, and Auth0 logins, are unaffected.
    #[must_use]
    pub fn second_factor(mut self, second_factor: SecondFactor) -> Self {
        self.second_factor = Some(second_factor);
        self
    }

    /// Largest accepted body in bytes (default 16 KiB); larger bodies get 413 at once, unread.
    #[must_use]
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
        let started = std::time::Instant::now();
        let method = req.method().clone();
        if method != Method::POST {
            return wrong_method(&method);
        }
        let client = self.client_addr.resolve(req.headers(), req.extensions());
        if client.is_none() {
            self.no_client_address();
        }
        let client_field = AuditClient(client);
        let minted = req.extensions().get::<WantMinted>().is_some();
        match self.login(req, client).await {
            Ok((answer, subject, via)) => {
                let span = tracing::Span::current();
                span.record("subject", subject.as_str());
                span.record("outcome", "success");
                tracing::info!(
                    name: "login",
                    target: AUDIT,
                    outcome = "success",
                    enduser.id = subject.as_str(),
                    client.address = %client_field,
                    http.request.method = "POST",
                    via,
                    "login"
                );
                crate::metrics::login_succeeded(self.metrics.as_ref(), via, started);
                let (pair, device_token) = answer;
                let mut response =
                    json_bytes_response(&method, pair.json_line_with(device_token.as_deref()));
                if minted {
                    let mut tokens = Minted::pair(pair);
                    tokens.device_trust_token = device_token;
                    response.extensions_mut().insert(tokens);
                }
                response
            }
            Err(error) => {
                tracing::Span::current().record("outcome", error.reason());
                crate::metrics::login_failed(self.metrics.as_ref(), &error, started);
                let outcome = crate::metrics::login_outcome(&error);
                match &error {
                    LoginError::Throttled(refused) => tracing::info!(
                        name: "login",
                        target: AUDIT,
                        outcome,
                        client.address = %client_field,
                        http.request.method = "POST",
                        error.type = error.reason(),
                        limit = refused.scope().as_str(),
                        retry_after = refused.retry_after_secs(),
                        "login"
                    ),
                    LoginError::Unavailable { retry_after_secs }
                    | LoginError::SecondFactorUnavailable { retry_after_secs } => tracing::info!(
                        name: "login",
                        target: AUDIT,
                        outcome,
                        client.address = %client_field,
                        http.request.method = "POST",
                        error.type = error.reason(),
                        retry_after = retry_after_secs,
                        "login"
                    ),
                    LoginError::Store(source) => {
                        tracing::error!(error = %source, "store failed");
                        tracing::info!(
                            name: "login",
                            target: AUDIT,
                            outcome,
                            client.address = %client_field,
                            http.request.method = "POST",
                            error.type = error.reason(),
                            "login"
                        );
                    }
                    _ => tracing::info!(
                        name: "login",
                        target: AUDIT,
                        outcome,
                        client.address = %client_field,
                        http.request.method = "POST",
                        error.type = error.reason(),
                        "login"
                    ),
                }
                if error.is_delayed() && !self.failure_delay.is_zero() {
                    tokio::time::sleep(self.failure_delay).await;
                }
                error.into_response(&method)
            }
        }
    }

    /// The first request without a client address warns (once per service and its clones):
    /// without one, only the per-account ceiling of the throttle applies.
    fn no_client_address(&self) {
        if self.throttle.is_none() {
            tracing::debug!("no client address for this login");
            return;
        }
        // Load first: after the warning, address-less requests only read the shared flag.
        if !self.warned_no_addr.load(Ordering::Relaxed)
            && !self.warned_no_addr.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                "login: no client address in the request (no ClientAddr, axum ConnectInfo or \
                 tonic TcpConnectInfo extension), so the per-address login limits cannot apply, \
                 only the per-account ceiling; serve axum with \
                 into_make_service_with_connect_info::<SocketAddr>(), or see \
                 ClientAddrResolver::peer_from (logged once)"
            );
        } else {
            tracing::debug!("no client address for this login");
        }
    }

    /// The answer's body (the token pair), the subject and how the user logged in (`password`,
    /// `password+totp`, … or `auth0`).
    async fn login<B>(
        &self,
        req: Request<B>,
        client: Option<IpAddr>,
    ) -> Result<(LoginAnswer, String, &'static str), LoginError>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = req.into_parts();
        let origin = Origin {
            client,
            user_agent: user_agent(&parts.headers),
            api_key: None,
        };
        let credentials = if is_json(&parts.headers) {
            read_credentials(&parts.headers, body, self.body_limit).await?
        } else {
            None
        };
        let Some((credentials, factor_input)) = credentials else {
            // No usable body: a bearer may be an Auth0 token. One that no tenant claims is "no
            // credentials", exactly like a missing body (docs/protocol.md §3).
            let Ok(bearer) = bearer_token(&parts.headers) else {
                return Err(LoginError::MissingCredentials);
            };
            if let Some(keys) = &self.api_keys
                && ApiKey::is_prefixed(bearer)
            {
                return self.api_key_login(&**keys, bearer, origin).await;
            }
            // The subject's "not before" as it is before the token is checked.
            let seen = self.sessions.as_ref().map(Sessions::snapshot);
            let principal = match self.auth0.verify(bearer).await {
                Auth0Verdict::Valid { principal } => principal,
                Auth0Verdict::Invalid { reason } => return Err(LoginError::Auth0Rejected(reason)),
                Auth0Verdict::NotMine => return Err(LoginError::MissingCredentials),
            };
            tracing::debug!("auth0 token accepted");
            let seen = seen.and_then(|s| s.not_before(principal.subject()));
            let pair = match self.issue(&principal, seen, origin).await? {
                Issue::Pair(pair) => pair,
                Issue::Refused(not_before) => {
                    // Logged out everywhere while this login was under way: the token once more.
                    let again = match self.auth0.verify(bearer).await {
                        Auth0Verdict::Valid { principal } => principal,
                        Auth0Verdict::Invalid { reason } => {
                            return Err(LoginError::Auth0Rejected(reason));
                        }
                        Auth0Verdict::NotMine => return Err(LoginError::MissingCredentials),
                    };
                    let pair = self
                        .issue_again(&again, &principal, not_before, origin)
                        .await?;
                    return Ok(((pair, None), again.subject().to_owned(), "auth0"));
                }
            };
            return Ok(((pair, None), principal.subject().to_owned(), "auth0"));
        };
        let throttle = self.throttle.as_ref();
        if let Some(throttle) = throttle {
            // Each refusal is one audit event; the throttle itself warns once per counter and
            // window, so a flood cannot flood the log at WARN.
            throttle
                .begin_shared(credentials.username(), client)
                .await
                .map_err(LoginError::Throttled)?;
        }
        // The subject's "not before" as it is before the credentials are checked: a "log out
        // everywhere" (a password change) after this moment refuses the session below.
        let seen = self.sessions.as_ref().map(Sessions::snapshot);
        let outcome = self.check(&credentials).await;
        // The second factor, one step after the password.
        let factor = match (&outcome, &self.second_factor) {
            (Ok(Some(principal)), Some(factor)) => {
                Some(factor.at_login(principal.subject(), &factor_input).await)
            }
            _ => None,
        };
        if let Some(throttle) = throttle {
            let settle = match (&outcome, &factor) {
                // A wrong code keeps its charge, like a wrong password.
                (Ok(Some(_)), Some(Err(LoginFactorError::Invalid))) | (Ok(None), _) => None,
                // "Code required" and store failures are no failed guess: refunded.
                (Ok(Some(_)), Some(Err(_))) | (Err(_), _) => Some(false),
                (Ok(Some(_)), _) => Some(true),
            };
            if let Some(success) = settle {
                throttle
                    .settle_shared(credentials.username(), client, success)
                    .await;
            }
        }
        match outcome {
            Ok(Some(principal)) => {
                tracing::debug!("credentials accepted");
                let passed = factor.transpose().map_err(LoginError::from)?;
                let device_token = passed
                    .as_ref()
                    .and_then(|p| p.device_token.as_deref())
                    .cloned();
                let via = passed.as_ref().map_or("password", |p| p.via);
                let seen = seen.and_then(|s| s.not_before(principal.subject()));
                match self.issue(&principal, seen, origin).await? {
                    Issue::Pair(pair) => {
                        Ok(((pair, device_token), principal.subject().to_owned(), via))
                    }
                    Issue::Refused(not_before) => {
                        // Logged out everywhere while this login was under way (a password
                        // change, a disabled account): the credentials once more, as of now.
                        tracing::debug!(
                            "subject logged out everywhere during the login: checking again"
                        );
                        let again = match self.check(&credentials).await {
                            Ok(Some(principal)) => principal,
                            Ok(None) => return Err(LoginError::InvalidCredentials),
                            Err(e) => return Err(LoginError::Store(Box::new(e))),
                        };
                        let pair = self
                            .issue_again(&again, &principal, not_before, origin)
                            .await?;
                        // Remembered devices are forgotten by a logout everywhere: none issued.
                        Ok(((pair, None), again.subject().to_owned(), via))
                    }
                }
            }
            Ok(None) => Err(LoginError::InvalidCredentials),
            Err(e) => Err(LoginError::Store(Box::new(e))),
        }
    }

    /// The credentials checked in the store: the subject's current principal, `None` when
    /// they are wrong or the store refuses the subject.
    async fn check(&self, credentials: &Credentials) -> Result<Option<Principal>, S::Error> {
        match self.store.authenticate(credentials).await {
            Ok(Some(subject)) => self.principal_at_login(subject).await,
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl<S: CredentialStore, A> LoginService<S, A> {
    /// The principal of an accepted login: the store's current one ([`CredentialStore::principal`]),
    /// `None` when the store refuses the subject (answered like wrong credentials).
    async fn principal_at_login(&self, subject: String) -> Result<Option<Principal>, S::Error> {
        Ok(match self.store.principal(&subject).await? {
            Lookup::Found(principal) if principal.subject() == subject => Some(principal),
            Lookup::Found(_) => {
                tracing::error!(
                    "credential store returned a principal for another subject: login refused"
                );
                None
            }
            Lookup::Refused => {
                tracing::debug!("credentials accepted, but the store refuses the subject");
                None
            }
            Lookup::NotSupported => Some(Principal::new(subject)),
        })
    }
}

/// Where a login came from, for the session it starts (the owner's session list).
#[derive(Debug, Clone, Copy)]
pub(super) struct Origin<'a> {
    pub(super) client: Option<IpAddr>,
    pub(super) user_agent: Option<&'a str>,
    pub(super) api_key: Option<KeyTag<'a>>,
}

/// The longest `User-Agent` a session keeps (bytes; a longer one is cut at a character).
const MAX_USER_AGENT: usize = 256;

/// The request's `User-Agent`, when it is text, at most [`MAX_USER_AGENT`] bytes of it.
fn user_agent(headers: &http::HeaderMap) -> Option<&str> {
    let agent = headers.get(http::header::USER_AGENT)?.to_str().ok()?;
    if agent.len() <= MAX_USER_AGENT {
        return Some(agent);
    }
    let mut end = MAX_USER_AGENT;
    while !agent.is_char_boundary(end) {
        end -= 1;
    }
    agent.get(..end)
}

/// What [`LoginService::issue`] did.
enum Issue {
    Pair(crate::TokenPair),
    /// The store refused the session: the subject was logged out everywhere (at this "not
    /// before", ms) after the one the login had seen.
    Refused(u64),
}

impl<S, A> LoginService<S, A> {
    /// The login answer for `principal` (its subject and extra claims): Core's stateless pair,
    /// or, with sessions, a pair of a new session that the store knows before the tokens leave.
    /// `seen` is the subject's "not before" read before the credentials were checked.
    async fn issue(
        &self,
        principal: &Principal,
        seen: Option<u64>,
        origin: Origin<'_>,
    ) -> Result<Issue, LoginError> {
        let client = origin.client;
        let Some(sessions) = &self.sessions else {
            return Ok(Issue::Pair(self.jwt.issue_pair_for(principal)));
        };
        let subject = principal.subject();
        let sid = new_session_id();
        let issued = self.jwt.issue(&Grant::from(principal).session(&sid));
        let session = NewSession::new(
            &sid,
            subject,
            &issued.refresh_jti,
            issued.refresh_expires_at,
        )
        .seen_not_before(seen)
        .client(origin.client)
        .user_agent(origin.user_agent)
        .api_key(origin.api_key);
        match sessions.start(session).await {
            Ok(StartVerdict::Started { evicted }) => {
                for _ in &evicted {
                    tracing::info!(
                        name: "session_evicted",
                        target: AUDIT,
                        outcome = "success",
                        enduser.id = subject,
                        client.address = %AuditClient(client),
                        "session_evicted"
                    );
                }
                Ok(Issue::Pair(issued.tokens))
            }
            Ok(StartVerdict::Refused { not_before }) => Ok(Issue::Refused(not_before)),
            Err(SessionError::Unavailable(why)) => {
                tracing::warn!(reason = %why, "session store unavailable: login refused");
                Err(LoginError::Unavailable {
                    retry_after_secs: sessions.retry_after_secs(),
                })
            }
            Err(error) => Err(LoginError::Store(Box::new(error))),
        }
    }

    /// The second try of a login refused because its subject was logged out everywhere at
    /// `not_before`: `principal` is the one checked again, `first` the one checked before.
    /// Refused again, it answers `503` (try again).
    async fn issue_again(
        &self,
        principal: &Principal,
        first: &Principal,
        not_before: u64,
        origin: Origin<'_>,
    ) -> Result<crate::TokenPair, LoginError> {
        let seen = if principal.subject() == first.subject() {
            Some(not_before)
        } else {
            self.sessions
                .as_ref()
                .and_then(|s| s.snapshot().not_before(principal.subject()))
        };
        match self.issue(principal, seen, origin).await? {
            Issue::Pair(pair) => Ok(pair),
            Issue::Refused(_) => {
                tracing::warn!("subject logged out everywhere twice during one login: try again");
                Err(LoginError::Unavailable {
                    retry_after_secs: self.sessions.as_ref().map_or(1, Sessions::retry_after_secs),
                })
            }
        }
    }
}

/// Asks the login and refresh services to put the tokens they mint into the response's
/// extensions ([`Minted`]): the browser mode moves them into cookies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WantMinted;

/// A login's answer: the token pair, and a remembered device's token when one was asked for.
type LoginAnswer = (crate::TokenPair, Option<String>);

/// The tokens a login or refresh answered (see [`WantMinted`]).
#[derive(Debug, Clone)]
pub(crate) struct Minted {
    pub(crate) access: String,
    pub(crate) refresh: Option<String>,
    /// The second factor's remembered-device token, when the login asked for one.
    pub(crate) device_trust_token: Option<String>,
}

impl Minted {
    pub(crate) fn access(access: String) -> Self {
        Minted {
            access,
            refresh: None,
            device_trust_token: None,
        }
    }

    pub(crate) fn pair(pair: crate::TokenPair) -> Self {
        Minted {
            access: pair.access_token,
            refresh: Some(pair.refresh_token),
            device_trust_token: None,
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

/// Reads at most `limit` bytes and parses `{"username":"…","password":"…"}` (and the second
/// factor's members). `Ok(None)` for anything that is not two non-empty strings in a JSON
/// object; the buffer is zeroized after.
async fn read_credentials<B>(
    headers: &http::HeaderMap,
    body: B,
    limit: usize,
) -> Result<Option<(Credentials, LoginFactor)>, LoginError>
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
            let factor = LoginFactor {
                code: b.totp_code.map(Zeroizing::new),
                device_token: b.device_trust_token.map(Zeroizing::new),
                remember: b
                    .remember_device
                    .as_deref()
                    .and_then(RememberDevice::from_name),
            };
            Some((Credentials::new(b.username, b.password), factor))
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
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let this = self.clone();
        // `subject` is recorded on success only; never the password or a token.
        let span = tracing::debug_span!("login", subject = Empty, outcome = Empty);
        ResponseFuture::new(async move { this.handle(req).await }.instrument(span))
    }
}
