//! Heap allocations per verified request, counted by a counting global allocator
//! (`stats_alloc`). Target: at most 3 through `JwtAuthLayer`.
//!
//! The three are `http::Extensions`' own: the boxed map, its table, and the boxed `Claims` value
//! — the price of putting anything into the extensions of a fresh request. Verifying a Core
//! token allocates nothing. In an axum router (where the extensions exist already), the layer
//! adds two allocations to what any `Router::layer` costs: the boxed `Claims`, and axum boxing
//! the layer's `Either` response body. The `jsonwebtoken` figures are printed for comparison
//! (`cargo test --test alloc -- --nocapture`).
//!
//! One `#[test]` only: the counter is process-wide, so nothing may run beside it.

#[path = "../benches/common/mod.rs"]
mod common;

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower_jwt_login::TokenUse;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations made by `f`, the smallest of a few runs (first-use effects such as lazily
/// initialized statics are not per-request costs).
fn allocations<T>(mut f: impl FnMut() -> T) -> usize {
    (0..5)
        .map(|_| {
            let region = Region::new(GLOBAL);
            let out = f();
            let allocs = region.change().allocations + region.change().reallocations;
            drop(out);
            allocs
        })
        .min()
        .unwrap()
}

#[test]
fn allocations_per_verified_request() {
    let jwt = common::jwt();
    let token = jwt.issue_pair(common::USER).access_token;
    let baseline = common::Baseline::new();
    let bearer = common::bearer(&token);

    let verify = allocations(|| jwt.verify(&token, TokenUse::Access).unwrap());
    let verify_jwt = allocations(|| baseline.verify_access(&token).unwrap());

    // Through the stacks; the request is built outside the counted region.
    let mut ours = common::ours(&jwt);
    let mut diy = common::diy();
    let mut bare = common::inner();
    let through = |svc: &mut dyn FnMut(http::Request<()>) -> http::StatusCode| {
        (0..5)
            .map(|_| {
                let req = common::request(&bearer);
                let region = Region::new(GLOBAL);
                let status = svc(req);
                let change = region.change();
                assert_eq!(status, http::StatusCode::OK);
                change.allocations + change.reallocations
            })
            .min()
            .unwrap()
    };
    let layer_bare = through(&mut |req| common::drive(&mut bare, req).status());
    let layer_ours = through(&mut |req| common::drive(&mut ours, req).status());
    let layer_diy = through(&mut |req| common::drive(&mut diy, req).status());

    println!("allocations per verified request");
    println!("  Jwt::verify                       {verify}");
    println!("  jsonwebtoken::decode              {verify_jwt}");
    println!("  bare stack                        {layer_bare}");
    println!("  JwtAuthLayer                      {layer_ours}");
    println!("  tower-http + jsonwebtoken         {layer_diy}");

    // In an axum router, against the same router behind an identity layer (axum's own cost of
    // any `Router::layer`: a cloned, boxed route and a boxed future per request).
    let axum_noop = axum_allocations(
        axum_router().layer(tower::layer::util::Identity::new()),
        &bearer,
    );
    let axum_ours = axum_allocations(
        axum_router().layer(tower_jwt_login::auth::JwtAuthLayer::new(jwt.clone())),
        &bearer,
    );
    println!("  axum Router, identity layer       {axum_noop}");
    println!("  axum Router, JwtAuthLayer         {axum_ours}");

    assert_eq!(verify, 0, "Jwt::verify of a Core token allocates nothing");
    // The boxed `Claims` in the extensions, and axum boxing the layer's `Either` body. The
    // layer no longer clones the inner (boxed) route per request.
    assert!(
        axum_ours <= axum_noop + 2,
        "JwtAuthLayer in an axum Router: {axum_ours} allocations, identity layer {axum_noop}"
    );
    assert_eq!(layer_bare, 0, "the trivial stack allocates nothing");
    assert!(
        layer_ours <= 3,
        "JwtAuthLayer: {layer_ours} allocations per verified request (target: at most 3)"
    );

    // Sessions: a token with a `sid` verifies without allocating, and the layer's
    // local revocation check (with entries in the set) adds no allocation.
    let sid = tower_jwt_login::session::new_session_id();
    let sid_token = jwt
        .issue(&tower_jwt_login::Grant::new(common::USER).session(&sid))
        .tokens
        .access_token;
    let claims = jwt.verify(&sid_token, TokenUse::Access).unwrap();
    assert_eq!(claims.session_id(), Some(sid.as_str()));
    let verify_sid = allocations(|| jwt.verify(&sid_token, TokenUse::Access).unwrap());
    assert_eq!(
        verify_sid, 0,
        "Jwt::verify of a token with a sid allocates nothing"
    );

    // Extra claims: a principal's few claims are kept inside the `Claims` (no
    // allocation); larger ones take exactly one, which clones share.
    let small = tower_jwt_login::Principal::builder(common::USER)
        .claim("roles", ["admin", "editor"])
        .claim("tenant", "acme")
        .claim("plan", "pro")
        .build()
        .unwrap();
    let small_token = jwt.issue_pair_for(&small).access_token;
    let claims = jwt.verify(&small_token, TokenUse::Access).unwrap();
    assert_eq!(
        claims.extra_json(),
        Some(r#"{"roles":["admin","editor"],"tenant":"acme","plan":"pro"}"#)
    );
    let verify_small = allocations(|| jwt.verify(&small_token, TokenUse::Access).unwrap());
    assert_eq!(verify_small, 0, "three small extra claims allocate nothing");
    let large = tower_jwt_login::Principal::builder(common::USER)
        .claim("groups", vec!["engineering-platform"; 8])
        .build()
        .unwrap();
    let large_token = jwt.issue_pair_for(&large).access_token;
    let claims = jwt.verify(&large_token, TokenUse::Access).unwrap();
    assert!(claims.extra_json().unwrap().len() > 150);
    let verify_large = allocations(|| jwt.verify(&large_token, TokenUse::Access).unwrap());
    assert_eq!(verify_large, 1, "larger extra claims take one allocation");
    assert_eq!(allocations(|| claims.clone()), 0, "clones share it");

    let revocations = tower_jwt_login::session::Revocations::new();
    for _ in 0..100 {
        revocations.revoke_session(&tower_jwt_login::session::new_session_id(), u64::MAX / 2);
    }
    let mut with_sessions = {
        use tower::Layer;
        tower_jwt_login::auth::JwtAuthLayer::new(jwt.clone())
            .revocations(revocations)
            .layer(common::inner())
    };
    let sid_bearer = common::bearer(&sid_token);
    let layer_sessions = (0..5)
        .map(|_| {
            let req = common::request(&sid_bearer);
            let region = Region::new(GLOBAL);
            let status = common::drive(&mut with_sessions, req).status();
            let change = region.change();
            assert_eq!(status, http::StatusCode::OK);
            change.allocations + change.reallocations
        })
        .min()
        .unwrap();
    println!("  JwtAuthLayer, sessions on         {layer_sessions}");
    assert!(
        layer_sessions <= layer_ours,
        "sessions on: {layer_sessions} allocations, off: {layer_ours}"
    );

    // A refused request is counted (feature `metrics`, on for the tests) under a static key: the
    // count itself allocates nothing; metrics-exporter-prometheus copies a labelled key on each
    // registration (`Key::to_retained`), one allocation beside the refusal's own (its response).
    let expired = jwt
        .issue(&tower_jwt_login::Grant::new(common::USER))
        .tokens
        .access_token;
    let refused_bearer = common::bearer(&format!("{expired}x"));
    let refused = |svc: &mut dyn FnMut(http::Request<()>) -> http::StatusCode| {
        (0..5)
            .map(|_| {
                let req = common::request(&refused_bearer);
                let region = Region::new(GLOBAL);
                let status = svc(req);
                let change = region.change();
                assert_eq!(status, http::StatusCode::UNAUTHORIZED);
                change.allocations + change.reallocations
            })
            .min()
            .unwrap()
    };
    let refused_noop = refused(&mut |req| common::drive(&mut ours, req).status());
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap();
    let refused_prometheus = refused(&mut |req| common::drive(&mut ours, req).status());
    println!("  refused, no recorder              {refused_noop}");
    println!("  refused, Prometheus recorder      {refused_prometheus}");
    assert!(
        prometheus
            .render()
            .contains("jwt_auth_rejections_total{reason=\"invalid_token\"} 5\n"),
        "{}",
        prometheus.render()
    );
    assert!(
        refused_prometheus <= refused_noop + 1,
        "a refusal counted by the Prometheus recorder: {refused_prometheus} allocations, \
         without a recorder {refused_noop}"
    );
}

/// `GET /api/v3/process` in an axum router with application state, as real apps have (it makes
/// every clone of a route allocate), whose handler takes the verified claims (through
/// `Extension`, so that this test needs no crate feature).
fn axum_router() -> axum::Router<std::sync::Arc<String>> {
    async fn process(claims: Option<axum::Extension<tower_jwt_login::Claims>>) -> &'static str {
        std::hint::black_box(claims.map(|c| c.subject().len()));
        "[]"
    }
    axum::Router::new().route("/api/v3/process", axum::routing::get(process))
}

/// Allocations of one request through `router` as `axum::serve` runs it (`with_state`), the
/// smallest of a few runs; the request is built outside the counted region.
fn axum_allocations(
    router: axum::Router<std::sync::Arc<String>>,
    bearer: &http::HeaderValue,
) -> usize {
    use tower::Service;
    let mut router: axum::Router = router.with_state(std::sync::Arc::new("state".to_owned()));
    (0..5)
        .map(|_| {
            let mut req = http::Request::get("/api/v3/process")
                .body(axum::body::Body::empty())
                .unwrap();
            req.headers_mut()
                .insert(http::header::AUTHORIZATION, bearer.clone());
            let region = Region::new(GLOBAL);
            let res = common::poll_now(router.call(req)).unwrap();
            let change = region.change();
            assert_eq!(res.status(), http::StatusCode::OK);
            drop(res);
            change.allocations + change.reallocations
        })
        .min()
        .unwrap()
}
