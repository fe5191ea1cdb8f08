//! axum_router: what authentication adds to a request *in an axum 0.8 `Router`*, the setting
//! users run the crate in. One process, three routers answering `GET /api/v3/process` with
//! `[]`, each driven through `tower::Service::call` on a ready clone with a request that
//! carries a valid Core access token:
//!
//! - `bare`: no authentication, the handler reads nothing;
//! - `tower-http + jsonwebtoken`: what a user assembles by hand — tower-http's
//!   `ValidateRequestHeaderLayer::custom` with `jsonwebtoken::decode` (key and validation built
//!   once, as strict as the crate), the claims put into the extensions, the handler taking
//!   `Extension<CoreClaims>`;
//! - `JwtAuthLayer + Claims`: the crate's layer and its `Claims` extractor.
//!
//! All three layers are added with `Router::layer`, as the README does. The interesting figures
//! are each configuration's time *minus* `bare` (the added cost), and the ratio of the crate's
//! added cost to the DIY stack's. `Jwt::verify` alone is measured too, so that what the crate
//! costs beyond verification can be read off the same run.
//!
//! The request is built outside the timed part (`iter_batched`); the handlers answer at once,
//! so the router's future is polled without a runtime: only the stack is measured.
//!
//! `cargo bench --features axum --bench axum_router`
//!
//! Instruction counts (stable on a busy machine): `AXUM_ROUTER_PROFILE=<config>:<n>` runs `n`
//! requests through one configuration (`bare`, `diy`, `ours`, `verify`, or `noop`: the bare
//! router behind an identity layer, the floor of any `Router::layer`) and exits without
//! criterion; run it under `valgrind --tool=callgrind` with two values of `n` and divide the
//! difference of the totals by the difference of the `n`s:
//!
//! ```text
//! cargo bench --features axum --bench axum_router --no-run
//! AXUM_ROUTER_PROFILE=ours:1 valgrind --tool=callgrind target/release/deps/axum_router-…
//! AXUM_ROUTER_PROFILE=ours:10001 valgrind --tool=callgrind target/release/deps/axum_router-…
//! ```

mod common;

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use criterion::{BatchSize, Criterion};
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, StatusCode};
use tower::Service;
use tower_http::validate_request::ValidateRequestHeaderLayer;
use tower_jwt_login::auth::JwtAuthLayer;
use tower_jwt_login::{Claims, Jwt, TokenUse};

const PATH: &str = "/api/v3/process";

/// The routers carry application state, as real apps do (a database pool, a configuration):
/// it makes every clone of a route a real clone, not a copy of a zero-sized handler.
type AppState = Arc<String>;

fn bare_router() -> Router<AppState> {
    async fn process() -> &'static str {
        "[]"
    }
    Router::new().route(PATH, get(process))
}

fn diy_router() -> Router<AppState> {
    async fn process(Extension(claims): Extension<common::CoreClaims>) -> &'static str {
        black_box(claims.sub.len());
        "[]"
    }
    let baseline = Arc::new(common::Baseline::new());
    // tower-http's `ValidateRequest` signature: the refusal is the response itself.
    #[allow(clippy::result_large_err)]
    let validate = move |req: &mut Request<Body>| -> Result<(), Response> {
        let claims = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(|token| baseline.verify_access(token));
        match claims {
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

fn our_router(jwt: &Jwt) -> Router<AppState> {
    async fn process(claims: Claims) -> &'static str {
        black_box(claims.subject().len());
        "[]"
    }
    Router::new()
        .route(PATH, get(process))
        .layer(JwtAuthLayer::new(jwt.clone()))
}

/// The floor for any layer added with `Router::layer`: the identity layer, which still costs
/// axum's wrapping (a boxed, cloned route and a boxed future per request). Profile mode only.
fn noop_router() -> Router<AppState> {
    bare_router().layer(tower::layer::util::Identity::new())
}

fn request(authorization: &HeaderValue) -> Request<Body> {
    let mut req = Request::get(PATH).body(Body::empty()).unwrap();
    req.headers_mut()
        .insert(AUTHORIZATION, authorization.clone());
    req
}

/// One request through a ready router. `Router` is always ready; `poll_ready` is still called,
/// as `tower::ServiceExt::oneshot` would.
fn drive(router: &mut Router, req: Request<Body>) -> Response {
    common::poll_now(std::future::poll_fn(|cx| {
        <Router as Service<Request<Body>>>::poll_ready(router, cx)
    }))
    .unwrap();
    let res: Result<Response, Infallible> = common::poll_now(router.call(req));
    res.unwrap()
}

/// What `axum::serve` runs: the router with its state, the handlers turned into routes once
/// (`with_state`), not on every request.
fn served(router: Router<AppState>) -> Router {
    router.with_state(Arc::new("application state".to_owned()))
}

struct Setup {
    jwt: Jwt,
    token: String,
    bearer: HeaderValue,
    bare: Router,
    diy: Router,
    ours: Router,
}

impl Setup {
    fn new() -> Self {
        let jwt = common::jwt();
        let token = jwt.issue_pair(common::USER).access_token;
        let bearer = common::bearer(&token);
        let setup = Setup {
            bare: served(bare_router()),
            diy: served(diy_router()),
            ours: served(our_router(&jwt)),
            jwt,
            token,
            bearer,
        };
        // Every configuration serves the token before anything is measured, and refuses a
        // request without it (so the layers are really in place).
        for (name, router) in [
            ("bare", &setup.bare),
            ("diy", &setup.diy),
            ("ours", &setup.ours),
        ] {
            let mut router = router.clone();
            let res = drive(&mut router, request(&setup.bearer));
            assert_eq!(res.status(), StatusCode::OK, "{name}");
            let res = drive(&mut router, Request::get(PATH).body(Body::empty()).unwrap());
            let expected = if name == "bare" {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            };
            assert_eq!(res.status(), expected, "{name} without a token");
        }
        setup
    }
}

fn axum_router(c: &mut Criterion) {
    let setup = Setup::new();
    let mut group = c.benchmark_group("axum_router");
    for (name, router) in [
        ("bare", &setup.bare),
        ("tower-http + jsonwebtoken", &setup.diy),
        ("JwtAuthLayer + Claims", &setup.ours),
    ] {
        let mut router = router.clone();
        group.bench_function(name, |b| {
            b.iter_batched(
                || request(&setup.bearer),
                |req| drive(&mut router, req),
                BatchSize::SmallInput,
            )
        });
    }
    group.bench_function("Jwt::verify alone", |b| {
        b.iter(|| setup.jwt.verify(black_box(&setup.token), TokenUse::Access))
    });
    group.finish();
}

/// `AXUM_ROUTER_PROFILE=<config>:<n>`: `n` requests through one configuration, for callgrind.
fn profile(spec: &str) {
    let (config, n) = spec.split_once(':').unwrap_or((spec, "10000"));
    let n: usize = n.parse().expect("AXUM_ROUTER_PROFILE=<config>:<n>");
    let setup = Setup::new();
    let mut router = match config {
        "bare" => setup.bare.clone(),
        "diy" => setup.diy.clone(),
        "ours" => setup.ours.clone(),
        "noop" => served(noop_router()),
        "verify" => {
            for _ in 0..n {
                black_box(setup.jwt.verify(black_box(&setup.token), TokenUse::Access)).unwrap();
            }
            return;
        }
        other => panic!("unknown configuration {other:?}: bare, diy, ours, noop or verify"),
    };
    for _ in 0..n {
        let req = request(&setup.bearer);
        black_box(drive(&mut router, req));
    }
}

fn main() {
    if let Ok(spec) = std::env::var("AXUM_ROUTER_PROFILE") {
        profile(&spec);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    axum_router(&mut c);
    c.final_summary();
}
