//! Sessions over HTTP on one instance (the memory store), against the example server: the `sid`
//! claim, logout, logout everywhere, refresh checked in the store, rotation with reuse detection,
//! and what stays exactly as before with sessions off.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use tower_jwt_login::auth0::NoAuth0;
use tower_jwt_login::config::CoreAuthConfig;
use tower_jwt_login::session::{MemorySessionStore, Sessions};
use tower_jwt_login::{JwtConfig, TokenUse};

const SID_CLAIM: &str = "\"sid\":\"";

async fn server(rotation: Option<Duration>) -> (SocketAddr, Sessions) {
    let mut config = core_config(Duration::ZERO);
    if let Some(grace) = rotation {
        config.sessions = tower_jwt_login::config::SessionBackend::Memory;
        config.refresh_rotation = true;
        config.refresh_rotation_grace = grace;
    }
    let jwt = JwtConfig::new(config.jwt_key()).build().unwrap();
    let sessions = Sessions::new(MemorySessionStore::new(&jwt));
    let app = core_server::app_with_sessions(&config, NoAuth0, Vec::new(), Some(sessions.clone()))
        .unwrap();
    (spawn_router(app).await, sessions)
}

fn sid_of(token: &str) -> String {
    let (_, claims) = decode_parts(token);
    let v: serde_json::Value = serde_json::from_str(&claims).unwrap();
    v["sid"].as_str().unwrap().to_owned()
}

async fn process(addr: SocketAddr, access: &str) -> Reply {
    Req::get("/api/v3/process").bearer(access).send(addr).await
}

async fn refresh(addr: SocketAddr, refresh: &str) -> Reply {
    Req::get("/api/login/refresh")
        .bearer(refresh)
        .send(addr)
        .await
}

#[tokio::test]
async fn login_tokens_carry_one_session_id_after_cores_claims() {
    let (addr, _) = server(None).await;
    let (access, refresh_token) = login(addr).await;
    let sid = sid_of(&access);
    assert_eq!(sid, sid_of(&refresh_token));
    assert_eq!(sid.len(), 22);
    let (_, claims) = decode_parts(&access);
    assert!(
        claims.ends_with(&format!(",\"usefor\":\"access\",\"sid\":\"{sid}\"}}")),
        "{claims}"
    );
    // Another login, another session.
    let (other, _) = login(addr).await;
    assert_ne!(sid_of(&other), sid);
}

#[tokio::test]
async fn with_sessions_off_no_sid_and_no_logout_route() {
    let addr = spawn_core(core_config(Duration::ZERO)).await;
    let (access, refresh_token) = login(addr).await;
    for token in [&access, &refresh_token] {
        assert!(!decode_parts(token).1.contains(SID_CLAIM));
    }
    let reply = Req::post("/api/logout").bearer(&access).send(addr).await;
    reply.assert_error(404, "Not Found");
}

#[tokio::test]
async fn logout_ends_the_session_at_once() {
    let (addr, _) = server(None).await;
    let (access, refresh_token) = login(addr).await;
    let (other_access, other_refresh) = login(addr).await;
    assert_eq!(process(addr, &access).await.status, 200);

    let reply = Req::post("/api/logout").bearer(&access).send(addr).await;
    assert_eq!(reply.status, 204, "{}", reply.text());
    assert!(reply.body.is_empty());

    process(addr, &access).await.assert_unauthorized(true);
    refresh(addr, &refresh_token)
        .await
        .assert_unauthorized(true);
    // A second logout with the revoked token: 401.
    Req::post("/api/logout")
        .bearer(&access)
        .send(addr)
        .await
        .assert_unauthorized(true);
    // The other session lives on.
    assert_eq!(process(addr, &other_access).await.status, 200);
    assert_eq!(refresh(addr, &other_refresh).await.status, 200);
}

#[tokio::test]
async fn logout_with_the_refresh_token_works_too() {
    let (addr, _) = server(None).await;
    let (access, refresh_token) = login(addr).await;
    let reply = Req::post("/api/logout")
        .bearer(&refresh_token)
        .send(addr)
        .await;
    assert_eq!(reply.status, 204);
    process(addr, &access).await.assert_unauthorized(true);
    refresh(addr, &refresh_token)
        .await
        .assert_unauthorized(true);
}

#[tokio::test]
async fn logout_everywhere_ends_every_session_of_the_subject() {
    let (addr, sessions) = server(None).await;
    let a = login(addr).await;
    let b = login(addr).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let reply = Req::post("/api/logout/all").bearer(&a.0).send(addr).await;
    assert_eq!(reply.status, 204);
    for (access, refresh_token) in [&a, &b] {
        process(addr, access).await.assert_unauthorized(true);
        refresh(addr, refresh_token).await.assert_unauthorized(true);
    }
    assert!(sessions.revocations().not_before(USER).is_some());
    // Logging in again works.
    let c = login(addr).await;
    assert_eq!(process(addr, &c.0).await.status, 200);
    assert_eq!(refresh(addr, &c.1).await.status, 200);
}

#[tokio::test]
async fn the_apps_hook_logs_a_user_out_everywhere() {
    let (addr, sessions) = server(None).await;
    let (access, refresh_token) = login(addr).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    sessions.end_all(USER).await.unwrap();
    process(addr, &access).await.assert_unauthorized(true);
    refresh(addr, &refresh_token)
        .await
        .assert_unauthorized(true);
}

#[tokio::test]
async fn logout_refuses_bad_tokens_in_the_error_shape() {
    let (addr, _) = server(None).await;
    // No token, a garbage token, a stateless token (no sid) of the same key: 401.
    Req::post("/api/logout")
        .send(addr)
        .await
        .assert_unauthorized(false);
    Req::post("/api/logout")
        .bearer("x.y.z")
        .send(addr)
        .await
        .assert_unauthorized(true);
    let jwt = JwtConfig::new(core_config(Duration::ZERO).jwt_key())
        .build()
        .unwrap();
    let stateless = jwt.issue_pair(USER);
    for path in ["/api/logout", "/api/logout/all"] {
        let reply = Req::post(path)
            .bearer(&stateless.access_token)
            .send(addr)
            .await;
        reply.assert_unauthorized(true);
    }
    // Only POST: GET of the logout route needs a token first (protected), then 404.
    let (access, _) = login(addr).await;
    Req::get("/api/logout")
        .send(addr)
        .await
        .assert_unauthorized(false);
    Req::get("/api/logout")
        .bearer(&access)
        .send(addr)
        .await
        .assert_error(404, "Not Found");
}

#[tokio::test]
async fn with_sessions_a_stateless_refresh_token_is_refused() {
    let (addr, _) = server(None).await;
    let jwt = JwtConfig::new(core_config(Duration::ZERO).jwt_key())
        .build()
        .unwrap();
    let stateless = jwt.issue_pair(USER);
    refresh(addr, &stateless.refresh_token)
        .await
        .assert_unauthorized(true);
    // A refresh of a live session answers Core's shape: one access token, same session.
    let (access, refresh_token) = login(addr).await;
    let reply = refresh(addr, &refresh_token).await;
    assert_eq!(reply.status, 200);
    let v = reply.json();
    assert_eq!(v.as_object().unwrap().len(), 1);
    let new_access = v["access_token"].as_str().unwrap();
    assert_eq!(sid_of(new_access), sid_of(&access));
    assert_eq!(
        reply.text(),
        format!("{{\"access_token\":\"{new_access}\"}}\n")
    );
    assert!(jwt.verify(new_access, TokenUse::Access).is_ok());
}

#[tokio::test]
async fn rotation_answers_a_new_pair_and_reuse_ends_the_session() {
    let (addr, _) = server(Some(Duration::ZERO)).await;
    let (access, first) = login(addr).await;
    let reply = refresh(addr, &first).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let v = reply.json();
    let (access2, second) = (
        v["access_token"].as_str().unwrap().to_owned(),
        v["refresh_token"].as_str().unwrap().to_owned(),
    );
    assert_eq!(
        reply.text(),
        format!("{{\"access_token\":\"{access2}\",\"refresh_token\":\"{second}\"}}\n")
    );
    assert_eq!(sid_of(&second), sid_of(&access));
    // The successor works, the first is spent.
    let reply = refresh(addr, &second).await;
    assert_eq!(reply.status, 200);
    let third = reply.json()["refresh_token"].as_str().unwrap().to_owned();
    // Replaying the spent first token: 401, and the whole session is over.
    refresh(addr, &first).await.assert_unauthorized(true);
    refresh(addr, &third).await.assert_unauthorized(true);
    for token in [&access, &access2] {
        process(addr, token).await.assert_unauthorized(true);
    }
}

#[tokio::test]
async fn rotation_grace_lets_a_lost_answer_be_retried() {
    let (addr, _) = server(Some(Duration::from_secs(2))).await;
    let (_, first) = login(addr).await;
    let lost = refresh(addr, &first).await;
    assert_eq!(lost.status, 200);
    let retry = refresh(addr, &first).await;
    assert_eq!(retry.status, 200, "within the grace");
    let kept = retry.json()["refresh_token"].as_str().unwrap().to_owned();
    let lost = lost.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(refresh(addr, &kept).await.status, 200);
    // The successor whose answer was "lost" was replaced: presenting it is reuse.
    refresh(addr, &lost).await.assert_unauthorized(true);
}

#[test]
fn rotation_without_sessions_is_refused_at_start_up() {
    let env = [("CORE_API_AUTH_REFRESH_ROTATION", "true")];
    let err = CoreAuthConfig::default()
        .with_lookup(|k| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "CORE_API_AUTH_REFRESH_ROTATION needs sessions: set CORE_API_AUTH_SESSIONS"
    );
    let env = [("CORE_API_AUTH_SESSIONS", "postgres://x")];
    let err = CoreAuthConfig::default()
        .with_lookup(|k| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "CORE_API_AUTH_SESSIONS must be `memory` or a redis://, rediss://, redis+sentinel:// or \
         rediss+sentinel:// URL"
    );
    let env = [
        (
            "CORE_API_AUTH_SESSIONS",
            "redis://:hunter2@127.0.0.1:6379/0",
        ),
        ("CORE_API_AUTH_REFRESH_ROTATION", "true"),
        ("CORE_API_AUTH_REFRESH_ROTATION_GRACE", "3"),
        ("CORE_API_AUTH_REDIS_PREFIX", "app1:"),
        ("CORE_API_AUTH_REDIS_TIMEOUT", "0.5"),
    ];
    let config = CoreAuthConfig::default()
        .with_lookup(|k| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
        .unwrap();
    assert!(config.refresh_rotation);
    assert_eq!(config.refresh_rotation_grace, Duration::from_secs(3));
    assert_eq!(config.redis_prefix, "app1:");
    assert_eq!(config.redis_timeout, Duration::from_millis(500));
    let debug = format!("{config:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("Redis(127.0.0.1:6379/0)"), "{debug}");
}
