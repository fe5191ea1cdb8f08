//! login: `LoginService` end to end in-process (body → store → pair → JSON answer) with
//! `PlaintextUser` and with `Argon2Store`, and `RefreshService` (bearer → verify → mint).
//!
//! `cargo bench --bench login`

mod common;

use std::time::Duration;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{Request, StatusCode};
use http_body_util::Full;
use tower::Service;
use tower_jwt_login::login::{LoginService, RefreshService};
use tower_jwt_login::store::{Argon2Store, PlaintextUser};

fn login_request() -> Request<Full<Bytes>> {
    let body = format!(
        "{{\"username\":\"{}\",\"password\":\"{}\"}}",
        common::USER,
        common::PASSWORD
    );
    Request::post("/api/login")
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn login(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let jwt = common::jwt();

    let mut plaintext = LoginService::new(
        jwt.clone(),
        PlaintextUser::new(common::USER, common::PASSWORD),
    );
    let argon2 = Argon2Store::new()
        .with_password(common::USER, common::PASSWORD)
        .unwrap();
    let mut argon2 = LoginService::new(jwt.clone(), argon2);
    let mut refresh = RefreshService::new(jwt.clone());
    let refresh_token = jwt.issue_pair(common::USER).refresh_token;
    let refresh_request = || {
        Request::get("/api/login/refresh")
            .header(AUTHORIZATION, format!("Bearer {refresh_token}"))
            .body(())
            .unwrap()
    };

    for res in [
        rt.block_on(plaintext.call(login_request())).unwrap(),
        rt.block_on(argon2.call(login_request())).unwrap(),
    ] {
        assert_eq!(res.status(), StatusCode::OK);
    }
    let res = common::poll_now(refresh.call(refresh_request())).unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    let mut group = c.benchmark_group("login");
    group.bench_function("LoginService PlaintextUser", |b| {
        b.iter_batched(
            login_request,
            |req| rt.block_on(plaintext.call(req)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("RefreshService", |b| {
        b.iter_batched(
            refresh_request,
            |req| common::poll_now(refresh.call(req)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();

    // Argon2id with its default parameters costs tens of milliseconds by design: few samples.
    let mut group = c.benchmark_group("login-argon2");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("LoginService Argon2Store", |b| {
        b.iter_batched(
            login_request,
            |req| rt.block_on(argon2.call(req)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, login);
criterion_main!(benches);
