//! [`SessionsService`]: the routes a logged-in user sees and ends its own sessions with.
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, StatusCode};
//! use http_body_util::{BodyExt, Empty};
//! use tower::ServiceExt;
//! use tower_jwt_login::session::{MemorySessionStore, NewSession, Sessions, SessionsService};
//! use tower_jwt_login::{Grant, JwtConfig, JwtKey, TokenUse};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let jwt = JwtConfig::new(JwtKey::from_secret("a secret of at least 32 random bytes!!").unwrap())
//!     .build()
//!     .unwrap();
//! let sessions = Sessions::new(MemorySessionStore::new(&jwt));
//! let issued = jwt.issue(&Grant::new("alice").session("s1"));
//! let start = NewSession::new("s1", "alice", &issued.refresh_jti, issued.refresh_expires_at)
//!     .user_agent(Some("curl/8.5.0"));
//! sessions.start(start).await.unwrap();
//!
//! let service = SessionsService::new(sessions.clone());
//! // The layer verifies the access token and puts its claims in the request extensions.
//! let claims = jwt.verify(&issued.tokens.access_token, TokenUse::Access).unwrap();
//! let mut req = Request::get("/api/v3/auth/sessions").body(Empty::<Bytes>::new()).unwrap();
//! req.extensions_mut().insert(claims.clone());
//! let res = service.clone().oneshot(req).await.unwrap();
//! assert_eq!(res.status(), StatusCode::OK);
//! let body = res.into_body().collect().await.unwrap().to_bytes();
//! let list: serde_json::Value = serde_json::from_slice(&body).unwrap();
//! assert_eq!(list[0]["id"], "s1");
//! assert_eq!(list[0]["user_agent"], "curl/8.5.0");
//! assert_eq!(list[0]["current"], true);
//!
//! // Ending it: its refresh token stops, its access tokens are revoked.
//! let mut req = Request::delete("/api/v3/auth/sessions/s1").body(Empty::<Bytes>::new()).unwrap();
//! req.extensions_mut().insert(claims.clone());
//! let res = service.oneshot(req).await.unwrap();
//! assert_eq!(res.status(), StatusCode::NO_CONTENT);
//! assert!(sessions.revocations().is_revoked(&claims));
//! # });
//! ```

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use serde::Serialize;
use tower_service::Service;

use super::{SessionError, SessionInfo, Sessions};
use crate::audit::AUDIT;
use crate::error::AuthError;
use crate::response::{
    ResponseBody, ResponseFuture, error_response, json_response, unauthorized_response,
    unavailable_response, wrong_method,
};
use crate::token::Claims;

/// The `details` string of `DELETE …/sessions/{id}` for a session that is not one of the
/// caller's live sessions (another user's, an ended or an unknown one): `404`.
pub const SESSION_NOT_FOUND_DETAIL: &str = "Session not found";

/// The `details` string of the session routes when the session store cannot list sessions
/// ([`SessionError::Unsupported`]: a store of the application's own without
/// [`SessionStore::list`](super::SessionStore::list)): `501 Not Implemented`.
pub const SESSIONS_UNSUPPORTED_DETAIL: &str = "The session store cannot list sessions";

/// The longest session id the routes look up (the crate's are 22 characters).
const MAX_SID: usize = 64;

/// The routes a logged-in user sees and ends its own sessions with, as one tower service, for
/// the user of the request's verified access token ([`Claims`] in the request extensions,
/// which [`JwtAuthLayer`](crate::auth::JwtAuthLayer) puts there; without them every route
/// answers `401` in the §2 shape). Under the base path (default `/api/v3/auth/sessions`, see
/// [`prefix`](Self::prefix)):
///
/// | request | answer |
/// |---|---|
/// | `GET <base>` | `200`, the caller's live sessions, oldest first (below) |
/// | `DELETE <base>/<id>` | `204`: the session ended, like a logout |
///
/// Each session is
/// `{"id":"…","created_at":1700000000,"refreshed_at":null,"expires_at":1700086400,"client":"203.0.113.7","user_agent":"Mozilla/5.0 …","api_key":null,"current":true}`:
/// `id` is its `sid` claim; the times are Unix seconds (`refreshed_at`: the last refresh, `null`
/// if none yet; `expires_at`: when it ends unless refreshed); `client` and `user_agent` are the
/// login's client address and `User-Agent` (`null` when unknown); `api_key` is
/// `{"id":"…","name":"…"}` for a session an API key was exchanged for, else `null`; `current`
/// is `true` for the session of the access token of the request. The list has
/// `Cache-Control: no-store`.
///
/// Refusals are the §2 error shape: `404` `Session not found` for an id that is not one of the
/// caller's live sessions (another user's looks exactly like an unknown one), `503` with
/// `Retry-After` while the store cannot be reached, `501` `The session store cannot list
/// sessions` for a store without [`list`](super::SessionStore::list), `404` `Not Found` for
/// other methods and paths.
///
/// It matches the request path against the base, or, when a router stripped the base
/// (`nest_service`), the remaining path.
#[derive(Clone, Debug)]
pub struct SessionsService {
    sessions: Sessions,
    base: Arc<str>,
}

/// One session as the list renders it.
#[derive(Serialize)]
struct Listed<'a> {
    id: &'a str,
    created_at: u64,
    refreshed_at: Option<u64>,
    expires_at: u64,
    client: Option<String>,
    user_agent: Option<&'a str>,
    api_key: Option<ListedKey<'a>>,
    current: bool,
}

#[derive(Serialize)]
struct ListedKey<'a> {
    id: &'a str,
    name: &'a str,
}

impl<'a> Listed<'a> {
    fn new(info: &'a SessionInfo, current: Option<&str>) -> Self {
        Listed {
            id: &info.sid,
            created_at: info.created_at,
            refreshed_at: info.refreshed_at,
            expires_at: info.expires_at,
            client: info.client.map(|ip| ip.to_string()),
            user_agent: info.user_agent.as_deref(),
            api_key: info.api_key.as_ref().map(|key| ListedKey {
                id: &key.id,
                name: &key.name,
            }),
            current: current == Some(info.sid.as_str()),
        }
    }
}

impl SessionsService {
    /// The routes under `/api/v3/auth/sessions`, over `sessions`.
    pub fn new(sessions: impl Into<Sessions>) -> Self {
        SessionsService {
            sessions: sessions.into(),
            base: Arc::from("/api/v3/auth/sessions"),
        }
    }

    /// The API prefix the routes live under (default `/api`): the base path is
    /// `<prefix>/v3/auth/sessions`.
    #[must_use]
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.base = Arc::from(format!("{}/v3/auth/sessions", prefix.trim_end_matches('/')));
        self
    }

    /// The base path (`GET`); one session is `<base>/<id>` (`DELETE`).
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn handle(
        self,
        method: Method,
        path: String,
        claims: Option<Claims>,
    ) -> Response<ResponseBody> {
        let Some(claims) = claims else {
            return unauthorized_response(&method, &AuthError::MissingToken);
        };
        let tail = path.strip_prefix(&*self.base).unwrap_or(&path);
        let subject = claims.subject();
        match (&method, tail) {
            (&Method::GET | &Method::HEAD, "" | "/") => match self.sessions.list(subject).await {
                Ok(list) => {
                    let current = claims.session_id();
                    let listed: Vec<Listed<'_>> =
                        list.iter().map(|info| Listed::new(info, current)).collect();
                    let mut res = json_response(&method, &listed);
                    res.headers_mut()
                        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                    res
                }
                Err(error) => self.failure(&method, &error),
            },
            (&Method::DELETE, tail) => {
                let Some(sid) = tail.strip_prefix('/').filter(|sid| is_session_id(sid)) else {
                    return if tail.strip_prefix('/').is_some_and(|sid| !sid.contains('/')) {
                        error_response(&method, StatusCode::NOT_FOUND, SESSION_NOT_FOUND_DETAIL)
                    } else {
                        wrong_method(&method)
                    };
                };
                match self.sessions.end_session(subject, sid).await {
                    Ok(true) => {
                        tracing::info!(
                            name: "session",
                            target: AUDIT,
                            action = "end",
                            outcome = "success",
                            enduser.id = subject,
                            session.id = sid,
                            http.request.method = "DELETE",
                            current = claims.session_id() == Some(sid),
                            "session"
                        );
                        let mut res = Response::new(Full::new(Bytes::new()));
                        *res.status_mut() = StatusCode::NO_CONTENT;
                        res
                    }
                    Ok(false) => {
                        error_response(&method, StatusCode::NOT_FOUND, SESSION_NOT_FOUND_DETAIL)
                    }
                    Err(error) => self.failure(&method, &error),
                }
            }
            _ => wrong_method(&method),
        }
    }

    /// The answer to a failure of the store.
    fn failure(&self, method: &Method, error: &SessionError) -> Response<ResponseBody> {
        match error {
            SessionError::Unavailable(why) => {
                tracing::warn!(reason = %why, "session store unavailable: session route refused");
                unavailable_response(method, self.sessions.retry_after_secs())
            }
            SessionError::Unsupported => {
                tracing::warn!("the session store cannot list sessions (SessionStore::list)");
                error_response(
                    method,
                    StatusCode::NOT_IMPLEMENTED,
                    SESSIONS_UNSUPPORTED_DETAIL,
                )
            }
            SessionError::Store(_) => {
                tracing::error!(%error, "session store failed");
                error_response(
                    method,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal Server Error",
                )
            }
        }
    }
}

/// Whether `sid` can be a session id: 1 to 64 base64url characters (what
/// [`new_session_id`](super::new_session_id) makes, with room for an application's own).
fn is_session_id(sid: &str) -> bool {
    !sid.is_empty()
        && sid.len() <= MAX_SID
        && sid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl<B> Service<Request<B>> for SessionsService {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let claims = req.extensions().get::<Claims>().cloned();
        let this = self.clone();
        ResponseFuture::new(async move { this.handle(method, path, claims).await })
    }
}
