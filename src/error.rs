//! The crate's error types: why a token, a request, a login or a store failed, each with the
//! status and the fixed `details` string it is answered with (docs/protocol.md §2). The
//! responses themselves are rendered in one place, [`response`](crate::response).
//!
//! ```
//! use http::StatusCode;
//! use tower_jwt_login::error::{AuthError, INVALID_CREDENTIALS_DETAIL, LoginError, TokenError};
//!
//! let refused = AuthError::from(TokenError::Expired);
//! assert_eq!(refused.to_string(), "invalid token: token expired");
//! assert_eq!(refused.description(), Some("token expired"));
//! assert_eq!(LoginError::InvalidCredentials.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(LoginError::InvalidCredentials.detail(), INVALID_CREDENTIALS_DETAIL);
//! ```

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use http::{HeaderValue, StatusCode};

/// Any error, boxed: what the crate takes from inner services, bodies and stores it does not
/// know the error type of.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

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
