//! layer: a tower stack around a trivial inner service — bare, behind `JwtAuthLayer`, and
//! behind the do-it-yourself alternative (tower-http's `AsyncRequireAuthorizationLayer` with
//! `jsonwebtoken::decode`, see `common::diy`). The interesting figure is each stack's time
//! *minus* bare.
//!
//! The request is built outside the timed part (`iter_batched`); the services answer at once,
//! so their futures are polled without a runtime: only the stack is measured.
//!
//! `cargo bench --bench layer`

mod common;

use std::convert::Infallible;
use std::future::ready;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::{Request, Response, StatusCode};
use tower::Layer;
use tower_jwt_login::Claims;
use tower_jwt_login::auth::JwtAuthLayer;

fn layer(c: &mut Criterion) {
    let jwt = common::jwt();
    let token = jwt.issue_pair(common::USER).access_token;
    let bearer = common::bearer(&token);

    let mut bare = common::inner();
    let mut ours = common::ours(&jwt);
    let mut diy = common::diy();

    // Each stack lets the token through before anything is timed, and the claims arrive.
    assert_eq!(
        common::drive(&mut ours, common::request(&bearer)).status(),
        StatusCode::OK
    );
    assert_eq!(
        common::drive(&mut diy, common::request(&bearer)).status(),
        StatusCode::OK
    );
    let mut seen = JwtAuthLayer::new(jwt.clone()).layer(tower::service_fn(|req: Request<()>| {
        let who = req
            .extensions()
            .get::<Claims>()
            .map(|c| c.subject().to_owned());
        ready(Ok::<_, Infallible>(Response::new(who)))
    }));
    let who = common::drive(&mut seen, common::request(&bearer)).into_body();
    assert!(matches!(who, http_body_util::Either::Left(Some(ref s)) if s == common::USER));

    let mut group = c.benchmark_group("layer");
    group.bench_function("bare", |b| {
        b.iter_batched(
            || common::request(&bearer),
            |req| common::drive(&mut bare, req),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("JwtAuthLayer", |b| {
        b.iter_batched(
            || common::request(&bearer),
            |req| common::drive(&mut ours, req),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("tower-http + jsonwebtoken", |b| {
        b.iter_batched(
            || common::request(&bearer),
            |req| common::drive(&mut diy, req),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, layer);
criterion_main!(benches);
