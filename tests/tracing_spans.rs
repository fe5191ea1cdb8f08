//! Login, refresh and rejection run in `tracing` spans with the subject and the outcome, and
//! the log never carries a password, token or secret.
//!
//! Alone in its own test binary on purpose: a thread-local (`set_default`) subscriber races with
//! other tests' threads over tracing's global callsite-interest cache, which can disable a span
//! for everyone when another thread hits its callsite first.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

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
async fn spans_carry_subject_and_outcome_but_never_secrets() {
    use tracing_subscriber::fmt::format::FmtSpan;
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .with_span_events(FmtSpan::CLOSE)
        .with_writer(move || writer.clone())
        .finish();
    // The test runtime is single-threaded: the server task runs on this thread too.
    let _guard = tracing::subscriber::set_default(subscriber);

    let addr = spawn_core(core_config(Duration::ZERO)).await;
    let (access, refresh) = login(addr).await;
    let reply = Req::get("/api/login/refresh")
        .bearer(&refresh)
        .send(addr)
        .await;
    assert_eq!(reply.status, 200);
    let new_access = reply.json()["access_token"].as_str().unwrap().to_owned();
    let reply = Req::post("/api/login")
        .json(format!(
            "{{\"username\":\"{USER}\",\"password\":\"wrong-{PASSWORD}\"}}"
        ))
        .send(addr)
        .await;
    assert_eq!(reply.status, 401);
    let reply = Req::get("/api/v3/process")
        .bearer(&refresh)
        .send(addr)
        .await;
    assert_eq!(reply.status, 401);

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    // String fields are quoted by the fmt subscriber.
    for expected in [
        "login{subject=\"admin\" outcome=\"success\"}",
        "login{outcome=\"invalid_credentials\"}",
        "refresh{subject=\"admin\" outcome=\"success\"}",
        "jwt_auth.reject{path=\"/api/v3/process\" reason=invalid token: wrong token use outcome=\"rejected\"}",
    ] {
        assert!(log.contains(expected), "missing {expected:?} in:\n{log}");
    }
    for secret in [PASSWORD, SECRET, &access, &refresh, &new_access] {
        assert!(!log.contains(secret), "log leaks {secret:?}:\n{log}");
    }

    // Exactly one INFO line per login or refresh outcome: the audit event (target
    // `tower_jwt_login::audit`); everything else the login writes is DEBUG (span closings aside).
    let info: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" INFO ") && !l.contains("time.busy="))
        .collect();
    assert_eq!(info.len(), 3, "INFO lines:\n{}", info.join("\n"));
    let audit: Vec<&str> = info
        .iter()
        .copied()
        .filter(|l| l.contains(" tower_jwt_login::audit: "))
        .collect();
    assert_eq!(audit.len(), 3, "audit lines:\n{}", info.join("\n"));
    for (line, fields) in audit.iter().zip([
        &[
            "login{",
            "tower_jwt_login::audit: login outcome=\"success\" enduser.id=\"admin\" \
             client.address=127.0.0.1 http.request.method=\"POST\" via=\"password\"",
        ][..],
        &[
            "refresh{",
            "tower_jwt_login::audit: refresh outcome=\"success\" enduser.id=\"admin\" \
             client.address=127.0.0.1 http.request.method=\"GET\"",
        ],
        &[
            "login{",
            "tower_jwt_login::audit: login outcome=\"failure\" client.address=127.0.0.1 \
             http.request.method=\"POST\" error.type=\"invalid_credentials\"",
        ],
    ]) {
        for field in fields {
            assert!(line.contains(field), "{field:?} missing in {line}");
        }
    }
    // The attempted username of a failure is not logged (it may be a mistyped password).
    assert!(!audit[2].contains("admin"), "{}", audit[2]);

    // A login service that finds no client address (nothing in the request extensions) warns
    // once, for it and its clones; another service warns once too. The audit says `unknown`.
    captured.0.lock().unwrap().clear();
    let jwt = tower_jwt_login::JwtConfig::new(core_config(Duration::ZERO).jwt_key())
        .build()
        .unwrap();
    let store = || tower_jwt_login::store::PlaintextUser::new(USER, PASSWORD);
    let first = tower_jwt_login::login::LoginService::new(jwt.clone(), store())
        .failure_delay(Duration::ZERO);
    let second =
        tower_jwt_login::login::LoginService::new(jwt, store()).failure_delay(Duration::ZERO);
    for service in [&first, &first, &second, &second] {
        for _ in 0..2 {
            let request = http::Request::post("/api/login")
                .header("content-type", "application/json")
                .body(http_body_util::Full::new(bytes::Bytes::from_static(
                    br#"{"username":"admin","password":"wrong"}"#,
                )))
                .unwrap();
            let response = tower::ServiceExt::oneshot(service.clone(), request)
                .await
                .unwrap();
            assert_eq!(response.status(), 401);
        }
    }
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains(" WARN ")).collect();
    assert_eq!(warnings.len(), 2, "{log}");
    assert!(
        warnings
            .iter()
            .all(|w| w.contains("no client address") && w.contains("(logged once)")),
        "{log}"
    );
    let unknown = log
        .lines()
        .filter(|l| l.contains(" tower_jwt_login::audit: ") && l.contains("client.address=unknown"))
        .count();
    assert_eq!(unknown, 8, "{log}");
}
