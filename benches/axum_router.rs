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
//! - `JwtAuthLayer + Claims`: the crate's layer and its `Claims` extractor;
//! - `LoginKit around the router + Claims`: the assembly, one layer around the whole router
//!   (`LoginLayer::wrap`), which also serves the login routes.
//!
//! The first three layers are added with `Router::layer`; the assembly wraps the router. The interesting figures
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
//! requests through one configuration (`bare`, `diy`, `ours`, `kit`, `verify`, or `noop`: the bare
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

use std::hint::black_box;

use axum::Router;
use axum::body::Body;
use criterion::{BatchSize, Criterion};
use http::{HeaderValue, Request, StatusCode};
use tower_jwt_login::{Jwt, TokenUse};

#[path = "common/routers.rs"]
mod routers;

use routers::{
    AppState, PATH, bare_router, diy_router, drive, kit_router, our_router, request, served,
};

/// The floor for any layer added with `Router::layer`: the identity layer, which still costs
/// axum's wrapping (a boxed, cloned route and a boxed future per request). Profile mode only.
fn noop_router() -> Router<AppState> {
    bare_router().layer(tower::layer::util::Identity::new())
}

struct Setup {
    jwt: Jwt,
    token: String,
    bearer: HeaderValue,
    bare: Router,
    diy: Router,
    ours: Router,
    kit: Router,
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
            kit: kit_router(&jwt),
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
            ("kit", &setup.kit),
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
        ("LoginKit around the router + Claims", &setup.kit),
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
        "kit" => setup.kit.clone(),
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
