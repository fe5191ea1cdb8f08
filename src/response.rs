//! The one place that renders the crate's answers as HTTP responses (docs/protocol.md §2); the
//! error types they render are in [`error`](crate::error).
//!
//! Every error the crate answers with has the same body:
//! `{"code":<status>,"message":"<reason phrase>","details":["…"]}` followed by a newline,
//! with `Content-Type: application/json`. A `HEAD` request gets the status and headers only.
//! The one exception is a gRPC request refused by the layer, which gets gRPC's own refusal
//! ([`grpc_unauthenticated_response`]: HTTP 200, `grpc-status: 16`) because gRPC clients read
//! nothing else.
//!
//! ```
//! use http::{Method, StatusCode};
//! use http_body_util::BodyExt;
//! use tower_jwt_login::response::error_response;
//!
//! # tokio_test_block_on(async {
//! let res = error_response(&Method::GET, StatusCode::NOT_FOUND, "Not Found");
//! assert_eq!(res.status(), 404);
//! assert_eq!(res.headers()["content-type"], "application/json");
//! let body = res.into_body().collect().await.unwrap().to_bytes();
//! assert_eq!(&body[..], b"{\"code\":404,\"message\":\"Not Found\",\"details\":[\"Not Found\"]}\n");
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use http_body_util::Full;
use serde::Serialize;

use crate::error::{
    AuthError, FACTOR_UNAVAILABLE_DETAIL, FORBIDDEN_DETAIL, INVALID_TOKEN_DETAIL, LoginError,
    UNAVAILABLE_DETAIL,
};
use crate::json::json_line;

/// The body type of every response the crate builds itself.
pub type ResponseBody = Full<Bytes>;

/// The response future of every service of the crate's own routes (login, refresh, logout,
/// the user's sessions, keys, password and second factor, the about document): ready at once
/// for an answer that needs no I/O (no allocation), boxed when it waits for a store.
pub struct ResponseFuture {
    state: FutureState,
}

enum FutureState {
    Ready(Option<Response<ResponseBody>>),
    Pending(Pin<Box<dyn Future<Output = Response<ResponseBody>> + Send>>),
}

impl ResponseFuture {
    /// An answer known now.
    pub(crate) fn ready(response: Response<ResponseBody>) -> Self {
        ResponseFuture {
            state: FutureState::Ready(Some(response)),
        }
    }

    /// An answer still to be worked out (a store to ask).
    pub(crate) fn new<F>(future: F) -> Self
    where
        F: Future<Output = Response<ResponseBody>> + Send + 'static,
    {
        ResponseFuture {
            state: FutureState::Pending(Box::pin(future)),
        }
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<ResponseBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            FutureState::Ready(response) => Poll::Ready(Ok(response.take().unwrap_or_else(|| {
                // Polled after completion: a caller's bug; answer a 500 rather than panic.
                error_response(
                    &Method::GET,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal Server Error",
                )
            }))),
            FutureState::Pending(future) => future.as_mut().poll(cx).map(Ok),
        }
    }
}

impl std::fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: u16,
    message: &'a str,
    details: [&'a str; 1],
}

/// The answer of the crate's routes to a method they do not serve: 404 in the §2 shape, never
/// 405 (as Core answers, docs/protocol.md §1).
pub(crate) fn wrong_method(method: &Method) -> Response<ResponseBody> {
    error_response(method, StatusCode::NOT_FOUND, "Not Found")
}

/// Renders the docs/protocol.md §2 error response: `status`, the standard reason phrase and one
/// `details` string. For `HEAD` the body is empty; status and headers are the same.
pub fn error_response(method: &Method, status: StatusCode, detail: &str) -> Response<ResponseBody> {
    let error = ErrorBody {
        code: status.as_u16(),
        message: status.canonical_reason().unwrap_or("Error"),
        details: [detail],
    };
    let mut res = json_response(method, &error);
    *res.status_mut() = status;
    res
}

/// Renders a 200 JSON response (compact, trailing newline, `Content-Type: application/json`);
/// for `HEAD` the same status and headers without the body.
pub(crate) fn json_response<T: Serialize + ?Sized>(
    method: &Method,
    value: &T,
) -> Response<ResponseBody> {
    if method == Method::HEAD {
        return json_bytes_response(method, Bytes::new());
    }
    json_bytes_response(method, json_line(value))
}

/// [`json_response`] of a body rendered already (a document served many times, like the
/// published JWKS).
pub(crate) fn json_bytes_response(method: &Method, body: Bytes) -> Response<ResponseBody> {
    let body = if method == Method::HEAD {
        Bytes::new()
    } else {
        body
    };
    let mut res = Response::new(Full::new(body));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// Renders the default 401 for an [`AuthError`]: the §2 body with Core's detail (the same for
/// every reason, as Core answers) and the RFC 6750 `WWW-Authenticate` header of
/// [`AuthError::challenge`], which says why: `Bearer` without a token,
/// `Bearer error="invalid_token", error_description="token expired"` for an expired one.
///
/// [`AuthError::Forbidden`] is no 401: it gets [`forbidden_response`]'s 403.
pub fn unauthorized_response(method: &Method, error: &AuthError) -> Response<ResponseBody> {
    if *error == AuthError::Forbidden {
        return forbidden_response(method);
    }
    unauthorized_with_challenge(method, error.challenge())
}

/// The 403 for a valid access token whose claims do not meet the path's
/// [`Requirement`](crate::auth::Requirement): docs/protocol.md §2's shape,
/// `{"code":403,"message":"Forbidden","details":["Insufficient permissions"]}`, with
/// `WWW-Authenticate: Bearer error="insufficient_scope", error_description="insufficient permissions"`
/// (RFC 6750 §3.1). The detail is fixed: it never says which requirement failed.
///
/// ```
/// use http::Method;
/// use http_body_util::BodyExt;
/// use tower_jwt_login::response::forbidden_response;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let res = forbidden_response(&Method::GET);
/// assert_eq!(res.status(), 403);
/// let body = res.into_body().collect().await.unwrap().to_bytes();
/// assert_eq!(&body[..], b"{\"code\":403,\"message\":\"Forbidden\",\"details\":[\"Insufficient permissions\"]}\n");
/// # });
/// ```
pub fn forbidden_response(method: &Method) -> Response<ResponseBody> {
    let mut res = error_response(method, StatusCode::FORBIDDEN, FORBIDDEN_DETAIL);
    res.headers_mut()
        .insert(header::WWW_AUTHENTICATE, AuthError::Forbidden.challenge());
    res
}

/// The gRPC refusal for [`AuthError::Forbidden`]: like [`grpc_unauthenticated_response`], with
/// `grpc-status: 7` (PERMISSION_DENIED) and `grpc-message: Insufficient permissions`.
pub fn grpc_permission_denied_response(request_headers: &HeaderMap) -> Response<ResponseBody> {
    let mut res = grpc_unauthenticated_response(request_headers);
    let headers = res.headers_mut();
    headers.insert("grpc-status", HeaderValue::from_static("7"));
    headers.insert("grpc-message", HeaderValue::from_static(FORBIDDEN_DETAIL));
    res
}

/// The gRPC refusal for `error`: `grpc-status: 7` for [`AuthError::Forbidden`], 16 otherwise.
pub fn grpc_rejection_response(
    error: &AuthError,
    request_headers: &HeaderMap,
) -> Response<ResponseBody> {
    if *error == AuthError::Forbidden {
        grpc_permission_denied_response(request_headers)
    } else {
        grpc_unauthenticated_response(request_headers)
    }
}

/// The 401 for a request that presented a token nobody judged (the axum `Claims` extractor on
/// a request the layer did not look at): `error="invalid_token"` without a description, since
/// there is no reason to give.
#[cfg(feature = "axum")]
pub(crate) fn unjudged_token_response(method: &Method) -> Response<ResponseBody> {
    unauthorized_with_challenge(
        method,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    )
}

fn unauthorized_with_challenge(method: &Method, challenge: HeaderValue) -> Response<ResponseBody> {
    let mut res = error_response(method, StatusCode::UNAUTHORIZED, INVALID_TOKEN_DETAIL);
    res.headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge);
    res
}

/// Renders the `503 Service Unavailable` of a login, refresh or logout while the session store
/// cannot be reached: the §2 body with [`UNAVAILABLE_DETAIL`] and `Retry-After` in seconds.
///
/// ```
/// use http::Method;
/// let res = tower_jwt_login::response::unavailable_response(&Method::POST, 5);
/// assert_eq!(res.status(), 503);
/// assert_eq!(res.headers()["retry-after"], "5");
/// ```
pub fn unavailable_response(method: &Method, retry_after_secs: u64) -> Response<ResponseBody> {
    unavailable_response_with(method, retry_after_secs, UNAVAILABLE_DETAIL)
}

/// [`unavailable_response`] with another detail (the second-factor store's).
pub(crate) fn unavailable_response_with(
    method: &Method,
    retry_after_secs: u64,
    detail: &str,
) -> Response<ResponseBody> {
    let mut res = error_response(method, StatusCode::SERVICE_UNAVAILABLE, detail);
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    res
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

impl LoginError {
    /// The response of this refusal: the §2 body with its status and detail, and
    /// `Retry-After` for a throttled or unavailable login.
    pub(crate) fn into_response(self, method: &Method) -> Response<ResponseBody> {
        if let LoginError::Unavailable { retry_after_secs } = self {
            return unavailable_response(method, retry_after_secs);
        }
        if let LoginError::SecondFactorUnavailable { retry_after_secs } = self {
            return unavailable_response_with(method, retry_after_secs, FACTOR_UNAVAILABLE_DETAIL);
        }
        let mut res = error_response(method, self.status(), &self.detail());
        if let LoginError::Throttled(throttled) = &self {
            res.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(throttled.retry_after_secs()),
            );
        }
        res
    }
}
