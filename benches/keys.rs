//! keys: `Jwt::verify` per algorithm vs `jsonwebtoken::decode` with the same key (for the
//! asymmetric ones, jsonwebtoken's key comes from the crate's own JWKS via
//! `DecodingKey::from_jwk`, as another service would get it), same token, same run.
//!
//! `cargo bench --features asymmetric --bench keys` (with only the default `rust_crypto`
//! backend, jsonwebtoken verifies with RustCrypto; the README table uses that build).

mod common;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tower_jwt_login::{Algorithm, Jwt, JwtConfig, JwtKey, SigningKey, TokenUse};

const SECRET: &[u8] = b"a benchmark secret of at least 64 bytes for every HMAC size......";

fn setup(alg: Algorithm) -> (Jwt, jsonwebtoken::DecodingKey, jsonwebtoken::Algorithm) {
    tower_jwt_login::ensure_jsonwebtoken_backend();
    let (jwt, decoding) = if alg.is_hmac() {
        let jwt = JwtConfig::new(JwtKey::from_secret(SECRET).unwrap())
            .algorithm(alg)
            .build()
            .unwrap();
        (jwt, jsonwebtoken::DecodingKey::from_secret(SECRET))
    } else {
        let jwt = JwtConfig::new(SigningKey::generate(alg).unwrap())
            .build()
            .unwrap();
        let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&jwt.jwks_json()).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(&set.keys[0]).unwrap();
        (jwt, key)
    };
    let j = match alg {
        Algorithm::HS256 => jsonwebtoken::Algorithm::HS256,
        Algorithm::HS384 => jsonwebtoken::Algorithm::HS384,
        Algorithm::HS512 => jsonwebtoken::Algorithm::HS512,
        Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
        Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
        other => panic!("{other:?}"),
    };
    (jwt, decoding, j)
}

fn keys(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify per algorithm");
    for alg in Algorithm::ALL {
        let (jwt, decoding, j) = setup(alg);
        let mut validation = jsonwebtoken::Validation::new(j);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_issuer(&[common::ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let baseline = |token: &str| {
            let data =
                jsonwebtoken::decode::<common::CoreClaims>(token, &decoding, &validation).ok()?;
            (data.claims.usefor == "access").then_some(data.claims)
        };
        let token = jwt.issue_access(common::USER);
        // Both sides accept the token before anything is timed.
        assert!(jwt.verify(&token, TokenUse::Access).is_ok());
        assert!(baseline(&token).is_some(), "{alg:?}");

        group.bench_function(format!("{} tower-jwt-login", alg.as_str()), |b| {
            b.iter(|| jwt.verify(black_box(&token), TokenUse::Access).unwrap())
        });
        group.bench_function(format!("{} jsonwebtoken", alg.as_str()), |b| {
            b.iter(|| baseline(black_box(&token)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, keys);
criterion_main!(benches);
