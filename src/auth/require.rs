//! [`RequireLayer`]: a [`Requirement`] for one service (in axum, one route with `route_layer`).

use std::task::{Context, Poll};

use http::{Request, Response};
use http_body_util::Either;
use tower_layer::Layer;
use tower_service::Service;

use super::{Requirement, ResponseFuture};
use crate::error::AuthError;
use crate::response::{
    ResponseBody, grpc_rejection_response, is_grpc_request, unauthorized_response,
};
use crate::token::Claims;

/// Guards one service with a [`Requirement`] on the claims [`JwtAuthLayer`](super::JwtAuthLayer)
/// attached: met → the inner service; unmet → 403 `Insufficient permissions` (gRPC:
/// `grpc-status: 7`); no claims (the layer is missing, or the path is public or optional without
/// a valid token) → the layer's 401 (gRPC: `grpc-status: 16`). The same rendering as the
/// layer's own rejections, without a custom [`OnRejection`](super::OnRejection).
///
/// In axum, `route_layer` puts it on one route, behind the `JwtAuthLayer` around the router:
///
/// ```
/// use axum::{Router, routing::get};
/// use tower::ServiceExt;
/// use tower_jwt_login::auth::{JwtAuthLayer, RequireLayer, Requirement};
/// use tower_jwt_login::{JwtConfig, JwtKey, Principal};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let jwt = JwtConfig::new(JwtKey::random()).build().unwrap();
/// let app: Router = Router::new()
///     .route("/admin", get(|| async { "secret" }).route_layer(RequireLayer::new(Requirement::role("admin"))))
///     .route("/me", get(|| async { "me" }))
///     .layer(JwtAuthLayer::new(jwt.clone()));
///
/// let bob = jwt.issue_pair("bob").access_token;
/// let get = |path: &str, token: &str| {
///     http::Request::get(path).header("authorization", format!("Bearer {token}"))
///         .body(axum::body::Body::empty()).unwrap()
/// };
/// assert_eq!(app.clone().oneshot(get("/me", &bob)).await.unwrap().status(), 200);
/// assert_eq!(app.clone().oneshot(get("/admin", &bob)).await.unwrap().status(), 403);
/// let root = Principal::builder("root").claim("roles", ["admin"]).build().unwrap();
/// let root = jwt.issue_pair_for(&root).access_token;
/// assert_eq!(app.oneshot(get("/admin", &root)).await.unwrap().status(), 200);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct RequireLayer {
    requirement: Requirement,
}

impl RequireLayer {
    /// Requires `requirement` of the request's verified claims.
    pub fn new(requirement: Requirement) -> Self {
        RequireLayer { requirement }
    }
}

impl<S> Layer<S> for RequireLayer {
    type Service = Require<S>;

    fn layer(&self, inner: S) -> Require<S> {
        Require {
            inner,
            requirement: self.requirement.clone(),
        }
    }
}

/// The service [`RequireLayer`] produces.
#[derive(Debug, Clone)]
pub struct Require<S> {
    inner: S,
    requirement: Requirement,
}

impl<S> Require<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Require<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<Either<ResBody, ResponseBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let error = match req.extensions().get::<Claims>() {
            Some(claims) if self.requirement.is_met(claims) => {
                return ResponseFuture::authorized(self.inner.call(req));
            }
            Some(_) => AuthError::Forbidden,
            None => req
                .extensions()
                .get::<AuthError>()
                .copied()
                .unwrap_or(AuthError::MissingToken),
        };
        let mut response = if is_grpc_request(req.headers()) {
            grpc_rejection_response(&error, req.headers())
        } else {
            unauthorized_response(req.method(), &error)
        };
        response.extensions_mut().insert(error);
        ResponseFuture::rejected(response)
    }
}
