//! The per-subject session limit, over HTTP against the example server: a login beyond it ends
//! the oldest session — its tokens are refused at once — and writes one audit event for it; a
//! logout is audited under the same target and vocabulary.
//!
//! Alone in its own test binary, like tests/tracing_spans.rs: a thread-local subscriber races
//! with other tests' threads over tracing's global callsite-interest cache.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use tower_jwt_login::auth0::NoAuth0;
use tower_jwt_login::session::{MemorySessionStore, Sessions};
use tower_jwt_login::{JwtConfig, TokenUse};

/// A `MakeWriter` into a shared buffer.
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

#[tokio::test]
async fn a_login_beyond_the_limit_ends_the_oldest_session_and_audits_it() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    // The test runtime is single-threaded: the server task runs on this thread too.
    let _guard = tracing::subscriber::set_default(subscriber);

    let config = core_config(Duration::ZERO);
    let jwt = JwtConfig::new(config.jwt_key()).build().unwrap();
    let store = MemorySessionStore::new(&jwt).max_sessions_per_subject(2);
    let sessions = Sessions::new(store);
    let app = core_server::app_with_sessions(&config, NoAuth0, Vec::new(), Some(sessions)).unwrap();
    let addr = spawn_router(app).await;

    let (first, first_refresh) = login(addr).await;
    let (second, _) = login(addr).await;
    assert!(!String::from_utf8_lossy(&captured.0.lock().unwrap()).contains("session_evicted"));
    let (third, _) = login(addr).await;

    let sid = |token: &str| {
        jwt.verify(token, TokenUse::Access)
            .unwrap()
            .session_id()
            .unwrap()
            .to_owned()
    };
    assert_ne!(sid(&first), sid(&third));
    Req::get("/api/v3/process")
        .bearer(&first)
        .send(addr)
        .await
        .assert_invalid_token("token revoked");
    Req::get("/api/login/refresh")
        .bearer(&first_refresh)
        .send(addr)
        .await
        .assert_unauthorized(true);
    for live in [&second, &third] {
        let reply = Req::get("/api/v3/process").bearer(live).send(addr).await;
        assert_eq!(reply.status, 200);
    }
    // A logout, and a second one with the same (now revoked) token.
    let reply = Req::post("/api/logout").bearer(&second).send(addr).await;
    assert_eq!((reply.status, reply.text()), (204, ""));
    Req::post("/api/logout")
        .bearer(&second)
        .send(addr)
        .await
        .assert_invalid_token("token revoked");

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let audit: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" tower_jwt_login::audit: "))
        .collect();
    let evicted: Vec<&&str> = audit
        .iter()
        .filter(|l| l.contains("session_evicted outcome="))
        .collect();
    assert_eq!(evicted.len(), 1, "audit lines:\n{}", audit.join("\n"));
    for field in [
        "session_evicted outcome=\"success\"",
        "enduser.id=\"admin\"",
        "client.address=127.0.0.1",
    ] {
        assert!(
            evicted[0].contains(field),
            "{field:?} missing in {}",
            evicted[0]
        );
    }
    // Right before the third login's own success line.
    let successes: Vec<usize> = (0..audit.len())
        .filter(|i| audit[*i].contains("login outcome=\"success\""))
        .collect();
    assert_eq!(successes.len(), 3, "audit lines:\n{}", audit.join("\n"));
    let at = audit
        .iter()
        .position(|l| l.contains("session_evicted"))
        .unwrap();
    assert_eq!(at + 1, successes[2], "audit lines:\n{}", audit.join("\n"));
    // The logouts: the last two audit events.
    let [.., out, refused] = audit[..] else {
        panic!("audit lines:\n{}", audit.join("\n"));
    };
    assert!(
        out.ends_with(
            " INFO tower_jwt_login::audit: logout outcome=\"success\" scope=\"session\" \
             enduser.id=\"admin\" client.address=127.0.0.1 http.request.method=\"POST\""
        ),
        "{out}"
    );
    assert!(
        refused.ends_with(
            " INFO tower_jwt_login::audit: logout outcome=\"failure\" scope=\"session\" \
             client.address=127.0.0.1 http.request.method=\"POST\" error.type=\"token_revoked\""
        ),
        "{refused}"
    );
    for secret in [PASSWORD, SECRET, &first, &first_refresh] {
        assert!(!log.contains(secret), "log leaks {secret:?}");
    }
}
