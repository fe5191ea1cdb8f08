//! claims: the cost of extra claims — verifying a token with three extra claims
//! (`roles`, `tenant`, `plan`) against one without, and the layer with each token, with and
//! without a role requirement on the path and with the typed extra claims
//! (`JwtAuthLayer::claims_type`). A token without extra claims takes the fast path as before;
//! one with extras takes the general parse plus one walk that collects them.
//!
//! `cargo bench --bench claims`

mod common;

use criterion::{BatchSize, Criterion, criterion_group};
use http::StatusCode;
use tower::Layer;
use tower_jwt_login::auth::{JwtAuthLayer, PathPolicy, Requirement};
use tower_jwt_login::{Principal, TokenUse};

#[derive(Clone, serde::Deserialize)]
#[allow(dead_code)]
struct App {
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    plan: String,
}

/// The key, an access token without extra claims and one with three (`roles`, `tenant`,
/// `plan`).
fn tokens() -> (tower_jwt_login::Jwt, String, String) {
    let jwt = common::jwt();
    let plain = jwt.issue_pair(common::USER).access_token;
    let principal = Principal::builder(common::USER)
        .claim("roles", ["admin", "editor"])
        .claim("tenant", "acme")
        .claim("plan", "pro")
        .build()
        .unwrap();
    let extra = jwt.issue_pair_for(&principal).access_token;
    (jwt, plain, extra)
}

fn claims(c: &mut Criterion) {
    let (jwt, plain, extra) = tokens();
    assert!(
        jwt.verify(&plain, TokenUse::Access)
            .unwrap()
            .extra_json()
            .is_none()
    );
    assert!(
        jwt.verify(&extra, TokenUse::Access)
            .unwrap()
            .has_role("admin")
    );

    let mut group = c.benchmark_group("verify");
    group.bench_function("no extra claims", |b| {
        b.iter(|| jwt.verify(&plain, TokenUse::Access))
    });
    group.bench_function("three extra claims", |b| {
        b.iter(|| jwt.verify(&extra, TokenUse::Access))
    });
    group.finish();

    let stacks = [
        ("layer", JwtAuthLayer::new(jwt.clone())),
        (
            "layer + role requirement",
            JwtAuthLayer::new(jwt.clone())
                .policy(PathPolicy::new().require("/*", Requirement::role("admin"))),
        ),
        (
            "layer + claims_type",
            JwtAuthLayer::new(jwt.clone()).claims_type::<App>(),
        ),
    ];
    let mut group = c.benchmark_group("layer");
    for (name, layer) in stacks {
        let mut service = layer.layer(common::inner());
        for (label, token) in [("no extra claims", &plain), ("three extra claims", &extra)] {
            let bearer = common::bearer(token);
            let status = common::drive(&mut service, common::request(&bearer)).status();
            // Only the role requirement refuses the token without extras.
            if name == "layer + role requirement" && label == "no extra claims" {
                assert_eq!(status, StatusCode::FORBIDDEN);
            } else {
                assert_eq!(status, StatusCode::OK);
            }
            group.bench_function(format!("{name}: {label}"), |b| {
                b.iter_batched(
                    || common::request(&bearer),
                    |req| common::drive(&mut service, req),
                    BatchSize::SmallInput,
                )
            });
        }
    }
    group.finish();
}

/// The figures the target is about, measured interleaved (see [`common::interleaved`]): on a
/// shared VM, criterion's medians for two benchmarks taken a minute apart can differ by 30 % in
/// either direction for reasons that have nothing to do with the code.
fn interleaved() {
    let (jwt, plain, extra) = tokens();
    let verify = |token: &str| {
        let jwt = jwt.clone();
        let token = token.to_owned();
        move || {
            std::hint::black_box(jwt.verify(std::hint::black_box(&token), TokenUse::Access))
                .unwrap();
        }
    };
    common::interleaved(
        "verify",
        40,
        20_000,
        &mut [
            ("no extra claims", &mut verify(&plain)),
            ("three extra claims", &mut verify(&extra)),
        ],
    );
    let layer = |token: &str| {
        let mut service = JwtAuthLayer::new(jwt.clone()).layer(common::inner());
        let bearer = common::bearer(token);
        move || {
            let req = common::request(&bearer);
            std::hint::black_box(common::drive(&mut service, req));
        }
    };
    let request = || {
        let bearer = common::bearer(&plain);
        move || {
            std::hint::black_box(common::request(&bearer));
        }
    };
    // The layer's cost is the stack's time less building the request (the last case).
    if let Some(times) = common::interleaved(
        "layer (each case builds its request)",
        40,
        20_000,
        &mut [
            ("no extra claims", &mut layer(&plain)),
            ("three extra claims", &mut layer(&extra)),
            ("building the request alone", &mut request()),
        ],
    ) {
        let (ratio, lo, hi) = common::median_of_rounds(&times, |t| (t[1] - t[2]) / (t[0] - t[2]));
        println!(
            "  the layer alone (less building the request), three extra claims vs none: \
             median {ratio:.2} (rounds {lo:.2}-{hi:.2})"
        );
    }
}

criterion_group!(benches, claims);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    interleaved();
}
