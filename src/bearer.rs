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
    // One pass over the bytes: the b64token check admits ASCII only, so no separate UTF-8 or
    // visible-ASCII validation is needed before it.
    let bytes = value.as_bytes();
    let (scheme, rest) = bytes
        .split_at_checked(b"bearer".len())
        .ok_or(AuthError::InvalidAuthorizationHeader)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || rest.first() != Some(&b' ') {
        return Err(AuthError::InvalidAuthorizationHeader);
    }
    let start = rest
        .iter()
        .position(|&b| b != b' ')
        .ok_or(AuthError::InvalidAuthorizationHeader)?;
    let token = rest.get(start..).unwrap_or_default();
    if !is_b64token(token) {
        return Err(AuthError::InvalidAuthorizationHeader);
    }
    std::str::from_utf8(token).map_err(|_| AuthError::InvalidAuthorizationHeader)
}

/// RFC 6750 `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &[u8]) -> bool {
    let body_len = token.len() - token.iter().rev().take_while(|&&b| b == b'=').count();
    let (body, _padding) = token.split_at(body_len);
    !body.is_empty()
        && body.iter().all(|&b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}
