//! Sessions (opt-in): logout, revocation, and refresh-token rotation with reuse detection.
//!
//! Without a session store the crate is stateless, exactly as Core: no extra claim, no network
//! call. With one, a login starts a session and both tokens carry its id in a `sid` claim; the
//! [`SessionStore`] holds what a session is (subject, the `jti` of its current refresh token)
//! and ends sessions (logout, "log this user out everywhere", reuse of a spent refresh token).
//! The layer never asks the store: it reads the store's local [`Revocations`] set, which the
//! store keeps current (the Redis store across a whole fleet, through pub/sub).
//!
//! A user sees its own live sessions and ends one of them through [`SessionsService`]
//! (`GET /api/v3/auth/sessions`, `DELETE /api/v3/auth/sessions/{id}`; served by the
//! [`LoginKit`](crate::kit::LoginKit) whenever it has sessions), which asks
//! [`SessionStore::list`] and [`SessionStore::end_session`].
//!
//! Two stores come with the crate: [`MemorySessionStore`] (one instance) and, with the `redis`
//! feature, `RedisSessionStore` (a fleet sharing one Redis). Both keep at most 100 live sessions
//! per subject by default (`max_sessions_per_subject`): a login beyond that ends the subject's
//! oldest session.
//!
//! # A login racing "log out everywhere"
//!
//! A login reads the subject's "not before" ([`Revocations::not_before_millis`]) *before* it
//! checks the credentials, and starts its session with it ([`NewSession::seen_not_before`]).
//! The store refuses the start ([`StartVerdict::Refused`]) when the subject was logged out
//! everywhere since — on the store's own clock, to the millisecond — and refuses to refresh a
//! session started before its subject's latest "not before". So a login whose password was
//! checked before a password change (and its `end_all`) never yields a working session; the
//! [`LoginService`](crate::login::LoginService) then checks the credentials once more.
//!
//! ```
//! use std::time::Duration;
//! use tower_jwt_login::session::{
//!     MemorySessionStore, NewSession, RefreshVerdict, Rotation, SessionStore, StartVerdict,
//!     new_session_id,
//! };
//! use tower_jwt_login::{Grant, JwtConfig, JwtKey, TokenUse};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let jwt = JwtConfig::new(JwtKey::from_secret("a secret of at least 32 random bytes!!").unwrap())
//!     .build()
//!     .unwrap();
//! let store = MemorySessionStore::new(&jwt);
//!
//! // Login: read the subject's "not before" first, check the credentials, mint tokens for a new
//! // session, start it.
//! let seen = store.revocations().not_before_millis("alice");
//! let sid = new_session_id();
//! let issued = jwt.issue(&Grant::new("alice").session(&sid));
//! let refresh_exp = jwt.verify(&issued.tokens.refresh_token, TokenUse::Refresh).unwrap().expires_at();
//! let session = NewSession::new(&sid, "alice", &issued.refresh_jti, refresh_exp).seen_not_before(seen);
//! let verdict = store.start(session).await.unwrap();
//! assert_eq!(verdict, StartVerdict::Started { evicted: Vec::new() });
//!
//! // Refresh with rotation: the presented refresh token is spent, its successor is current.
//! let next = jwt.issue(&Grant::new("alice").session(&sid));
//! let rotation = Rotation::new(&next.refresh_jti, refresh_exp, Duration::ZERO);
//! let verdict = store.refresh(&sid, "alice", &issued.refresh_jti, Some(rotation)).await.unwrap();
//! assert_eq!(verdict, RefreshVerdict::Rotated);
//!
//! // The spent token again: reuse, the whole session ends.
//! let again = jwt.issue(&Grant::new("alice").session(&sid));
//! let rotation = Rotation::new(&again.refresh_jti, refresh_exp, Duration::ZERO);
//! let verdict = store.refresh(&sid, "alice", &issued.refresh_jti, Some(rotation)).await.unwrap();
//! assert_eq!(verdict, RefreshVerdict::Reused);
//! let access = jwt.verify(&next.tokens.access_token, TokenUse::Access).unwrap();
//! assert!(store.revocations().is_revoked(&access));
//!
//! // "Log this user out everywhere" (after a password change, a disabled account, …).
//! store.end_all("alice").await.unwrap();
//!
//! // A login that read the "not before" before that is refused: its credentials were checked
//! // before the password change.
//! let sid = new_session_id();
//! let late = jwt.issue(&Grant::new("alice").session(&sid));
//! let session = NewSession::new(&sid, "alice", &late.refresh_jti, refresh_exp).seen_not_before(seen);
//! let verdict = store.start(session).await.unwrap();
//! assert!(matches!(verdict, StartVerdict::Refused { .. }));
//! # });
//! ```

mod memory;
#[cfg(feature = "redis")]
pub(crate) mod redis;
mod revocations;
mod service;

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub use memory::MemorySessionStore;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::RedisSessionStore;
pub use revocations::Revocations;
pub use service::{SESSION_NOT_FOUND_DETAIL, SESSIONS_UNSUPPORTED_DETAIL, SessionsService};

pub use crate::error::SessionError;

use crate::token::fill_random;

/// A new session id: 128 random bits, base64url without padding (22 characters).
///
/// ```
/// let sid = tower_jwt_login::session::new_session_id();
/// assert_eq!(sid.len(), 22);
/// assert!(sid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
/// ```
pub fn new_session_id() -> String {
    let mut random = [0u8; 16];
    fill_random(&mut random);
    URL_SAFE_NO_PAD.encode(random)
}

/// The store's answer to a refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshVerdict {
    /// The session is live and the token current (no rotation asked): issue an access token.
    Live,
    /// The presented token was spent and the successor is now current: issue the successor.
    Rotated,
    /// The presented token had been spent already (beyond the grace): the whole session has been
    /// ended and revoked on every instance. Refuse.
    Reused,
    /// The session is unknown, ended or expired. Refuse.
    Ended,
}

/// A session to start ([`SessionStore::start`]): its id, subject, the `jti` and `exp` of its
/// refresh token, and the subject's "not before" the login saw before it checked the
/// credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewSession<'a> {
    sid: &'a str,
    subject: &'a str,
    refresh_jti: &'a str,
    expires_at: u64,
    seen_not_before: Option<u64>,
    client: Option<IpAddr>,
    user_agent: Option<&'a str>,
    api_key: Option<KeyTag<'a>>,
}

/// The API key a session was started with (an exchange at the login route, see
/// [`crate::apikey`]): revoking the key ends the session ([`SessionStore::end_by_key`]), and
/// the owner's session list names the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyTag<'a> {
    /// The key's id.
    pub id: &'a str,
    /// The key's name.
    pub name: &'a str,
}

impl<'a> NewSession<'a> {
    /// Session `sid` of `subject` whose current refresh token has `refresh_jti` and expires at
    /// `expires_at` (Unix seconds; the session lives until then). No "not before" seen: give the
    /// one read before the credentials were checked with
    /// [`seen_not_before`](Self::seen_not_before), or the start is refused whenever the subject
    /// has one.
    pub fn new(sid: &'a str, subject: &'a str, refresh_jti: &'a str, expires_at: u64) -> Self {
        NewSession {
            sid,
            subject,
            refresh_jti,
            expires_at,
            seen_not_before: None,
            client: None,
            user_agent: None,
            api_key: None,
        }
    }

    /// The client address the login came from (for the owner's session list).
    #[must_use]
    pub fn client(mut self, client: Option<IpAddr>) -> Self {
        self.client = client;
        self
    }

    /// The login's `User-Agent` (for the owner's session list; the store may shorten it).
    #[must_use]
    pub fn user_agent(mut self, user_agent: Option<&'a str>) -> Self {
        self.user_agent = user_agent;
        self
    }

    /// The API key the session was started with.
    #[must_use]
    pub fn api_key(mut self, key: Option<KeyTag<'a>>) -> Self {
        self.api_key = key;
        self
    }

    /// The client address of the login, if known.
    pub fn client_addr(&self) -> Option<IpAddr> {
        self.client
    }

    /// The login's `User-Agent`, if sent.
    pub fn user_agent_str(&self) -> Option<&'a str> {
        self.user_agent
    }

    /// The API key of the session, if it was started with one.
    pub fn api_key_tag(&self) -> Option<KeyTag<'a>> {
        self.api_key
    }

    /// The subject's "not before" ([`Revocations::not_before_millis`], milliseconds on the
    /// store's clock) as read *before* the login checked the credentials. The store refuses the
    /// start when the subject's "not before" is later than this: the subject was logged out
    /// everywhere while the login was under way.
    #[must_use]
    pub fn seen_not_before(mut self, millis: Option<u64>) -> Self {
        self.seen_not_before = millis;
        self
    }

    /// The session id.
    pub fn sid(&self) -> &'a str {
        self.sid
    }

    /// The subject.
    pub fn subject(&self) -> &'a str {
        self.subject
    }

    /// The `jti` of the session's refresh token.
    pub fn refresh_jti(&self) -> &'a str {
        self.refresh_jti
    }

    /// The `exp` of the session's refresh token.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// The "not before" the login saw (milliseconds), if any.
    pub fn not_before_seen(&self) -> Option<u64> {
        self.seen_not_before
    }
}

/// The store's answer to [`SessionStore::start`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartVerdict {
    /// The session is live. `evicted` holds the sessions of the same subject ended to keep it
    /// within the store's limit (the oldest first): each is revoked like a logout.
    Started {
        /// The session ids ended to make room.
        evicted: Vec<String>,
    },
    /// No session was started: the subject was logged out everywhere after the "not before"
    /// the login had seen. `not_before` is the store's current one (milliseconds): check the
    /// credentials again and start with it as seen, or refuse the login.
    Refused {
        /// The subject's current "not before", milliseconds on the store's clock.
        not_before: u64,
    },
}

/// A rotation asked of [`SessionStore::refresh`]: the refresh token minted as the successor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation<'a> {
    successor_jti: &'a str,
    expires_at: u64,
    grace: Duration,
}

impl<'a> Rotation<'a> {
    /// The successor's `jti` and `exp` (Unix seconds; the session then lives until then), and
    /// the grace: how long after spending a token presenting it again still rotates (a client
    /// retrying a refresh whose answer was lost) instead of counting as reuse. `Duration::ZERO`
    /// (the default of the services) makes every second presentation a reuse.
    pub fn new(successor_jti: &'a str, expires_at: u64, grace: Duration) -> Self {
        Rotation {
            successor_jti,
            expires_at,
            grace,
        }
    }

    /// The successor's `jti`.
    pub fn successor_jti(&self) -> &'a str {
        self.successor_jti
    }

    /// The successor's `exp`.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// The reuse grace.
    pub fn grace(&self) -> Duration {
        self.grace
    }
}

/// Where sessions live. Native `async fn` in traits: implement it with `async fn start(...)`.
///
/// Every state change must be atomic with respect to other instances sharing the store: two
/// refreshes with the same token at the same moment yield at most one [`RefreshVerdict::Rotated`];
/// a start racing [`end_all`](SessionStore::end_all) either is ended by it or is refused
/// ([`StartVerdict::Refused`]). Entries must not outlive what they track (a session expires
/// with its newest refresh token; a revocation once no access token it could refuse is valid —
/// refresh tokens are always checked in the store).
///
/// ```
/// use std::sync::Mutex;
/// use std::collections::HashMap;
/// use tower_jwt_login::session::{
///     NewSession, RefreshVerdict, Revocations, Rotation, SessionError, SessionStore, StartVerdict,
/// };
///
/// /// Sessions without rotation, limits or revocation sync: a sketch of the contract.
/// #[derive(Default)]
/// struct Sketch {
///     /// sid -> (subject, refresh jti)
///     sessions: Mutex<HashMap<String, (String, String)>>,
///     revocations: Revocations,
/// }
///
/// impl SessionStore for Sketch {
///     async fn start(&self, session: NewSession<'_>) -> Result<StartVerdict, SessionError> {
///         let mut sessions = self.sessions.lock().unwrap();
///         // Logged out everywhere while this login was under way: refuse.
///         if let Some(not_before) = self.revocations.not_before_millis(session.subject())
///             && Some(not_before) > session.not_before_seen()
///         {
///             return Ok(StartVerdict::Refused { not_before });
///         }
///         let value = (session.subject().to_owned(), session.refresh_jti().to_owned());
///         sessions.insert(session.sid().to_owned(), value);
///         Ok(StartVerdict::Started { evicted: Vec::new() })
///     }
///     async fn refresh(&self, sid: &str, subject: &str, jti: &str, rotation: Option<Rotation<'_>>) -> Result<RefreshVerdict, SessionError> {
///         let sessions = self.sessions.lock().unwrap();
///         Ok(match (sessions.get(sid), rotation) {
///             (Some((s, j)), None) if s == subject && j == jti => RefreshVerdict::Live,
///             _ => RefreshVerdict::Ended,
///         })
///     }
///     async fn end(&self, sid: &str) -> Result<(), SessionError> {
///         self.sessions.lock().unwrap().remove(sid);
///         self.revocations.revoke_session(sid, u64::MAX);
///         Ok(())
///     }
///     async fn end_all(&self, subject: &str) -> Result<(), SessionError> {
///         let mut sessions = self.sessions.lock().unwrap();
///         sessions.retain(|sid, (s, _)| {
///             if s == subject { self.revocations.revoke_session(sid, u64::MAX); }
///             s != subject
///         });
///         let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
///         self.revocations.revoke_subject_before(subject, now.as_secs(), u64::MAX);
///         Ok(())
///     }
///     fn revocations(&self) -> &Revocations {
///         &self.revocations
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = Sketch::default();
/// let seen = store.revocations().not_before_millis("alice");
/// let verdict = store.start(NewSession::new("s1", "alice", "j1", u64::MAX).seen_not_before(seen));
/// assert_eq!(verdict.await.unwrap(), StartVerdict::Started { evicted: Vec::new() });
/// assert_eq!(store.refresh("s1", "alice", "j1", None).await.unwrap(), RefreshVerdict::Live);
/// store.end("s1").await.unwrap();
/// assert!(store.revocations().is_session_revoked("s1"));
/// # });
/// ```
pub trait SessionStore: Send + Sync + 'static {
    /// Starts `session`, unless its subject was logged out everywhere after the "not before"
    /// the login saw ([`NewSession::seen_not_before`]; then [`StartVerdict::Refused`]). A store
    /// with a per-subject limit ends the subject's oldest sessions to make room and says which
    /// ([`StartVerdict::Started`]). One round trip for a remote store.
    fn start(
        &self,
        session: NewSession<'_>,
    ) -> impl Future<Output = Result<StartVerdict, SessionError>> + Send;

    /// A refresh with the token `presented_jti` of session `sid`: without `rotation`, whether the
    /// session is live and the token current ([`RefreshVerdict::Live`]); with it, spends the
    /// token and makes the successor current ([`RefreshVerdict::Rotated`]). A spent token beyond
    /// the grace ends the session ([`RefreshVerdict::Reused`]); a session started before its
    /// subject's latest "not before" is [`RefreshVerdict::Ended`]. One round trip for a remote
    /// store.
    fn refresh(
        &self,
        sid: &str,
        subject: &str,
        presented_jti: &str,
        rotation: Option<Rotation<'_>>,
    ) -> impl Future<Output = Result<RefreshVerdict, SessionError>> + Send;

    /// Ends session `sid` (logout): its refresh token stops working at once, its access tokens
    /// are refused by every instance's [`Revocations`]. Ending an unknown session revokes it
    /// all the same.
    fn end(&self, sid: &str) -> impl Future<Output = Result<(), SessionError>> + Send;

    /// Ends every session of `subject` and refuses every token issued to it before now: "log this
    /// user out everywhere", e.g. after a password change or when an admin disables a user. Its
    /// "not before" (see [`Revocations::not_before_millis`]) is set to now, so that a login
    /// under way is refused at its start.
    fn end_all(&self, subject: &str) -> impl Future<Output = Result<(), SessionError>> + Send;

    /// The local revocation set this store keeps current; hand it to
    /// [`JwtAuthLayer::revocations`](crate::auth::JwtAuthLayer::revocations).
    fn revocations(&self) -> &Revocations;

    /// The live sessions of `subject`, oldest first (the owner's session list). One round trip
    /// for a remote store, through a per-subject index: never a scan of the whole store. The
    /// default answers [`SessionError::Unsupported`].
    fn list(
        &self,
        subject: &str,
    ) -> impl Future<Output = Result<Vec<SessionInfo>, SessionError>> + Send {
        let _ = subject;
        async { Err(SessionError::Unsupported) }
    }

    /// Ends session `sid` if it is a live session of `subject` (`true`); `false` (nothing
    /// ended) for another subject's session or an unknown one. The default lists, then ends.
    fn end_session(
        &self,
        subject: &str,
        sid: &str,
    ) -> impl Future<Output = Result<bool, SessionError>> + Send {
        async move {
            let live = self.list(subject).await?;
            if !live.iter().any(|s| s.sid == sid) {
                return Ok(false);
            }
            self.end(sid).await?;
            Ok(true)
        }
    }

    /// Ends every live session of `subject` started with the API key `key_id` (the key was
    /// revoked); how many. The default lists, then ends each.
    fn end_by_key(
        &self,
        subject: &str,
        key_id: &str,
    ) -> impl Future<Output = Result<usize, SessionError>> + Send {
        async move {
            let live = self.list(subject).await?;
            let mut ended = 0;
            for session in live
                .iter()
                .filter(|s| s.api_key.as_ref().is_some_and(|k| k.id == key_id))
            {
                self.end(&session.sid).await?;
                ended += 1;
            }
            Ok(ended)
        }
    }
}

/// One live session, as its owner sees it ([`SessionStore::list`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session id (the `sid` claim of its tokens).
    pub sid: String,
    /// When the session started (login), Unix seconds.
    pub created_at: u64,
    /// When its refresh token was last used, Unix seconds (`None`: never refreshed).
    pub refreshed_at: Option<u64>,
    /// When it ends unless refreshed (its refresh token's `exp`), Unix seconds.
    pub expires_at: u64,
    /// The client address of the login, if known.
    pub client: Option<IpAddr>,
    /// The login's `User-Agent`, if sent.
    pub user_agent: Option<String>,
    /// The API key it was started with.
    pub api_key: Option<SessionKey>,
}

/// The API key of a listed session ([`SessionInfo::api_key`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionKey {
    /// The key's id.
    pub id: String,
    /// The key's name.
    pub name: String,
}

/// How long a revocation must be kept: until no access token it could refuse is valid any more
/// (the access-token lifetime, plus a minute for a token minted while the session ended and for
/// clocks that disagree a little). Refresh tokens need none: a refresh is always checked in the
/// store, where the session is gone.
pub(crate) fn retention(jwt: &crate::Jwt) -> u64 {
    jwt.access_ttl().saturating_add(60)
}

/// The default of `max_sessions_per_subject`.
pub(crate) const DEFAULT_MAX_SESSIONS: usize = 100;

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`SessionStore`] made object-safe, so the services can hold any store without a type
/// parameter.
trait DynSessionStore: Send + Sync + 'static {
    fn start<'a>(
        &'a self,
        session: NewSession<'a>,
    ) -> BoxFuture<'a, Result<StartVerdict, SessionError>>;
    fn refresh<'a>(
        &'a self,
        sid: &'a str,
        subject: &'a str,
        presented_jti: &'a str,
        rotation: Option<Rotation<'a>>,
    ) -> BoxFuture<'a, Result<RefreshVerdict, SessionError>>;
    fn end<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Result<(), SessionError>>;
    fn end_all<'a>(&'a self, subject: &'a str) -> BoxFuture<'a, Result<(), SessionError>>;
    fn revocations(&self) -> &Revocations;
    fn list<'a>(
        &'a self,
        subject: &'a str,
    ) -> BoxFuture<'a, Result<Vec<SessionInfo>, SessionError>>;
    fn end_session<'a>(
        &'a self,
        subject: &'a str,
        sid: &'a str,
    ) -> BoxFuture<'a, Result<bool, SessionError>>;
    fn end_by_key<'a>(
        &'a self,
        subject: &'a str,
        key_id: &'a str,
    ) -> BoxFuture<'a, Result<usize, SessionError>>;
}

impl<S: SessionStore> DynSessionStore for S {
    fn start<'a>(
        &'a self,
        session: NewSession<'a>,
    ) -> BoxFuture<'a, Result<StartVerdict, SessionError>> {
        Box::pin(SessionStore::start(self, session))
    }
    fn refresh<'a>(
        &'a self,
        sid: &'a str,
        subject: &'a str,
        presented_jti: &'a str,
        rotation: Option<Rotation<'a>>,
    ) -> BoxFuture<'a, Result<RefreshVerdict, SessionError>> {
        Box::pin(SessionStore::refresh(
            self,
            sid,
            subject,
            presented_jti,
            rotation,
        ))
    }
    fn end<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Result<(), SessionError>> {
        Box::pin(SessionStore::end(self, sid))
    }
    fn end_all<'a>(&'a self, subject: &'a str) -> BoxFuture<'a, Result<(), SessionError>> {
        Box::pin(SessionStore::end_all(self, subject))
    }
    fn revocations(&self) -> &Revocations {
        SessionStore::revocations(self)
    }
    fn list<'a>(
        &'a self,
        subject: &'a str,
    ) -> BoxFuture<'a, Result<Vec<SessionInfo>, SessionError>> {
        Box::pin(SessionStore::list(self, subject))
    }
    fn end_session<'a>(
        &'a self,
        subject: &'a str,
        sid: &'a str,
    ) -> BoxFuture<'a, Result<bool, SessionError>> {
        Box::pin(SessionStore::end_session(self, subject, sid))
    }
    fn end_by_key<'a>(
        &'a self,
        subject: &'a str,
        key_id: &'a str,
    ) -> BoxFuture<'a, Result<usize, SessionError>> {
        Box::pin(SessionStore::end_by_key(self, subject, key_id))
    }
}

/// A [`SessionStore`] that can also count the login throttle's failures for the whole fleet, in
/// the backend the sessions live in (`RedisSessionStore` does, in its Redis; feature `redis`).
/// Give such a store with [`Sessions::with_fleet`]; [`Sessions::fleet_throttle`] then hands the
/// throttle to it.
///
/// A Redis-backed store of your own opts in with `LoginThrottle::fleet` on its
/// `RedisConnection` (feature `redis`):
///
/// ```
/// # #[cfg(feature = "redis")]
/// # mod example {
/// use tower_jwt_login::session::{FleetThrottling, RedisSessionStore, SessionStore, Sessions};
/// use tower_jwt_login::throttle::LoginThrottle;
/// # use tower_jwt_login::session::{NewSession, RefreshVerdict, Revocations, Rotation};
/// # use tower_jwt_login::session::{SessionError, StartVerdict};
///
/// /// The app's own store: Redis sessions with its own bookkeeping around them.
/// pub struct AuditedStore {
///     inner: RedisSessionStore,
/// }
///
/// # impl SessionStore for AuditedStore {
/// #     fn revocations(&self) -> &Revocations { self.inner.revocations() }
/// #     async fn start(&self, s: NewSession<'_>) -> Result<StartVerdict, SessionError> {
/// #         self.inner.start(s).await
/// #     }
/// #     async fn refresh(
/// #         &self, sid: &str, sub: &str, jti: &str, rotation: Option<Rotation<'_>>,
/// #     ) -> Result<RefreshVerdict, SessionError> {
/// #         self.inner.refresh(sid, sub, jti, rotation).await
/// #     }
/// #     async fn end(&self, sid: &str) -> Result<(), SessionError> { self.inner.end(sid).await }
/// #     async fn end_all(&self, sub: &str) -> Result<(), SessionError> {
/// #         self.inner.end_all(sub).await
/// #     }
/// # }
/// impl FleetThrottling for AuditedStore {
///     fn fleet_throttle(&self, throttle: LoginThrottle, account_key: &[u8]) -> LoginThrottle {
///         throttle.fleet(self.inner.connection().clone(), account_key)
///     }
/// }
///
/// pub fn sessions(store: AuditedStore) -> Sessions {
///     Sessions::with_fleet(store)
/// }
/// # }
/// ```
pub trait FleetThrottling: SessionStore {
    /// `throttle`, counting in this store's backend so that its limits hold for the whole
    /// fleet. Account names are keyed with `account_key` (every instance gives the same).
    fn fleet_throttle(
        &self,
        throttle: crate::throttle::LoginThrottle,
        account_key: &[u8],
    ) -> crate::throttle::LoginThrottle;
}

/// [`FleetThrottling::fleet_throttle`] of the store a [`Sessions`] was built with.
type FleetFn =
    dyn Fn(crate::throttle::LoginThrottle, &[u8]) -> crate::throttle::LoginThrottle + Send + Sync;

/// A shared handle on a [`SessionStore`], as the login, refresh and logout services hold it.
/// Cheap to clone. Built from any store with [`Sessions::new`] (or `.into()`), or with
/// [`Sessions::with_fleet`] from a store that also counts login failures for the fleet
/// (`RedisSessionStore`).
///
/// It also carries the `Retry-After` (seconds, default 5) of the `503` answered while the store
/// cannot be reached.
///
/// ```
/// use tower_jwt_login::session::{MemorySessionStore, Sessions};
/// use tower_jwt_login::{JwtConfig, JwtKey};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let jwt = JwtConfig::new(JwtKey::from_secret("a secret of at least 32 random bytes!!").unwrap())
///     .build()
///     .unwrap();
/// let sessions = Sessions::new(MemorySessionStore::new(&jwt));
/// // The app's hook: "log this user out everywhere" (password changed, account disabled).
/// sessions.end_all("alice").await.unwrap();
/// assert_eq!(sessions.revocations().not_before("alice").is_some(), true);
/// # });
/// ```
#[derive(Clone)]
pub struct Sessions {
    store: std::sync::Arc<dyn DynSessionStore>,
    retry_after: u64,
    /// The store's fleet counting, when it was given with [`Sessions::with_fleet`].
    fleet: Option<std::sync::Arc<FleetFn>>,
}

impl Sessions {
    /// A handle on `store`. The login throttle counts locally
    /// ([`fleet_throttle`](Self::fleet_throttle) leaves it unchanged).
    pub fn new<S: SessionStore>(store: S) -> Self {
        Sessions {
            store: std::sync::Arc::new(store),
            retry_after: 5,
            fleet: None,
        }
    }

    /// A handle on `store`, which also counts the login throttle's failures for the whole
    /// fleet ([`fleet_throttle`](Self::fleet_throttle)): what a `RedisSessionStore` is given
    /// with.
    pub fn with_fleet<S: FleetThrottling>(store: S) -> Self {
        let store = std::sync::Arc::new(store);
        let counter = std::sync::Arc::clone(&store);
        Sessions {
            store,
            retry_after: 5,
            fleet: Some(std::sync::Arc::new(
                move |throttle: crate::throttle::LoginThrottle, account_key: &[u8]| {
                    counter.fleet_throttle(throttle, account_key)
                },
            )),
        }
    }

    /// `throttle`, counting in the store's backend when the store was given with
    /// [`Sessions::with_fleet`] (so its limits hold for the whole fleet; see
    /// [`FleetThrottling`]), unchanged otherwise. Account names are keyed with `account_key`
    /// (give every instance the same, e.g. the JWT secret).
    pub fn fleet_throttle(
        &self,
        throttle: crate::throttle::LoginThrottle,
        account_key: &[u8],
    ) -> crate::throttle::LoginThrottle {
        match &self.fleet {
            Some(fleet) => fleet(throttle, account_key),
            None => throttle,
        }
    }

    /// The `Retry-After` of the `503` while the store is unreachable (default 5 s; at least 1).
    #[must_use]
    pub fn retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = retry_after.as_secs().max(1);
        self
    }

    /// The configured `Retry-After`, in seconds.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after
    }

    /// The store's local revocation set (for
    /// [`JwtAuthLayer::revocations`](crate::auth::JwtAuthLayer::revocations)).
    pub fn revocations(&self) -> Revocations {
        self.store.revocations().clone()
    }

    /// See [`SessionStore::start`].
    pub async fn start(&self, session: NewSession<'_>) -> Result<StartVerdict, SessionError> {
        self.store.start(session).await
    }

    /// The revocation set as it is now, to read a subject's "not before" from later (a login
    /// takes it before checking the credentials, when the subject is not known yet).
    pub(crate) fn snapshot(&self) -> SeenSnapshot {
        let revocations = self.store.revocations();
        SeenSnapshot {
            snapshot: revocations.snapshot(),
            revocations: revocations.clone(),
        }
    }

    /// See [`SessionStore::refresh`].
    pub async fn refresh(
        &self,
        sid: &str,
        subject: &str,
        presented_jti: &str,
        rotation: Option<Rotation<'_>>,
    ) -> Result<RefreshVerdict, SessionError> {
        self.store
            .refresh(sid, subject, presented_jti, rotation)
            .await
    }

    /// Ends one session (logout). See [`SessionStore::end`].
    pub async fn end(&self, sid: &str) -> Result<(), SessionError> {
        self.store.end(sid).await
    }

    /// Logs `subject` out everywhere: every session ends on every instance, and every token
    /// issued to it before now is refused. Call it after a password change, or when an admin
    /// disables a user. See [`SessionStore::end_all`].
    pub async fn end_all(&self, subject: &str) -> Result<(), SessionError> {
        self.store.end_all(subject).await
    }

    /// The live sessions of `subject`. See [`SessionStore::list`].
    pub async fn list(&self, subject: &str) -> Result<Vec<SessionInfo>, SessionError> {
        self.store.list(subject).await
    }

    /// Ends `subject`'s session `sid` (`false`: not one of its live sessions). See
    /// [`SessionStore::end_session`].
    pub async fn end_session(&self, subject: &str, sid: &str) -> Result<bool, SessionError> {
        self.store.end_session(subject, sid).await
    }

    /// Ends `subject`'s sessions started with API key `key_id`. See
    /// [`SessionStore::end_by_key`].
    pub async fn end_by_key(&self, subject: &str, key_id: &str) -> Result<usize, SessionError> {
        self.store.end_by_key(subject, key_id).await
    }
}

/// The revocation set at one moment ([`Sessions::snapshot`]).
pub(crate) struct SeenSnapshot {
    snapshot: std::sync::Arc<revocations::Snapshot>,
    revocations: Revocations,
}

impl SeenSnapshot {
    /// `subject`'s "not before" then (milliseconds).
    pub(crate) fn not_before(&self, subject: &str) -> Option<u64> {
        self.revocations.not_before_in(&self.snapshot, subject)
    }
}

impl<S: SessionStore> From<S> for Sessions {
    fn from(store: S) -> Self {
        Sessions::new(store)
    }
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("revocations", self.store.revocations())
            .field("retry_after", &self.retry_after)
            .finish()
    }
}
