//! Extracting the bearer token from `Authorization` (RFC 6750 §2.1; PROTOCOL.md §1).
//!
//! ```
//! use http::HeaderMap;
//! use tower_jwt_login::bearer::bearer_token;
//! use tower_jwt_login::error::AuthError;
//!
//! let mut headers = HeaderMap::new();
//! assert_eq!(bearer_token(&headers), Err(AuthError::MissingToken));
//! headers.insert("authorization", "bearer abc.def.ghi".parse().unwrap());
//! assert_eq!(bearer_token(&headers), Ok("abc.def.ghi"));
//! headers.append("authorization", "Bearer x.y.z".parse().unwrap());
//! assert_eq!(bearer_token(&headers), Err(AuthError::MultipleAuthorizationHeaders));
//! ```

use http::HeaderMap;
use http::header::AUTHORIZATION;

use crate::error::AuthError;

/// The token of the one `Authorization: Bearer <token>` header.
///
/// The scheme is matched case-insensitively and may be followed by one or more spaces (RFC 6750
/// `1*SP`). Refused: no header (`MissingToken`), two or more headers, another scheme, `Bearer`
/// alone, a token with characters outside RFC 6750's `b64token`, non-ASCII bytes. Tokens are never
/// taken from the query string or a cookie.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or(AuthError::MissingToken)?;
    if values.next().is_some() {
        return Err(AuthError::MultipleAuthorizationHeaders);
    }
    let value = value
        .to_str()
        .map_err(|_| AuthError::InvalidAuthorizationHeader)?;
    let (scheme, rest) = value
        .split_once(' ')
        .ok_or(AuthError::InvalidAuthorizationHeader)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::InvalidAuthorizationHeader);
    }
    let token = rest.trim_start_matches(' ');
    if token.is_empty() || !is_b64token(token) {
        return Err(AuthError::InvalidAuthorizationHeader);
    }
    Ok(token)
}

/// RFC 6750 `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}
