//! [`LogoutService`]: `POST /api/logout` ends the session of the presented token;
//! `POST /api/logout/all` ends every session of its subject. Mounted only with
//! [sessions](crate::session).
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, StatusCode};
//! use http_body_util::Empty;
//! use tower::ServiceExt;
//! use tower_jwt_login::login::LogoutService;
//! use tower_jwt_login::session::{MemorySessionStore, NewSession, Sessions, new_session_id};
//! use tower_jwt_login::{Grant, JwtConfig, JwtKey, TokenUse};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let jwt = JwtConfig::new(JwtKey::from_secret("a secret of at least 32 random bytes!!").unwrap())
//!     .build()
//!     .unwrap();
//! let sessions = Sessions::new(MemorySessionStore::new(&jwt));
//! let sid = new_session_id();
//! let issued = jwt.issue(&Grant::new("alice").session(&sid));
//! let session = NewSession::new(&sid, "alice", &issued.refresh_jti, issued.refresh_expires_at);
//! sessions.start(session).await.unwrap();
//!
//! let logout = LogoutService::new(jwt.clone(), sessions.clone());
//! let req = Request::post("/api/logout")
//!     .header("authorization", format!("Bearer {}", issued.tokens.access_token))
//!     .body(Empty::<Bytes>::new())
//!     .unwrap();
//! let res = logout.oneshot(req).await.unwrap();
//! assert_eq!(res.status(), StatusCode::NO_CONTENT);
//! let claims = jwt.verify(&issued.tokens.access_token, TokenUse::Access).unwrap();
//! assert!(sessions.revocations().is_revoked(&claims));
//! # });
//! ```

use std::convert::Infallible;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use tower_service::Service;
use tracing::Instrument;
use tracing::field::Empty;

use crate::audit::{AUDIT, AuditClient, token_error_type};
use crate::bearer::bearer_token;
use crate::client_addr::ClientAddrResolver;
use crate::error::{AuthError, TokenError};
use crate::factor::{FactorStoreError, SecondFactor};
use crate::response::{
    ResponseBody, ResponseFuture, error_response, unauthorized_response, unavailable_response,
    wrong_method,
};
use crate::session::{SessionError, Sessions};
use crate::token::{Claims, Jwt, TokenUse};

/// The logout routes. `POST` with `Authorization: Bearer <token>`, where the token is an access
/// or a refresh token of a session:
///
/// - [`LogoutService::new`] (`/api/logout`) ends that session: its refresh token stops working
///   at once, its access tokens are refused by every instance as soon as the revocation reaches
///   it (within a second through Redis);
/// - [`LogoutService::all`] (`/api/logout/all`) ends every session of the token's subject and,
///   with [`second_factor`](Self::second_factor), forgets the subject's remembered devices.
///
/// Answers `204 No Content`; `401` in the §2 shape for a missing, invalid or revoked token or
/// one without a session; `503` with `Retry-After` while the store cannot be reached; `404` for
/// any method but `POST`. The service verifies the token itself: make the route public for
/// `POST` in the [`PathPolicy`](crate::auth::PathPolicy) (a refresh token would not pass the
/// layer).
///
/// Each outcome writes one audit event (target `tower_jwt_login::audit`, name `logout`; see
/// the [module docs](crate::login#audit-log)).
#[derive(Debug, Clone)]
pub struct LogoutService {
    jwt: Jwt,
    sessions: Sessions,
    everywhere: bool,
    second_factor: Option<SecondFactor>,
    client_addr: ClientAddrResolver,
}

impl LogoutService {
    /// `POST /api/logout`: ends the session of the presented token.
    pub fn new(jwt: Jwt, sessions: impl Into<Sessions>) -> Self {
        LogoutService {
            jwt,
            sessions: sessions.into(),
            everywhere: false,
            second_factor: None,
            client_addr: ClientAddrResolver::new(),
        }
    }

    /// `POST /api/logout/all`: ends every session of the presented token's subject.
    pub fn all(jwt: Jwt, sessions: impl Into<Sessions>) -> Self {
        LogoutService {
            jwt,
            sessions: sessions.into(),
            everywhere: true,
            second_factor: None,
            client_addr: ClientAddrResolver::new(),
        }
    }

    /// With the [second factor](crate::factor) on: logging out everywhere also forgets every
    /// remembered device of the subject, so the next login on any device needs a code again.
    /// (No effect on [`LogoutService::new`], which ends one session.)
    #[must_use]
    pub fn second_factor(mut self, second_factor: SecondFactor) -> Self {
        self.second_factor = Some(second_factor);
        self
    }

    /// How the client address of the audit event is found (default
    /// [`ClientAddrResolver::new`]; give it the login's resolver when behind a proxy).
    #[must_use]
    pub fn client_addr(mut self, resolver: ClientAddrResolver) -> Self {
        self.client_addr = resolver;
        self
    }

    /// An access token, or else a refresh token, of a live session.
    fn verify<B>(&self, req: &Request<B>) -> Result<Claims, AuthError> {
        let token = bearer_token(req.headers())?;
        let claims = match self.jwt.verify(token, TokenUse::Access) {
            Err(TokenError::WrongTokenUse) => self.jwt.verify(token, TokenUse::Refresh)?,
            other => other?,
        };
        if claims.session_id().is_none() {
            return Err(TokenError::NoSession.into());
        }
        if self.sessions.revocations().is_revoked(&claims) {
            return Err(TokenError::Revoked.into());
        }
        Ok(claims)
    }

    async fn handle(
        self,
        method: Method,
        claims: Result<Claims, AuthError>,
        client: AuditClient,
    ) -> Response<ResponseBody> {
        let span = tracing::Span::current();
        let scope = if self.everywhere { "all" } else { "session" };
        let claims = match claims {
            Ok(claims) => claims,
            Err(error) => {
                span.record("outcome", "failure");
                let reason = token_error_type(&error);
                crate::metrics::logged_out(self.everywhere, "failure", Some(reason));
                tracing::info!(
                    name: "logout",
                    target: AUDIT,
                    outcome = "failure",
                    scope,
                    client.address = %client,
                    http.request.method = "POST",
                    error.type = reason,
                    "logout"
                );
                return unauthorized_response(&method, &error);
            }
        };
        span.record("subject", claims.subject());
        let outcome = if self.everywhere {
            match self.sessions.end_all(claims.subject()).await {
                Ok(()) => self.forget_devices(claims.subject()).await,
                Err(error) => Err(error),
            }
        } else {
            self.sessions
                .end(claims.session_id().unwrap_or_default())
                .await
        };
        match outcome {
            Ok(()) => {
                span.record("outcome", "success");
                crate::metrics::logged_out(self.everywhere, "success", None);
                tracing::info!(
                    name: "logout",
                    target: AUDIT,
                    outcome = "success",
                    scope,
                    enduser.id = claims.subject(),
                    client.address = %client,
                    http.request.method = "POST",
                    "logout"
                );
                let mut res = Response::new(Full::new(Bytes::new()));
                *res.status_mut() = StatusCode::NO_CONTENT;
                res
            }
            Err(SessionError::Unavailable(why)) => {
                span.record("outcome", "unavailable");
                tracing::warn!(reason = %why, "session store unavailable: logout refused");
                let retry_after = self.sessions.retry_after_secs();
                crate::metrics::logged_out(
                    self.everywhere,
                    "unavailable",
                    Some("session_store_unavailable"),
                );
                tracing::info!(
                    name: "logout",
                    target: AUDIT,
                    outcome = "unavailable",
                    scope,
                    enduser.id = claims.subject(),
                    client.address = %client,
                    http.request.method = "POST",
                    error.type = "session_store_unavailable",
                    retry_after,
                    "logout"
                );
                unavailable_response(&method, retry_after)
            }
            Err(error) => {
                span.record("outcome", "error");
                tracing::error!(%error, "session store failed");
                crate::metrics::logged_out(self.everywhere, "error", Some("store_error"));
                tracing::info!(
                    name: "logout",
                    target: AUDIT,
                    outcome = "error",
                    scope,
                    enduser.id = claims.subject(),
                    client.address = %client,
                    http.request.method = "POST",
                    error.type = "store_error",
                    "logout"
                );
                error_response(
                    &method,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal Server Error",
                )
            }
        }
    }
}

impl LogoutService {
    /// Forgets the subject's remembered devices (when a second factor is configured); its
    /// store's failures are answered like the session store's.
    async fn forget_devices(&self, subject: &str) -> Result<(), SessionError> {
        let Some(factor) = &self.second_factor else {
            return Ok(());
        };
        factor
            .forget_devices(subject)
            .await
            .map_err(|error| match error {
                FactorStoreError::Unavailable(why) => SessionError::Unavailable(why),
                other => SessionError::Store(other.to_string()),
            })
    }
}

impl<B> Service<Request<B>> for LogoutService {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let method = req.method().clone();
        if method != Method::POST {
            let response = wrong_method(&method);
            return ResponseFuture::ready(response);
        }
        let claims = self.verify(&req);
        let client = AuditClient(self.client_addr.resolve(req.headers(), req.extensions()));
        let this = self.clone();
        let span = tracing::debug_span!("logout", subject = Empty, outcome = Empty);
        ResponseFuture::new(
            async move { this.handle(method, claims, client).await }.instrument(span),
        )
    }
}
