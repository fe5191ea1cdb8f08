//! The `metrics` feature over real HTTP: logins, refreshes, logouts and the guard's refusals
//! through one `LoginKit`, recorded into the `metrics` facade (rendered by the Prometheus
//! recorder) and, for the same requests, into the attached `Metrics` snapshot.
//!
//! One test in its own binary on purpose: the facade's recorder is global to the process, so
//! every count below is exact only when nothing else records meanwhile. The revocation gauge is
//! the size of the set written last (one set per process in an app).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use common::{Req, spawn_router};
use metrics_exporter_prometheus::PrometheusBuilder;
use tower::Layer;
use tower_jwt_login::auth::Requirement;
use tower_jwt_login::browser::Browser;
use tower_jwt_login::kit::LoginKit;
use tower_jwt_login::metrics::{Metrics, SERIES};
use tower_jwt_login::session::MemorySessionStore;
use tower_jwt_login::store::Argon2Store;
use tower_jwt_login::throttle::ThrottleConfig;
use tower_jwt_login::{JwtConfig, JwtKey};

const SECRET: &str = "a secret of at least 32 random bytes!!";

/// The value of the sample line `series` (name and labels exactly as rendered), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?.strip_prefix(' ')?;
        rest.parse().ok()
    })
}

#[tokio::test]
async fn logins_refreshes_logouts_and_refusals_are_recorded_under_their_labels() {
    let prometheus = PrometheusBuilder::new().install_recorder().unwrap();
    tower_jwt_login::metrics::describe();

    let jwt = JwtConfig::new(JwtKey::from_secret(SECRET).unwrap())
        .build()
        .unwrap();
    let users = Argon2Store::new()
        .with_password("alice", "alice-pw")
        .unwrap()
        .with_password("bob", "bob-pw")
        .unwrap();
    users.users().set_roles("alice", ["admin"]).unwrap();
    let snapshot = Metrics::new();
    let layer = LoginKit::new(jwt.clone(), users)
        .sessions(MemorySessionStore::new(&jwt))
        .failure_delay(Duration::ZERO)
        .throttle(
            ThrottleConfig::new(2, Duration::from_secs(60))
                .build()
                .unwrap(),
        )
        .require("/api/admin/*", Requirement::role("admin"))
        .metrics(snapshot.clone())
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/api/notes",
            get(|| async { "notes" }).post(|| async { "created" }),
        )
        .route("/api/admin/users", get(|| async { "all users" }));
    let addr = spawn_router(Router::new().fallback_service(layer.layer(app.clone()))).await;
    let login = |user: &str, password: &str| {
        let req = Req::post("/api/login")
            .json(serde_json::json!({ "username": user, "password": password }).to_string());
        async move { req.send(addr).await }
    };

    // Two logins, one wrong password, then the throttle (2 failures per account and address).
    let alice = login("alice", "alice-pw").await;
    assert_eq!(alice.status, 200);
    let access = alice.json()["access_token"].as_str().unwrap().to_owned();
    let refresh = alice.json()["refresh_token"].as_str().unwrap().to_owned();
    let bob = login("bob", "bob-pw").await;
    assert_eq!(bob.status, 200);
    let bob_access = bob.json()["access_token"].as_str().unwrap().to_owned();
    login("carol", "wrong").await.assert_error(
        401,
        "Invalid authorization credentials: invalid username or password",
    );
    assert_eq!(login("carol", "wrong").await.status, 401);
    let throttled = login("carol", "wrong").await;
    assert_eq!(throttled.status, 429);
    assert!(throttled.header("retry-after").is_some());

    // The guard: 401 by reason, 403 apart.
    Req::get("/api/notes")
        .send(addr)
        .await
        .assert_unauthorized(false);
    Req::get("/api/notes")
        .bearer(&refresh)
        .send(addr)
        .await
        .assert_invalid_token("wrong token use");
    Req::get("/api/admin/users")
        .bearer(&bob_access)
        .send(addr)
        .await
        .assert_error(403, "Insufficient permissions");
    let ok = Req::get("/api/admin/users")
        .bearer(&access)
        .send(addr)
        .await;
    assert_eq!((ok.status, ok.text()), (200, "all users"));

    // Refresh: one answered, one refused (an access token is no refresh token).
    assert_eq!(
        Req::get("/api/login/refresh")
            .bearer(&refresh)
            .send(addr)
            .await
            .status,
        200
    );
    Req::get("/api/login/refresh")
        .bearer(&access)
        .send(addr)
        .await
        .assert_unauthorized(true);

    // Logout: the session ends, its access token is refused as revoked, a second logout fails.
    let out = Req::post("/api/logout").bearer(&access).send(addr).await;
    assert_eq!((out.status, out.text()), (204, ""));
    Req::get("/api/notes")
        .bearer(&access)
        .send(addr)
        .await
        .assert_invalid_token("token revoked");
    Req::post("/api/logout")
        .bearer(&access)
        .send(addr)
        .await
        .assert_invalid_token("token revoked");

    // Bob logs out everywhere: his session and his subject join the revocation set.
    let out = Req::post("/api/logout/all")
        .bearer(&bob_access)
        .send(addr)
        .await;
    assert_eq!((out.status, out.text()), (204, ""));

    // Browser mode (its own assembly): an unsafe request without the CSRF token is refused.
    let browser = LoginKit::new(
        jwt.clone(),
        Argon2Store::new()
            .with_password("carol", "carol-pw")
            .unwrap(),
    )
    .sessions(MemorySessionStore::new(&jwt))
    .browser(Browser::new().access_cookie(true))
    .build()
    .unwrap();
    let browser = spawn_router(Router::new().fallback_service(browser.layer(app))).await;
    let reply = Req::post("/api/login")
        .header("sec-fetch-site", "same-origin")
        .json(r#"{"username":"carol","password":"carol-pw"}"#)
        .send(browser)
        .await;
    assert_eq!(reply.status, 200);
    let jar: Vec<&str> = reply
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        .filter_map(|(_, value)| value.split(';').next())
        .collect();
    assert!(
        jar.iter().any(|c| c.starts_with("__Host-access_token=")),
        "{jar:?}"
    );
    let refused = Req::post("/api/notes")
        .header("cookie", jar.join("; "))
        .send(browser)
        .await;
    refused.assert_error(403, "CSRF check failed");

    let text = prometheus.render();
    for (series, expected) in [
        ("jwt_login_successes_total{via=\"password\"}", 3.0),
        ("jwt_csrf_refusals_total", 1.0),
        (
            "jwt_login_failures_total{reason=\"invalid_credentials\"}",
            2.0,
        ),
        ("jwt_login_throttled_total{limit=\"account_address\"}", 1.0),
        ("jwt_login_duration_seconds_count{outcome=\"success\"}", 3.0),
        ("jwt_login_duration_seconds_count{outcome=\"failure\"}", 2.0),
        (
            "jwt_login_duration_seconds_count{outcome=\"throttled\"}",
            1.0,
        ),
        ("jwt_auth_rejections_total{reason=\"missing_token\"}", 1.0),
        ("jwt_auth_rejections_total{reason=\"wrong_token_use\"}", 1.0),
        ("jwt_auth_rejections_total{reason=\"revoked\"}", 1.0),
        ("jwt_auth_forbidden_total", 1.0),
        ("jwt_refreshes_total", 1.0),
        (
            "jwt_refresh_failures_total{reason=\"wrong_token_use\"}",
            1.0,
        ),
        (
            "jwt_refresh_duration_seconds_count{outcome=\"success\"}",
            1.0,
        ),
        (
            "jwt_refresh_duration_seconds_count{outcome=\"failure\"}",
            1.0,
        ),
        (
            "jwt_logouts_total{scope=\"session\",outcome=\"success\"}",
            1.0,
        ),
        (
            "jwt_logouts_total{scope=\"session\",outcome=\"failure\",reason=\"token_revoked\"}",
            1.0,
        ),
        ("jwt_logouts_total{scope=\"all\",outcome=\"success\"}", 1.0),
        // Alice's session; Bob's session and his subject's "not before" (the browser
        // assembly has a set of its own, never written here).
        ("jwt_revoked_entries", 3.0),
    ] {
        assert_eq!(value(&text, series), Some(expected), "{series} in:\n{text}");
    }
    // Every series recorded here is described (`# HELP`, `# TYPE`), and nothing else is named.
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = line.split(' ').nth(2).unwrap();
        assert!(
            SERIES.iter().any(|(series, ..)| *series == name),
            "{name} is not in SERIES"
        );
    }
    assert!(
        text.contains("# HELP jwt_login_duration_seconds Time to answer a login"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE jwt_logouts_total counter\n"),
        "{text}"
    );

    // The snapshot of the same requests (it keeps revoked tokens under `invalid_token`).
    let s = snapshot.snapshot();
    assert_eq!(s.login_successes, 2);
    assert_eq!(s.login_failures.invalid_credentials, 2);
    assert_eq!(s.throttled, 1);
    assert_eq!((s.refreshes, s.refresh_failures), (1, 1));
    assert_eq!(s.rejections.missing_token, 1);
    assert_eq!(s.rejections.wrong_token_use, 1);
    assert_eq!(s.rejections.invalid_token, 1);
    assert_eq!(s.forbidden, 1);
}
