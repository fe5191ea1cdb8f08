//! mint: the crate's login pair and refreshed access token vs `jsonwebtoken::encode` of the
//! same Core claims (with a fresh random `jti`, as the crate mints them).
//!
//! `cargo bench --bench mint`

mod common;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

fn mint(c: &mut Criterion) {
    let jwt = common::jwt();
    let baseline = common::Baseline::new();

    let mut group = c.benchmark_group("mint");
    group.bench_function("tower-jwt-login issue_pair", |b| {
        b.iter(|| jwt.issue_pair(black_box(common::USER)))
    });
    group.bench_function("jsonwebtoken 2x encode", |b| {
        b.iter(|| {
            let iat = common::now();
            let mut random = [0u8; 32];
            getrandom::getrandom(&mut random).unwrap();
            let (a, r) = random.split_at(16);
            let sub = black_box(common::USER);
            (
                baseline.encode(sub, "access", 600, iat, common::uuid_v4(a)),
                baseline.encode(sub, "refresh", 86_400, iat, common::uuid_v4(r)),
            )
        })
    });
    group.bench_function("tower-jwt-login issue_access", |b| {
        b.iter(|| jwt.issue_access(black_box(common::USER)))
    });
    group.bench_function("jsonwebtoken encode", |b| {
        b.iter(|| {
            let mut random = [0u8; 16];
            getrandom::getrandom(&mut random).unwrap();
            let sub = black_box(common::USER);
            baseline.encode(sub, "access", 600, common::now(), common::uuid_v4(&random))
        })
    });
    group.finish();
}

criterion_group!(benches, mint);
criterion_main!(benches);
