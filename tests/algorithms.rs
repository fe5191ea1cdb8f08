//! Every `Algorithm` end to end: mint a pair, verify both tokens, log in, reach a protected route
//! through `JwtAuthLayer` and refresh through `RefreshService` over real HTTP on 127.0.0.1, and
//! cross-check every token with `jsonwebtoken` both ways (it verifies ours, we verify its).
//!
//! HS384 and HS512 tokens are minted and verified end to end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::get;
use axum::{Extension, Router};
use common::{INVALID_TOKEN, Req, decode_parts, login_at, now, spawn_router};
use tower_jwt_login::auth::{JwtAuthLayer, PathPolicy};
use tower_jwt_login::error::TokenError;
use tower_jwt_login::login::{LoginService, RefreshService};
use tower_jwt_login::store::PlaintextUser;
use tower_jwt_login::{Algorithm, Claims, Jwt, JwtConfig, JwtKey, TokenUse};

const USER: &str = "alice";
const PASSWORD: &str = "correct horse battery staple";
const SECRET: &[u8] = b"a test secret of at least 64 bytes for HS512 keys, 0123456789abcdef";
const ISSUER: &str = "datarhei-core";

/// Every value of the (non-exhaustive) enum. A new variant must be added here: the match in
/// `name` has no wildcard arm for the ones the crate defines today.
const ALL: [Algorithm; 3] = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];

fn name(alg: Algorithm) -> (&'static str, jsonwebtoken::Algorithm, usize) {
    match alg {
        Algorithm::HS256 => ("HS256", jsonwebtoken::Algorithm::HS256, 32),
        Algorithm::HS384 => ("HS384", jsonwebtoken::Algorithm::HS384, 48),
        Algorithm::HS512 => ("HS512", jsonwebtoken::Algorithm::HS512, 64),
        other => panic!("algorithm {other:?} missing from this test"),
    }
}

fn jwt(alg: Algorithm) -> Jwt {
    JwtConfig::new(JwtKey::from_secret(SECRET).unwrap())
        .algorithm(alg)
        .build()
        .unwrap()
}

/// `jsonwebtoken`'s verdict on one of our tokens, as strict as the crate.
fn jsonwebtoken_claims(alg: Algorithm, token: &str) -> serde_json::Value {
    tower_jwt_login::ensure_jsonwebtoken_backend();
    let mut validation = jsonwebtoken::Validation::new(name(alg).1);
    validation.leeway = 0;
    validation.validate_aud = false;
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    jsonwebtoken::decode::<serde_json::Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(SECRET),
        &validation,
    )
    .unwrap_or_else(|e| panic!("jsonwebtoken refuses our {alg:?} token: {e}"))
    .claims
}

/// Asserts the shape of one of our tokens: header, signature length, claims as jsonwebtoken
/// reads them.
fn check_token(alg: Algorithm, token: &str, usefor: &str) {
    let (alg_name, _, tag_len) = name(alg);
    let (header, _) = decode_parts(token);
    assert_eq!(
        header,
        format!("{{\"alg\":\"{alg_name}\",\"typ\":\"JWT\"}}")
    );
    let signature = token.rsplit('.').next().unwrap();
    assert_eq!(signature.len(), (tag_len * 4).div_ceil(3), "{alg_name}");
    let claims = jsonwebtoken_claims(alg, token);
    assert_eq!(claims["sub"], USER, "{alg_name}");
    assert_eq!(claims["usefor"], usefor, "{alg_name}");
    assert_eq!(claims["iss"], ISSUER, "{alg_name}");
}

async fn whoami(Extension(claims): Extension<Claims>) -> String {
    format!("hello {} ({:?})", claims.subject(), claims.token_use())
}

/// Login, refresh and one protected route, all under `/api`, guarded by `JwtAuthLayer`.
async fn server(jwt: &Jwt) -> SocketAddr {
    let login = LoginService::new(jwt.clone(), PlaintextUser::new(USER, PASSWORD))
        .failure_delay(Duration::ZERO);
    let router = Router::new()
        .route("/api/whoami", get(whoami))
        .route_service("/api/login", login)
        .route_service("/api/login/refresh", RefreshService::new(jwt.clone()))
        .layer(JwtAuthLayer::new(jwt.clone()).policy(PathPolicy::new().login_routes("/api")));
    spawn_router(router).await
}

#[test]
fn every_algorithm_mints_and_verifies_a_pair() {
    for alg in ALL {
        let jwt = jwt(alg);
        assert_eq!(jwt.algorithm(), alg);
        let pair = jwt.issue_pair(USER);
        let access = jwt.verify(&pair.access_token, TokenUse::Access);
        let access = access.unwrap_or_else(|e| panic!("{alg:?} access token refused: {e}"));
        assert_eq!(access.subject(), USER);
        assert_eq!(access.token_use(), TokenUse::Access);
        let refresh = jwt.verify(&pair.refresh_token, TokenUse::Refresh);
        let refresh = refresh.unwrap_or_else(|e| panic!("{alg:?} refresh token refused: {e}"));
        assert_eq!(refresh.subject(), USER);
        assert_eq!(refresh.issued_at(), access.issued_at());
        check_token(alg, &pair.access_token, "access");
        check_token(alg, &pair.refresh_token, "refresh");
        let access_alone = jwt.issue_access(USER);
        assert!(
            jwt.verify(&access_alone, TokenUse::Access).is_ok(),
            "{alg:?}"
        );
        check_token(alg, &access_alone, "access");
    }
}

/// What jsonwebtoken mints with each algorithm, we verify; one byte off in the signature and we
/// refuse it. A token of any other algorithm is refused as such.
#[test]
fn every_algorithm_verifies_what_jsonwebtoken_mints() {
    tower_jwt_login::ensure_jsonwebtoken_backend();
    for alg in ALL {
        let jwt = jwt(alg);
        let iat = now();
        let claims = serde_json::json!({
            "exi": 600, "exp": iat + 600, "iat": iat, "iss": ISSUER,
            "jti": "6a1f0c52-7c4e-4b8e-9d0a-1f2e3d4c5b6a", "sub": USER, "usefor": "access",
        });
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(name(alg).1),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        let verified = jwt.verify(&token, TokenUse::Access);
        let verified = verified.unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(verified.subject(), USER);
        assert_eq!(verified.expires_at(), iat + 600);

        // Flip one bit of the first signature byte: a wrong tag of the right length.
        let (input, signature) = token.rsplit_once('.').unwrap();
        let mut sig = signature.as_bytes().to_vec();
        sig[0] = if sig[0] == b'A' { b'B' } else { b'A' };
        let forged = format!("{input}.{}", String::from_utf8(sig).unwrap());
        assert_eq!(
            jwt.verify(&forged, TokenUse::Access).unwrap_err(),
            TokenError::InvalidSignature,
            "{alg:?}"
        );

        for other in ALL.into_iter().filter(|&o| o != alg) {
            let theirs = crate::jwt(other).issue_access(USER);
            assert_eq!(
                jwt.verify(&theirs, TokenUse::Access).unwrap_err(),
                TokenError::UnsupportedAlgorithm,
                "{other:?} token on a {alg:?} verifier"
            );
        }
    }
}

/// Over HTTP for each algorithm: log in, use the access token on a protected route, refresh,
/// use the refreshed token; every token also passes jsonwebtoken.
#[tokio::test]
async fn every_algorithm_logs_in_reaches_the_route_and_refreshes_over_http() {
    for alg in ALL {
        let jwt = jwt(alg);
        let addr = server(&jwt).await;
        let (access, refresh) = login_at(addr, "/api/login", USER, PASSWORD).await;
        check_token(alg, &access, "access");
        check_token(alg, &refresh, "refresh");

        let reply = Req::get("/api/whoami").bearer(&access).send(addr).await;
        assert_eq!(reply.status, 200, "{alg:?}: {}", reply.text());
        assert_eq!(reply.text(), "hello alice (Access)");
        assert_eq!(
            reply.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(reply.header("www-authenticate"), None);

        // The refresh token is no access token, and the route needs one.
        let reply = Req::get("/api/whoami").bearer(&refresh).send(addr).await;
        reply.assert_error(401, "Missing or invalid JWT token");
        assert_eq!(reply.text(), INVALID_TOKEN);

        let reply = Req::get("/api/login/refresh")
            .bearer(&refresh)
            .send(addr)
            .await;
        assert_eq!(reply.status, 200, "{alg:?}: {}", reply.text());
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let v = reply.json();
        let renewed = v["access_token"].as_str().unwrap();
        assert_eq!(
            reply.text(),
            format!("{{\"access_token\":\"{renewed}\"}}\n")
        );
        check_token(alg, renewed, "access");
        let reply = Req::get("/api/whoami").bearer(renewed).send(addr).await;
        assert_eq!(reply.status, 200, "{alg:?}: {}", reply.text());
        assert_eq!(reply.text(), "hello alice (Access)");

        // An access token does not refresh.
        let reply = Req::get("/api/login/refresh")
            .bearer(&access)
            .send(addr)
            .await;
        reply.assert_error(401, "Missing or invalid JWT token");
    }
}
