//! verify: the crate's `Jwt::verify` on a Core access token vs `jsonwebtoken::decode` with
//! equally strict settings, same token, same key, same run.
//!
//! `cargo bench --bench verify`

mod common;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tower_jwt_login::TokenUse;

fn verify(c: &mut Criterion) {
    let jwt = common::jwt();
    let baseline = common::Baseline::new();
    let token = jwt.issue_pair(common::USER).access_token;
    // Both sides accept the token before anything is timed.
    assert!(jwt.verify(&token, TokenUse::Access).is_ok());
    assert!(baseline.verify_access(&token).is_some());

    let mut group = c.benchmark_group("verify");
    group.bench_function("tower-jwt-login", |b| {
        b.iter(|| jwt.verify(black_box(&token), TokenUse::Access).unwrap())
    });
    group.bench_function("jsonwebtoken", |b| {
        b.iter(|| baseline.verify_access(black_box(&token)).unwrap())
    });
    // A refused token (bad signature): the cost an attacker can make the server pay.
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    group.bench_function("tower-jwt-login bad signature", |b| {
        b.iter(|| {
            jwt.verify(black_box(&forged), TokenUse::Access)
                .unwrap_err()
        })
    });
    group.bench_function("jsonwebtoken bad signature", |b| {
        b.iter(|| assert!(baseline.verify_access(black_box(&forged)).is_none()))
    });
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
