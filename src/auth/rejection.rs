//! What the layer answers when it refuses a request.

use http::Response;
use http::request::Parts;

use crate::error::{AuthError, ResponseBody, unauthorized_response};

/// Builds the response for a refused request. Implemented by [`DefaultRejection`] and by every
/// `Fn(&AuthError, &Parts) -> Response<ResponseBody> + Clone`.
///
/// Whatever it returns, the layer also puts the [`AuthError`] into the response extensions.
///
/// ```
/// use http::{Response, StatusCode, request::Parts};
/// use tower_jwt_login::auth::JwtAuthLayer;
/// use tower_jwt_login::error::{AuthError, ResponseBody, error_response};
/// use tower_jwt_login::{JwtConfig, JwtKey};
///
/// let jwt = JwtConfig::new(JwtKey::random()).build().unwrap();
/// let layer = JwtAuthLayer::new(jwt).on_rejection(|_: &AuthError, parts: &Parts| {
///     error_response(&parts.method, StatusCode::FORBIDDEN, "Go away")
/// });
/// # let _ = layer;
/// ```
pub trait OnRejection: Clone {
    /// The response for `error` on the request `parts`.
    fn on_rejection(&self, error: &AuthError, parts: &Parts) -> Response<ResponseBody>;
}

/// The default: 401 in the PROTOCOL.md §2 shape, detail `Missing or invalid JWT token`, with
/// `WWW-Authenticate: Bearer` (plus `error="invalid_token"` when a token was presented).
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultRejection;

impl OnRejection for DefaultRejection {
    fn on_rejection(&self, error: &AuthError, parts: &Parts) -> Response<ResponseBody> {
        unauthorized_response(&parts.method, error)
    }
}

impl<F> OnRejection for F
where
    F: Fn(&AuthError, &Parts) -> Response<ResponseBody> + Clone,
{
    fn on_rejection(&self, error: &AuthError, parts: &Parts) -> Response<ResponseBody> {
        self(error, parts)
    }
}
