//! Path rules over real HTTP against the example server: a prefix rule covers
//! its bare prefix with the trailing slash (`/api/` is protected, as in Core), and no public or
//! optional rule applies to a path with dot-segments or empty segments, so a normalizing inner
//! service cannot turn the example's public catch-all into a bypass.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;

async fn server() -> std::net::SocketAddr {
    spawn_core(core_config(Duration::ZERO)).await
}

#[tokio::test]
async fn the_bare_prefix_with_trailing_slash_is_protected() {
    let addr = server().await;
    let reply = Req::get("/api/").send(addr).await;
    reply.assert_unauthorized(false);
    assert_eq!(reply.text(), INVALID_TOKEN);
    // With a token: past the layer, and no route there (auth before routing, like Core).
    let (access, _) = login(addr).await;
    let reply = Req::get("/api/").bearer(&access).send(addr).await;
    reply.assert_error(404, "Not Found");
    assert_eq!(reply.text(), NOT_FOUND);
    // `/api` itself keeps its own exact rule: the optional discovery route.
    let reply = Req::get("/api").send(addr).await;
    assert_eq!(reply.status, 200);
    assert!(reply.json().get("id").is_none(), "{}", reply.text());
}

/// Paths that a normalizing service would turn into `/api/…`, sent where the example's public
/// catch-all `/*` used to let them through without a token.
const BYPASS_ATTEMPTS: &[&str] = &[
    "/ping/../api/v3/process",
    "/ping/./../api/v3/process",
    "/ping/%2e%2e/api/v3/process",
    "/ping/%2E%2e/api/v3/process",
    "/ping/.%2E/api/v3/process",
    "/ping/..;/api/v3/process",
    "/ping%2f..%2fapi/v3/process",
    "/ping%2F%2E%2E%2Fapi/v3/process",
    "/./api/v3/process",
    "//api/v3/process",
    "/ping//api/v3/process",
    "/x/../api/",
];

#[tokio::test]
async fn dot_and_empty_segments_are_protected_under_a_public_rule() {
    let addr = server().await;
    for path in BYPASS_ATTEMPTS {
        let reply = Req::get(path).send(addr).await;
        assert_eq!(reply.status, 401, "{path}: {}", reply.text());
        reply.assert_unauthorized(false);
        assert_eq!(reply.text(), INVALID_TOKEN, "{path}");
    }
    // HEAD too: the status and the challenge, no body.
    let reply = Req::new("HEAD", "/ping/../api/v3/process").send(addr).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    assert!(reply.body.is_empty());
}

#[tokio::test]
async fn with_a_token_such_paths_are_routed_as_before() {
    let addr = server().await;
    let (access, _) = login(addr).await;
    for path in BYPASS_ATTEMPTS {
        // axum routes them verbatim: no route, the example's 404 in the error shape.
        let reply = Req::get(path).bearer(&access).send(addr).await;
        reply.assert_error(404, "Not Found");
    }
    // The plain public paths stay public.
    let reply = Req::get("/ping").send(addr).await;
    assert_eq!((reply.status, reply.text()), (200, "pong"));
    let reply = Req::get("/nowhere/").send(addr).await;
    reply.assert_error(404, "Not Found");
}
