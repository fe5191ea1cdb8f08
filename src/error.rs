//! Errors, and the one place that renders them as HTTP responses (docs/protocol.md §2).
//!
//! Every error the crate answers with has the same body:
//! `{"code":<status>,"message":"<reason phrase>","details":["…"]}` followed by a newline,
//! with `Content-Type: application/json`. A `HEAD` request gets the status and headers only.
//! The one exception is a gRPC request refused by the layer, which gets gRPC's own refusal
//! ([`grpc_unauthenticated_response`]: HTTP 200, `grpc-status: 16`) because gRPC clients read
//! nothing else.
//!
//! ```
//! use http::{Method, StatusCode};
//! use http_body_util::BodyExt;
//! use tower_jwt_login::error::error_response;
//!
//! # tokio_test_block_on(async {
//! let res = error_response(&Method::GET, StatusCode::NOT_FOUND, "Not Found");
//! assert_eq!(res.status(), 404);
//! assert_eq!(res.headers()["content-type"], "application/json");
//! let body = res.into_body().collect().await.unwrap().to_bytes();
//! assert_eq!(&body[..], b"{\"code\":404,\"message\":\"Not Found\",\"details\":[\"Not Found\"]}\n");
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use http_body_util::Full;
use serde::Serialize;

use crate::json::json_line;

/// The body type of every response the crate builds itself.
pub type ResponseBody = Full<Bytes>;

/// The `details` string of every refused protected request and refresh (Core's wording).
pub const INVALID_TOKEN_DETAIL: &str = "Missing or invalid JWT token";
/// The `details` string of a request refused for its claims: a valid access token whose
/// claims do not meet the path's [`Requirement`](crate::auth::Requirement) (403).
pub const FORBIDDEN_DETAIL: &str = "Insufficient permissions";
/// The `details` string of a login without usable credentials (Core's wording).
pub const MISSING_CREDENTIALS_DETAIL: &str = "Missing authorization credentials";
/// The `details` string of a login with wrong credentials (Core's wording).
pub const INVALID_CREDENTIALS_DETAIL: &str =
    "Invalid authorization credentials: invalid username or password";
/// The `details` string of a login refused by the [throttle](crate::throttle) (429).
pub const THROTTLED_DETAIL: &str = "Too many failed login attempts, try again later";
/// The `details` string of a login with the right password, for a user with the
/// [second factor](crate::factor) on, without a code or a remembered device (401): a UI asks
/// for the code and sends the login again.
pub const TOTP_REQUIRED_DETAIL: &str = "TOTP code required";
/// The `details` string of a login with the right password and a wrong, replayed or spent
/// second-factor code (401); it counts against the login throttle like a wrong password.
pub const INVALID_TOTP_DETAIL: &str = "Invalid TOTP code";
/// The `details` string of a login or logout that needs the
/// [second-factor store](crate::factor::SecondFactorStore) while it cannot be reached (503,
/// with `Retry-After`).
pub const FACTOR_UNAVAILABLE_DETAIL: &str = "Second factor store unavailable, try again later";
/// The `details` string of a login, refresh or logout that needs the
/// [session store](crate::session) while it cannot be reached (503, with `Retry-After`).
pub const UNAVAILABLE_DETAIL: &str = "Session store unavailable, try again later";

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: u16,
    message: &'a str,
    details: [&'a str; 1],
}

/// The answer of the crate's routes to a method they do not serve: 404 in the §2 shape, never
/// 405 (as Core answers, docs/protocol.md §1).
pub(crate) fn wrong_method(method: &Method) -> Response<ResponseBody> {
    error_response(method, StatusCode::NOT_FOUND, "Not Found")
}

/// Renders the docs/protocol.md §2 error response: `status`, the standard reason phrase and one
/// `details` string. For `HEAD` the body is empty; status and headers are the same.
pub fn error_response(method: &Method, status: StatusCode, detail: &str) -> Response<ResponseBody> {
    let error = ErrorBody {
        code: status.as_u16(),
        message: status.canonical_reason().unwrap_or("Error"),
        details: [detail],
    };
    let mut res = json_response(method, &error);
    *res.status_mut() = status;
    res
}

/// Renders a 200 JSON response (compact, trailing newline, `Content-Type: application/json`);
/// for `HEAD` the same status and headers without the body.
pub(crate) fn json_response<T: Serialize + ?Sized>(
    method: &Method,
    value: &T,
) -> Response<ResponseBody> {
    if method == Method::HEAD {
        return json_bytes_response(method, Bytes::new());
    }
    json_bytes_response(method, json_line(value))
}

/// [`json_response`] of a body rendered already (a document served many times, like the
/// published JWKS).
pub(crate) fn json_bytes_response(method: &Method, body: Bytes) -> Response<ResponseBody> {
    let body = if method == Method::HEAD {
        Bytes::new()
    } else {
        body
    };
    let mut res = Response::new(Full::new(body));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// Why a token was not accepted. The `Display` text is for logs; it never contains the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// Longer than the configured maximum token length.
    TooLong,
    /// Not three base64url segments of JSON objects (including JWE and JSON serializations).
    Malformed,
    /// The header names another algorithm than the configured one (`none` included).
    UnsupportedAlgorithm,
    /// The header carries `crit`, or a `typ` other than `JWT`.
    UnsupportedHeader,
    /// The signature does not match.
    InvalidSignature,
    /// The header's `kid` names no key of the ring.
    UnknownKey,
    /// A claim has the wrong JSON type, or appears twice.
    InvalidClaims,
    /// A required claim (`exp`, `iss`, `sub`, `usefor`) is missing.
    MissingClaim(&'static str),
    /// `exp` has passed.
    Expired,
    /// `nbf` is in the future.
    NotYetValid,
    /// `iat` is in the future.
    IssuedInFuture,
    /// `iss` is not the configured issuer.
    InvalidIssuer,
    /// `usefor` does not match the use (a refresh token on a protected route, or the reverse).
    WrongTokenUse,
    /// The token's session was ended (logout, reuse of a spent refresh token) or its subject
    /// logged out everywhere after it was issued ([`crate::session`]).
    Revoked,
    /// With sessions on, a token without a session id (`sid`): it could never be revoked.
    NoSession,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            TokenError::TooLong => "token too long",
            TokenError::Malformed => "malformed token",
            TokenError::UnsupportedAlgorithm => "unsupported algorithm",
            TokenError::UnsupportedHeader => "unsupported token header",
            TokenError::InvalidSignature => "invalid signature",
            TokenError::UnknownKey => "unknown key id",
            TokenError::InvalidClaims => "invalid claims",
            TokenError::MissingClaim(name) => return write!(f, "missing claim `{name}`"),
            TokenError::Expired => "token expired",
            TokenError::NotYetValid => "token not yet valid",
            TokenError::IssuedInFuture => "token issued in the future",
            TokenError::InvalidIssuer => "invalid issuer",
            TokenError::WrongTokenUse => "wrong token use",
            TokenError::Revoked => "token revoked",
            TokenError::NoSession => "token without session",
        };
        f.write_str(text)
    }
}

impl std::error::Error for TokenError {}

/// Why a request to a protected route (or the refresh route) was refused.
///
/// The layer puts it into the extensions of the rejection response, so outer layers can log or
/// count rejections by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// No `Authorization` header.
    MissingToken,
    /// More than one `Authorization` header.
    MultipleAuthorizationHeaders,
    /// An `Authorization` header that is not `Bearer <token>` (for example `Basic …`).
    InvalidAuthorizationHeader,
    /// A bearer token that failed verification.
    InvalidToken(TokenError),
    /// A valid access token whose claims do not meet the path's
    /// [`Requirement`](crate::auth::Requirement): answered with 403, never 401 (for gRPC,
    /// `grpc-status: 7`, PERMISSION_DENIED).
    Forbidden,
}

impl AuthError {
    /// Whether the client presented something in `Authorization` (then RFC 6750 wants
    /// `error="invalid_token"` in `WWW-Authenticate`, or `error="insufficient_scope"` for
    /// [`Forbidden`](Self::Forbidden)).
    pub fn token_presented(&self) -> bool {
        !matches!(self, AuthError::MissingToken)
    }

    /// The RFC 6750 `error_description` sent for this refusal: a fixed short text per kind of
    /// error (never anything from the request), so a client can tell `token expired` (refresh
    /// now) from `invalid signature` (log in again). `None` for a missing token, which RFC 6750
    /// §3.1 answers with a bare challenge.
    ///
    /// ```
    /// use tower_jwt_login::error::{AuthError, TokenError};
    ///
    /// assert_eq!(AuthError::InvalidToken(TokenError::Expired).description(), Some("token expired"));
    /// assert_eq!(AuthError::MissingToken.description(), None);
    /// ```
    pub fn description(&self) -> Option<&'static str> {
        challenge_table(self).0
    }

    /// The `WWW-Authenticate` value for this refusal: `Bearer` for a missing token (RFC 6750
    /// §3.1: no error code when the request carries no credentials), otherwise
    /// `Bearer error="invalid_token", error_description="…"` with [`description`](Self::description).
    /// No `realm`: Core sends none and its clients read none. Built from static strings, no
    /// allocation.
    ///
    /// ```
    /// use tower_jwt_login::error::{AuthError, TokenError};
    ///
    /// assert_eq!(AuthError::MissingToken.challenge(), "Bearer");
    /// assert_eq!(
    ///     AuthError::InvalidToken(TokenError::InvalidSignature).challenge(),
    ///     "Bearer error=\"invalid_token\", error_description=\"invalid signature\""
    /// );
    /// ```
    pub fn challenge(&self) -> HeaderValue {
        HeaderValue::from_static(challenge_table(self).1)
    }
}

/// Defines the descriptions and the full challenges from one table, so the two cannot drift
/// apart and every challenge is a `&'static str` (a `HeaderValue::from_static`, no formatting).
macro_rules! challenges {
    ($($pattern:pat => $description:literal,)*) => {
        fn challenge_table(error: &AuthError) -> (Option<&'static str>, &'static str) {
            match error {
                AuthError::MissingToken => (None, "Bearer"),
                // RFC 6750 §3.1: a token without the privileges the resource needs.
                AuthError::Forbidden => (
                    Some("insufficient permissions"),
                    "Bearer error=\"insufficient_scope\", error_description=\"insufficient permissions\"",
                ),
                $($pattern => (
                    Some($description),
                    concat!(
                        "Bearer error=\"invalid_token\", error_description=\"",
                        $description,
                        "\""
                    ),
                ),)*
            }
        }
    };
}

// RFC 6750 §3: `error_description` is printable ASCII without `"` and `\`.
challenges! {
    AuthError::MultipleAuthorizationHeaders => "more than one Authorization header",
    AuthError::InvalidAuthorizationHeader => "invalid Authorization header",
    AuthError::InvalidToken(TokenError::TooLong) => "token too long",
    AuthError::InvalidToken(TokenError::Malformed) => "malformed token",
    AuthError::InvalidToken(TokenError::UnsupportedAlgorithm) => "unsupported algorithm",
    AuthError::InvalidToken(TokenError::UnsupportedHeader) => "unsupported token header",
    AuthError::InvalidToken(TokenError::InvalidSignature) => "invalid signature",
    AuthError::InvalidToken(TokenError::UnknownKey) => "unknown key id",
    AuthError::InvalidToken(TokenError::InvalidClaims) => "invalid claims",
    AuthError::InvalidToken(TokenError::MissingClaim(_)) => "missing claim",
    AuthError::InvalidToken(TokenError::Expired) => "token expired",
    AuthError::InvalidToken(TokenError::NotYetValid) => "token not yet valid",
    AuthError::InvalidToken(TokenError::IssuedInFuture) => "token issued in the future",
    AuthError::InvalidToken(TokenError::InvalidIssuer) => "invalid issuer",
    AuthError::InvalidToken(TokenError::WrongTokenUse) => "wrong token use",
    AuthError::InvalidToken(TokenError::Revoked) => "token revoked",
    AuthError::InvalidToken(TokenError::NoSession) => "token without session",
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::MissingToken => f.write_str("missing bearer token"),
            AuthError::MultipleAuthorizationHeaders => {
                f.write_str("more than one Authorization header")
            }
            AuthError::InvalidAuthorizationHeader => f.write_str("invalid Authorization header"),
            AuthError::InvalidToken(e) => write!(f, "invalid token: {e}"),
            AuthError::Forbidden => f.write_str("insufficient permissions"),
        }
    }
}

impl std::error::Error for AuthError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AuthError::InvalidToken(e) => Some(e),
            _ => None,
        }
    }
}

impl From<TokenError> for AuthError {
    fn from(e: TokenError) -> Self {
        AuthError::InvalidToken(e)
    }
}

/// Renders the default 401 for an [`AuthError`]: the §2 body with Core's detail (the same for
/// every reason, as Core answers) and the RFC 6750 `WWW-Authenticate` header of
/// [`AuthError::challenge`], which says why: `Bearer` without a token,
/// `Bearer error="invalid_token", error_description="token expired"` for an expired one.
///
/// [`AuthError::Forbidden`] is no 401: it gets [`forbidden_response`]'s 403.
pub fn unauthorized_response(method: &Method, error: &AuthError) -> Response<ResponseBody> {
    if *error == AuthError::Forbidden {
        return forbidden_response(method);
    }
    unauthorized_with_challenge(method, error.challenge())
}

/// The 403 for a valid access token whose claims do not meet the path's
/// [`Requirement`](crate::auth::Requirement): docs/protocol.md §2's shape,
/// `{"code":403,"message":"Forbidden","details":["Insufficient permissions"]}`, with
/// `WWW-Authenticate: Bearer error="insufficient_scope", error_description="insufficient permissions"`
/// (RFC 6750 §3.1). The detail is fixed: it never says which requirement failed.
///
/// ```
/// use http::Method;
/// use http_body_util::BodyExt;
/// use tower_jwt_login::error::forbidden_response;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let res = forbidden_response(&Method::GET);
/// assert_eq!(res.status(), 403);
/// let body = res.into_body().collect().await.unwrap().to_bytes();
/// assert_eq!(&body[..], b"{\"code\":403,\"message\":\"Forbidden\",\"details\":[\"Insufficient permissions\"]}\n");
/// # });
/// ```
pub fn forbidden_response(method: &Method) -> Response<ResponseBody> {
    let mut res = error_response(method, StatusCode::FORBIDDEN, FORBIDDEN_DETAIL);
    res.headers_mut()
        .insert(header::WWW_AUTHENTICATE, AuthError::Forbidden.challenge());
    res
}

/// The gRPC refusal for [`AuthError::Forbidden`]: like [`grpc_unauthenticated_response`], with
/// `grpc-status: 7` (PERMISSION_DENIED) and `grpc-message: Insufficient permissions`.
pub fn grpc_permission_denied_response(request_headers: &HeaderMap) -> Response<ResponseBody> {
    let mut res = grpc_unauthenticated_response(request_headers);
    let headers = res.headers_mut();
    headers.insert("grpc-status", HeaderValue::from_static("7"));
    headers.insert("grpc-message", HeaderValue::from_static(FORBIDDEN_DETAIL));
    res
}

/// The gRPC refusal for `error`: `grpc-status: 7` for [`AuthError::Forbidden`], 16 otherwise.
pub fn grpc_rejection_response(
    error: &AuthError,
    request_headers: &HeaderMap,
) -> Response<ResponseBody> {
    if *error == AuthError::Forbidden {
        grpc_permission_denied_response(request_headers)
    } else {
        grpc_unauthenticated_response(request_headers)
    }
}

/// The 401 for a request that presented a token nobody judged (the axum `Claims` extractor on
/// a request the layer did not look at): `error="invalid_token"` without a description, since
/// there is no reason to give.
#[cfg(feature = "axum")]
pub(crate) fn unjudged_token_response(method: &Method) -> Response<ResponseBody> {
    unauthorized_with_challenge(
        method,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    )
}

fn unauthorized_with_challenge(method: &Method, challenge: HeaderValue) -> Response<ResponseBody> {
    let mut res = error_response(method, StatusCode::UNAUTHORIZED, INVALID_TOKEN_DETAIL);
    res.headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge);
    res
}

/// Renders the `503 Service Unavailable` of a login, refresh or logout while the session store
/// cannot be reached: the §2 body with [`UNAVAILABLE_DETAIL`] and `Retry-After` in seconds.
///
/// ```
/// use http::Method;
/// let res = tower_jwt_login::error::unavailable_response(&Method::POST, 5);
/// assert_eq!(res.status(), 503);
/// assert_eq!(res.headers()["retry-after"], "5");
/// ```
pub fn unavailable_response(method: &Method, retry_after_secs: u64) -> Response<ResponseBody> {
    unavailable_response_with(method, retry_after_secs, UNAVAILABLE_DETAIL)
}

/// [`unavailable_response`] with another detail (the second-factor store's).
pub(crate) fn unavailable_response_with(
    method: &Method,
    retry_after_secs: u64,
    detail: &str,
) -> Response<ResponseBody> {
    let mut res = error_response(method, StatusCode::SERVICE_UNAVAILABLE, detail);
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    res
}

/// Whether the request is gRPC: its `content-type` starts with `application/grpc` (gRPC,
/// `application/grpc+proto`, gRPC-Web), compared case-insensitively.
pub fn is_grpc_request(headers: &HeaderMap) -> bool {
    const GRPC: &[u8] = b"application/grpc";
    headers.get(header::CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes()
            .get(..GRPC.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(GRPC))
    })
}

/// The gRPC refusal: a trailers-only response, HTTP 200 with `grpc-status: 16`
/// (UNAUTHENTICATED), `grpc-message: Missing or invalid JWT token` and no body, which every gRPC
/// client reads as a `Status` with code `Unauthenticated`. The `content-type` repeats the
/// request's when that is a gRPC one (so gRPC-Web clients get theirs), else `application/grpc`.
pub fn grpc_unauthenticated_response(request_headers: &HeaderMap) -> Response<ResponseBody> {
    let content_type = request_headers
        .get(header::CONTENT_TYPE)
        .filter(|_| is_grpc_request(request_headers))
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("application/grpc"));
    let mut res = Response::new(Full::default());
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert("grpc-status", HeaderValue::from_static("16"));
    headers.insert(
        "grpc-message",
        HeaderValue::from_static(INVALID_TOKEN_DETAIL),
    );
    res
}

/// Why a login failed. Each variant maps to one status and one fixed `details` string.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoginError {
    /// No usable credentials: malformed or missing body fields, wrong `Content-Type`, a bearer
    /// that no Auth0 tenant claims (400).
    MissingCredentials,
    /// Wrong username or password (401).
    InvalidCredentials,
    /// The right password for a user with the [second factor](crate::factor) on, without a
    /// code or a remembered device (401, [`TOTP_REQUIRED_DETAIL`]).
    TotpRequired,
    /// The right password with a wrong, replayed or spent second-factor code (401,
    /// [`INVALID_TOTP_DETAIL`]); counted by the throttle like a wrong password.
    InvalidTotp,
    /// The [second-factor store](crate::factor::SecondFactorStore) cannot be reached: no tokens
    /// are issued (503, with `Retry-After` in seconds).
    SecondFactorUnavailable {
        /// The `Retry-After` value, in seconds.
        retry_after_secs: u64,
    },
    /// An Auth0 token claimed by a tenant but refused (401); the fixed reason is sent.
    Auth0Rejected(&'static str),
    /// The body exceeds the configured limit (413).
    PayloadTooLarge,
    /// Too many failed logins for the account or client address (429, with `Retry-After`);
    /// answered at once, without the failure delay.
    Throttled(Throttled),
    /// The credential store failed (500). The source is logged, never sent.
    Store(Box<dyn std::error::Error + Send + Sync>),
    /// The [session store](crate::session) cannot be reached: no tokens are issued (503, with
    /// `Retry-After` in seconds).
    Unavailable {
        /// The `Retry-After` value, in seconds.
        retry_after_secs: u64,
    },
}

impl LoginError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            LoginError::MissingCredentials => StatusCode::BAD_REQUEST,
            LoginError::InvalidCredentials
            | LoginError::TotpRequired
            | LoginError::InvalidTotp
            | LoginError::Auth0Rejected(_) => StatusCode::UNAUTHORIZED,
            LoginError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            LoginError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            LoginError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            LoginError::Unavailable { .. } | LoginError::SecondFactorUnavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    /// The `details` string sent to the client (fixed texts only).
    pub fn detail(&self) -> Cow<'static, str> {
        match self {
            LoginError::MissingCredentials => Cow::Borrowed(MISSING_CREDENTIALS_DETAIL),
            LoginError::InvalidCredentials => Cow::Borrowed(INVALID_CREDENTIALS_DETAIL),
            LoginError::TotpRequired => Cow::Borrowed(TOTP_REQUIRED_DETAIL),
            LoginError::InvalidTotp => Cow::Borrowed(INVALID_TOTP_DETAIL),
            LoginError::SecondFactorUnavailable { .. } => Cow::Borrowed(FACTOR_UNAVAILABLE_DETAIL),
            LoginError::Auth0Rejected(reason) => {
                Cow::Owned(format!("Invalid authorization credentials: {reason}"))
            }
            LoginError::PayloadTooLarge => Cow::Borrowed("Request body too large"),
            LoginError::Throttled(_) => Cow::Borrowed(THROTTLED_DETAIL),
            LoginError::Store(_) => Cow::Borrowed("Internal Server Error"),
            LoginError::Unavailable { .. } => Cow::Borrowed(UNAVAILABLE_DETAIL),
        }
    }

    /// Whether Core's failure delay applies (every 400 and 401 of the login route).
    pub fn is_delayed(&self) -> bool {
        matches!(
            self,
            LoginError::MissingCredentials
                | LoginError::InvalidCredentials
                | LoginError::TotpRequired
                | LoginError::InvalidTotp
                | LoginError::Auth0Rejected(_)
        )
    }

    /// A short label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            LoginError::MissingCredentials => "missing_credentials",
            LoginError::InvalidCredentials => "invalid_credentials",
            LoginError::TotpRequired => "totp_required",
            LoginError::InvalidTotp => "invalid_totp",
            LoginError::SecondFactorUnavailable { .. } => "second_factor_store_unavailable",
            LoginError::Auth0Rejected(_) => "auth0_rejected",
            LoginError::PayloadTooLarge => "payload_too_large",
            LoginError::Throttled(_) => "throttled",
            LoginError::Store(_) => "store_error",
            LoginError::Unavailable { .. } => "session_store_unavailable",
        }
    }

    pub(crate) fn into_response(self, method: &Method) -> Response<ResponseBody> {
        if let LoginError::Unavailable { retry_after_secs } = self {
            return unavailable_response(method, retry_after_secs);
        }
        if let LoginError::SecondFactorUnavailable { retry_after_secs } = self {
            return unavailable_response_with(method, retry_after_secs, FACTOR_UNAVAILABLE_DETAIL);
        }
        let mut res = error_response(method, self.status(), &self.detail());
        if let LoginError::Throttled(throttled) = &self {
            res.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(throttled.retry_after_secs()),
            );
        }
        res
    }
}

impl fmt::Display for LoginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoginError::Store(e) => write!(f, "credential store error: {e}"),
            other => f.write_str(other.reason()),
        }
    }
}

impl std::error::Error for LoginError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoginError::Store(e) => Some(&**e),
            _ => None,
        }
    }
}

/// A failure of the [session store](crate::session::SessionStore) itself.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionError {
    /// The store cannot be reached in time (timeout, connection refused or lost). The services
    /// answer `503 Service Unavailable` with `Retry-After`; no token is issued.
    Unavailable(String),
    /// The store answered with an error (a bug, a misconfiguration). Answered as a 500.
    Store(String),
    /// The store cannot list a subject's sessions ([`SessionStore::list`](crate::session::SessionStore::list) not
    /// implemented).
    Unsupported,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Unavailable(why) => write!(f, "session store unavailable: {why}"),
            SessionError::Store(why) => write!(f, "session store error: {why}"),
            SessionError::Unsupported => f.write_str("the session store cannot list sessions"),
        }
    }
}

impl std::error::Error for SessionError {}

/// An attempt refused by the throttle. The login answers 429 with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    retry_after: Duration,
    scope: ThrottleScope,
}

/// Which limit refused an attempt (for logs and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ThrottleScope {
    /// The (account, address) limit.
    AccountAndAddress,
    /// The per-address limit.
    Address,
    /// The per-account ceiling.
    Account,
    /// The per-IPv6-/56 limit.
    Ipv6Net56,
    /// The per-IPv6-/48 limit.
    Ipv6Net48,
}

impl ThrottleScope {
    /// A short label: `account_address`, `address`, `account`, `ipv6_56`, `ipv6_48`.
    pub fn as_str(self) -> &'static str {
        match self {
            ThrottleScope::AccountAndAddress => "account_address",
            ThrottleScope::Address => "address",
            ThrottleScope::Account => "account",
            ThrottleScope::Ipv6Net56 => "ipv6_56",
            ThrottleScope::Ipv6Net48 => "ipv6_48",
        }
    }
}

impl Throttled {
    pub(crate) fn new(retry_after: Duration, scope: ThrottleScope) -> Self {
        Throttled { retry_after, scope }
    }

    /// How long until the refusing window ends.
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }

    /// [`retry_after`](Self::retry_after) in whole seconds, rounded up, at least 1: the
    /// `Retry-After` header value.
    pub fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_secs();
        let secs = if self.retry_after.subsec_nanos() > 0 {
            secs.saturating_add(1)
        } else {
            secs
        };
        secs.max(1)
    }

    /// Which limit refused the attempt.
    pub fn scope(&self) -> ThrottleScope {
        self.scope
    }
}

impl fmt::Display for Throttled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "too many failed logins ({} limit); retry after {} s",
            self.scope.as_str(),
            self.retry_after_secs()
        )
    }
}

impl std::error::Error for Throttled {}

#[cfg(test)]
mod tests {
    use super::{AuthError, TokenError};

    fn all() -> Vec<AuthError> {
        let mut errors = vec![
            AuthError::MissingToken,
            AuthError::MultipleAuthorizationHeaders,
            AuthError::InvalidAuthorizationHeader,
            AuthError::Forbidden,
        ];
        errors.extend(
            [
                TokenError::TooLong,
                TokenError::Malformed,
                TokenError::UnsupportedAlgorithm,
                TokenError::UnsupportedHeader,
                TokenError::InvalidSignature,
                TokenError::InvalidClaims,
                TokenError::MissingClaim("exp"),
                TokenError::MissingClaim("sub"),
                TokenError::Expired,
                TokenError::NotYetValid,
                TokenError::IssuedInFuture,
                TokenError::InvalidIssuer,
                TokenError::WrongTokenUse,
                TokenError::Revoked,
                TokenError::NoSession,
            ]
            .map(AuthError::InvalidToken),
        );
        errors
    }

    /// Every challenge is RFC 6750 §3: `error="invalid_token"` and an `error_description` of
    /// printable ASCII without `"` or `\`, exactly when a token was presented.
    #[test]
    fn challenges_follow_rfc_6750() {
        for error in all() {
            let challenge = error.challenge();
            let challenge = challenge.to_str().unwrap();
            match error.description() {
                None => {
                    assert_eq!(error, AuthError::MissingToken);
                    assert_eq!(challenge, "Bearer");
                }
                Some(description) => {
                    assert!(error.token_presented());
                    assert!(!description.is_empty());
                    assert!(
                        description
                            .bytes()
                            .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\'),
                        "{description:?}"
                    );
                    let code = if error == AuthError::Forbidden {
                        "insufficient_scope"
                    } else {
                        "invalid_token"
                    };
                    assert_eq!(
                        challenge,
                        format!("Bearer error=\"{code}\", error_description=\"{description}\"")
                    );
                }
            }
        }
        // Distinct reasons read differently where a client must act differently.
        let expired = AuthError::InvalidToken(TokenError::Expired).description();
        let forged = AuthError::InvalidToken(TokenError::InvalidSignature).description();
        assert_eq!(expired, Some("token expired"));
        assert_eq!(forged, Some("invalid signature"));
    }
}
