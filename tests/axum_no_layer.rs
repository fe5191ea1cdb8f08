//! The axum `Claims` extractor without `JwtAuthLayer` in front of the handler: every request is
//! answered 401 as before, and the missing layer is reported once, at WARN.
//!
//! Alone in its own test binary, like tests/tracing_spans.rs: the warning is once per process,
//! and a thread-local subscriber races with other tests' threads over tracing's callsite cache.
#![cfg(feature = "axum")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use common::{INVALID_TOKEN, Req, spawn_router};
use tower_jwt_login::{Claims, JwtConfig, JwtKey};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn me(claims: Claims) -> String {
    claims.subject().to_owned()
}

#[tokio::test]
async fn claims_without_the_layer_answer_401_and_warn_once() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    // The test runtime is single-threaded: the server task runs on this thread too.
    let _guard = tracing::subscriber::set_default(subscriber);

    // A router whose handler wants `Claims`, and no layer.
    let addr = spawn_router(Router::new().route("/me", get(me))).await;
    let jwt = JwtConfig::new(JwtKey::from_secret("a test secret of at least 32 bytes!!").unwrap())
        .build()
        .unwrap();
    let token = jwt.issue_pair("alice").access_token;

    for _ in 0..3 {
        let reply = Req::get("/me").send(addr).await;
        reply.assert_unauthorized(false);
        assert_eq!(reply.text(), INVALID_TOKEN);
        // A valid token does not help: nobody verified it.
        let reply = Req::get("/me").bearer(&token).send(addr).await;
        reply.assert_error(401, "Missing or invalid JWT token");
        assert_eq!(
            reply.header("www-authenticate"),
            Some("Bearer error=\"invalid_token\"")
        );
    }

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains(" WARN ")).collect();
    assert_eq!(warnings.len(), 1, "one warning in:\n{log}");
    assert!(
        warnings[0].contains("the layer is missing in front of this handler"),
        "{}",
        warnings[0]
    );
    assert!(warnings[0].contains("path=\"/me\""), "{}", warnings[0]);
    // The other five are DEBUG lines; the token appears nowhere.
    let debug = log
        .lines()
        .filter(|l| l.contains(" DEBUG ") && l.contains("did not authenticate"))
        .count();
    assert_eq!(debug, 5, "{log}");
    assert!(!log.contains(&token));
}
