//! [`ClientError`]: why the client could not get or use a token, and [`RequestError`]: the
//! layer's error, a token failure or the wrapped client's own error.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

/// Why a [`TokenSource`](super::TokenSource) could not produce a usable access token.
///
/// Cheap to clone: requests waiting on the same failed refresh all receive the one error.
///
/// Each error of an exchange names the request (`request`: the method and the URL called),
/// what the client expected, and what came back (the status, and the server's `details[0]` or
/// a short excerpt of its body), in `Debug` as in `Display`, so a log line says what to fix.
/// Nothing here contains a token, an API key or a password: excerpts are bounded (200
/// characters), control characters and whitespace runs become one space, the secrets the
/// request carried are replaced by `<redacted>`, and so is any run of 32 or more token
/// characters (`A–Z a–z 0–9 - . _ ~ + / =`, as JWTs and keys are written). The body of a `200`
/// answer of a token endpoint — which carries tokens — is never quoted.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClientError {
    /// The base URL is not an absolute `http://` or `https://` URL without query or fragment,
    /// or an endpoint path is not a path beginning with `/`.
    InvalidUrl(String),
    /// The about document does not offer the login the client was given in its `auths`
    /// (`localjwt` for a password, an `auth0 …` entry for an Auth0 token).
    NotOffered {
        /// `GET <about URL>`.
        request: String,
        /// What the client looked for: `localjwt`, or `auth0 domain=<domain>`.
        wanted: String,
        /// The server's `auths`, as it listed them.
        offered: Vec<String>,
    },
    /// With [`Discovery::CoreAbout`](super::Discovery::CoreAbout), the about path did not
    /// answer Core's about document (another status, or a body without `auths`).
    Discovery {
        /// `GET <about URL>`.
        request: String,
        /// What the client expected.
        expected: &'static str,
        /// The status that came back.
        status: StatusCode,
        /// A bounded, sanitised excerpt of the body that came back (see the type's
        /// documentation); empty for an empty body.
        body: String,
    },
    /// A request to a token endpoint could not be built, such as for a username, token or API
    /// key that is not a valid header value.
    InvalidRequest {
        /// The method and URL to be called.
        request: String,
        /// Why not.
        reason: &'static str,
    },
    /// A new login is needed (no tokens, or the refresh token was refused or has expired), but
    /// the client holds no credentials: it was resumed from saved state alone.
    NoCredentials,
    /// A new login is needed, and the function given to
    /// [`credentials_on_demand`](super::TokenSourceBuilder::credentials_on_demand) failed.
    CredentialsUnavailable {
        /// Its error.
        source: Arc<dyn StdError + Send + Sync>,
    },
    /// The login refused the credentials (`400` or `401`); `detail` is the server's.
    LoginRefused {
        /// `POST <login URL>`.
        request: String,
        /// `400` or `401`.
        status: StatusCode,
        /// The server's `details[0]`, such as
        /// `Invalid authorization credentials: invalid username or password`.
        detail: String,
    },
    /// A token endpoint answered a status the protocol does not give it, or one of its own
    /// errors other than a refusal: `404` (no such endpoint at that path), `429` (login
    /// throttled), `503`, `500`, …
    Status {
        /// The method and URL called, such as `POST http://127.0.0.1:8080/api/login`.
        request: String,
        /// What the client expected, such as `200 and a token pair`.
        expected: &'static str,
        /// The status that came back.
        status: StatusCode,
        /// The server's `details[0]` when the body has the error shape of docs/protocol.md §2,
        /// else a bounded, sanitised excerpt of the body, else the reason phrase.
        detail: String,
        /// `Retry-After`, when the server sent one (`429`, `503`).
        retry_after: Option<Duration>,
    },
    /// A token endpoint answered `200` with a body that is not what the protocol says.
    InvalidResponse {
        /// The method and URL called.
        request: String,
        /// What the client expected.
        expected: &'static str,
        /// What came instead (the body itself is not quoted: it may hold tokens).
        reason: &'static str,
    },
    /// [`resume`](super::TokenSource::resume) got state saved for another server.
    WrongServer {
        /// This client's base URL.
        expected: String,
        /// The URL the state was saved for.
        found: String,
    },
    /// A token endpoint did not answer within the configured timeout.
    Timeout {
        /// The method and URL called.
        request: String,
        /// The timeout.
        after: Duration,
    },
    /// The HTTP exchange with a token endpoint failed (connect, I/O, body over the limit).
    Http {
        /// The method and URL called.
        request: String,
        /// The transport's error.
        source: Arc<dyn StdError + Send + Sync>,
    },
}

impl ClientError {
    /// `Retry-After` of a [`Status`](Self::Status) error, when the server sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ClientError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// `status` as `401 Unauthorized` (the number alone for a status without a reason phrase).
struct Status(StatusCode);

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.as_u16())?;
        if let Some(reason) = self.0.canonical_reason() {
            write!(f, " {reason}")?;
        }
        Ok(())
    }
}

/// `: <text>`, or ` (empty body)`.
struct Said<'a>(&'a str);

impl fmt::Display for Said<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str(" (empty body)")
        } else {
            write!(f, ": {}", self.0)
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::InvalidUrl(reason) => write!(f, "invalid URL: {reason}"),
            ClientError::NotOffered {
                request,
                wanted,
                offered,
            } => write!(
                f,
                "the server does not offer the login this client was given: wanted `{wanted}`, \
                 {request} lists auths {offered:?}"
            ),
            ClientError::Discovery {
                request,
                expected,
                status,
                body,
            } => write!(
                f,
                "{request} answered {}{}; expected {expected} (for a server without one, \
                 use Discovery::IfPresent or Discovery::Off)",
                Status(*status),
                Said(body),
            ),
            ClientError::InvalidRequest { request, reason } => {
                write!(f, "cannot send {request}: {reason}")
            }
            ClientError::NoCredentials => f.write_str(
                "a new login is needed (no usable refresh token) but the client holds no \
                 credentials",
            ),
            ClientError::CredentialsUnavailable { source } => write!(
                f,
                "a new login is needed (no usable refresh token) but no credentials could be \
                 had: {source}"
            ),
            ClientError::LoginRefused {
                request,
                status,
                detail,
            } => write!(
                f,
                "login refused: {request} answered {}: {detail}",
                Status(*status)
            ),
            ClientError::Status {
                request,
                expected,
                status,
                detail,
                retry_after,
            } => {
                write!(f, "{request} answered {}{}", Status(*status), Said(detail))?;
                if let Some(after) = retry_after {
                    write!(f, " (retry after {} s)", after.as_secs())?;
                }
                write!(f, "; expected {expected}")
            }
            ClientError::InvalidResponse {
                request,
                expected,
                reason,
            } => write!(
                f,
                "{request} answered 200 with {reason}; expected {expected}"
            ),
            ClientError::WrongServer { expected, found } => write!(
                f,
                "the saved token state is for {found}, not for this client's {expected}"
            ),
            ClientError::Timeout { request, after } => write!(
                f,
                "{request} did not answer within {} ms",
                after.as_millis()
            ),
            ClientError::Http { request, source } => write!(f, "{request} failed: {source}"),
        }
    }
}

impl StdError for ClientError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            ClientError::Http { source, .. } | ClientError::CredentialsUnavailable { source } => {
                Some(&**source as &(dyn StdError + 'static))
            }
            _ => None,
        }
    }
}

/// The longest excerpt of a body an error quotes, in characters.
const EXCERPT_CHARS: usize = 200;
/// Runs of token characters this long or longer are redacted from excerpts.
const TOKEN_RUN: usize = 32;

/// A bounded, single-line excerpt of `body` for an error message, with `secrets` (what the
/// request carried: a password, an API key, a token) and every long run of token characters
/// replaced by `<redacted>`.
pub(crate) fn excerpt(body: &[u8], secrets: &[&str]) -> String {
    let mut text = String::from_utf8_lossy(body).into_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        text = text.replace(secret, "<redacted>");
    }
    let mut out = String::new();
    let mut run = String::new();
    let mut space = false;
    let flush = |out: &mut String, run: &mut String| {
        if run.chars().count() >= TOKEN_RUN {
            out.push_str("<redacted>");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || "-._~+/=".contains(c) {
            run.push(c);
            space = false;
            continue;
        }
        flush(&mut out, &mut run);
        if c.is_whitespace() || c.is_control() {
            if !space && !out.is_empty() {
                out.push(' ');
            }
            space = true;
        } else {
            out.push(c);
            space = false;
        }
    }
    flush(&mut out, &mut run);
    let out = out.trim_end();
    match out.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", out[..cut].trim_end()),
        None => out.to_owned(),
    }
}

/// The error of a request sent through [`LoginClient`](super::LoginClient): no token could be
/// had, or the wrapped client failed.
#[derive(Debug)]
pub enum RequestError<E> {
    /// Logging in or refreshing failed; the request was not sent (or not sent again).
    Token(ClientError),
    /// The wrapped client's own error.
    Inner(E),
}

impl<E: fmt::Display> fmt::Display for RequestError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Token(e) => write!(f, "no access token: {e}"),
            RequestError::Inner(e) => e.fmt(f),
        }
    }
}

impl<E: StdError + 'static> StdError for RequestError<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            RequestError::Token(e) => Some(e),
            RequestError::Inner(e) => Some(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_one_bounded_line() {
        assert_eq!(excerpt(b"", &[]), "");
        assert_eq!(
            excerpt(
                b"<html>\r\n  <body>\n\tNot\x1b[31m here</body>\n</html>\n",
                &[]
            ),
            "<html> <body> Not [31m here</body> </html>"
        );
        let long = "word ".repeat(100);
        let cut = excerpt(long.as_bytes(), &[]);
        assert_eq!(cut, format!("{}word…", "word ".repeat(39)));
        let cut = excerpt("é".repeat(300).as_bytes(), &[]);
        assert_eq!(cut, format!("{}…", "é".repeat(EXCERPT_CHARS)));
        assert_eq!(excerpt(b"caf\xc3\xa9 \xff!", &[]), "café \u{fffd}!");
    }

    #[test]
    fn excerpts_never_quote_a_secret_or_a_token() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJlc2lnbmF0dXJl";
        let body =
            format!(r#"{{"error":"bad login for hunter2","token":"{jwt}","hint":"short.run ok"}}"#);
        assert_eq!(
            excerpt(body.as_bytes(), &["hunter2", ""]),
            r#"{"error":"bad login for <redacted>","token":"<redacted>","hint":"short.run ok"}"#
        );
        // 31 token characters stay, 32 go.
        let (a, b) = ("a".repeat(31), "b".repeat(32));
        assert_eq!(
            excerpt(format!("{a} {b}").as_bytes(), &[]),
            format!("{a} <redacted>")
        );
        // A secret at the cut is redacted before the cut, never halved.
        let body = format!("{}pa55word tail", "x ".repeat(99));
        assert!(!excerpt(body.as_bytes(), &["pa55word"]).contains("pa55"));
    }
}
