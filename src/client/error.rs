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
/// Its text never contains a token or a password; `detail` strings are the server's §2
/// `details`, which never echo them either (docs/protocol.md §2.2).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClientError {
    /// The base URL is not an absolute `http://` or `https://` URL without query or fragment.
    InvalidUrl(String),
    /// `GET /api` answered, but its `auths` do not offer the login the client was given
    /// (`localjwt` for a password, an `auth0 …` entry for an Auth0 token).
    NotOffered {
        /// What the client looked for: `localjwt`, or `auth0 domain=<domain>`.
        wanted: String,
        /// The server's `auths`, as it listed them.
        offered: Vec<String>,
    },
    /// `GET /api` did not answer a Core about document (another status, or no `auths`).
    Discovery(String),
    /// A new login is needed (no tokens, or the refresh token was refused or has expired), but
    /// the client holds no credentials: it was resumed from saved state alone.
    NoCredentials,
    /// `POST /api/login` refused the credentials (`400` or `401`); `detail` is the server's.
    LoginRefused {
        /// `400` or `401`.
        status: StatusCode,
        /// The server's `details[0]`, such as
        /// `Invalid authorization credentials: invalid username or password`.
        detail: String,
    },
    /// A token endpoint answered a status the protocol does not give it, or one of its own
    /// errors other than a refusal: `429` (login throttled), `503`, `500`, …
    Status {
        /// `POST /api/login`, `GET /api/login/refresh` or `POST /api/logout`.
        endpoint: &'static str,
        /// The status.
        status: StatusCode,
        /// The server's `details[0]`, or the reason phrase when the body is not §2-shaped.
        detail: String,
        /// `Retry-After`, when the server sent one (`429`, `503`).
        retry_after: Option<Duration>,
    },
    /// A token endpoint answered `200` with a body that is not what the protocol says.
    InvalidResponse {
        /// The endpoint.
        endpoint: &'static str,
        /// What was wrong.
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
        /// The endpoint.
        endpoint: &'static str,
    },
    /// The HTTP exchange with a token endpoint failed (connect, I/O, body over the limit).
    Http {
        /// The endpoint.
        endpoint: &'static str,
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

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::InvalidUrl(reason) => write!(f, "invalid base URL: {reason}"),
            ClientError::NotOffered { wanted, offered } => write!(
                f,
                "the server does not offer the login this client was given: wanted `{wanted}`, \
                 GET /api lists auths {offered:?}"
            ),
            ClientError::Discovery(reason) => {
                write!(f, "GET /api did not answer a Core about document: {reason}")
            }
            ClientError::NoCredentials => f.write_str(
                "a new login is needed (no usable refresh token) but the client holds no \
                 credentials",
            ),
            ClientError::LoginRefused { status, detail } => {
                write!(f, "login refused ({}): {detail}", status.as_u16())
            }
            ClientError::Status {
                endpoint,
                status,
                detail,
                retry_after,
            } => {
                write!(f, "{endpoint} answered {}: {detail}", status.as_u16())?;
                if let Some(after) = retry_after {
                    write!(f, " (retry after {} s)", after.as_secs())?;
                }
                Ok(())
            }
            ClientError::InvalidResponse { endpoint, reason } => {
                write!(f, "{endpoint} answered 200 with an invalid body: {reason}")
            }
            ClientError::WrongServer { expected, found } => write!(
                f,
                "the saved token state is for {found}, not for this client's {expected}"
            ),
            ClientError::Timeout { endpoint } => write!(f, "{endpoint} timed out"),
            ClientError::Http { endpoint, source } => write!(f, "{endpoint} failed: {source}"),
        }
    }
}

impl StdError for ClientError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            ClientError::Http { source, .. } => Some(&**source as &(dyn StdError + 'static)),
            _ => None,
        }
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
