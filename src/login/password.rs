//! [`PasswordChangeService`]: `POST {prefix}/v3/auth/password`, a user's own password change.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use serde::Deserialize;
use tower_service::Service;
use zeroize::{Zeroize, Zeroizing};

use crate::apikey::API_KEY_CLAIM;
use crate::audit::{AUDIT, AuditClient};
use crate::client_addr::ClientAddrResolver;
use crate::error::{AuthError, LoginError};
use crate::json::parse_object;
use crate::response::{
    ResponseBody, ResponseFuture, error_response, unauthorized_response, unavailable_response_with,
    wrong_method,
};
use crate::session::{SessionError, Sessions};
use crate::store::{Credentials, SetPassword};
use crate::throttle::LoginThrottle;
use crate::token::Claims;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The shortest new password accepted by default (characters).
pub const DEFAULT_MIN_PASSWORD_LEN: usize = 8;

/// The `details` of a body that is not a JSON object of the two passwords.
const BAD_REQUEST_DETAIL: &str = "Invalid password change request: expected a JSON object with \
     password (the current one) and new_password";

/// The `details` of the `503` when the password was changed but the other sessions could not
/// be ended.
const SESSIONS_NOT_ENDED_DETAIL: &str = "Password changed, but the other sessions could not be \
     ended: log out everywhere to end them";

/// A user's own password change, behind the layer (the layer puts the verified [`Claims`] into
/// the request extensions; without them the answer is the §2 401):
///
/// `POST` with `{"password": "<current>", "new_password": "…"}` →
///
/// - `204`: the password is changed, and with [sessions](Self::sessions) every other session
///   of the user is ended (their access tokens are refused, their refresh tokens too); the
///   caller's own session (its `sid` claim) goes on. A session store that cannot list sessions
///   ([`SessionError::Unsupported`]) logs the user out everywhere instead, the caller included.
/// - `401` with the wrong-password body of the login (after the same failure delay, and
///   counted by the login throttle per user and client address, like a wrong password);
/// - `400` for a body that is not the two strings, or a new password shorter than
///   [`min_length`](Self::min_length) (default [`DEFAULT_MIN_PASSWORD_LEN`]) characters;
///   `415` without `Content-Type: application/json`; `413` over the body limit (4 KiB);
/// - `403` for a token that was exchanged for an API key: a key cannot change the password;
/// - `429` over the throttle, `500` when the store fails, `503` (with `Retry-After`) when the
///   password was changed but the other sessions could not be ended.
///
/// The current password is checked with the store's
/// [`authenticate`](crate::store::CredentialStore::authenticate) under the token's subject.
///
/// ```
/// use bytes::Bytes;
/// use http::Request;
/// use http_body_util::Full;
/// use tower::ServiceExt;
/// use tower_jwt_login::login::PasswordChangeService;
/// use tower_jwt_login::store::{Argon2Store, CredentialStore, Credentials};
/// use tower_jwt_login::{JwtConfig, JwtKey, TokenUse};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let users = std::sync::Arc::new(Argon2Store::new().with_password("alice", "wonderland").unwrap());
/// let change = PasswordChangeService::new(std::sync::Arc::clone(&users));
/// let jwt = JwtConfig::new(JwtKey::random()).build().unwrap();
/// // What the layer does: verify the access token, put its claims into the extensions.
/// let claims = jwt.verify(&jwt.issue_pair("alice").access_token, TokenUse::Access).unwrap();
/// let mut req = Request::post("/api/v3/auth/password")
///     .header("content-type", "application/json")
///     .body(Full::new(Bytes::from_static(
///         br#"{"password":"wonderland","new_password":"looking-glass"}"#,
///     )))
///     .unwrap();
/// req.extensions_mut().insert(claims);
/// let res = change.oneshot(req).await.unwrap();
/// assert_eq!(res.status(), 204);
/// let ok = users.authenticate(&Credentials::new("alice", "looking-glass")).await.unwrap();
/// assert_eq!(ok.as_deref(), Some("alice"));
/// # });
/// ```
#[derive(Clone)]
pub struct PasswordChangeService {
    store: Arc<dyn DynPasswords>,
    sessions: Option<Sessions>,
    throttle: Option<LoginThrottle>,
    client_addr: ClientAddrResolver,
    failure_delay: Duration,
    body_limit: usize,
    min_length: usize,
}

impl fmt::Debug for PasswordChangeService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordChangeService")
            .field("sessions", &self.sessions.is_some())
            .field("throttle", &self.throttle)
            .field("failure_delay", &self.failure_delay)
            .field("min_length", &self.min_length)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeBody {
    password: String,
    new_password: String,
}

impl Drop for ChangeBody {
    fn drop(&mut self) {
        self.password.zeroize();
        self.new_password.zeroize();
    }
}

impl PasswordChangeService {
    /// The password change over `store`: Core's 5 s failure delay, the standard login throttle
    /// (give it the login's with [`throttle`](Self::throttle)), no sessions, new passwords of
    /// at least [`DEFAULT_MIN_PASSWORD_LEN`] characters.
    pub fn new<S: SetPassword>(store: S) -> Self {
        PasswordChangeService {
            store: Arc::new(store),
            sessions: None,
            throttle: Some(LoginThrottle::standard()),
            client_addr: ClientAddrResolver::new(),
            failure_delay: Duration::from_secs(5),
            body_limit: 4 * 1024,
            min_length: DEFAULT_MIN_PASSWORD_LEN,
        }
    }

    /// Ends the user's other sessions after a change (see the [type docs](Self)).
    #[must_use]
    pub fn sessions(mut self, sessions: impl Into<Sessions>) -> Self {
        self.sessions = Some(sessions.into());
        self
    }

    /// Counts wrong current passwords (per subject and client address) and refuses calls over
    /// the limits with `429`; `None` turns it off.
    #[must_use]
    pub fn throttle(mut self, throttle: impl Into<Option<LoginThrottle>>) -> Self {
        self.throttle = throttle.into();
        self
    }

    /// How the client address is found for the throttle and the audit log.
    #[must_use]
    pub fn client_addr(mut self, resolver: ClientAddrResolver) -> Self {
        self.client_addr = resolver;
        self
    }

    /// How long a wrong current password waits before it is answered (default 5 s).
    #[must_use]
    pub fn failure_delay(mut self, delay: Duration) -> Self {
        self.failure_delay = delay;
        self
    }

    /// The largest body accepted, in bytes (default 4 KiB); larger bodies get `413` at once,
    /// unread.
    #[must_use]
    pub fn body_limit(mut self, limit: usize) -> Self {
        self.body_limit = limit;
        self
    }

    /// The shortest new password accepted, in characters (default 8; at least 1).
    #[must_use]
    pub fn min_length(mut self, chars: usize) -> Self {
        self.min_length = chars.max(1);
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
            return wrong_method(&method);
        }
        let Some(claims) = req.extensions().get::<Claims>().cloned() else {
            return unauthorized_response(&method, &AuthError::MissingToken);
        };
        if claims.extra_value(API_KEY_CLAIM).is_some() {
            return error_response(
                &method,
                StatusCode::FORBIDDEN,
                "API key tokens cannot change the password",
            );
        }
        let client = self.client_addr.resolve(req.headers(), req.extensions());
        let body = match self.read(req).await {
            Ok(body) => body,
            Err(response) => return response,
        };
        let bad = |detail: &str| error_response(&method, StatusCode::BAD_REQUEST, detail);
        if body.new_password.chars().count() < self.min_length {
            return bad(&format!(
                "Invalid password change request: new_password must be at least {} characters",
                self.min_length
            ));
        }
        let subject = claims.subject();
        match self.check(subject, &body.password, client).await {
            Ok(()) => {}
            Err(error) => {
                match &error {
                    LoginError::Store(source) => {
                        tracing::error!(error = %source, "credential store failed");
                    }
                    _ => tracing::info!(
                        name: "password_change",
                        target: AUDIT,
                        outcome = "failure",
                        enduser.id = subject,
                        client.address = %AuditClient(client),
                        http.request.method = "POST",
                        error.type = error.reason(),
                        "password_change"
                    ),
                }
                if error.is_delayed() && !self.failure_delay.is_zero() {
                    tokio::time::sleep(self.failure_delay).await;
                }
                return error.into_response(&method);
            }
        }
        match self.store.set(subject, &body.new_password).await {
            Ok(true) => {}
            Ok(false) => {
                // Removed (or changed by another request) since the check.
                if !self.failure_delay.is_zero() {
                    tokio::time::sleep(self.failure_delay).await;
                }
                return LoginError::InvalidCredentials.into_response(&method);
            }
            Err(error) => {
                tracing::error!(error = %error, "could not set a password");
                return LoginError::Store(error).into_response(&method);
            }
        }
        let ended = self.end_others(&claims).await;
        tracing::info!(
            name: "password_change",
            target: AUDIT,
            outcome = "success",
            enduser.id = subject,
            client.address = %AuditClient(client),
            http.request.method = "POST",
            sessions_ended = ended.as_ref().ok().copied().flatten(),
            "password_change"
        );
        match ended {
            Ok(_) => {
                let mut res = Response::new(Full::new(Bytes::new()));
                *res.status_mut() = StatusCode::NO_CONTENT;
                res
            }
            Err(retry_after) => {
                unavailable_response_with(&method, retry_after, SESSIONS_NOT_ENDED_DETAIL)
            }
        }
    }

    /// The body: the two passwords, or the answer that refuses it.
    #[allow(clippy::result_large_err)]
    async fn read<B>(&self, req: Request<B>) -> Result<ChangeBody, Response<ResponseBody>>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let method = Method::POST;
        if !is_json(req.headers()) {
            return Err(error_response(
                &method,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Expected Content-Type: application/json",
            ));
        }
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.body_limit as u64) {
            return Err(LoginError::PayloadTooLarge.into_response(&method));
        }
        let bytes = match Limited::new(req.into_body(), self.body_limit)
            .collect()
            .await
        {
            Ok(collected) => Zeroizing::new(collected.to_bytes().to_vec()),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                return Err(LoginError::PayloadTooLarge.into_response(&method));
            }
            Err(_) => {
                return Err(error_response(
                    &method,
                    StatusCode::BAD_REQUEST,
                    BAD_REQUEST_DETAIL,
                ));
            }
        };
        parse_object::<ChangeBody>(&bytes)
            .ok_or_else(|| error_response(&method, StatusCode::BAD_REQUEST, BAD_REQUEST_DETAIL))
    }

    /// The current password, checked like a login's (throttled per subject and address).
    async fn check(
        &self,
        subject: &str,
        password: &str,
        client: Option<IpAddr>,
    ) -> Result<(), LoginError> {
        if let Some(throttle) = &self.throttle {
            throttle
                .begin_shared(subject, client)
                .await
                .map_err(LoginError::Throttled)?;
        }
        let outcome = self.store.check(subject, password).await;
        if let Some(throttle) = &self.throttle {
            match &outcome {
                Ok(true) => throttle.settle_shared(subject, client, true).await,
                // A wrong password keeps its charge.
                Ok(false) => {}
                Err(_) => throttle.settle_shared(subject, client, false).await,
            }
        }
        match outcome {
            Ok(true) => Ok(()),
            Ok(false) => Err(LoginError::InvalidCredentials),
            Err(e) => Err(LoginError::Store(e)),
        }
    }

    /// Ends the caller's other sessions: how many (`None`: all of them, the store cannot list),
    /// or the `Retry-After` of a store that failed.
    async fn end_others(&self, claims: &Claims) -> Result<Option<usize>, u64> {
        let Some(sessions) = &self.sessions else {
            return Ok(Some(0));
        };
        let subject = claims.subject();
        let own = claims.session_id();
        let failed = |error: SessionError| {
            tracing::warn!(
                error = %error,
                "password changed, but the other sessions could not be ended"
            );
            sessions.retry_after_secs()
        };
        match sessions.list(subject).await {
            Ok(live) => {
                let mut ended = 0;
                for session in live.iter().filter(|s| Some(s.sid.as_str()) != own) {
                    if sessions
                        .end_session(subject, &session.sid)
                        .await
                        .map_err(failed)?
                    {
                        ended += 1;
                    }
                }
                Ok(Some(ended))
            }
            Err(SessionError::Unsupported) => {
                sessions.end_all(subject).await.map_err(failed)?;
                Ok(None)
            }
            Err(error) => Err(failed(error)),
        }
    }
}

/// `Content-Type` starts with `application/json` (parameters allowed).
fn is_json(headers: &http::HeaderMap) -> bool {
    const JSON: &[u8] = b"application/json";
    headers.get(header::CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes()
            .get(..JSON.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(JSON))
    })
}

/// A [`SetPassword`] store behind a trait object (the service is not generic over it).
trait DynPasswords: Send + Sync + 'static {
    /// Whether `password` is `subject`'s.
    fn check<'a>(
        &'a self,
        subject: &'a str,
        password: &'a str,
    ) -> BoxFuture<'a, Result<bool, BoxError>>;
    /// Sets `subject`'s password; `false` for no such user.
    fn set<'a>(
        &'a self,
        subject: &'a str,
        password: &'a str,
    ) -> BoxFuture<'a, Result<bool, BoxError>>;
}

impl<S: SetPassword> DynPasswords for S {
    fn check<'a>(
        &'a self,
        subject: &'a str,
        password: &'a str,
    ) -> BoxFuture<'a, Result<bool, BoxError>> {
        Box::pin(async move {
            let credentials = Credentials::new(subject, password);
            match self.authenticate(&credentials).await {
                Ok(found) => Ok(found.as_deref() == Some(subject)),
                Err(e) => Err(Box::new(e) as BoxError),
            }
        })
    }

    fn set<'a>(
        &'a self,
        subject: &'a str,
        password: &'a str,
    ) -> BoxFuture<'a, Result<bool, BoxError>> {
        Box::pin(async move {
            self.set_password(subject, password)
                .await
                .map_err(|e| Box::new(e) as BoxError)
        })
    }
}

impl<B> Service<Request<B>> for PasswordChangeService
where
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
        ResponseFuture::new(async move { this.handle(req).await })
    }
}
