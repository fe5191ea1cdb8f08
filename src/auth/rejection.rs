//! What the layer answers when it refuses a request.

use http::Response;
use http::request::Parts;

use crate::error::AuthError;
use crate::response::{
    ResponseBody, grpc_rejection_response, is_grpc_request, unauthorized_response,
};

/// Builds the response for a refused request. Implemented by [`DefaultRejection`] and by every
/// `Fn(&AuthError, &Parts) -> Response<ResponseBody> + Clone`.
///
/// Whatever it returns, the layer also puts the [`AuthError`] into the response extensions.
///
/// ```
/// use http::{Response, StatusCode, request::Parts};
/// use tower_jwt_login::auth::JwtAuthLayer;
/// use tower_jwt_login::error::AuthError;
/// use tower_jwt_login::response::{ResponseBody, error_response};
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

/// The default: 401 in the docs/protocol.md §2 shape, detail `Missing or invalid JWT token`
/// (the same for every reason, as Core answers), with the RFC 6750 challenge of
/// [`AuthError::challenge`]: `WWW-Authenticate: Bearer` without a token, and
/// `Bearer error="invalid_token", error_description="…"` (a fixed text such as `token expired`
/// or `invalid signature`) when one was presented.
///
/// A request whose valid token lacks what the path [requires](crate::auth::Requirement)
/// ([`AuthError::Forbidden`]) gets 403 `Insufficient permissions` instead
/// ([`forbidden_response`](crate::response::forbidden_response)).
///
/// A gRPC request (a `content-type` starting with `application/grpc`, which includes gRPC-Web)
/// is refused the gRPC way instead: [`grpc_unauthenticated_response`](crate::response::grpc_unauthenticated_response)
/// (`grpc-status: 16`), or `grpc-status: 7` for a forbidden one.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultRejection;

impl OnRejection for DefaultRejection {
    fn on_rejection(&self, error: &AuthError, parts: &Parts) -> Response<ResponseBody> {
        if is_grpc_request(&parts.headers) {
            return grpc_rejection_response(error, &parts.headers);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::INVALID_TOKEN_DETAIL;
    use http::{Method, Request};

    fn parts(content_type: Option<&str>) -> Parts {
        let mut req = Request::builder().method(Method::POST).uri("/pkg.Svc/Call");
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn grpc_requests_get_grpc_status_16_and_no_body() {
        for ct in [
            "application/grpc",
            "application/grpc+proto",
            "Application/GRPC-web",
        ] {
            let res = DefaultRejection.on_rejection(&AuthError::MissingToken, &parts(Some(ct)));
            assert_eq!(res.status(), 200);
            assert_eq!(res.headers()["grpc-status"], "16");
            assert_eq!(res.headers()["grpc-message"], INVALID_TOKEN_DETAIL);
            assert_eq!(res.headers()["content-type"], ct);
            assert!(res.headers().get("www-authenticate").is_none());
            assert_eq!(http_body::Body::size_hint(res.body()).exact(), Some(0));
        }
    }

    #[test]
    fn other_requests_get_the_json_401() {
        for ct in [None, Some("application/json"), Some("application/gr")] {
            let res = DefaultRejection.on_rejection(&AuthError::MissingToken, &parts(ct));
            assert_eq!(res.status(), 401);
            assert_eq!(res.headers()["content-type"], "application/json");
            assert!(res.headers().get("grpc-status").is_none());
        }
    }
}
