//! verify: the crate's `Jwt::verify` on a Core access token vs `jsonwebtoken::decode` with
//! equally strict settings, same token, same key, same run; then tokens without `kid` in a ring
//! rotated away from Core's single secret (`verify kid-less`).
//!
//! `cargo bench --bench verify`

mod common;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tower_jwt_login::{JwtConfig, JwtKey, TokenUse, VerificationKey};

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

/// A ring as `CORE_API_AUTH_JWT_SECRET=new CORE_API_AUTH_JWT_PREVIOUS_SECRETS=…` builds it: the
/// signing secret and four previous ones. A kid-less token signed by the signing secret (as Core
/// itself mints with it) verifies against the signing key first: the previous secrets are tried
/// only when that fails, so it costs what it cost without them. The other cases are that
/// fallback: a token of the first and of the last previous secret, and a forged one (every key
/// tried: the most a kid-less token can make the server pay).
fn kidless(c: &mut Criterion) {
    let key = |secret: &str| JwtKey::core_compatible(common::USER, common::PASSWORD, secret);
    let previous = ["old-1", "old-2", "old-3", "old-4"];
    let ring = JwtConfig::new(key("new"))
        .verification_keys(previous.map(|s| VerificationKey::hmac(key(s))))
        .build()
        .unwrap();
    let lone = |secret: &str| JwtConfig::new(key(secret)).build().unwrap();
    let by_signing = lone("new").issue_access(common::USER);
    assert!(by_signing.starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."));
    assert!(ring.verify(&by_signing, TokenUse::Access).is_ok());
    let with_kid = ring.issue_access(common::USER);
    assert!(ring.verify(&with_kid, TokenUse::Access).is_ok());

    let mut group = c.benchmark_group("verify kid-less");
    group.bench_function("kid of the signing key", |b| {
        b.iter(|| ring.verify(black_box(&with_kid), TokenUse::Access).unwrap())
    });
    group.bench_function("no kid, signing key", |b| {
        b.iter(|| {
            ring.verify(black_box(&by_signing), TokenUse::Access)
                .unwrap()
        })
    });
    let first = lone(previous[0]).issue_access(common::USER);
    let last = lone(previous[3]).issue_access(common::USER);
    let mut forged = by_signing.clone();
    forged.pop();
    forged.push(if by_signing.ends_with('A') { 'B' } else { 'A' });
    assert!(ring.verify(&first, TokenUse::Access).is_ok());
    assert!(ring.verify(&last, TokenUse::Access).is_ok());
    group.bench_function("no kid, first previous secret", |b| {
        b.iter(|| ring.verify(black_box(&first), TokenUse::Access).unwrap())
    });
    group.bench_function("no kid, last previous secret", |b| {
        b.iter(|| ring.verify(black_box(&last), TokenUse::Access).unwrap())
    });
    group.bench_function("no kid, bad signature", |b| {
        b.iter(|| {
            ring.verify(black_box(&forged), TokenUse::Access)
                .unwrap_err()
        })
    });
    group.finish();
}

criterion_group!(benches, verify, kidless);
criterion_main!(benches);
