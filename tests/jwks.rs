//! JWKS cache faults (docs/protocol.md §5), counted on a loopback JWKS server: key rotation, the
//! unknown-`kid` re-fetch budget, a thousand concurrent unknown `kid`s, outages of every kind,
//! start-up with the endpoint down, periodic refresh.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth0_support;
mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use auth0_support::*;
use bytes::Bytes;
use common::{Reply, Req, core_config, login};
use http::{Request, header};
use http_body_util::{BodyExt, Full};
use jsonwebtoken::Algorithm;
use serde_json::json;
use tower::ServiceExt;
use tower_jwt_login::JwtConfig;
use tower_jwt_login::auth0::{Auth0Provider, Auth0Verdict, JwksProvider, JwksSettings};
use tower_jwt_login::login::LoginService;

const FETCH_TIMEOUT: Duration = Duration::from_millis(300);

async fn auth0_login(addr: SocketAddr, token: &str) -> Reply {
    Req::post("/api/login").bearer(token).send(addr).await
}

#[track_caller]
fn assert_refused(reply: &Reply, reason: &str) {
    reply.assert_error(401, &format!("Invalid authorization credentials: {reason}"));
}

fn rsa_token() -> String {
    keys().rsa.token(Algorithm::RS256, "rsa", &claims(ALLOWED))
}

fn rotated_token() -> String {
    keys()
        .rsa_rotated
        .token(Algorithm::RS256, "rotated", &claims(ALLOWED))
}

fn only_old_key() -> serde_json::Value {
    json!({"keys": [keys().rsa.jwk("rsa", "RS256", "sig")]})
}

fn only_new_key() -> serde_json::Value {
    json!({"keys": [keys().rsa_rotated.jwk("rotated", "RS256", "sig")]})
}

/// Waits (bounded) until the JWKS server has seen `n` requests.
async fn wait_for_hits(jwks: &JwksServer, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while jwks.hits() < n {
        assert!(
            Instant::now() < deadline,
            "expected {n} JWKS requests, saw {}",
            jwks.hits()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn key_rotation_is_picked_up_by_the_unknown_kid_refetch() {
    // Two unknown-kid fetches a minute: the first login's and the rotation's.
    let settings = fast_settings().refetch_budget(2, Duration::from_secs(60));
    let jwks = JwksServer::start(Mode::Serve(only_old_key())).await;
    let addr = spawn_core_auth0(provider(vec![tenant(&jwks.url())], settings)).await;
    assert_token_pair(&auth0_login(addr, &rsa_token()).await);
    assert_eq!(jwks.hits(), 1);

    // The tenant rotates: the old key is gone, a new one signs. The first token with the new
    // kid re-fetches once and is accepted at once; no restart, no waiting.
    jwks.set(Mode::Serve(only_new_key()));
    assert_token_pair(&auth0_login(addr, &rotated_token()).await);
    assert_eq!(jwks.hits(), 2);
    // Further logins with the new key are served from the cache.
    for _ in 0..5 {
        assert_token_pair(&auth0_login(addr, &rotated_token()).await);
    }
    assert_eq!(jwks.hits(), 2);
    // The old key was dropped with the rotation; with the budget spent, asking for it again
    // costs no fetch.
    assert_refused(&auth0_login(addr, &rsa_token()).await, "unknown key");
    assert_eq!(jwks.hits(), 2);
}

/// The login service alone (no sockets), so a thousand logins can run at once.
fn login_service(
    provider: JwksProvider,
) -> LoginService<tower_jwt_login::store::PlaintextUser, JwksProvider> {
    let config = core_config(Duration::ZERO);
    let jwt = JwtConfig::new(config.jwt_key()).build().unwrap();
    LoginService::new(jwt, config.credential_store())
        .failure_delay(Duration::ZERO)
        .auth0(provider)
}

async fn thousand_logins(
    service: &LoginService<tower_jwt_login::store::PlaintextUser, JwksProvider>,
    token: &str,
) -> Vec<(u16, Bytes)> {
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let service = service.clone();
            let request = Request::post("/api/login")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Full::new(Bytes::new()))
                .unwrap();
            tokio::spawn(async move {
                let response = service.oneshot(request).await.unwrap();
                let status = response.status().as_u16();
                (
                    status,
                    response.into_body().collect().await.unwrap().to_bytes(),
                )
            })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

/// single flight, not the budget, holds a burst to one fetch: the budget
/// here would allow a thousand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_unknown_kids_cause_exactly_one_fetch() {
    // The fetch is slow, so all thousand logins are waiting while it is in flight.
    let jwks = JwksServer::start(Mode::Slow(Duration::from_millis(500), only_old_key())).await;
    let settings = fast_settings()
        .refetch_budget(1000, Duration::from_secs(60))
        .fetch_timeout(Duration::from_secs(5));
    let service = login_service(provider(vec![tenant(&jwks.url())], settings));
    let token = keys()
        .rsa
        .token(Algorithm::RS256, "invented-kid", &claims(ALLOWED));
    let results = thousand_logins(&service, &token).await;
    let expected = "{\"code\":401,\"message\":\"Unauthorized\",\"details\":[\"Invalid authorization credentials: unknown key\"]}\n";
    for (status, body) in &results {
        assert_eq!(*status, 401);
        assert_eq!(body, expected.as_bytes());
    }
    assert_eq!(jwks.hits(), 1);
    // A second burst, with another invented kid: one more fetch for the thousand.
    let token = keys()
        .rsa
        .token(Algorithm::RS256, "another-kid", &claims(ALLOWED));
    let results = thousand_logins(&service, &token).await;
    for (status, body) in &results {
        assert_eq!(*status, 401);
        assert_eq!(body, expected.as_bytes());
    }
    assert_eq!(jwks.hits(), 2);
}

/// a steady stream of distinct invented kids costs at most the budget, and
/// explicit refreshes neither spend nor wait for it. The price is stated too: while the budget
/// is spent, a real new key waits for the next token (one refill interval at most).
#[tokio::test]
async fn sustained_invented_kids_are_bounded_by_the_budget() {
    const COUNT: u32 = 3;
    const REFILL_HERE: Duration = Duration::from_secs(2);
    let settings = fast_settings().refetch_budget(COUNT, REFILL_HERE * COUNT);
    let jwks = JwksServer::start(Mode::Serve(only_old_key())).await;
    // The provider itself, not the HTTP route: twenty failed logins from one address would meet
    // the login throttle, which is not what this test is about.
    let provider = provider(vec![tenant(&jwks.url())], settings);
    let cache = provider.cache(DOMAIN).unwrap().clone();
    for _ in 0..5 {
        cache.refresh().await.unwrap();
    }
    assert_eq!(jwks.hits(), 5);

    let started = Instant::now();
    for i in 0..20 {
        let token =
            keys()
                .attacker
                .token(Algorithm::RS256, &format!("invented-{i}"), &claims(ALLOWED));
        assert_eq!(
            provider.verify(&token).await,
            Auth0Verdict::Invalid {
                reason: "unknown key"
            }
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let fetches = jwks.hits() - 5;
    // COUNT at once, then one per refill interval (the test machine may be slow).
    let allowed = COUNT as usize + (elapsed.as_millis() / REFILL_HERE.as_millis()) as usize;
    assert!(
        fetches >= COUNT as usize && fetches <= allowed,
        "{fetches} fetches for 20 invented kids in {elapsed:?}; budget allows {allowed}"
    );

    // The tenant rotates now. The attacker has just spent the budget, so the first token with the
    // new kid finds no token left and no fetch is made ...
    jwks.set(Mode::Serve(both_keys()));
    let hits = jwks.hits();
    assert_eq!(
        provider.verify(&rotated_token()).await,
        Auth0Verdict::Invalid {
            reason: "unknown key"
        }
    );
    assert_eq!(jwks.hits(), hits);
    // ... and one refill interval later it is picked up with one fetch.
    tokio::time::sleep(REFILL_HERE).await;
    assert_eq!(
        provider.verify(&rotated_token()).await,
        Auth0Verdict::Valid {
            principal: ALLOWED.into()
        }
    );
    assert_eq!(jwks.hits(), hits + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_logins_with_a_rotated_key_share_one_fetch_and_all_succeed() {
    let jwks = JwksServer::start(Mode::Serve(only_old_key())).await;
    let provider = provider(vec![tenant(&jwks.url())], fast_settings());
    let service = login_service(provider.clone());
    // Warm the cache with the old key.
    assert!(matches!(
        provider.verify(&rsa_token()).await,
        Auth0Verdict::Valid { .. }
    ));
    assert_eq!(jwks.hits(), 1);
    // Right after the first fetch: no cooldown to wait out.
    jwks.set(Mode::Slow(Duration::from_millis(200), both_keys()));
    let results = thousand_logins(&service, &rotated_token()).await;
    for (status, body) in &results {
        assert_eq!(*status, 200, "{}", String::from_utf8_lossy(body));
    }
    assert_eq!(jwks.hits(), 2, "one fetch for the thousand");
}

#[tokio::test]
async fn cached_keys_keep_working_through_every_kind_of_outage() {
    let jwks = JwksServer::start(Mode::Serve(only_old_key())).await;
    // Keys are always "due" for refresh, so every login also tries a background refresh (at
    // most one per refill interval): the outage is hit from both paths.
    let settings = fast_settings()
        .refresh_interval(Duration::from_millis(1))
        .fetch_timeout(FETCH_TIMEOUT);
    // The refresh spacing runs from the end of a fetch, and a background fetch may still be
    // running.
    let quiet = REFILL + FETCH_TIMEOUT + Duration::from_millis(50);
    let addr = spawn_core_auth0(provider(vec![tenant(&jwks.url())], settings)).await;
    let reply = auth0_login(addr, &rsa_token()).await;
    assert_eq!(reply.status, 200);
    let access = reply.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(jwks.hits(), 1);

    let outages = [
        ("500", Mode::Error500),
        (
            "timeout",
            Mode::Slow(Duration::from_secs(3), only_new_key()),
        ),
        ("invalid JSON", Mode::InvalidJson),
        ("10 MB body", Mode::Huge),
        ("10 MB body without length", Mode::HugeUnannounced),
        (
            "no usable key",
            Mode::Serve(json!({"keys": [keys().rsa_weak.jwk("weak", "RS256", "sig")]})),
        ),
    ];
    for (name, mode) in outages {
        jwks.set(mode);
        tokio::time::sleep(quiet).await;

        // An unknown kid re-fetches in the foreground and fails; the fetch is bounded by the
        // timeout.
        let before = jwks.hits();
        let started = Instant::now();
        assert_refused(&auth0_login(addr, &rotated_token()).await, "unknown key");
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{name}: {:?}",
            started.elapsed()
        );
        assert_eq!(jwks.hits(), before + 1, "{name}");

        // Logins with the cached key work, at once.
        let started = Instant::now();
        let reply = auth0_login(addr, &rsa_token()).await;
        assert_eq!(reply.status, 200, "{name}: {}", reply.text());
        assert!(started.elapsed() < Duration::from_millis(400), "{name}");
        // Protected routes are untouched by the outage.
        let reply = Req::get("/api/v3/process").bearer(&access).send(addr).await;
        assert_eq!(reply.status, 200, "{name}");
        login(addr).await;

        // A refill interval later, a login with the (stale) cached key starts a background
        // refresh that fails too — and is not waited for.
        tokio::time::sleep(quiet).await;
        let before = jwks.hits();
        let started = Instant::now();
        assert_eq!(auth0_login(addr, &rsa_token()).await.status, 200, "{name}");
        assert!(started.elapsed() < Duration::from_millis(400), "{name}");
        wait_for_hits(&jwks, before + 1).await;
        assert_eq!(auth0_login(addr, &rsa_token()).await.status, 200, "{name}");
    }

    // The endpoint recovers with a rotated key set: picked up at the next unknown kid.
    jwks.set(Mode::Serve(only_new_key()));
    tokio::time::sleep(quiet).await;
    let reply = auth0_login(addr, &rotated_token()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test]
async fn a_fetch_in_flight_does_not_hold_up_logins_with_cached_keys() {
    let jwks = JwksServer::start(Mode::Serve(only_old_key())).await;
    let addr = spawn_core_auth0(provider(vec![tenant(&jwks.url())], fast_settings())).await;
    assert_eq!(auth0_login(addr, &rsa_token()).await.status, 200);
    jwks.set(Mode::Slow(Duration::from_secs(2), only_old_key()));
    let slow = tokio::spawn(async move { auth0_login(addr, &rotated_token()).await });
    wait_for_hits(&jwks, 2).await; // the slow fetch is in flight
    for _ in 0..3 {
        let started = Instant::now();
        assert_eq!(auth0_login(addr, &rsa_token()).await.status, 200);
        assert!(started.elapsed() < Duration::from_millis(300));
    }
    assert_refused(&slow.await.unwrap(), "unknown key");
}

#[tokio::test]
async fn the_server_starts_while_the_jwks_endpoint_is_down() {
    let jwks = JwksServer::start(Mode::Error500).await;
    let addr = spawn_core_auth0(provider(vec![tenant(&jwks.url())], fast_settings())).await;
    // Everything but Auth0 works; nothing was fetched at start-up.
    assert_eq!(Req::get("/api").send(addr).await.status, 200);
    let (access, _) = login(addr).await;
    assert_eq!(
        Req::get("/api/v3/process")
            .bearer(&access)
            .send(addr)
            .await
            .status,
        200
    );
    assert_eq!(jwks.hits(), 0);

    // The first Auth0 logins fetch, fail, and say so; once the budget is spent the endpoint is
    // not asked again.
    for _ in 0..=BUDGET {
        assert_refused(&auth0_login(addr, &rsa_token()).await, "keys unavailable");
    }
    assert_eq!(jwks.hits(), BUDGET as usize);

    // The endpoint comes back: the next login after a refill fetches and succeeds.
    jwks.set(Mode::Serve(only_old_key()));
    tokio::time::sleep(REFILL).await;
    assert_token_pair(&auth0_login(addr, &rsa_token()).await);
    assert_eq!(jwks.hits(), BUDGET as usize + 1);
}

#[tokio::test]
async fn nothing_listening_at_the_jwks_url() {
    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let url = format!("http://{closed}/.well-known/jwks.json");
    let addr = spawn_core_auth0(provider(vec![tenant(&url)], fast_settings())).await;
    assert_eq!(Req::get("/api").send(addr).await.status, 200);
    let started = Instant::now();
    assert_refused(&auth0_login(addr, &rsa_token()).await, "keys unavailable");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn periodic_refresh_replaces_the_keys_without_blocking_logins() {
    let jwks = JwksServer::start(Mode::Serve(only_old_key())).await;
    let settings = fast_settings()
        .refresh_interval(Duration::from_millis(300))
        .refetch_budget(1, Duration::from_millis(100));
    let provider = provider(vec![tenant(&jwks.url())], settings);
    let cache = provider.cache(DOMAIN).unwrap().clone();
    let addr = spawn_core_auth0(provider).await;
    assert_eq!(auth0_login(addr, &rsa_token()).await.status, 200);
    assert_eq!(cache.key_ids(), ["rsa"]);

    // Fresh keys: no refresh.
    assert_eq!(auth0_login(addr, &rsa_token()).await.status, 200);
    assert_eq!(jwks.hits(), 1);

    // The tenant revokes the old key. Once the keys are older than the refresh interval, the
    // next login is still answered from them while a background refresh replaces them.
    jwks.set(Mode::Serve(only_new_key()));
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(auth0_login(addr, &rsa_token()).await.status, 200);
    wait_for_hits(&jwks, 2).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while cache.key_ids() != ["rotated"] {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_refused(&auth0_login(addr, &rsa_token()).await, "unknown key");
    assert_eq!(auth0_login(addr, &rotated_token()).await.status, 200);
    assert!(jwks.hits() <= 3);
    assert_eq!(cache.fetch_count() as usize, jwks.hits());
}

#[tokio::test]
async fn forced_refresh_and_fetch_count() {
    let jwks = JwksServer::start(Mode::Error500).await;
    let provider = provider(vec![tenant(&jwks.url())], fast_settings());
    let cache = provider.cache(DOMAIN).unwrap();
    assert!(cache.key_ids().is_empty());
    let err = cache.refresh().await.unwrap_err();
    assert_eq!(err.to_string(), "HTTP status 500 Internal Server Error");
    jwks.set(Mode::Serve(standard_jwks()));
    cache.refresh().await.unwrap();
    assert_eq!(cache.key_ids(), ["ec", "ed", "pss", "rsa"]);
    jwks.set(Mode::InvalidJson);
    assert_eq!(
        cache.refresh().await.unwrap_err().to_string(),
        "not a JWKS document"
    );
    jwks.set(Mode::Huge);
    assert_eq!(
        cache.refresh().await.unwrap_err().to_string(),
        "JWKS document too large"
    );
    assert_eq!(cache.key_ids(), ["ec", "ed", "pss", "rsa"]);
    assert_eq!(cache.fetch_count(), 4);
    assert_eq!(jwks.hits(), 4);
}

// ------------------------------------------------------------- the unknown-kid re-fetch gate

fn both_keys() -> serde_json::Value {
    json!({"keys": [
        keys().rsa.jwk("rsa", "RS256", "sig"),
        keys().rsa_rotated.jwk("rotated", "RS256", "sig"),
    ]})
}

/// 200 with a token pair whose access token opens a protected route.
#[track_caller]
fn assert_token_pair(reply: &Reply) {
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let v = reply.json();
    assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
    assert!(v["access_token"].is_string() && v["refresh_token"].is_string());
}

/// the first Auth0 login fetches the keys; the tenant publishes a new key a
/// moment later. The first token signed with it is accepted at once, with exactly one more fetch
/// (the first fetch used to arm a 5-minute cooldown, refusing the new key as `unknown key`).
#[tokio::test]
async fn a_key_published_right_after_the_first_login_is_accepted_on_first_use() {
    let jwks = JwksServer::start(Mode::Serve(only_old_key())).await;
    let settings = JwksSettings::default().fetch_timeout(FETCH_TIMEOUT);
    let addr = spawn_core_auth0(provider(vec![tenant(&jwks.url())], settings)).await;
    assert_token_pair(&auth0_login(addr, &rsa_token()).await);
    assert_eq!(jwks.hits(), 1);

    jwks.set(Mode::Serve(both_keys()));
    let reply = auth0_login(addr, &rotated_token()).await;
    assert_token_pair(&reply);
    assert_eq!(jwks.hits(), 2, "exactly one more fetch");
    // Both keys are now served from the cache.
    assert_token_pair(&auth0_login(addr, &rsa_token()).await);
    assert_token_pair(&auth0_login(addr, &rotated_token()).await);
    assert_eq!(jwks.hits(), 2);
}

/// an attacker's invented `kid` just before a real rotation no longer
/// delays its pickup (it used to start the cooldown that then refused the real key).
#[tokio::test]
async fn an_invented_kid_does_not_delay_a_real_rotation() {
    let jwks = JwksServer::start(Mode::Serve(only_old_key())).await;
    let settings = JwksSettings::default().fetch_timeout(FETCH_TIMEOUT);
    let addr = spawn_core_auth0(provider(vec![tenant(&jwks.url())], settings)).await;
    assert_token_pair(&auth0_login(addr, &rsa_token()).await);

    let invented =
        keys()
            .attacker
            .token(Algorithm::RS256, "invented-by-attacker", &claims(ALLOWED));
    assert_refused(&auth0_login(addr, &invented).await, "unknown key");

    jwks.set(Mode::Serve(both_keys()));
    let reply = auth0_login(addr, &rotated_token()).await;
    assert_token_pair(&reply);
    assert_eq!(jwks.hits(), 3, "first login, invented kid, real kid");
}
