//! What the layer answers when it refuses a request.

use http::request::Parts;
use http::{HeaderMap, HeaderValue, Response, header};
use http_body_util::Full;

use crate::error::{AuthError, INVALID_TOKEN_DETAIL, ResponseBody, unauthorized_response};

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
///
/// A gRPC request (a `content-type` starting with `application/grpc`, which includes gRPC-Web)
/// is refused the gRPC way instead: [`grpc_unauthenticated_response`].
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultRejection;

impl OnRejection for DefaultRejection {
    fn on_rejection(&self, error: &AuthError, parts: &Parts) -> Response<ResponseBody> {
        if is_grpc_request(&parts.headers) {
            return grpc_unauthenticated_response(&parts.headers);
        }
        unauthorized_response(&parts.method, error)
    }
}

/// Whether the request is gRPC: its `content-type` starts with `application/grpc` (gRPC,
/// `application/grpc+proto`, gRPC-Web), compared case-insensitively.
pub fn is_grpc_request(headers: &HeaderMap) -> bool {
    const GRPC: &[u8] = b"application/grpc";
    headers.get(header::CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes()
            .get(..GRPC.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(GRPC))
    })
}

/// The gRPC refusal: a trailers-only response, HTTP 200 with `grpc-status: 16`
/// (UNAUTHENTICATED), `grpc-message: Missing or invalid JWT token` and no body, which every gRPC
/// client reads as a `Status` with code `Unauthenticated`. The `content-type` repeats the
/// request's when that is a gRPC one (so gRPC-Web clients get theirs), else `application/grpc`.
pub fn grpc_unauthenticated_response(request_headers: &HeaderMap) -> Response<ResponseBody> {
    let content_type = request_headers
        .get(header::CONTENT_TYPE)
        .filter(|_| is_grpc_request(request_headers))
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("application/grpc"));
    let mut res = Response::new(Full::default());
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert("grpc-status", HeaderValue::from_static("16"));
    headers.insert(
        "grpc-message",
        HeaderValue::from_static(INVALID_TOKEN_DETAIL),
    );
    res
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
