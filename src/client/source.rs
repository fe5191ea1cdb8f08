//! [`TokenSource`]: the login state of one client — credentials, base URL, tokens — and the
//! single-flight refresh behind it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use http_body::Body;
use http_body_util::Full;
use serde::{Deserialize, Serialize};
use tower_service::Service;
use zeroize::Zeroizing;

use super::error::{ClientError, excerpt};
use super::layer::LoginClientLayer;
use super::payload;
use super::transport::{Answer, ServiceTransport, Transport, default_transport};
use crate::discovery::LOCAL_JWT;
use crate::error::BoxError;
use crate::token::now_secs;

/// Core's paths, the defaults.
const ABOUT_PATH: &str = "/api";
const LOGIN_PATH: &str = "/api/login";
const REFRESH_PATH: &str = "/api/login/refresh";
const LOGOUT_PATH: &str = "/api/logout";
/// The largest token-endpoint answer read (a token pair is well under 2 KiB).
const BODY_LIMIT: usize = 64 * 1024;

const EXPECT_ABOUT: &str = "200 and Core's about document (JSON with an \"auths\" list)";
const EXPECT_PAIR: &str = "200 and a token pair";
const EXPECT_ACCESS: &str = "200 and an access token (or 401 for a refused refresh token)";
const EXPECT_LOGOUT: &str = "204 (or 404 where the server has no logout, 401 for a spent token)";

/// What the client logs in with.
///
/// Its `Debug` shows the username, never the password or the token.
#[derive(Clone)]
pub struct Credentials(Kind);

#[derive(Clone)]
enum Kind {
    Password {
        username: String,
        password: Zeroizing<String>,
    },
    Auth0 {
        token: Zeroizing<String>,
    },
    ApiKey {
        key: Zeroizing<String>,
    },
}

impl Credentials {
    /// A username and password: the `localjwt` login, a `POST` to the login path
    /// (`/api/login`) with a JSON body (docs/protocol.md §1.1).
    pub fn password(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials(Kind::Password {
            username: username.into(),
            password: Zeroizing::new(password.into()),
        })
    }

    /// An Auth0 access token, exchanged for the server's own token pair by a `POST` to the
    /// login path with `Authorization: Bearer <token>` (docs/protocol.md §5). When the refresh
    /// token runs out the client logs in with it again, which works while the Auth0 token is
    /// valid.
    pub fn auth0(access_token: impl Into<String>) -> Self {
        Credentials(Kind::Auth0 {
            token: Zeroizing::new(access_token.into()),
        })
    }

    /// An API key, exchanged for a token pair by a `POST` to the login path with
    /// `Authorization: Bearer <api key>` and no body, on a server that accepts API keys at its
    /// login. The key is not looked for in the about document's `auths`: any about document
    /// will do. When the refresh token runs out the client logs in with the key again.
    pub fn api_key(key: impl Into<String>) -> Self {
        Credentials(Kind::ApiKey {
            key: Zeroizing::new(key.into()),
        })
    }

    /// The secret these credentials put on the wire, for redacting error excerpts.
    fn secret(&self) -> &str {
        match &self.0 {
            Kind::Password { password, .. } => password,
            Kind::Auth0 { token } => token,
            Kind::ApiKey { key } => key,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Password { username, .. } => f
                .debug_struct("Password")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Kind::Auth0 { .. } => f
                .debug_struct("Auth0")
                .field("token", &"<redacted>")
                .finish(),
            Kind::ApiKey { .. } => f
                .debug_struct("ApiKey")
                .field("key", &"<redacted>")
                .finish(),
        }
    }
}

/// The token state of a [`TokenSource`], to save and hand to a new one
/// ([`TokenSource::export`], [`TokenSource::resume`]).
///
/// Serialized (serde) as `{"url":"…","access_token":"…","refresh_token":"…"}`. It holds live
/// credentials: store it like a password (the example program writes it with mode 0600). Its
/// `Debug` shows the URL only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenState {
    url: String,
    access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
}

impl TokenState {
    /// State for the server at `url` from tokens obtained elsewhere (such as a login answer
    /// saved by another client).
    pub fn new(
        url: impl Into<String>,
        access_token: impl Into<String>,
        refresh_token: Option<String>,
    ) -> Self {
        TokenState {
            url: url.into(),
            access_token: access_token.into(),
            refresh_token,
        }
    }

    /// The base URL of the server the tokens are for.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `exp` of the access token, read without verifying it; `None` when unreadable.
    pub fn access_expires_at(&self) -> Option<u64> {
        payload::peek(&self.access_token)?.exp
    }

    /// `exp` of the refresh token, read without verifying it; `None` when there is none or it
    /// is unreadable.
    pub fn refresh_expires_at(&self) -> Option<u64> {
        payload::peek(self.refresh_token.as_deref()?)?.exp
    }
}

impl fmt::Debug for TokenState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenState")
            .field("url", &self.url)
            .field("access_token", &"<redacted>")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Whether the token source reads the server's about document before its first login
/// ([`TokenSourceBuilder::discovery`]).
///
/// The about document is Core's `GET /api` (docs/protocol.md §6; the path is
/// [`TokenSourceBuilder::about_path`]). Its `auths` say which logins the server offers; a
/// server that does not offer the client's is refused with [`ClientError::NotOffered`] before
/// any credentials are sent. An app built with this crate serves one only if it mounts
/// [`About`](crate::discovery::About).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Discovery {
    /// The server must serve Core's about document: anything but `200` with an `auths` list is
    /// [`ClientError::Discovery`]. What Core's own clients do; the default.
    #[default]
    CoreAbout,
    /// Read the about document when the server serves one (`200` with an `auths` list) and
    /// check its `auths`; on any other answer (`401`, `404`, another document) go straight to
    /// the login. A server that cannot be reached is still an error.
    IfPresent,
    /// No discovery: the first request is the login.
    Off,
}

/// One token endpoint: its URL, and `METHOD URL` for error messages.
struct Endpoint {
    uri: Uri,
    request: String,
}

impl Endpoint {
    /// `method base path`; [`ClientError::InvalidUrl`] unless `path` is a path (`/…`) that
    /// makes a valid URL after `base`.
    fn new(method: &Method, base: &str, path: &str, what: &str) -> Result<Self, ClientError> {
        let url = format!("{base}{path}");
        let uri = Uri::try_from(&url)
            .ok()
            .filter(|_| path.starts_with('/') && !path.contains('#'))
            .ok_or_else(|| {
                ClientError::InvalidUrl(format!("the {what} path {path:?} is not a path"))
            })?;
        Ok(Endpoint {
            uri,
            request: format!("{method} {url}"),
        })
    }
}

/// The four endpoints of a token source.
struct Endpoints {
    about: Endpoint,
    login: Endpoint,
    refresh: Endpoint,
    logout: Endpoint,
}

/// A function asked for credentials when a login is needed.
type Ask = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<Credentials, BoxError>> + Send>> + Send + Sync,
>;

/// What [`TokenSource::logout`] did. In every case the client has forgotten its tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Logout {
    /// The logout (`POST /api/logout` by default) answered `204`: the server ended the
    /// session.
    LoggedOut,
    /// The logout answered `404`: the server has no logout (no sessions, like Core); the
    /// tokens stay valid on the server until they expire.
    NotOffered,
    /// The server refused every token presented (`401`), or none was still valid: the session
    /// had ended already.
    Refused,
    /// The client held no tokens.
    NoTokens,
}

/// The tokens in use. Immutable but for the `rejected` mark a 401 sets.
pub(crate) struct Tokens {
    access: String,
    /// `Bearer <access>`, marked sensitive; cloning it is a reference-count increment.
    pub(crate) header: HeaderValue,
    refresh: Option<String>,
    /// When to refresh proactively: `exp` minus the margin; `None` when `exp` is unreadable.
    stale_at: Option<u64>,
    refresh_exp: Option<u64>,
    rejected: AtomicBool,
}

impl Tokens {
    fn new(access: String, refresh: Option<String>, margin: u64) -> Option<Self> {
        let mut header = HeaderValue::try_from(format!("Bearer {access}")).ok()?;
        header.set_sensitive(true);
        let stale_at = payload::peek(&access).and_then(|p| {
            let exp = p.exp?;
            // Never more than half the lifetime, so short-lived tokens are still used at all.
            let margin = p.lifetime.map_or(margin, |l| margin.min(l / 2));
            Some(exp.saturating_sub(margin))
        });
        let refresh_exp = refresh
            .as_deref()
            .and_then(payload::peek)
            .and_then(|p| p.exp);
        Some(Tokens {
            access,
            header,
            refresh,
            stale_at,
            refresh_exp,
            rejected: AtomicBool::new(false),
        })
    }

    pub(crate) fn is_fresh(&self, now: u64) -> bool {
        !self.rejected.load(Ordering::Acquire) && self.stale_at.is_none_or(|t| now < t)
    }

    /// The tokens, for redacting error excerpts.
    fn secrets(&self) -> [&str; 2] {
        [self.access.as_str(), self.refresh.as_deref().unwrap_or("")]
    }

    fn usable_refresh(&self, now: u64) -> Option<&str> {
        self.refresh
            .as_deref()
            .filter(|_| self.refresh_exp.is_none_or(|exp| now < exp))
    }
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("stale_at", &self.stale_at)
            .field("refresh_exp", &self.refresh_exp)
            .finish_non_exhaustive()
    }
}

/// Logs in to a server speaking the Core login protocol and keeps a fresh access token.
///
/// Cheap to clone (one `Arc`): every clone shares the same tokens, so give clones to every task
/// and to [`LoginClientLayer`]. Use [`access_token`](Self::access_token) directly with any HTTP
/// client (reqwest, …), or [`layer`](Self::layer) to wrap a tower client.
///
/// - The first login reads the about document (`GET /api`, see [`Discovery`]) and refuses with
///   [`ClientError::NotOffered`] when the server's `auths` do not offer the credentials' login
///   (`localjwt`, or an `auth0 …` entry for the Auth0 token's domain).
/// - The paths are Core's by default (`/api/login`, `/api/login/refresh`, and `/api/logout`
///   for the crate's sessions) and set with [`TokenSourceBuilder::login_path`] and its
///   siblings for an app that mounts the services elsewhere.
/// - An access token is refreshed once the current time reaches its `exp` minus the refresh
///   margin (default 30 s, at most half the token's lifetime `exi`), read from the token's
///   payload without verifying it. A token whose payload cannot be read is used until the
///   server refuses it.
/// - Concurrent callers that find the token stale cause one refresh; the others wait for it and
///   share its outcome (success or error). No lock is held while the caller's own requests run.
/// - A refresh answer carrying `refresh_token` (rotation) replaces the refresh token at once.
/// - When the refresh token is refused or has expired, it logs in again with its credentials
///   (asking for them first when they are given
///   [on demand](TokenSourceBuilder::credentials_on_demand)), or fails with
///   [`ClientError::NoCredentials`] when it has none (resumed from saved state).
///
/// Its `Debug` never shows a token or a password; nor does anything it logs.
#[derive(Clone)]
pub struct TokenSource {
    shared: Arc<Shared>,
}

struct Shared {
    url: String,
    scheme: Scheme,
    authority: Authority,
    /// Given, or had from `ask`; changed only with the flight lock held.
    credentials: ArcSwapOption<Credentials>,
    ask: Option<Ask>,
    discovery: Discovery,
    endpoints: Endpoints,
    transport: Box<dyn Transport>,
    margin: u64,
    timeout: Duration,
    tokens: ArcSwapOption<Tokens>,
    /// Held by the one task that refreshes or logs in.
    flight: tokio::sync::Mutex<Flight>,
    /// Flights completed so far; a waiter that sees it move shares that flight's outcome.
    flights: AtomicU64,
    /// Discovery has run (and offered the credentials' login, where it found `auths`).
    discovered: AtomicBool,
}

#[derive(Default)]
struct Flight {
    last_error: Option<ClientError>,
}

/// Builds a [`TokenSource`] ([`TokenSource::builder`]).
#[must_use]
pub struct TokenSourceBuilder {
    url: String,
    credentials: Option<Credentials>,
    ask: Option<Ask>,
    discovery: Discovery,
    about_path: String,
    login_path: String,
    refresh_path: String,
    logout_path: String,
    margin: Duration,
    timeout: Duration,
    transport: Option<Box<dyn Transport>>,
    state: Option<TokenState>,
}

impl fmt::Debug for TokenSourceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSourceBuilder")
            .field("url", &self.url)
            .field("credentials", &self.credentials)
            .field("on_demand", &self.ask.is_some())
            .field("discovery", &self.discovery)
            .field("about_path", &self.about_path)
            .field("login_path", &self.login_path)
            .field("refresh_path", &self.refresh_path)
            .field("logout_path", &self.logout_path)
            .field("margin", &self.margin)
            .field("timeout", &self.timeout)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl TokenSourceBuilder {
    /// Logs in with these credentials (and again whenever the refresh token runs out).
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Asks `ask` for the credentials when a login is needed, and only then: a client resumed
    /// from saved state whose tokens are still good never calls it. The credentials it gives
    /// are kept for later logins, until the server refuses them; then the next login asks
    /// again. When it fails, the login fails with [`ClientError::CredentialsUnavailable`]
    /// (and the next one asks again). Credentials given with [`credentials`](Self::credentials)
    /// are used first.
    ///
    /// It runs while the one login in flight waits for it, so it may take its time (prompt a
    /// person, read a secret store); run blocking work such as reading stdin with
    /// `tokio::task::spawn_blocking`.
    ///
    /// ```
    /// use tower_jwt_login::client::{Credentials, TokenSource};
    ///
    /// let source = TokenSource::builder("http://127.0.0.1:8080")
    ///     .credentials_on_demand(|| async {
    ///         let password = std::env::var("CORE_PASSWORD")?;
    ///         Ok::<_, std::env::VarError>(Credentials::password("admin", password))
    ///     })
    ///     .build()?;
    /// assert!(source.has_credentials());
    /// # Ok::<(), tower_jwt_login::client::ClientError>(())
    /// ```
    pub fn credentials_on_demand<F, Fut, E>(mut self, ask: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Credentials, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        self.ask = Some(Arc::new(move || {
            let asked = ask();
            Box::pin(async move { asked.await.map_err(Into::into) })
        }));
        self
    }

    /// Whether to read the about document before the first login (default
    /// [`Discovery::CoreAbout`], as Core's own clients do).
    pub fn discovery(mut self, discovery: Discovery) -> Self {
        self.discovery = discovery;
        self
    }

    /// The path of the about document after the base URL (default Core's `/api`).
    pub fn about_path(mut self, path: impl Into<String>) -> Self {
        self.about_path = path.into();
        self
    }

    /// The path of the login, `POST`, after the base URL (default Core's `/api/login`).
    pub fn login_path(mut self, path: impl Into<String>) -> Self {
        self.login_path = path.into();
        self
    }

    /// The path of the refresh, `GET`, after the base URL (default Core's
    /// `/api/login/refresh`).
    pub fn refresh_path(mut self, path: impl Into<String>) -> Self {
        self.refresh_path = path.into();
        self
    }

    /// The path of the logout, `POST`, after the base URL (default the crate's
    /// `/api/logout`).
    pub fn logout_path(mut self, path: impl Into<String>) -> Self {
        self.logout_path = path.into();
        self
    }

    /// Starts from saved state ([`TokenSource::export`]) instead of logging in.
    pub fn state(mut self, state: TokenState) -> Self {
        self.state = Some(state);
        self
    }

    /// How long before `exp` the access token is refreshed (default 30 s; at most half the
    /// token's lifetime), which also covers clock skew between client and server.
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// The longest a request to a token endpoint may take, answer included (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The HTTP client for the token source's own requests (discovery, login, refresh, logout).
    /// The default is hyper-util's HTTP/1 client over plain TCP; give one with TLS (such as a
    /// hyper-util client over `hyper-rustls`) for an `https://` server.
    pub fn http_client<S, RB>(mut self, client: S) -> Self
    where
        S: Service<Request<Full<Bytes>>, Response = Response<RB>> + Clone + Send + Sync + 'static,
        S::Future: Send,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        RB: Body + Send + 'static,
        RB::Data: Send,
        RB::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.transport = Some(Box::new(ServiceTransport(client)));
        self
    }

    /// The token source; [`ClientError::InvalidUrl`] for a URL that is not `http(s)://host…`
    /// or a path that does not begin with `/`, [`ClientError::WrongServer`] for state saved
    /// for another URL.
    pub fn build(self) -> Result<TokenSource, ClientError> {
        let (url, scheme, authority) = parse_base(&self.url)?;
        let endpoints = Endpoints {
            about: Endpoint::new(&Method::GET, &url, &self.about_path, "about")?,
            login: Endpoint::new(&Method::POST, &url, &self.login_path, "login")?,
            refresh: Endpoint::new(&Method::GET, &url, &self.refresh_path, "refresh")?,
            logout: Endpoint::new(&Method::POST, &url, &self.logout_path, "logout")?,
        };
        let transport = match self.transport {
            Some(t) => t,
            None => Box::new(default_transport()),
        };
        let source = TokenSource {
            shared: Arc::new(Shared {
                url,
                scheme,
                authority,
                credentials: ArcSwapOption::new(self.credentials.map(Arc::new)),
                ask: self.ask,
                discovery: self.discovery,
                endpoints,
                transport,
                margin: self.margin.as_secs(),
                timeout: self.timeout,
                tokens: ArcSwapOption::empty(),
                flight: tokio::sync::Mutex::new(Flight::default()),
                flights: AtomicU64::new(0),
                discovered: AtomicBool::new(false),
            }),
        };
        if let Some(state) = self.state {
            source.resume(state)?;
        }
        Ok(source)
    }
}

/// `scheme://authority/path` without a trailing slash, and its parts.
fn parse_base(url: &str) -> Result<(String, Scheme, Authority), ClientError> {
    let uri: Uri = url
        .parse()
        .map_err(|_| ClientError::InvalidUrl(format!("{url:?} is not a URL")))?;
    let scheme = uri
        .scheme()
        .filter(|s| **s == Scheme::HTTP || **s == Scheme::HTTPS)
        .cloned()
        .ok_or_else(|| ClientError::InvalidUrl(format!("{url:?} is not http:// or https://")))?;
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| ClientError::InvalidUrl(format!("{url:?} has no host")))?;
    if uri.query().is_some() || authority.as_str().contains('@') {
        return Err(ClientError::InvalidUrl(format!(
            "{url:?}: no query and no user info in the base URL"
        )));
    }
    let path = uri.path().trim_end_matches('/');
    Ok((format!("{scheme}://{authority}{path}"), scheme, authority))
}

#[derive(Serialize)]
struct LoginBody<'a> {
    username: &'a str,
    password: &'a str,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct AboutAnswer {
    auths: Vec<String>,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    details: Vec<String>,
}

impl TokenSource {
    /// A builder for the server whose API root is `url` (such as `http://127.0.0.1:8080`;
    /// the client requests `<url>/api`, `<url>/api/login`, … unless given other paths).
    pub fn builder(url: impl Into<String>) -> TokenSourceBuilder {
        TokenSourceBuilder {
            url: url.into(),
            credentials: None,
            ask: None,
            discovery: Discovery::default(),
            about_path: ABOUT_PATH.to_owned(),
            login_path: LOGIN_PATH.to_owned(),
            refresh_path: REFRESH_PATH.to_owned(),
            logout_path: LOGOUT_PATH.to_owned(),
            margin: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            transport: None,
            state: None,
        }
    }

    /// A token source logging in to `url` with a username and password.
    pub fn with_password(
        url: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Result<Self, ClientError> {
        Self::builder(url)
            .credentials(Credentials::password(username, password))
            .build()
    }

    /// The base URL, normalized (no trailing slash).
    pub fn url(&self) -> &str {
        &self.shared.url
    }

    /// Whether it can log in: it holds credentials, or a way to ask for them (a source resumed
    /// from state alone cannot).
    pub fn has_credentials(&self) -> bool {
        self.shared.credentials.load().is_some() || self.shared.ask.is_some()
    }

    /// [`LoginClientLayer`] attaching this source's access token to a tower client.
    pub fn layer(&self) -> LoginClientLayer {
        LoginClientLayer::new(self.clone())
    }

    /// A valid access token: the current one while it is fresh, else a refreshed one (or a new
    /// login, see the type's documentation). Present it as `Authorization: Bearer <token>`;
    /// when the server refuses it anyway (401), call [`reject`](Self::reject) and ask again.
    pub async fn access_token(&self) -> Result<String, ClientError> {
        Ok(self.fresh().await?.access.clone())
    }

    /// Marks `access_token` as refused by the server (a 401), so that the next
    /// [`access_token`](Self::access_token) refreshes. Does nothing if it is no longer current.
    pub fn reject(&self, access_token: &str) {
        if let Some(tokens) = &*self.shared.tokens.load()
            && tokens.access == access_token
        {
            tokens.rejected.store(true, Ordering::Release);
        }
    }

    /// Logs in now with the credentials (reading the about document first, once, unless
    /// [`Discovery::Off`]), replacing any tokens.
    pub async fn login(&self) -> Result<(), ClientError> {
        let mut flight = self.shared.flight.lock().await;
        let result = self.login_locked().await;
        self.finish(&mut flight, result).map(drop)
    }

    /// Refreshes now, whether or not the access token is stale: with the refresh token, or by
    /// logging in again when it is refused or expired (or when there are no tokens yet).
    pub async fn refresh(&self) -> Result<(), ClientError> {
        let mut flight = self.shared.flight.lock().await;
        let current = self.shared.tokens.load_full();
        let result = self.renew(current.as_deref()).await;
        self.finish(&mut flight, result).map(drop)
    }

    /// The current tokens as serializable state, or `None` before the first login.
    pub fn export(&self) -> Option<TokenState> {
        let tokens = self.shared.tokens.load_full()?;
        Some(TokenState {
            url: self.shared.url.clone(),
            access_token: tokens.access.clone(),
            refresh_token: tokens.refresh.clone(),
        })
    }

    /// Takes over saved state (no request is made; the tokens are used as they are and
    /// refreshed when stale). [`ClientError::WrongServer`] when it was saved for another URL.
    pub fn resume(&self, state: TokenState) -> Result<(), ClientError> {
        let (url, ..) = parse_base(&state.url)?;
        if url != self.shared.url {
            return Err(ClientError::WrongServer {
                expected: self.shared.url.clone(),
                found: url,
            });
        }
        let tokens = Tokens::new(state.access_token, state.refresh_token, self.shared.margin)
            .ok_or(ClientError::InvalidUrl(
                "the saved access token is not a valid header value".to_owned(),
            ))?;
        self.shared.tokens.store(Some(Arc::new(tokens)));
        Ok(())
    }

    /// Logs out: forgets the tokens and, when the server offers it, ends the session with
    /// `POST` to the logout path (`/api/logout` by default), presenting the access token (or the refresh token when the access
    /// token is stale). A `404` means the server has no logout. When the server cannot be
    /// reached or answers `5xx`, the tokens are kept and the error returned, so the call can be
    /// repeated.
    pub async fn logout(&self) -> Result<Logout, ClientError> {
        let _flight = self.shared.flight.lock().await;
        let Some(tokens) = self.shared.tokens.swap(None) else {
            return Ok(Logout::NoTokens);
        };
        let endpoint = &self.shared.endpoints.logout;
        let now = now_secs();
        let access = tokens
            .is_fresh(now)
            .then_some(tokens.access.as_str())
            .into_iter();
        for token in access.chain(tokens.usable_refresh(now)) {
            let req = Request::post(endpoint.uri.clone())
                .header(header::AUTHORIZATION, bearer(token, endpoint)?)
                .body(Full::default())
                .map_err(|_| invalid_request(endpoint))?;
            let answer = match self.send(endpoint, req).await {
                Ok(answer) => answer,
                Err(e) => {
                    self.restore(tokens);
                    return Err(e);
                }
            };
            match answer.status {
                StatusCode::NO_CONTENT | StatusCode::OK => {
                    tracing::debug!(url = %self.shared.url, "logged out");
                    return Ok(Logout::LoggedOut);
                }
                StatusCode::NOT_FOUND => return Ok(Logout::NotOffered),
                StatusCode::UNAUTHORIZED => continue,
                status => {
                    if status.is_server_error() {
                        self.restore(Arc::clone(&tokens));
                    }
                    return Err(status_error(
                        endpoint,
                        EXPECT_LOGOUT,
                        &answer,
                        &tokens.secrets(),
                    ));
                }
            }
        }
        Ok(Logout::Refused)
    }

    fn restore(&self, tokens: Arc<Tokens>) {
        if self.shared.tokens.load().is_none() {
            self.shared.tokens.store(Some(tokens));
        }
    }

    // ------------------------------------------------------------------ for the layer

    /// The current tokens if fresh: the layer's lock-free fast path.
    pub(crate) fn current_fresh(&self) -> Option<Arc<Tokens>> {
        match &*self.shared.tokens.load() {
            Some(tokens) if tokens.is_fresh(now_secs()) => Some(Arc::clone(tokens)),
            _ => None,
        }
    }

    /// Marks `tokens` refused (a 401), so the next caller refreshes.
    pub(crate) fn reject_tokens(&self, tokens: &Tokens) {
        tokens.rejected.store(true, Ordering::Release);
    }

    /// Whether a request to `uri` goes to this source's server (same scheme and authority; a
    /// URI without them counts as this server's).
    pub(crate) fn applies_to(&self, uri: &Uri) -> bool {
        uri.scheme().is_none_or(|s| *s == self.shared.scheme)
            && uri.authority().is_none_or(|a| *a == self.shared.authority)
    }

    /// Fresh tokens: the current ones, or the outcome of the one flight that renews them.
    pub(crate) async fn fresh(&self) -> Result<Arc<Tokens>, ClientError> {
        if let Some(tokens) = self.current_fresh() {
            return Ok(tokens);
        }
        let seen = self.shared.flights.load(Ordering::Acquire);
        let mut flight = self.shared.flight.lock().await;
        if let Some(tokens) = self.current_fresh() {
            return Ok(tokens);
        }
        if self.shared.flights.load(Ordering::Acquire) != seen {
            // A flight ended while we waited and left no fresh token: share its error rather
            // than repeat it (a refused login must not be retried by every waiting request).
            if let Some(e) = &flight.last_error {
                return Err(e.clone());
            }
        }
        let current = self.shared.tokens.load_full();
        let result = self.renew(current.as_deref()).await;
        self.finish(&mut flight, result)
    }

    fn finish(
        &self,
        flight: &mut Flight,
        result: Result<Arc<Tokens>, ClientError>,
    ) -> Result<Arc<Tokens>, ClientError> {
        flight.last_error = result.as_ref().err().cloned();
        self.shared.flights.fetch_add(1, Ordering::AcqRel);
        result
    }

    // ------------------------------------------------------------- the token endpoints

    /// Refresh with the refresh token if there is a usable one; log in when it is refused.
    /// Called with the flight lock held.
    async fn renew(&self, current: Option<&Tokens>) -> Result<Arc<Tokens>, ClientError> {
        if let Some(refresh) = current.and_then(|c| c.usable_refresh(now_secs())) {
            if let Some(tokens) = self.refresh_with(refresh).await? {
                return Ok(tokens);
            }
            tracing::debug!(url = %self.shared.url, "refresh token refused; logging in again");
        }
        self.login_locked().await
    }

    /// `GET <refresh path>`; `Ok(None)` when the refresh token is refused (401).
    async fn refresh_with(&self, refresh: &str) -> Result<Option<Arc<Tokens>>, ClientError> {
        let endpoint = &self.shared.endpoints.refresh;
        let req = Request::get(endpoint.uri.clone())
            .header(header::AUTHORIZATION, bearer(refresh, endpoint)?)
            .body(Full::default())
            .map_err(|_| invalid_request(endpoint))?;
        let answer = self.send(endpoint, req).await?;
        match answer.status {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED => return Ok(None),
            _ => return Err(status_error(endpoint, EXPECT_ACCESS, &answer, &[refresh])),
        }
        let parsed = token_answer(endpoint, EXPECT_ACCESS, &answer.body)?;
        // Rotation: a new refresh token replaces the old one at once.
        let rotated = parsed.refresh_token.is_some();
        let refresh = parsed.refresh_token.unwrap_or_else(|| refresh.to_owned());
        let tokens = self.install(parsed.access_token, Some(refresh), endpoint, EXPECT_ACCESS)?;
        tracing::debug!(url = %self.shared.url, rotated, "access token refreshed");
        Ok(Some(tokens))
    }

    /// The credentials to log in with: the ones held, else the ones `ask` gives.
    async fn credentials(&self) -> Result<Arc<Credentials>, ClientError> {
        if let Some(credentials) = self.shared.credentials.load_full() {
            return Ok(credentials);
        }
        let ask = self.shared.ask.as_ref().ok_or(ClientError::NoCredentials)?;
        let credentials =
            Arc::new(
                ask()
                    .await
                    .map_err(|source| ClientError::CredentialsUnavailable {
                        source: Arc::from(source),
                    })?,
            );
        self.shared
            .credentials
            .store(Some(Arc::clone(&credentials)));
        Ok(credentials)
    }

    /// Discovery (once per source), then `POST <login path>`. Called with the flight lock
    /// held.
    async fn login_locked(&self) -> Result<Arc<Tokens>, ClientError> {
        let credentials = self.credentials().await?;
        if !self.shared.discovered.load(Ordering::Acquire) {
            self.discover(&credentials).await?;
            self.shared.discovered.store(true, Ordering::Release);
        }
        let endpoint = &self.shared.endpoints.login;
        let builder = Request::post(endpoint.uri.clone());
        let req = match &credentials.0 {
            Kind::Password { username, password } => {
                let body = serde_json::to_vec(&LoginBody {
                    username,
                    password: password.as_str(),
                })
                .map_err(|_| invalid_request(endpoint))?;
                builder
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Full::new(Bytes::from(body)))
            }
            Kind::Auth0 { token: secret } | Kind::ApiKey { key: secret } => builder
                .header(header::AUTHORIZATION, bearer(secret, endpoint)?)
                .body(Full::default()),
        }
        .map_err(|_| invalid_request(endpoint))?;
        let answer = self.send(endpoint, req).await?;
        match answer.status {
            StatusCode::OK => {}
            StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED => {
                if self.shared.ask.is_some() {
                    // Refused: ask again at the next login.
                    self.shared.credentials.store(None);
                }
                return Err(ClientError::LoginRefused {
                    request: endpoint.request.clone(),
                    status: answer.status,
                    detail: detail(&answer, &[credentials.secret()]),
                });
            }
            _ => {
                return Err(status_error(
                    endpoint,
                    EXPECT_PAIR,
                    &answer,
                    &[credentials.secret()],
                ));
            }
        }
        let parsed = token_answer(endpoint, EXPECT_PAIR, &answer.body)?;
        let tokens = self.install(
            parsed.access_token,
            parsed.refresh_token,
            endpoint,
            EXPECT_PAIR,
        )?;
        tracing::debug!(url = %self.shared.url, "logged in");
        Ok(tokens)
    }

    /// Reads the about document as [`Discovery`] says, and refuses a server whose `auths` do
    /// not offer the credentials' login.
    async fn discover(&self, credentials: &Credentials) -> Result<(), ClientError> {
        let mode = self.shared.discovery;
        if mode == Discovery::Off {
            return Ok(());
        }
        let endpoint = &self.shared.endpoints.about;
        let req = Request::get(endpoint.uri.clone())
            .body(Full::default())
            .map_err(|_| invalid_request(endpoint))?;
        let answer = self.send(endpoint, req).await?;
        let about = (answer.status == StatusCode::OK)
            .then(|| serde_json::from_slice::<AboutAnswer>(&answer.body).ok())
            .flatten();
        let Some(about) = about else {
            if mode == Discovery::IfPresent {
                tracing::debug!(
                    url = %self.shared.url,
                    status = answer.status.as_u16(),
                    "no about document; logging in directly"
                );
                return Ok(());
            }
            return Err(ClientError::Discovery {
                request: endpoint.request.clone(),
                expected: EXPECT_ABOUT,
                status: answer.status,
                body: excerpt(&answer.body, &[]),
            });
        };
        let (wanted, offered) = match &credentials.0 {
            Kind::Password { .. } => (
                LOCAL_JWT.to_owned(),
                about.auths.iter().any(|a| a == LOCAL_JWT),
            ),
            Kind::Auth0 { token } => {
                // The tenant the token is for: `iss` is `https://<domain>/` (read unverified;
                // the server verifies). Without a readable `iss`, any Auth0 tenant will do.
                let domain = payload::peek(token)
                    .and_then(|p| p.iss)
                    .and_then(|iss| {
                        let rest = iss.strip_prefix("https://")?;
                        Some(rest.trim_end_matches('/').to_owned())
                    })
                    .filter(|d| !d.is_empty());
                let offered = about.auths.iter().any(|a| {
                    let mut fields = a.split(' ');
                    fields.next() == Some("auth0")
                        && domain
                            .as_deref()
                            .is_none_or(|d| fields.any(|f| f.strip_prefix("domain=") == Some(d)))
                });
                let wanted = match domain {
                    Some(d) => format!("auth0 domain={d}"),
                    None => "auth0".to_owned(),
                };
                (wanted, offered)
            }
            // The about document names no entry for API keys.
            Kind::ApiKey { .. } => (String::new(), true),
        };
        if offered {
            Ok(())
        } else {
            Err(ClientError::NotOffered {
                request: endpoint.request.clone(),
                wanted,
                offered: about.auths,
            })
        }
    }

    fn install(
        &self,
        access: String,
        refresh: Option<String>,
        endpoint: &Endpoint,
        expected: &'static str,
    ) -> Result<Arc<Tokens>, ClientError> {
        let tokens = Tokens::new(access, refresh, self.shared.margin).ok_or_else(|| {
            ClientError::InvalidResponse {
                request: endpoint.request.clone(),
                expected,
                reason: "an access token that is not a valid header value",
            }
        })?;
        let tokens = Arc::new(tokens);
        self.shared.tokens.store(Some(Arc::clone(&tokens)));
        Ok(tokens)
    }

    async fn send(
        &self,
        endpoint: &Endpoint,
        req: Request<Full<Bytes>>,
    ) -> Result<Answer, ClientError> {
        let sent = self.shared.transport.send(req, BODY_LIMIT);
        match tokio::time::timeout(self.shared.timeout, sent).await {
            Err(_) => Err(ClientError::Timeout {
                request: endpoint.request.clone(),
                after: self.shared.timeout,
            }),
            Ok(Err(source)) => Err(ClientError::Http {
                request: endpoint.request.clone(),
                source: Arc::from(source as BoxError),
            }),
            Ok(Ok(answer)) => Ok(answer),
        }
    }
}

fn bearer(token: &str, endpoint: &Endpoint) -> Result<HeaderValue, ClientError> {
    let mut value = HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| {
        ClientError::InvalidRequest {
            request: endpoint.request.clone(),
            reason: "a token or key is not a valid header value",
        }
    })?;
    value.set_sensitive(true);
    Ok(value)
}

fn invalid_request(endpoint: &Endpoint) -> ClientError {
    ClientError::InvalidRequest {
        request: endpoint.request.clone(),
        reason: "the request cannot be built",
    }
}

/// A `200` answer of the login or the refresh, read; what is wrong with it, else.
fn token_answer(
    endpoint: &Endpoint,
    expected: &'static str,
    body: &[u8],
) -> Result<TokenAnswer, ClientError> {
    serde_json::from_slice(body).map_err(|_| {
        let reason = if body.is_empty() {
            "an empty body"
        } else if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() {
            "a body that is not JSON"
        } else {
            "JSON without an \"access_token\" string"
        };
        ClientError::InvalidResponse {
            request: endpoint.request.clone(),
            expected,
            reason,
        }
    })
}

/// The §2 body's `details[0]`, else an excerpt of the body, else the reason phrase.
fn detail(answer: &Answer, secrets: &[&str]) -> String {
    let said = serde_json::from_slice::<ErrorAnswer>(&answer.body)
        .ok()
        .and_then(|e| e.details.into_iter().next())
        .map(|d| excerpt(d.as_bytes(), secrets))
        .unwrap_or_else(|| excerpt(&answer.body, secrets));
    if said.is_empty() {
        answer
            .status
            .canonical_reason()
            .unwrap_or("unexpected status")
            .to_owned()
    } else {
        said
    }
}

fn status_error(
    endpoint: &Endpoint,
    expected: &'static str,
    answer: &Answer,
    secrets: &[&str],
) -> ClientError {
    let retry_after = answer
        .headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    ClientError::Status {
        request: endpoint.request.clone(),
        expected,
        status: answer.status,
        detail: detail(answer, secrets),
        retry_after,
    }
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("url", &self.shared.url)
            .field("credentials", &self.shared.credentials.load().as_deref())
            .field("on_demand", &self.shared.ask.is_some())
            .field("discovery", &self.shared.discovery)
            .field(
                "tokens",
                &self.shared.tokens.load().as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}
