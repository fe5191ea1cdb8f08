//! Browser mode: the refresh token in a cookie JavaScript cannot read, CSRF checks for every
//! request a cookie authenticates. Turned on with
//! [`LoginKit::browser`](crate::kit::LoginKit::browser); Core's JSON protocol is unchanged for
//! every client that sends `Authorization: Bearer`.
//!
//! What the OWASP cheat sheets (Session Management, CSRF, HTML5 storage) ask of a token login
//! used by a browser:
//!
//! - **The refresh token lives only in a cookie**: `__Secure-refresh_token`, `HttpOnly`,
//!   `Secure`, `SameSite=Strict`, `Max-Age` its lifetime, set twice, scoped to the refresh path
//!   and to the logout paths. Login and refresh set it (rotation replaces it); logout and a
//!   refused refresh clear it. The login answer's body carries no refresh token. A login is
//!   answered this way when it comes from a page that can use the cookies
//!   ([`Browser::uses_cookies`]: Fetch Metadata from the same origin or an allowed one);
//!   every other client gets Core's JSON answer unchanged.
//! - **The access token** stays in the body, for a single-page app to keep in memory. With
//!   [`Browser::access_cookie`] it is also set as `__Host-access_token` (`HttpOnly`, `Path=/`),
//!   for server-rendered apps, and the layer reads it when no `Authorization` header is sent.
//! - **CSRF**: a request a cookie authenticates (refresh, logout, or any unsafe method with the
//!   access cookie) must come from an allowed page: with Fetch Metadata, `Sec-Fetch-Site` is
//!   `same-origin` or `none`, or the `Origin` is one of the configured origins; without it (an
//!   older browser or another client), the `X-CSRF-Token` header must echo the
//!   `__Host-csrf_token` cookie (double submit; that cookie is readable by JavaScript).
//!   Refused: `403 {"code":403,"message":"Forbidden","details":["CSRF check failed"]}`.
//!
//! ```
//! use http::HeaderMap;
//! use tower_jwt_login::browser::{Browser, CSRF_COOKIE, REFRESH_COOKIE};
//!
//! let browser = Browser::new().origins(["https://ui.example.com"]);
//! let mut headers = HeaderMap::new();
//! headers.insert("sec-fetch-site", "same-site".parse().unwrap());
//! headers.insert("origin", "https://evil.example.com".parse().unwrap());
//! assert!(!browser.csrf_passes(&headers));
//! headers.insert("origin", "https://ui.example.com".parse().unwrap());
//! assert!(browser.csrf_passes(&headers));
//! assert_eq!(REFRESH_COOKIE, "__Secure-refresh_token");
//! assert_eq!(CSRF_COOKIE, "__Host-csrf_token");
//! ```

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{COOKIE, ORIGIN, SET_COOKIE};
use http::{HeaderMap, HeaderValue};
use subtle::ConstantTimeEq;

use crate::token::fill_random;

/// The refresh token's cookie.
pub const REFRESH_COOKIE: &str = "__Secure-refresh_token";
/// The access token's cookie (with [`Browser::access_cookie`]).
pub const ACCESS_COOKIE: &str = "__Host-access_token";
/// The double-submit CSRF cookie, readable by JavaScript.
pub const CSRF_COOKIE: &str = "__Host-csrf_token";
/// The header a page echoes the CSRF cookie in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The detail of a refused CSRF check.
pub const CSRF_DETAIL: &str = "CSRF check failed";

/// The browser mode's settings. See the [module docs](self).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct Browser {
    access_cookie: bool,
    origins: Vec<String>,
}

impl Browser {
    /// Refresh token in a cookie, access token in the body, same-origin pages only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also sets the access token as an `HttpOnly` cookie, which the layer then reads (for
    /// server-rendered apps whose pages cannot hold a token).
    pub fn access_cookie(mut self, on: bool) -> Self {
        self.access_cookie = on;
        self
    }

    /// Pages of these other origins may use the cookies too (a UI served from another origin):
    /// they pass the CSRF check, and CORS allows credentials for them (and only them).
    pub fn origins<I, O>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = O>,
        O: Into<String>,
    {
        self.origins = origins.into_iter().map(Into::into).collect();
        self
    }

    /// Whether the access token is set as a cookie too.
    pub fn has_access_cookie(&self) -> bool {
        self.access_cookie
    }

    /// The other origins allowed.
    pub fn allowed_origins(&self) -> &[String] {
        &self.origins
    }

    /// Whether a login with these headers comes from a page that can use the cookies: a
    /// browser (it sends Fetch Metadata) on the same origin, or on one of the allowed origins.
    /// Every other login — Core's clients, scripts, a page of another origin using Bearer
    /// tokens — gets Core's JSON answer with both tokens in the body and no cookie.
    pub fn uses_cookies(&self, headers: &HeaderMap) -> bool {
        match headers.get("sec-fetch-site").map(HeaderValue::as_bytes) {
            Some(b"same-origin" | b"none") => true,
            Some(_) => headers
                .get(ORIGIN)
                .and_then(|o| o.to_str().ok())
                .is_some_and(|o| self.origins.iter().any(|a| a.eq_ignore_ascii_case(o))),
            None => false,
        }
    }

    /// Whether a request with these headers passes the CSRF check (see the
    /// [module docs](self)).
    pub fn csrf_passes(&self, headers: &HeaderMap) -> bool {
        let origin = headers
            .get(ORIGIN)
            .and_then(|o| o.to_str().ok())
            .filter(|o| *o != "null");
        let listed = origin.is_some_and(|o| self.origins.iter().any(|a| a.eq_ignore_ascii_case(o)));
        match headers.get("sec-fetch-site").map(HeaderValue::as_bytes) {
            Some(b"same-origin" | b"none") => true,
            Some(_) => listed,
            None => double_submit_passes(headers),
        }
    }
}

/// The `X-CSRF-Token` header equals the CSRF cookie (constant time), both present.
fn double_submit_passes(headers: &HeaderMap) -> bool {
    let Some(sent) = headers.get(CSRF_HEADER).map(HeaderValue::as_bytes) else {
        return false;
    };
    let Some(cookie) = cookie(headers, CSRF_COOKIE) else {
        return false;
    };
    !sent.is_empty() && bool::from(sent.ct_eq(cookie.as_bytes()))
}

/// The value of cookie `name` in the request's `Cookie` headers (the first one).
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim_matches('"'))
        .filter(|v| !v.is_empty())
}

/// A new CSRF token: 256 random bits, base64url.
pub(crate) fn new_csrf_token() -> String {
    let mut random = [0u8; 32];
    fill_random(&mut random);
    URL_SAFE_NO_PAD.encode(random)
}

/// Where the refresh cookie is sent: the refresh path and the logout paths.
#[derive(Debug, Clone)]
pub(crate) struct CookiePaths {
    pub(crate) refresh: String,
    pub(crate) logout: String,
}

fn push(headers: &mut HeaderMap, cookie: String) {
    // Token values are base64url and JWTs (`[A-Za-z0-9._-]`), paths the app's: always valid.
    if let Ok(value) = HeaderValue::try_from(cookie) {
        headers.append(SET_COOKIE, value);
    }
}

/// `Set-Cookie`s for a refresh token (both paths).
pub(crate) fn set_refresh(headers: &mut HeaderMap, paths: &CookiePaths, token: &str, ttl: u64) {
    for path in [&paths.refresh, &paths.logout] {
        push(
            headers,
            format!(
                "{REFRESH_COOKIE}={token}; Path={path}; Max-Age={ttl}; HttpOnly; Secure; SameSite=Strict"
            ),
        );
    }
}

/// `Set-Cookie` for the access token.
pub(crate) fn set_access(headers: &mut HeaderMap, token: &str, ttl: u64) {
    push(
        headers,
        format!(
            "{ACCESS_COOKIE}={token}; Path=/; Max-Age={ttl}; HttpOnly; Secure; SameSite=Strict"
        ),
    );
}

/// `Set-Cookie` for the CSRF token (readable by the page).
pub(crate) fn set_csrf(headers: &mut HeaderMap, token: &str, ttl: u64) {
    push(
        headers,
        format!("{CSRF_COOKIE}={token}; Path=/; Max-Age={ttl}; Secure; SameSite=Strict"),
    );
}

/// `Set-Cookie`s that clear every cookie of the mode.
pub(crate) fn clear(headers: &mut HeaderMap, paths: &CookiePaths, access: bool) {
    for path in [&paths.refresh, &paths.logout] {
        push(
            headers,
            format!("{REFRESH_COOKIE}=; Path={path}; Max-Age=0; HttpOnly; Secure; SameSite=Strict"),
        );
    }
    if access {
        push(
            headers,
            format!("{ACCESS_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict"),
        );
    }
    push(
        headers,
        format!("{CSRF_COOKIE}=; Path=/; Max-Age=0; Secure; SameSite=Strict"),
    );
}

/// Whether `origin` may carry `Secure` cookies: `https://`, or plain `http://` on a loopback
/// host (development; browsers count those as secure contexts).
pub(crate) fn origin_is_secure(origin: &str) -> bool {
    if origin.starts_with("https://") {
        return true;
    }
    is_loopback_http(origin)
}

pub(crate) fn is_loopback_http(origin: &str) -> bool {
    let Some(authority) = origin.strip_prefix("http://") else {
        return false;
    };
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1") || host.ends_with(".localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn csrf_rules() {
        let b = Browser::new().origins(["https://ui.example.com"]);
        assert!(b.csrf_passes(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(b.csrf_passes(&headers(&[("sec-fetch-site", "none")])));
        assert!(!b.csrf_passes(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(!b.csrf_passes(&headers(&[
            ("sec-fetch-site", "same-site"),
            ("origin", "https://other.example.com")
        ])));
        assert!(b.csrf_passes(&headers(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://ui.example.com")
        ])));
        // No Fetch Metadata: double submit.
        assert!(!b.csrf_passes(&headers(&[])));
        assert!(!b.csrf_passes(&headers(&[("cookie", "__Host-csrf_token=abc")])));
        assert!(!b.csrf_passes(&headers(&[
            ("cookie", "__Host-csrf_token=abc"),
            ("x-csrf-token", "abd")
        ])));
        assert!(b.csrf_passes(&headers(&[
            ("cookie", "a=b; __Host-csrf_token=abc"),
            ("x-csrf-token", "abc")
        ])));
        assert!(!b.csrf_passes(&headers(&[
            ("cookie", "__Host-csrf_token="),
            ("x-csrf-token", "")
        ])));
    }

    #[test]
    fn cookies_are_read_from_every_header() {
        let h = headers(&[
            ("cookie", "a=1; b=2"),
            ("cookie", "__Secure-refresh_token=tok"),
        ]);
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, REFRESH_COOKIE), Some("tok"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn secure_origins() {
        for o in [
            "https://a.example",
            "http://localhost:3000",
            "http://127.0.0.1:8080",
            "http://[::1]:80",
            "http://app.localhost",
        ] {
            assert!(origin_is_secure(o), "{o}");
        }
        for o in [
            "http://example.com",
            "http://10.0.0.1",
            "http://localhost.evil.com",
        ] {
            assert!(!origin_is_secure(o), "{o}");
        }
    }
}
