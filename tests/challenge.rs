//! RFC 6750 `WWW-Authenticate` challenges over real HTTP against the example server: a client
//! can tell an expired token (refresh now) from a forged or foreign one (log in again), while
//! the body stays Core's. A missing token gets the bare `Bearer` challenge
//! (RFC 6750 §3.1: no error code without credentials).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;

async fn server() -> std::net::SocketAddr {
    spawn_core(core_config(Duration::ZERO)).await
}

/// An access token signed with Core's key, expired ten seconds ago.
fn expired(usefor: &str) -> String {
    sign_hs256(
        &core_key(),
        CORE_HEADER,
        &core_claims(usefor, now() - 610, 600),
    )
}

#[tokio::test]
async fn missing_expired_and_forged_tokens_get_distinct_challenges_and_one_body() {
    let addr = server().await;
    let (access, _) = login(addr).await;

    let missing = Req::get("/api/v3/process").send(addr).await;
    missing.assert_error(401, "Missing or invalid JWT token");
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));

    let token = expired("access");
    let reply = Req::get("/api/v3/process").bearer(&token).send(addr).await;
    reply.assert_error(401, "Missing or invalid JWT token");
    assert_eq!(
        reply.header("www-authenticate"),
        Some("Bearer error=\"invalid_token\", error_description=\"token expired\"")
    );

    // The valid token with its signature's last symbol changed: forged.
    let mut forged = access.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'Q' } else { 'A' });
    let reply = Req::get("/api/v3/process").bearer(&forged).send(addr).await;
    reply.assert_error(401, "Missing or invalid JWT token");
    assert_eq!(
        reply.header("www-authenticate"),
        Some("Bearer error=\"invalid_token\", error_description=\"invalid signature\"")
    );

    // Signed with another key.
    let foreign = sign_hs256(
        b"someone else's key",
        CORE_HEADER,
        &core_claims("access", now(), 600),
    );
    let reply = Req::get("/api/v3/process")
        .bearer(&foreign)
        .send(addr)
        .await;
    reply.assert_invalid_token("invalid signature");

    // Another algorithm than the configured one.
    let hs512 = tower_jwt_login::JwtConfig::new(tower_jwt_login::JwtKey::core_compatible(
        USER, PASSWORD, SECRET,
    ))
    .algorithm(tower_jwt_login::Algorithm::HS512)
    .build()
    .unwrap()
    .issue_access(USER);
    let reply = Req::get("/api/v3/process").bearer(&hs512).send(addr).await;
    reply.assert_invalid_token("unsupported algorithm");

    // Not a JWT at all, and not the Bearer scheme.
    let reply = Req::get("/api/v3/process")
        .bearer("not-a-jwt")
        .send(addr)
        .await;
    reply.assert_invalid_token("malformed token");
    let reply = Req::get("/api/v3/process")
        .header("Authorization", "Basic YWRtaW46ZGF0YXJoZWk=")
        .send(addr)
        .await;
    reply.assert_invalid_token("invalid Authorization header");

    // The same body every time, and the challenge never repeats the token.
    for token in [&token, &forged, &foreign, &hs512] {
        let reply = Req::get("/api/v3/process").bearer(token).send(addr).await;
        assert_eq!(reply.body, missing.body);
        let challenge = reply.header("www-authenticate").unwrap();
        let signature = token.rsplit('.').next().unwrap();
        assert!(!challenge.contains(signature), "{challenge}");
        assert!(!challenge.contains("eyJ"), "{challenge}");
    }

    // Still served with the good token.
    let reply = Req::get("/api/v3/process").bearer(&access).send(addr).await;
    assert_eq!((reply.status, reply.text()), (200, "[]\n"));
    assert_eq!(reply.header("www-authenticate"), None);
}

#[tokio::test]
async fn the_refresh_route_says_why_too() {
    let addr = server().await;
    let (access, refresh) = login(addr).await;
    let reply = Req::get("/api/login/refresh")
        .bearer(&expired("refresh"))
        .send(addr)
        .await;
    reply.assert_invalid_token("token expired");
    let reply = Req::get("/api/login/refresh")
        .bearer(&access)
        .send(addr)
        .await;
    reply.assert_invalid_token("wrong token use");
    let reply = Req::get("/api/login/refresh").send(addr).await;
    reply.assert_unauthorized(false);
    let reply = Req::get("/api/login/refresh")
        .bearer(&refresh)
        .send(addr)
        .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn head_requests_get_the_challenge_without_a_body() {
    let addr = server().await;
    let reply = Req::new("HEAD", "/api/v3/process")
        .bearer(&expired("access"))
        .send(addr)
        .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.header("www-authenticate"),
        Some("Bearer error=\"invalid_token\", error_description=\"token expired\"")
    );
    assert!(reply.body.is_empty());
}
