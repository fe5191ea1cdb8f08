//! Extracting the bearer token from `Authorization` (RFC 6750 §2.1; docs/protocol.md §1).
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
    let token = bearer_bytes(headers)?;
    // The b64token check admits ASCII only, so no separate UTF-8 or visible-ASCII validation
    // is needed before it.
    if !is_b64token(token) {
        return Err(AuthError::InvalidAuthorizationHeader);
    }
    std::str::from_utf8(token).map_err(|_| AuthError::InvalidAuthorizationHeader)
}

/// The bytes after `Bearer ` of the one `Authorization` header, *not yet checked* to be a
/// `b64token` (nor text): the layer verifies them first and checks the syntax only when they
/// fail ([`token_refusal`]), since a token that verifies is three base64url segments, always a
/// `b64token`. Every other refusal of [`bearer_token`] is made here.
pub(crate) fn bearer_bytes(headers: &HeaderMap) -> Result<&[u8], AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or(AuthError::MissingToken)?;
    if values.next().is_some() {
        return Err(AuthError::MultipleAuthorizationHeaders);
    }
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
    Ok(rest.get(start..).unwrap_or_default())
}

/// Why the bytes of [`bearer_bytes`] were refused when they failed verification with `error`:
/// what [`bearer_token`] followed by verification reports (the header's syntax first).
pub(crate) fn token_refusal(token: &[u8], error: crate::error::TokenError) -> AuthError {
    if is_b64token(token) {
        AuthError::InvalidToken(error)
    } else {
        AuthError::InvalidAuthorizationHeader
    }
}

/// RFC 6750 `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
///
/// Checked 16 bytes at a time with branch-free comparisons that the compiler turns into vector
/// instructions: a token is a few hundred bytes, and byte-by-byte range checks with an early
/// exit were the costliest step of a request outside verification itself.
fn is_b64token(token: &[u8]) -> bool {
    let body_len = token.len() - token.iter().rev().take_while(|&&b| b == b'=').count();
    let (body, _padding) = token.split_at(body_len);
    let mut chunks = body.chunks_exact(16);
    let chunks_ok = chunks
        .by_ref()
        .all(|chunk| chunk.iter().fold(true, |ok, &b| ok & allowed(b)));
    !body.is_empty() && chunks_ok && chunks.remainder().iter().all(|&b| allowed(b))
}

/// Whether a `b64token` body may contain `b`, without branches: `b | 0x20` folds `A-Z` onto
/// `a-z` (and nothing else onto it), and the wrapping subtractions turn ranges into one compare.
#[inline]
fn allowed(b: u8) -> bool {
    (b.wrapping_sub(b'0') < 10)
        | ((b | 0x20).wrapping_sub(b'a') < 26)
        | (b == b'-')
        | (b == b'.')
        | (b == b'_')
        | (b == b'~')
        | (b == b'+')
        | (b == b'/')
}

#[cfg(test)]
mod tests {
    use super::is_b64token;

    /// The definition, byte by byte, as RFC 6750 writes it.
    fn reference(token: &[u8]) -> bool {
        let body_len = token.len() - token.iter().rev().take_while(|&&b| b == b'=').count();
        let body = &token[..body_len];
        !body.is_empty()
            && body.iter().all(|&b| {
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
            })
    }

    /// The table agrees with the definition for every byte at every position of tokens around
    /// the 16-byte chunk boundaries, with and without padding.
    #[test]
    fn table_agrees_with_the_definition() {
        for len in [1usize, 2, 15, 16, 17, 31, 32, 33, 300] {
            for at in [0, len / 2, len - 1] {
                for b in 0..=255u8 {
                    let mut token = vec![b'a'; len];
                    token[at] = b;
                    assert_eq!(is_b64token(&token), reference(&token), "{len} {at} {b}");
                    token.extend_from_slice(b"==");
                    assert_eq!(is_b64token(&token), reference(&token), "{len} {at} {b} ==");
                }
            }
        }
        for token in [&b""[..], b"=", b"==", b"a=b", b"=a"] {
            assert_eq!(is_b64token(token), reference(token), "{token:?}");
        }
    }
}
