//! The axum 0.8 routers the router benches share (`benches/axum_router.rs` and the peer
//! comparison in `benches/peers`): each answers `GET /api/v3/process` with `[]`, carries
//! application state as real apps do, and is driven through `tower::Service::call` on a ready
//! clone, polled without a runtime (every stack here answers at once). Needs the crate's `axum`
//! feature (the `Claims` extractor).
#![allow(dead_code, clippy::unwrap_used)]

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, StatusCode};
use tower::Service;
use tower_http::validate_request::ValidateRequestHeaderLayer;
use tower_jwt_login::auth::JwtAuthLayer;
use tower_jwt_login::{Claims, Jwt};

use crate::common;

pub const PATH: &str = "/api/v3/process";

/// The routers carry application state, as real apps do (a database pool, a configuration):
/// it makes every clone of a route a real clone, not a copy of a zero-sized handler.
pub type AppState = Arc<String>;

pub fn bare_router() -> Router<AppState> {
    async fn process() -> &'static str {
        "[]"
    }
    Router::new().route(PATH, get(process))
}

pub fn diy_router() -> Router<AppState> {
    async fn process(Extension(claims): Extension<common::CoreClaims>) -> &'static str {
        black_box(claims.sub.len());
        "[]"
    }
    let baseline = Arc::new(common::Baseline::new());
    // tower-http's `ValidateRequest` signature: the refusal is the response itself.
    #[allow(clippy::result_large_err)]
    let validate = move |req: &mut Request<Body>| -> Result<(), Response> {
        match baseline.verify_bearer(req.headers()) {
            Some(claims) => {
                req.extensions_mut().insert(claims);
                Ok(())
            }
            None => {
                let mut res = Response::new(Body::empty());
                *res.status_mut() = StatusCode::UNAUTHORIZED;
                Err(res)
            }
        }
    };
    Router::new()
        .route(PATH, get(process))
        .layer(ValidateRequestHeaderLayer::custom(validate))
}

pub fn our_router(jwt: &Jwt) -> Router<AppState> {
    async fn process(claims: Claims) -> &'static str {
        black_box(claims.subject().len());
        "[]"
    }
    Router::new()
        .route(PATH, get(process))
        .layer(JwtAuthLayer::new(jwt.clone()))
}

/// The assembly as the README shows it: one `LoginKit` layer around the whole served router
/// (`LoginLayer::wrap`), the handler taking `Claims`.
pub fn kit_router(jwt: &Jwt) -> Router {
    async fn process(claims: Claims) -> &'static str {
        black_box(claims.subject().len());
        "[]"
    }
    let login = tower_jwt_login::kit::LoginKit::new(
        jwt.clone(),
        tower_jwt_login::store::PlaintextUser::new("admin", "datarhei"),
    )
    .build()
    .unwrap();
    login.wrap(served(Router::new().route(PATH, get(process))))
}

pub fn request(authorization: &HeaderValue) -> Request<Body> {
    let mut req = Request::get(PATH).body(Body::empty()).unwrap();
    req.headers_mut()
        .insert(AUTHORIZATION, authorization.clone());
    req
}

/// One request through a ready router. `Router` is always ready; `poll_ready` is still called,
/// as `tower::ServiceExt::oneshot` would.
pub fn drive(router: &mut Router, req: Request<Body>) -> Response {
    common::poll_now(std::future::poll_fn(|cx| {
        <Router as Service<Request<Body>>>::poll_ready(router, cx)
    }))
    .unwrap();
    let res: Result<Response, Infallible> = common::poll_now(router.call(req));
    res.unwrap()
}

/// What `axum::serve` runs: the router with its state, the handlers turned into routes once
/// (`with_state`), not on every request.
pub fn served(router: Router<AppState>) -> Router {
    router.with_state(Arc::new("application state".to_owned()))
}
