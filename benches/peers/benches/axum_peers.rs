//! axum_peers: what authentication adds to a request in an axum 0.8 `Router`, against the peers
//!: the crate's `JwtAuthLayer` with its `Claims` extractor, the do-it-yourself stack
//! (tower-http's `ValidateRequestHeaderLayer` + `jsonwebtoken` + `Extension`), and
//! jwt-authorizer 0.15 with the claims read the way its `JwtClaims` extractor reads them. Each
//! router answers `GET /api/v3/process` with `[]` for a valid Core access token, and every
//! verifier is as strict as the crate: HS256 only, `exp` and `nbf` checked, leeway 0, `iss`
//! checked, `usefor` must be `access`.
//!
//! jwt-authorizer 0.15 is built on axum 0.7, so its `JwtClaims` extractor cannot be used in an
//! axum 0.8 handler; its layer is a plain tower layer and works in any router. The handler here
//! takes `AuthorizerClaims`, which is what `JwtClaims::from_request_parts` does: the
//! `TokenData<C>` the layer stored, its claims cloned.
//!
//! Each figure that matters is a difference to the bare router, so besides criterion's
//! medians (one benchmark after the other) the run ends with the four routers measured
//! interleaved (see `common::interleaved`), which is what the README quotes.
//!
//! `cargo bench --manifest-path benches/peers/Cargo.toml`

#[path = "../../common/mod.rs"]
mod common;
#[path = "../../common/routers.rs"]
mod routers;

use std::hint::black_box;

use axum::Router;
use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::get;
use criterion::{BatchSize, Criterion};
use http::{Request, StatusCode};
use routers::{AppState, PATH, bare_router, diy_router, drive, our_router, request, served};

/// jwt-authorizer's `JwtClaims`, for axum 0.8: the claims of the `TokenData` its layer stored.
struct AuthorizerClaims(common::CoreClaims);

impl<S: Send + Sync> FromRequestParts<S> for AuthorizerClaims {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, StatusCode> {
        parts
            .extensions
            .get::<jsonwebtoken9::TokenData<common::CoreClaims>>()
            .map(|data| AuthorizerClaims(data.claims.clone()))
            .ok_or(StatusCode::UNAUTHORIZED)
    }
}

fn authorizer_router() -> Router<AppState> {
    async fn process(AuthorizerClaims(claims): AuthorizerClaims) -> &'static str {
        black_box(claims.sub.len());
        "[]"
    }
    let key = String::from_utf8(common::key_bytes()).unwrap();
    let validation = jwt_authorizer::Validation::new()
        .iss(&[common::ISSUER])
        .exp(true)
        .nbf(true)
        .leeway(0);
    let authorizer = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(
            jwt_authorizer::JwtAuthorizer::<common::CoreClaims>::from_secret(&key)
                .validation(validation)
                .check(|claims: &common::CoreClaims| claims.usefor == "access")
                .build(),
        )
        .unwrap();
    // Its service answers a refusal with `Response::from(AuthError)`, implemented for axum
    // 0.7's response type only: in an axum 0.8 router the route's responses pass through a
    // newtype that has the conversion (two `map_response` adapters, a move each).
    let stack = tower::ServiceBuilder::new()
        .map_response(|res: Refusable| res.0)
        .layer(jwt_authorizer::IntoLayer::into_layer(authorizer))
        .map_response(Refusable);
    Router::new().route(PATH, get(process)).layer(stack)
}

/// An axum 0.8 response that jwt-authorizer's service can build from its refusal (401).
struct Refusable(Response);

impl From<jwt_authorizer::AuthError> for Refusable {
    fn from(_: jwt_authorizer::AuthError) -> Self {
        let mut res = Response::new(Body::empty());
        *res.status_mut() = StatusCode::UNAUTHORIZED;
        Refusable(res)
    }
}

fn main() {
    let jwt = common::jwt();
    let token = jwt.issue_pair(common::USER).access_token;
    let bearer = common::bearer(&token);
    let refresh = common::bearer(&jwt.issue_pair(common::USER).refresh_token);
    let routers = [
        ("bare", served(bare_router())),
        ("tower-http + jsonwebtoken", served(diy_router())),
        ("jwt-authorizer 0.15", served(authorizer_router())),
        ("JwtAuthLayer + Claims", served(our_router(&jwt))),
    ];
    // Every stack serves the token, and refuses no token and a refresh token.
    for (name, router) in &routers {
        let mut router = router.clone();
        assert_eq!(
            drive(&mut router, request(&bearer)).status(),
            StatusCode::OK,
            "{name}"
        );
        let refused = if *name == "bare" {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        let none = Request::get(PATH).body(Body::empty()).unwrap();
        assert_eq!(
            drive(&mut router, none).status(),
            refused,
            "{name} without a token"
        );
        let res = drive(&mut router, request(&refresh));
        assert!(
            res.status() == refused || res.status() == StatusCode::FORBIDDEN,
            "{name} refresh"
        );
    }

    // `PEERS_PROFILE=<case>:<n>`: `n` requests through one router and exit, for callgrind
    // (instruction counts, stable on a noisy machine): run it with two values of `n` and divide
    // the difference of the totals by the difference of the `n`s. Cases: 0 bare, 1 DIY,
    // 2 jwt-authorizer, 3 the crate.
    if let Ok(spec) = std::env::var("PEERS_PROFILE") {
        let (case, n) = spec.split_once(':').expect("PEERS_PROFILE=<case>:<n>");
        let mut router = routers[case.parse::<usize>().unwrap()].1.clone();
        for _ in 0..n.parse::<usize>().unwrap() {
            black_box(drive(&mut router, request(&bearer)));
        }
        return;
    }

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("axum_peers");
    for (name, router) in &routers {
        let mut router = router.clone();
        group.bench_function(*name, |b| {
            b.iter_batched(
                || request(&bearer),
                |req| drive(&mut router, req),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
    c.final_summary();

    let mut cases: Vec<(&str, Box<dyn FnMut()>)> = routers
        .iter()
        .map(|(name, router)| {
            let mut router = router.clone();
            let bearer = bearer.clone();
            let case: Box<dyn FnMut()> = Box::new(move || {
                black_box(drive(&mut router, request(&bearer)));
            });
            (*name, case)
        })
        .collect();
    let mut refs: Vec<(&str, &mut dyn FnMut())> = cases
        .iter_mut()
        .map(|(name, case)| (*name, &mut **case as &mut dyn FnMut()))
        .collect();
    if let Some(times) = common::interleaved(
        "axum router, each case builds its request",
        40,
        20_000,
        &mut refs,
    ) {
        // Within each round: each stack's time less the bare router's, and the ratios.
        let added = |case: usize| common::median_of_rounds(&times, |t| t[case] - t[0]);
        let ratio =
            |to: usize| common::median_of_rounds(&times, |t| (t[3] - t[0]) / (t[to] - t[0]));
        for (case, name) in [
            (1, "tower-http + jsonwebtoken"),
            (2, "jwt-authorizer 0.15"),
            (3, "JwtAuthLayer + Claims"),
        ] {
            let (median, lo, hi) = added(case);
            println!(
                "  added over the bare router, {name:<26} median {median:>6.0} ns (rounds {lo:.0}-{hi:.0})"
            );
        }
        for (to, name) in [(1, "the DIY stack's"), (2, "jwt-authorizer's")] {
            let (median, lo, hi) = ratio(to);
            println!(
                "  the crate's added cost / {name:<17} median {median:.2} (rounds {lo:.2}-{hi:.2})"
            );
        }
    }
}
