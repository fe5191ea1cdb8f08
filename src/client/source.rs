//! [`TokenSource`]: the login state of one client — credentials, base URL, tokens — and the
//! single-flight refresh behind it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::{HeaderValue, Request, Response, StatusCode, Uri, header};
use http_body::Body;
use http_body_util::Full;
use serde::{Deserialize, Serialize};
use tower_service::Service;
use zeroize::Zeroizing;

use super::error::ClientError;
use super::layer::LoginClientLayer;
use super::payload;
use super::transport::{Answer, BoxError, ServiceTransport, Transport, default_transport};
use crate::discovery::LOCAL_JWT;
use crate::token::now_secs;

const DISCOVERY: &str = "GET /api";
const LOGIN: &str = "POST /api/login";
const REFRESH: &str = "GET /api/login/refresh";
const LOGOUT: &str = "POST /api/logout";
/// The largest token-endpoint answer read (a token pair is well under 2 KiB).
const BODY_LIMIT: usize = 64 * 1024;

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
}

impl Credentials {
    /// A username and password: the `localjwt` login, `POST /api/login` with a JSON body
    /// (docs/protocol.md §1.1).
    pub fn password(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials(Kind::Password {
            username: username.into(),
            password: Zeroizing::new(password.into()),
        })
    }

    /// An Auth0 access token, exchanged for the server's own token pair by `POST /api/login`
    /// with `Authorization: Bearer <token>` (docs/protocol.md §5). When the refresh token runs
    /// out the client logs in with it again, which works while the Auth0 token is valid.
    pub fn auth0(access_token: impl Into<String>) -> Self {
        Credentials(Kind::Auth0 {
            token: Zeroizing::new(access_token.into()),
        })
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

/// What [`TokenSource::logout`] did. In every case the client has forgotten its tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Logout {
    /// `POST /api/logout` answered `204`: the server ended the session.
    LoggedOut,
    /// `POST /api/logout` answered `404`: the server has no logout (no sessions, like Core);
    /// the tokens stay valid on the server until they expire.
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
/// - The first login reads `GET /api` and refuses with [`ClientError::NotOffered`] when the
///   server's `auths` do not offer the credentials' login (`localjwt`, or an `auth0 …` entry
///   for the Auth0 token's domain).
/// - An access token is refreshed once the current time reaches its `exp` minus the refresh
///   margin (default 30 s, at most half the token's lifetime `exi`), read from the token's
///   payload without verifying it. A token whose payload cannot be read is used until the
///   server refuses it.
/// - Concurrent callers that find the token stale cause one refresh; the others wait for it and
///   share its outcome (success or error). No lock is held while the caller's own requests run.
/// - A refresh answer carrying `refresh_token` (rotation) replaces the refresh token at once.
/// - When the refresh token is refused or has expired, it logs in again with its credentials,
///   or fails with [`ClientError::NoCredentials`] when it has none (resumed from saved state).
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
    credentials: Option<Credentials>,
    transport: Box<dyn Transport>,
    margin: u64,
    timeout: Duration,
    tokens: ArcSwapOption<Tokens>,
    /// Held by the one task that refreshes or logs in.
    flight: tokio::sync::Mutex<Flight>,
    /// Flights completed so far; a waiter that sees it move shares that flight's outcome.
    flights: AtomicU64,
    /// `GET /api` has offered the credentials' login.
    discovered: AtomicBool,
}

#[derive(Default)]
struct Flight {
    last_error: Option<ClientError>,
}

/// Builds a [`TokenSource`] ([`TokenSource::builder`]).
pub struct TokenSourceBuilder {
    url: String,
    credentials: Option<Credentials>,
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

    /// The token source; [`ClientError::InvalidUrl`] for a URL that is not `http(s)://host…`,
    /// [`ClientError::WrongServer`] for state saved for another URL.
    pub fn build(self) -> Result<TokenSource, ClientError> {
        let (url, scheme, authority) = parse_base(&self.url)?;
        let transport = match self.transport {
            Some(t) => t,
            None => Box::new(default_transport()),
        };
        let source = TokenSource {
            shared: Arc::new(Shared {
                url,
                scheme,
                authority,
                credentials: self.credentials,
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
    /// the client requests `<url>/api`, `<url>/api/login`, …).
    pub fn builder(url: impl Into<String>) -> TokenSourceBuilder {
        TokenSourceBuilder {
            url: url.into(),
            credentials: None,
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

    /// Whether it holds credentials to log in with (a source resumed from state alone does not).
    pub fn has_credentials(&self) -> bool {
        self.shared.credentials.is_some()
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

    /// Logs in now with the credentials (reading `GET /api` first, once), replacing any tokens.
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
    /// `POST /api/logout`, presenting the access token (or the refresh token when the access
    /// token is stale). A `404` means the server has no logout. When the server cannot be
    /// reached or answers `5xx`, the tokens are kept and the error returned, so the call can be
    /// repeated.
    pub async fn logout(&self) -> Result<Logout, ClientError> {
        let _flight = self.shared.flight.lock().await;
        let Some(tokens) = self.shared.tokens.swap(None) else {
            return Ok(Logout::NoTokens);
        };
        let now = now_secs();
        let access = tokens
            .is_fresh(now)
            .then_some(tokens.access.as_str())
            .into_iter();
        for token in access.chain(tokens.usable_refresh(now)) {
            let req = Request::post(self.endpoint("/api/logout")?)
                .header(header::AUTHORIZATION, bearer(token, LOGOUT)?)
                .body(Full::default())
                .map_err(|_| invalid_request(LOGOUT))?;
            let answer = match self.send(LOGOUT, req).await {
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
                        self.restore(tokens);
                    }
                    return Err(status_error(LOGOUT, &answer));
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

    /// `GET /api/login/refresh`; `Ok(None)` when the refresh token is refused (401).
    async fn refresh_with(&self, refresh: &str) -> Result<Option<Arc<Tokens>>, ClientError> {
        let req = Request::get(self.endpoint("/api/login/refresh")?)
            .header(header::AUTHORIZATION, bearer(refresh, REFRESH)?)
            .body(Full::default())
            .map_err(|_| invalid_request(REFRESH))?;
        let answer = self.send(REFRESH, req).await?;
        match answer.status {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED => return Ok(None),
            _ => return Err(status_error(REFRESH, &answer)),
        }
        let parsed: TokenAnswer =
            serde_json::from_slice(&answer.body).map_err(|_| ClientError::InvalidResponse {
                endpoint: REFRESH,
                reason: "not {\"access_token\":…}",
            })?;
        // Rotation: a new refresh token replaces the old one at once.
        let rotated = parsed.refresh_token.is_some();
        let refresh = parsed.refresh_token.unwrap_or_else(|| refresh.to_owned());
        let tokens = self.install(parsed.access_token, Some(refresh), REFRESH)?;
        tracing::debug!(url = %self.shared.url, rotated, "access token refreshed");
        Ok(Some(tokens))
    }

    /// `GET /api` (once per source), then `POST /api/login`. Called with the flight lock held.
    async fn login_locked(&self) -> Result<Arc<Tokens>, ClientError> {
        let credentials = self
            .shared
            .credentials
            .as_ref()
            .ok_or(ClientError::NoCredentials)?;
        if !self.shared.discovered.load(Ordering::Acquire) {
            self.discover(credentials).await?;
            self.shared.discovered.store(true, Ordering::Release);
        }
        let builder = Request::post(self.endpoint("/api/login")?);
        let req = match &credentials.0 {
            Kind::Password { username, password } => {
                let body = serde_json::to_vec(&LoginBody {
                    username,
                    password: password.as_str(),
                })
                .map_err(|_| invalid_request(LOGIN))?;
                builder
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Full::new(Bytes::from(body)))
            }
            Kind::Auth0 { token } => builder
                .header(header::AUTHORIZATION, bearer(token, LOGIN)?)
                .body(Full::default()),
        }
        .map_err(|_| invalid_request(LOGIN))?;
        let answer = self.send(LOGIN, req).await?;
        match answer.status {
            StatusCode::OK => {}
            StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED => {
                return Err(ClientError::LoginRefused {
                    status: answer.status,
                    detail: detail(&answer),
                });
            }
            _ => return Err(status_error(LOGIN, &answer)),
        }
        let parsed: TokenAnswer =
            serde_json::from_slice(&answer.body).map_err(|_| ClientError::InvalidResponse {
                endpoint: LOGIN,
                reason: "not {\"access_token\":…,\"refresh_token\":…}",
            })?;
        let tokens = self.install(parsed.access_token, parsed.refresh_token, LOGIN)?;
        tracing::debug!(url = %self.shared.url, "logged in");
        Ok(tokens)
    }

    /// Refuses a server whose `auths` do not offer the credentials' login.
    async fn discover(&self, credentials: &Credentials) -> Result<(), ClientError> {
        let req = Request::get(self.endpoint("/api")?)
            .body(Full::default())
            .map_err(|_| invalid_request(DISCOVERY))?;
        let answer = self.send(DISCOVERY, req).await?;
        if answer.status != StatusCode::OK {
            return Err(ClientError::Discovery(format!(
                "it answered {}",
                answer.status.as_u16()
            )));
        }
        let about: AboutAnswer = serde_json::from_slice(&answer.body).map_err(|_| {
            ClientError::Discovery("the answer has no \"auths\" list of strings".to_owned())
        })?;
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
        };
        if offered {
            Ok(())
        } else {
            Err(ClientError::NotOffered {
                wanted,
                offered: about.auths,
            })
        }
    }

    fn install(
        &self,
        access: String,
        refresh: Option<String>,
        endpoint: &'static str,
    ) -> Result<Arc<Tokens>, ClientError> {
        let tokens = Tokens::new(access, refresh, self.shared.margin).ok_or(
            ClientError::InvalidResponse {
                endpoint,
                reason: "the access token is not a valid header value",
            },
        )?;
        let tokens = Arc::new(tokens);
        self.shared.tokens.store(Some(Arc::clone(&tokens)));
        Ok(tokens)
    }

    fn endpoint(&self, path: &str) -> Result<Uri, ClientError> {
        format!("{}{path}", self.shared.url)
            .parse()
            .map_err(|_| ClientError::InvalidUrl(format!("{}{path}", self.shared.url)))
    }

    async fn send(
        &self,
        endpoint: &'static str,
        req: Request<Full<Bytes>>,
    ) -> Result<Answer, ClientError> {
        let sent = self.shared.transport.send(req, BODY_LIMIT);
        match tokio::time::timeout(self.shared.timeout, sent).await {
            Err(_) => Err(ClientError::Timeout { endpoint }),
            Ok(Err(source)) => Err(ClientError::Http {
                endpoint,
                source: Arc::from(source as BoxError),
            }),
            Ok(Ok(answer)) => Ok(answer),
        }
    }
}

fn bearer(token: &str, endpoint: &'static str) -> Result<HeaderValue, ClientError> {
    let mut value = HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| {
        ClientError::InvalidResponse {
            endpoint,
            reason: "a token is not a valid header value",
        }
    })?;
    value.set_sensitive(true);
    Ok(value)
}

fn invalid_request(endpoint: &'static str) -> ClientError {
    ClientError::InvalidUrl(format!("cannot build the request {endpoint}"))
}

/// The §2 body's `details[0]`, else the reason phrase.
fn detail(answer: &Answer) -> String {
    serde_json::from_slice::<ErrorAnswer>(&answer.body)
        .ok()
        .and_then(|e| e.details.into_iter().next())
        .unwrap_or_else(|| {
            answer
                .status
                .canonical_reason()
                .unwrap_or("unexpected status")
                .to_owned()
        })
}

fn status_error(endpoint: &'static str, answer: &Answer) -> ClientError {
    let retry_after = answer
        .headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    ClientError::Status {
        endpoint,
        status: answer.status,
        detail: detail(answer),
        retry_after,
    }
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("url", &self.shared.url)
            .field("credentials", &self.shared.credentials)
            .field(
                "tokens",
                &self.shared.tokens.load().as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}
