//! sessions: the layer's cost with sessions on — the local revocation check — against the
//! layer without sessions (issue 10's target: ≤ 1.1 ×). Three stacks around the same trivial
//! inner service, each verifying a token with a `sid`:
//!
//! - `off`: `JwtAuthLayer` without revocations (stateless, as by default);
//! - `on, empty set`: with `revocations(..)` and nothing revoked (one atomic load);
//! - `on, 1000 revoked`: with 1000 other sessions and 100 subjects in the set (a lookup).
//!
//! No I/O in any of them: the Redis store only writes into the set the layer reads. The
//! request is built outside the timed part; the futures answer at once, polled without a
//! runtime.
//!
//! `cargo bench --bench sessions`

mod common;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::StatusCode;
use tower::Layer;
use tower_jwt_login::auth::JwtAuthLayer;
use tower_jwt_login::session::{Revocations, new_session_id};
use tower_jwt_login::{Grant, TokenUse};

fn sessions(c: &mut Criterion) {
    let jwt = common::jwt();
    let sid = new_session_id();
    let token = jwt
        .issue(&Grant::new(common::USER).session(&sid))
        .tokens
        .access_token;
    let bearer = common::bearer(&token);
    assert_eq!(
        jwt.verify(&token, TokenUse::Access).unwrap().session_id(),
        Some(sid.as_str())
    );

    let empty = Revocations::new();
    let full = Revocations::new();
    for i in 0..1000 {
        full.revoke_session(&new_session_id(), u64::MAX / 2 + i);
    }
    for i in 0..100 {
        full.revoke_subject_before(&format!("user-{i}"), 1, u64::MAX / 2);
    }

    let mut off = JwtAuthLayer::new(jwt.clone()).layer(common::inner());
    let mut on_empty = JwtAuthLayer::new(jwt.clone())
        .revocations(empty)
        .layer(common::inner());
    let mut on_full = JwtAuthLayer::new(jwt.clone())
        .revocations(full.clone())
        .layer(common::inner());
    for svc in [&mut off, &mut on_empty, &mut on_full] {
        let res = common::drive(svc, common::request(&bearer));
        assert_eq!(res.status(), StatusCode::OK);
    }
    // The check is real: revoking this session refuses the token.
    let revoked = Revocations::new();
    revoked.revoke_session(&sid, u64::MAX / 2);
    let mut refusing = JwtAuthLayer::new(jwt.clone())
        .revocations(revoked)
        .layer(common::inner());
    let res = common::drive(&mut refusing, common::request(&bearer));
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    let mut group = c.benchmark_group("sessions");
    for (name, svc) in [
        ("JwtAuthLayer, sessions off", &mut off),
        ("JwtAuthLayer, sessions on, empty set", &mut on_empty),
        ("JwtAuthLayer, sessions on, 1000 revoked", &mut on_full),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || common::request(&bearer),
                |req| common::drive(svc, req),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, sessions);
criterion_main!(benches);
