//! The audit events' shared vocabulary: their `tracing` target and field formats, used by every
//! service that audits an outcome (login, refresh, logout, sessions, password change, API keys, the second factor). The events
//! themselves are described in the [`login`](crate::login) module docs.

use std::net::IpAddr;

use crate::error::{AuthError, TokenError};

/// The target of the audit events.
pub(crate) const AUDIT: &str = "tower_jwt_login::audit";

/// The `client.address` field of an audit event: the address, or `unknown`.
pub(crate) struct AuditClient(pub(crate) Option<IpAddr>);

impl std::fmt::Display for AuditClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => f.write_str("unknown"),
        }
    }
}

/// The `error.type` of an audit event refusing a token: a short code per kind of refusal.
pub(crate) fn token_error_type(error: &AuthError) -> &'static str {
    match error {
        AuthError::MissingToken => "missing_token",
        AuthError::MultipleAuthorizationHeaders => "multiple_authorization_headers",
        AuthError::InvalidAuthorizationHeader => "invalid_authorization_header",
        AuthError::Forbidden => "forbidden",
        AuthError::InvalidToken(error) => match error {
            TokenError::TooLong => "token_too_long",
            TokenError::Malformed => "malformed_token",
            TokenError::UnsupportedAlgorithm => "unsupported_algorithm",
            TokenError::UnsupportedHeader => "unsupported_token_header",
            TokenError::InvalidSignature => "invalid_signature",
            TokenError::UnknownKey => "unknown_key",
            TokenError::InvalidClaims => "invalid_claims",
            TokenError::MissingClaim(_) => "missing_claim",
            TokenError::Expired => "token_expired",
            TokenError::NotYetValid => "token_not_yet_valid",
            TokenError::IssuedInFuture => "token_issued_in_future",
            TokenError::InvalidIssuer => "invalid_issuer",
            TokenError::WrongTokenUse => "wrong_token_use",
            TokenError::Revoked => "token_revoked",
            TokenError::NoSession => "token_without_session",
        },
    }
}
