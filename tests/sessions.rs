//! Session stores: the contract every store keeps (memory and Redis), and what only the Redis
//! store must show — atomic rotation across instances, bounded keys, revocation sync within 1 s,
//! re-read after a reconnect, one round trip per login and per refresh. And a login racing
//! "log out everywhere", with the `end_all` injected between the login's signing and its start
//! (for both stores, at the store and over HTTP through `LoginService`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tower_jwt_login::auth::{JwtAuthLayer, PathPolicy};
use tower_jwt_login::login::{LoginService, RefreshService};
use tower_jwt_login::session::{
    MemorySessionStore, NewSession, RefreshVerdict, Rotation, SessionStore, StartVerdict,
    new_session_id,
};
use tower_jwt_login::session::{Revocations, SessionError, Sessions};
use tower_jwt_login::store::{Argon2Store, Argon2Users};
use tower_jwt_login::{Claims, Grant, Jwt, JwtConfig, JwtKey, TokenUse};

fn jwt() -> Jwt {
    JwtConfig::new(JwtKey::from_secret("a secret of at least 32 random bytes!!").unwrap())
        .build()
        .unwrap()
}

/// A logged-in session: the store knows it, the tokens carry its id.
struct Login {
    sid: String,
    subject: String,
    refresh_jti: String,
    access: Claims,
}

async fn login<S: SessionStore>(jwt: &Jwt, store: &S, subject: &str) -> Login {
    // As a login does: the subject's "not before" first, then the credentials, then the tokens.
    let seen = store.revocations().not_before_millis(subject);
    let sid = new_session_id();
    let issued = jwt.issue(&Grant::new(subject).session(&sid));
    let refresh = jwt
        .verify(&issued.tokens.refresh_token, TokenUse::Refresh)
        .unwrap();
    assert_eq!(refresh.session_id(), Some(sid.as_str()));
    let session = NewSession::new(&sid, subject, &issued.refresh_jti, refresh.expires_at());
    let verdict = store.start(session.seen_not_before(seen)).await.unwrap();
    assert_eq!(
        verdict,
        StartVerdict::Started {
            evicted: Vec::new()
        }
    );
    let access = jwt
        .verify(&issued.tokens.access_token, TokenUse::Access)
        .unwrap();
    Login {
        sid,
        subject: subject.to_owned(),
        refresh_jti: issued.refresh_jti,
        access,
    }
}

fn successor(jwt: &Jwt, login: &Login) -> (String, u64) {
    let issued = jwt.issue(&Grant::new(&login.subject).session(&login.sid));
    let exp = jwt
        .verify(&issued.tokens.refresh_token, TokenUse::Refresh)
        .unwrap()
        .expires_at();
    (issued.refresh_jti, exp)
}

/// What every store must do. `other` is a second handle on the same sessions (another instance
/// for Redis, a clone for memory); `synced` waits until a revocation made through `store` is
/// visible in `other`'s set.
async fn contract<S: SessionStore>(store: &S, other: &S) {
    let jwt = jwt();
    let user = format!("user-{}", new_session_id());

    // Without rotation: the current token refreshes, again and again (Core's clients).
    let a = login(&jwt, store, &user).await;
    for _ in 0..3 {
        let verdict = other.refresh(&a.sid, &user, &a.refresh_jti, None).await;
        assert_eq!(verdict.unwrap(), RefreshVerdict::Live);
    }
    // Another subject's claim on the session, or an unknown session: ended.
    let verdict = store.refresh(&a.sid, "mallory", &a.refresh_jti, None).await;
    assert_eq!(verdict.unwrap(), RefreshVerdict::Ended);
    let verdict = store
        .refresh(&new_session_id(), &user, &a.refresh_jti, None)
        .await;
    assert_eq!(verdict.unwrap(), RefreshVerdict::Ended);
    assert!(!store.revocations().is_revoked(&a.access));

    // Rotation: the successor is current, the presented token spent.
    let (next, exp) = successor(&jwt, &a);
    let verdict = store
        .refresh(
            &a.sid,
            &user,
            &a.refresh_jti,
            Some(Rotation::new(&next, exp, Duration::ZERO)),
        )
        .await;
    assert_eq!(verdict.unwrap(), RefreshVerdict::Rotated);
    let verdict = other.refresh(&a.sid, &user, &next, None).await;
    assert_eq!(verdict.unwrap(), RefreshVerdict::Live);
    // The spent token again, with grace 0: reuse ends the whole session, successor included.
    let (again, exp) = successor(&jwt, &a);
    let verdict = other
        .refresh(
            &a.sid,
            &user,
            &a.refresh_jti,
            Some(Rotation::new(&again, exp, Duration::ZERO)),
        )
        .await;
    assert_eq!(verdict.unwrap(), RefreshVerdict::Reused);
    assert!(other.revocations().is_revoked(&a.access));
    let verdict = store.refresh(&a.sid, &user, &next, None).await;
    assert_eq!(verdict.unwrap(), RefreshVerdict::Ended);

    // Grace: a retry of a lost answer rotates again (replacing the lost successor); after the
    // grace it is reuse.
    let b = login(&jwt, store, &user).await;
    let grace = Duration::from_millis(400);
    let (lost, exp) = successor(&jwt, &b);
    let verdict = store.refresh(
        &b.sid,
        &user,
        &b.refresh_jti,
        Some(Rotation::new(&lost, exp, grace)),
    );
    assert_eq!(verdict.await.unwrap(), RefreshVerdict::Rotated);
    let (retry, exp) = successor(&jwt, &b);
    let verdict = other.refresh(
        &b.sid,
        &user,
        &b.refresh_jti,
        Some(Rotation::new(&retry, exp, grace)),
    );
    assert_eq!(verdict.await.unwrap(), RefreshVerdict::Rotated);
    assert_eq!(
        store.refresh(&b.sid, &user, &retry, None).await.unwrap(),
        RefreshVerdict::Live
    );
    tokio::time::sleep(grace + Duration::from_millis(100)).await;
    let (late, exp) = successor(&jwt, &b);
    let verdict = store.refresh(
        &b.sid,
        &user,
        &b.refresh_jti,
        Some(Rotation::new(&late, exp, grace)),
    );
    assert_eq!(verdict.await.unwrap(), RefreshVerdict::Reused);
    assert!(store.revocations().is_revoked(&b.access));

    // Logout: the refresh token stops at once, the access token is revoked.
    let c = login(&jwt, store, &user).await;
    store.end(&c.sid).await.unwrap();
    assert!(store.revocations().is_revoked(&c.access));
    let verdict = other.refresh(&c.sid, &user, &c.refresh_jti, None).await;
    assert_eq!(verdict.unwrap(), RefreshVerdict::Ended);

    // Everywhere: every session of the subject, and tokens issued before now.
    let d = login(&jwt, store, &user).await;
    let e = login(&jwt, other, &user).await;
    let bystander = login(&jwt, store, &format!("other-{user}")).await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // `iat` strictly before not-before
    store.end_all(&user).await.unwrap();
    for s in [&d, &e] {
        let verdict = other.refresh(&s.sid, &user, &s.refresh_jti, None).await;
        assert_eq!(verdict.unwrap(), RefreshVerdict::Ended);
        assert!(store.revocations().is_revoked(&s.access));
    }
    let stateless = jwt
        .verify(&jwt.issue_pair(&user).access_token, TokenUse::Access)
        .unwrap();
    assert!(!store.revocations().is_revoked(&stateless), "issued at now");
    assert!(!store.revocations().is_revoked(&bystander.access));
    assert_eq!(
        store
            .refresh(
                &bystander.sid,
                &bystander.subject,
                &bystander.refresh_jti,
                None
            )
            .await
            .unwrap(),
        RefreshVerdict::Live
    );
    // A new login after "everywhere" works.
    let f = login(&jwt, store, &user).await;
    assert!(!store.revocations().is_revoked(&f.access));
}

/// A login under way when its subject is logged out everywhere: it read the "not before"
/// (none), checked the credentials and minted its tokens; then `end_all` runs; then it starts
/// its session. The start is refused, so the tokens minted before the logout never get a
/// session; a login that read the "not before" afterwards starts — on another instance too,
/// which may not have heard of the logout yet (the refusal tells it the store's value).
async fn racing_end_all<S: SessionStore>(store: &S, other: &S) {
    let jwt = jwt();
    let user = format!("user-{}", new_session_id());
    let seen = store.revocations().not_before_millis(&user);
    assert_eq!(seen, None);
    let sid = new_session_id();
    let issued = jwt.issue(&Grant::new(&user).session(&sid));
    store.end_all(&user).await.unwrap();
    let not_before = store.revocations().not_before_millis(&user).unwrap();
    let session = NewSession::new(&sid, &user, &issued.refresh_jti, issued.refresh_expires_at);
    let verdict = store.start(session.seen_not_before(seen)).await.unwrap();
    assert_eq!(verdict, StartVerdict::Refused { not_before });
    for s in [store, other] {
        let verdict = s.refresh(&sid, &user, &issued.refresh_jti, None).await;
        assert_eq!(verdict.unwrap(), RefreshVerdict::Ended);
    }
    // Seen after the logout: started.
    let after = login(&jwt, store, &user).await;
    assert!(!store.revocations().is_revoked(&after.access));
    // Through another handle that read the "not before" before the logout reached it.
    let sid = new_session_id();
    let issued = jwt.issue(&Grant::new(&user).session(&sid));
    let session = NewSession::new(&sid, &user, &issued.refresh_jti, issued.refresh_expires_at);
    let verdict = other.start(session.seen_not_before(None)).await.unwrap();
    assert_eq!(verdict, StartVerdict::Refused { not_before });
    let verdict = other.start(session.seen_not_before(Some(not_before))).await;
    assert_eq!(verdict.unwrap(), StartVerdict::Started { evicted: vec![] });
    // Logging out everywhere again, even within the same millisecond, moves the "not before"
    // on: a login that saw the first one is refused.
    store.end_all(&user).await.unwrap();
    let again = store.revocations().not_before_millis(&user).unwrap();
    assert!(again > not_before, "{again} <= {not_before}");
    let sid = new_session_id();
    let session = NewSession::new(&sid, &user, "j", issued.refresh_expires_at);
    let verdict = store.start(session.seen_not_before(Some(not_before))).await;
    assert_eq!(
        verdict.unwrap(),
        StartVerdict::Refused { not_before: again }
    );
}

/// At most N live sessions per subject: a login beyond that ends the oldest one (revoked like a
/// logout, on every instance), and says so.
async fn session_limit<S: SessionStore>(store: &S, other: &S) {
    let jwt = jwt();
    let user = format!("user-{}", new_session_id());
    let first = login(&jwt, store, &user).await;
    let second = login(&jwt, other, &user).await;
    let third = login(&jwt, store, &user).await;
    let sid = new_session_id();
    let issued = jwt.issue(&Grant::new(&user).session(&sid));
    let session = NewSession::new(&sid, &user, &issued.refresh_jti, issued.refresh_expires_at);
    let verdict = other.start(session).await.unwrap();
    assert_eq!(
        verdict,
        StartVerdict::Started {
            evicted: vec![first.sid.clone()]
        }
    );
    assert!(other.revocations().is_revoked(&first.access));
    let verdict = store
        .refresh(&first.sid, &user, &first.refresh_jti, None)
        .await;
    assert_eq!(verdict.unwrap(), RefreshVerdict::Ended);
    for s in [&second, &third] {
        let verdict = store.refresh(&s.sid, &user, &s.refresh_jti, None).await;
        assert_eq!(verdict.unwrap(), RefreshVerdict::Live);
        assert!(!other.revocations().is_revoked(&s.access));
    }
}

#[tokio::test]
async fn memory_store_refuses_a_start_that_missed_an_end_all() {
    let store = MemorySessionStore::new(&jwt());
    racing_end_all(&store, &store.clone()).await;
}

#[tokio::test]
async fn memory_store_keeps_at_most_n_sessions_per_subject() {
    let store = MemorySessionStore::new(&jwt()).max_sessions_per_subject(3);
    session_limit(&store, &store.clone()).await;
}

/// What a racing start did.
#[derive(Debug, Clone)]
struct Started {
    sid: String,
    /// An `end_all` of the subject ran between the login's signing and this start.
    raced: bool,
    verdict: Option<StartVerdict>,
}

/// The interleaving under test, made exact: the next `races` starts first log their subject out
/// everywhere (after changing its password, when `new_password` is set — as an app's password
/// change does), then start.
#[derive(Default)]
struct Race {
    races: AtomicUsize,
    new_password: Mutex<Option<(Argon2Users, String)>>,
    starts: Mutex<Vec<Started>>,
}

struct Racing<S> {
    inner: S,
    race: Arc<Race>,
}

impl<S: SessionStore> SessionStore for Racing<S> {
    async fn start(&self, session: NewSession<'_>) -> Result<StartVerdict, SessionError> {
        let raced = self
            .race
            .races
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if raced {
            let change = self.race.new_password.lock().unwrap().take();
            if let Some((users, password)) = change {
                assert!(users.set_password(session.subject(), &password).unwrap());
            }
            self.inner.end_all(session.subject()).await?;
        }
        let verdict = self.inner.start(session).await;
        self.race.starts.lock().unwrap().push(Started {
            sid: session.sid().to_owned(),
            raced,
            verdict: verdict.as_ref().ok().cloned(),
        });
        verdict
    }
    async fn refresh(
        &self,
        sid: &str,
        subject: &str,
        presented_jti: &str,
        rotation: Option<Rotation<'_>>,
    ) -> Result<RefreshVerdict, SessionError> {
        self.inner
            .refresh(sid, subject, presented_jti, rotation)
            .await
    }
    async fn end(&self, sid: &str) -> Result<(), SessionError> {
        self.inner.end(sid).await
    }
    async fn end_all(&self, subject: &str) -> Result<(), SessionError> {
        self.inner.end_all(subject).await
    }
    fn revocations(&self) -> &Revocations {
        self.inner.revocations()
    }
}

const RACE_USER: &str = "alice";
const RACE_PASSWORD: &str = "correct horse battery staple";

/// Login (an Argon2 store), refresh and a protected route, with sessions in `store` wrapped
/// in [`Racing`].
async fn racing_server<S: SessionStore>(
    jwt: &Jwt,
    store: S,
) -> (std::net::SocketAddr, Arc<Race>, Argon2Users, Sessions) {
    let users = Arc::new(
        Argon2Store::new()
            .with_password(RACE_USER, RACE_PASSWORD)
            .unwrap(),
    );
    let handle = users.users();
    let race = Arc::new(Race::default());
    let sessions = Sessions::new(Racing {
        inner: store,
        race: Arc::clone(&race),
    });
    let login = LoginService::new(jwt.clone(), users)
        .sessions(sessions.clone())
        .failure_delay(Duration::ZERO)
        .throttle(None);
    let refresh = RefreshService::new(jwt.clone()).sessions(sessions.clone());
    let policy = PathPolicy::new().login_routes("/api").protected("/api/*");
    let layer = JwtAuthLayer::new(jwt.clone())
        .revocations(sessions.revocations())
        .policy(policy);
    let app = axum::Router::new()
        .route("/api/v3/process", axum::routing::get(|| async { "[]" }))
        .route_service("/api/login", login)
        .route_service("/api/login/refresh", refresh)
        .layer(layer);
    (common::spawn_router(app).await, race, handle, sessions)
}

fn login_req(password: &str) -> common::Req {
    common::Req::post("/api/login").json(format!(
        "{{\"username\":\"{RACE_USER}\",\"password\":\"{password}\"}}"
    ))
}

fn sid_of(jwt: &Jwt, access: &str) -> String {
    let claims = jwt.verify(access, TokenUse::Access).unwrap();
    claims.session_id().unwrap().to_owned()
}

/// Over HTTP: a login whose start an `end_all` precedes answers tokens of a session started
/// after the logout — never the tokens it minted before it; with the password changed too,
/// `401`; logged out everywhere at every start, `503` and no session.
async fn login_racing_end_all_over_http<S: SessionStore>(store: S) {
    let jwt = jwt();
    let (addr, race, users, sessions) = racing_server(&jwt, store).await;

    // 1. "Log out everywhere" lands between the login's signing and its start.
    race.races.store(1, Ordering::SeqCst);
    let reply = login_req(RACE_PASSWORD).send(addr).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let v = reply.json();
    let access = v["access_token"].as_str().unwrap().to_owned();
    let refresh = v["refresh_token"].as_str().unwrap().to_owned();
    let starts = std::mem::take(&mut *race.starts.lock().unwrap());
    let raced: Vec<&Started> = starts.iter().filter(|s| s.raced).collect();
    assert_eq!(raced.len(), 1, "{starts:?}");
    let answered = sid_of(&jwt, &access);
    assert_ne!(
        answered, raced[0].sid,
        "the login answered tokens minted before the logout: {starts:?}"
    );
    assert!(
        matches!(raced[0].verdict, Some(StartVerdict::Refused { .. })),
        "{starts:?}"
    );
    assert_eq!(starts.len(), 2, "{starts:?}");
    assert_eq!(
        starts[1].verdict,
        Some(StartVerdict::Started { evicted: vec![] })
    );
    assert_eq!(starts[1].sid, answered);
    // No session for the tokens minted before the logout; the answered ones work.
    let verdict = sessions
        .refresh(&raced[0].sid, RACE_USER, "any", None)
        .await;
    assert_eq!(verdict.unwrap(), RefreshVerdict::Ended);
    let reply = common::Req::get("/api/v3/process")
        .bearer(&access)
        .send(addr)
        .await;
    assert_eq!(reply.status, 200);
    let reply = common::Req::get("/api/login/refresh")
        .bearer(&refresh)
        .send(addr)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    // 2. A password change and its "log out everywhere" land while a login with the old
    //    password is under way: checked again, the old password fails.
    *race.new_password.lock().unwrap() = Some((users.clone(), "a new password".to_owned()));
    race.races.store(1, Ordering::SeqCst);
    let reply = login_req(RACE_PASSWORD).send(addr).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.text(), common::INVALID_CREDENTIALS);
    let starts = std::mem::take(&mut *race.starts.lock().unwrap());
    assert_eq!(starts.len(), 1, "{starts:?}");
    assert!(matches!(
        starts[0].verdict,
        Some(StartVerdict::Refused { .. })
    ));
    // The access token of before is refused (its session was ended), the new password logs in.
    let reply = common::Req::get("/api/v3/process")
        .bearer(&access)
        .send(addr)
        .await;
    reply.assert_invalid_token("token revoked");
    let reply = login_req("a new password").send(addr).await;
    assert_eq!(reply.status, 200);
    race.starts.lock().unwrap().clear();

    // 3. Logged out everywhere at every start: 503, try again; no session is left behind.
    race.races.store(2, Ordering::SeqCst);
    let reply = login_req("a new password").send(addr).await;
    assert_eq!(reply.status, 503);
    assert_eq!(
        reply.text(),
        "{\"code\":503,\"message\":\"Service Unavailable\",\"details\":[\"Session store unavailable, try again later\"]}\n"
    );
    assert_eq!(reply.header("retry-after"), Some("5"));
    let starts = std::mem::take(&mut *race.starts.lock().unwrap());
    assert_eq!(starts.len(), 2, "{starts:?}");
    for start in &starts {
        assert!(matches!(start.verdict, Some(StartVerdict::Refused { .. })));
        let verdict = sessions.refresh(&start.sid, RACE_USER, "any", None).await;
        assert_eq!(verdict.unwrap(), RefreshVerdict::Ended);
    }
}

#[tokio::test]
async fn memory_store_login_racing_end_all_gets_no_session_from_before_it() {
    login_racing_end_all_over_http(MemorySessionStore::new(&jwt())).await;
}

#[tokio::test]
async fn memory_store_keeps_the_contract() {
    let store = MemorySessionStore::new(&jwt());
    contract(&store, &store.clone()).await;
}

#[tokio::test]
async fn memory_store_concurrent_rotation_yields_one_successor() {
    let jwt = jwt();
    let store = MemorySessionStore::new(&jwt);
    for _ in 0..20 {
        let a = login(&jwt, &store, "alice").await;
        let (n1, exp) = successor(&jwt, &a);
        let (n2, _) = successor(&jwt, &a);
        let (s1, s2) = (store.clone(), store.clone());
        let (sid, jti) = (a.sid.clone(), a.refresh_jti.clone());
        let r1 = tokio::spawn(async move {
            s1.refresh(
                &sid,
                "alice",
                &jti,
                Some(Rotation::new(&n1, exp, Duration::ZERO)),
            )
            .await
            .unwrap()
        });
        let r2 = store
            .refresh(
                &a.sid,
                "alice",
                &a.refresh_jti,
                Some(Rotation::new(&n2, exp, Duration::ZERO)),
            )
            .await
            .unwrap();
        let mut verdicts = [r1.await.unwrap(), r2];
        verdicts.sort_by_key(|v| format!("{v:?}"));
        assert_eq!(verdicts, [RefreshVerdict::Reused, RefreshVerdict::Rotated]);
        drop(s2);
    }
}

#[cfg(feature = "redis")]
#[path = "redis_support/mod.rs"]
mod support;

#[cfg(feature = "redis")]
mod redis {
    use std::time::{Duration, Instant};

    use tower_jwt_login::redis::{RedisConnection, RedisOptions};
    use tower_jwt_login::session::{
        NewSession, RedisSessionStore, RefreshVerdict, Rotation, SessionStore, StartVerdict,
        new_session_id,
    };

    use super::{contract, jwt, login, racing_end_all, session_limit, successor};

    use super::support::*;

    async fn store(url: &str, prefix: &str) -> RedisSessionStore {
        let options = RedisOptions::new().prefix(prefix);
        RedisSessionStore::connect(url, options, &jwt())
            .await
            .unwrap()
    }

    async fn pair(prefix: &str) -> (RedisSessionStore, RedisSessionStore) {
        (store(SHARED, prefix).await, store(SHARED, prefix).await)
    }

    #[tokio::test]
    async fn redis_store_keeps_the_contract_across_two_instances() {
        let prefix = unique_prefix();
        let (a, b) = pair(&prefix).await;
        contract(&a, &b).await;
        // What `a` revoked reached `b` through the sync (the contract checked `a`'s set).
        let snapshot_a = a.revocations().len();
        let synced = eventually(Duration::from_secs(1), || {
            b.revocations().len() >= snapshot_a
        });
        assert!(
            synced.await.is_some(),
            "{:?} vs {:?}",
            a.revocations(),
            b.revocations()
        );
    }

    #[tokio::test]
    async fn redis_store_refuses_a_start_that_missed_an_end_all() {
        let prefix = unique_prefix();
        let (a, b) = pair(&prefix).await;
        racing_end_all(&a, &b).await;
    }

    #[tokio::test]
    async fn redis_store_keeps_at_most_n_sessions_per_subject() {
        let prefix = unique_prefix();
        let (a, b) = pair(&prefix).await;
        let (a, b) = (a.max_sessions_per_subject(3), b.max_sessions_per_subject(3));
        session_limit(&a, &b).await;
        // The eviction reached the other instance's set through the event too.
        let jwt = jwt();
        let user = format!("user-{}", new_session_id());
        let first = login(&jwt, &a, &user).await;
        for _ in 0..2 {
            login(&jwt, &a, &user).await;
        }
        let sid = new_session_id();
        let session = NewSession::new(&sid, &user, "j", support_now() + 600);
        let verdict = a.start(session).await.unwrap();
        assert_eq!(
            verdict,
            StartVerdict::Started {
                evicted: vec![first.sid.clone()]
            }
        );
        let took = eventually(Duration::from_secs(1), || {
            b.revocations().is_revoked(&first.access)
        });
        assert!(took.await.is_some(), "eviction not synced within 1 s");
    }

    #[tokio::test]
    async fn redis_store_login_racing_end_all_gets_no_session_from_before_it() {
        let prefix = unique_prefix();
        super::login_racing_end_all_over_http(store(SHARED, &prefix).await).await;
    }

    #[tokio::test]
    async fn concurrent_rotation_on_two_instances_yields_exactly_one_successor() {
        let prefix = unique_prefix();
        let (a, b) = pair(&prefix).await;
        let jwt = jwt();
        for _ in 0..30 {
            let s = login(&jwt, &a, "alice").await;
            let (n1, exp) = successor(&jwt, &s);
            let (n2, _) = successor(&jwt, &s);
            let rot1 = Rotation::new(&n1, exp, Duration::ZERO);
            let rot2 = Rotation::new(&n2, exp, Duration::ZERO);
            let (v1, v2) = tokio::join!(
                a.refresh(&s.sid, "alice", &s.refresh_jti, Some(rot1)),
                b.refresh(&s.sid, "alice", &s.refresh_jti, Some(rot2)),
            );
            let mut verdicts = [v1.unwrap(), v2.unwrap()];
            verdicts.sort_by_key(|v| format!("{v:?}"));
            assert_eq!(verdicts, [RefreshVerdict::Reused, RefreshVerdict::Rotated]);
            // The reuse ended the session: neither successor refreshes.
            for n in [&n1, &n2] {
                let v = a.refresh(&s.sid, "alice", n, None).await.unwrap();
                assert_eq!(v, RefreshVerdict::Ended);
            }
        }
    }

    #[tokio::test]
    async fn every_key_has_a_ttl_no_longer_than_what_it_tracks() {
        let prefix = unique_prefix();
        let (a, _b) = pair(&prefix).await;
        let jwt = jwt(); // refresh 86 400 s, access 600 s: revocations kept 660 s
        let s1 = login(&jwt, &a, "alice").await;
        let s2 = login(&jwt, &a, "alice").await;
        let (next, exp) = successor(&jwt, &s1);
        let rotation = Rotation::new(&next, exp, Duration::ZERO);
        a.refresh(&s1.sid, "alice", &s1.refresh_jti, Some(rotation))
            .await
            .unwrap();
        let keys = keys_with_pttl(SHARED, &prefix).await;
        let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
        let mut sids = [s1.sid.clone(), s2.sid.clone()];
        sids.sort();
        assert_eq!(
            names,
            [
                format!("{prefix}{{sessions}}:sess:{}", sids[0]),
                format!("{prefix}{{sessions}}:sess:{}", sids[1]),
                format!("{prefix}{{sessions}}:user:alice"),
            ]
        );
        for (key, pttl) in &keys {
            assert!(*pttl > 86_390_000 && *pttl <= 86_400_000, "{key}: {pttl}");
        }
        a.end(&s2.sid).await.unwrap();
        let bob = login(&jwt, &a, "bob").await;
        a.end_all("bob").await.unwrap();
        let keys = keys_with_pttl(SHARED, &prefix).await;
        let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                format!("{prefix}{{sessions}}:nb:bob"),
                format!("{prefix}{{sessions}}:nbf"),
                format!("{prefix}{{sessions}}:revoked"),
                format!("{prefix}{{sessions}}:sess:{}", s1.sid),
                format!("{prefix}{{sessions}}:user:alice"),
            ]
        );
        for (key, pttl) in &keys {
            // Revocations: as long as an access token (600 s) plus a minute; sessions: as long
            // as their refresh token.
            let (min, max) = if key.contains(":sess:") || key.contains(":user:") {
                (86_390_000, 86_400_000)
            } else {
                (650_000, 660_000)
            };
            assert!(*pttl > min && *pttl <= max, "{key}: {pttl}");
        }
        let revoked: Vec<String> = cmd(
            SHARED,
            &[
                "ZRANGE",
                &format!("{prefix}{{sessions}}:revoked"),
                "0",
                "-1",
            ],
        )
        .await;
        let mut expected = vec![s2.sid.clone(), bob.sid.clone()];
        expected.sort();
        let mut revoked = revoked;
        revoked.sort();
        assert_eq!(revoked, expected);
    }

    #[tokio::test]
    async fn a_revocation_reaches_the_other_instance_within_a_second() {
        let prefix = unique_prefix();
        let (a, b) = pair(&prefix).await;
        let jwt = jwt();
        for _ in 0..5 {
            let s = login(&jwt, &a, "alice").await;
            assert!(!b.revocations().is_revoked(&s.access));
            a.end(&s.sid).await.unwrap();
            let took = eventually(Duration::from_secs(1), || {
                b.revocations().is_revoked(&s.access)
            });
            assert!(took.await.is_some(), "not synced within 1 s");
        }
        // And "everywhere" through b reaches a.
        let s = login(&jwt, &a, "carol").await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        b.end_all("carol").await.unwrap();
        let took = eventually(Duration::from_secs(1), || {
            a.revocations().is_revoked(&s.access)
        });
        assert!(took.await.is_some());
        assert!(a.revocations().not_before("carol").is_some());
        // A store started later reads what was revoked before it.
        let late = store(SHARED, &prefix).await;
        assert!(late.revocations().is_revoked(&s.access));
    }

    #[tokio::test]
    async fn after_a_subscriber_reconnect_the_set_is_re_read() {
        let server = PrivateRedis::start();
        let prefix = unique_prefix();
        let (a, b) = (
            store(&server.url(), &prefix).await,
            store(&server.url(), &prefix).await,
        );
        let jwt = jwt();
        let s = login(&jwt, &a, "alice").await;
        // Both sync tasks subscribed (and past their first re-read).
        let channel = format!("{prefix}{{sessions}}:events");
        loop {
            let (_, n): (String, i64) = cmd(&server.url(), &["PUBSUB", "NUMSUB", &channel]).await;
            if n == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        // A revocation written without its message: only a re-read can find it.
        let until = (support_now() + 3600).to_string();
        let _: i64 = cmd(
            &server.url(),
            &[
                "ZADD",
                &format!("{prefix}{{sessions}}:revoked"),
                &until,
                &s.sid,
            ],
        )
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !b.revocations().is_revoked(&s.access),
            "no message was sent"
        );
        let killed: i64 = cmd(&server.url(), &["CLIENT", "KILL", "TYPE", "pubsub"]).await;
        assert_eq!(killed, 2);
        let took = eventually(Duration::from_secs(1), || {
            b.revocations().is_revoked(&s.access)
        });
        assert!(
            took.await.is_some(),
            "not re-read within 1 s of the reconnect"
        );
        assert!(a.revocations().is_revoked(&s.access));
    }

    /// The keep-alive ping of the subscriber gets its answer: the subscription is not dropped
    /// and made again every few seconds.
    #[tokio::test]
    async fn the_subscriber_stays_connected_between_keepalive_pings() {
        let server = PrivateRedis::start();
        let _a = store(&server.url(), &unique_prefix()).await;
        tokio::time::sleep(Duration::from_millis(5500)).await;
        let clients: String = cmd(&server.url(), &["CLIENT", "LIST", "TYPE", "pubsub"]).await;
        let ages: Vec<u64> = clients
            .lines()
            .filter_map(|l| l.split(" age=").nth(1)?.split(' ').next()?.parse().ok())
            .collect();
        assert_eq!(ages.len(), 1, "{clients}");
        assert!(ages[0] >= 5, "the subscriber reconnected: {clients}");
    }

    fn support_now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[tokio::test]
    async fn one_round_trip_per_login_and_per_refresh() {
        let server = PrivateRedis::start();
        let prefix = unique_prefix();
        let a = store(&server.url(), &prefix).await;
        let jwt = jwt();
        let monitor = Monitor::start(&server.url()).await;
        let s = login(&jwt, &a, "alice").await;
        let login_calls = monitor.take().await;
        assert_eq!(login_calls.len(), 1, "{login_calls:#?}");
        assert!(login_calls[0].contains("\"EVALSHA\""), "{login_calls:?}");
        let verdict = a
            .refresh(&s.sid, "alice", &s.refresh_jti, None)
            .await
            .unwrap();
        assert_eq!(verdict, RefreshVerdict::Live);
        let refresh_calls = monitor.take().await;
        assert_eq!(refresh_calls.len(), 1, "{refresh_calls:#?}");
        let (next, exp) = successor(&jwt, &s);
        let rotation = Rotation::new(&next, exp, Duration::ZERO);
        let verdict = a
            .refresh(&s.sid, "alice", &s.refresh_jti, Some(rotation))
            .await
            .unwrap();
        assert_eq!(verdict, RefreshVerdict::Rotated);
        let rotate_calls = monitor.take().await;
        assert_eq!(rotate_calls.len(), 1, "{rotate_calls:#?}");
        println!(
            "round trips: login {}, refresh {}, rotating refresh {}",
            login_calls.len(),
            refresh_calls.len(),
            rotate_calls.len()
        );
    }

    #[tokio::test]
    async fn a_logout_survives_a_redis_restart_and_outage_calls_fail_fast() {
        let mut server = PrivateRedis::start();
        let prefix = unique_prefix();
        let options = RedisOptions::new()
            .prefix(&prefix)
            .timeout(Duration::from_millis(500));
        let redis = RedisConnection::connect(&server.url(), options)
            .await
            .unwrap();
        let a = RedisSessionStore::new(redis, &jwt()).await.unwrap();
        let jwt = jwt();
        let s = login(&jwt, &a, "alice").await;
        a.end(&s.sid).await.unwrap();

        server.kill();
        // Down: every call fails as Unavailable, within the timeout.
        let started = Instant::now();
        let sid = new_session_id();
        let err = a
            .start(NewSession::new(&sid, "alice", "j", support_now() + 60))
            .await
            .unwrap_err();
        assert!(
            matches!(err, tower_jwt_login::session::SessionError::Unavailable(_)),
            "{err:?}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(700),
            "{:?}",
            started.elapsed()
        );
        assert!(
            a.revocations().is_revoked(&s.access),
            "the last known set still serves"
        );

        // Back, empty: calls work again within a few seconds, and the logout is written back.
        server.restart();
        let deadline = Instant::now() + Duration::from_secs(5);
        let fresh = loop {
            let t = login_try(&jwt, &a).await;
            if let Some(t) = t {
                break t;
            }
            assert!(Instant::now() < deadline, "no recovery within 5 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(
            a.refresh(&fresh.0, "alice", &fresh.1, None).await.unwrap(),
            RefreshVerdict::Live
        );
        let key = format!("{prefix}{{sessions}}:revoked");
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let members: Vec<String> = cmd(&server.url(), &["ZRANGE", &key, "0", "-1"]).await;
            if members.contains(&s.sid) {
                break;
            }
            assert!(Instant::now() < deadline, "revocation not written back");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // So an instance started after the outage refuses it too.
        let late = store(&server.url(), &prefix).await;
        assert!(late.revocations().is_revoked(&s.access));
    }

    async fn login_try(
        jwt: &tower_jwt_login::Jwt,
        store: &RedisSessionStore,
    ) -> Option<(String, String)> {
        let sid = new_session_id();
        let issued = jwt.issue(&tower_jwt_login::Grant::new("alice").session(&sid));
        let seen = store.revocations().not_before_millis("alice");
        let session = NewSession::new(&sid, "alice", &issued.refresh_jti, support_now() + 600);
        match store.start(session.seen_not_before(seen)).await {
            Ok(StartVerdict::Started { .. }) => Some((sid, issued.refresh_jti)),
            _ => None,
        }
    }

    #[tokio::test]
    async fn the_fleet_throttle_counts_in_redis_with_expiring_keys() {
        use tower_jwt_login::throttle::{LoginThrottle, ThrottleScope};
        let prefix = unique_prefix();
        let window = Duration::from_secs(60);
        let redis = || async {
            RedisConnection::connect(SHARED, RedisOptions::new().prefix(&prefix))
                .await
                .unwrap()
        };
        let t1 = LoginThrottle::new(3, window)
            .unwrap()
            .fleet(redis().await, b"secret");
        let t2 = LoginThrottle::new(3, window)
            .unwrap()
            .fleet(redis().await, b"secret");
        let ip = Some("203.0.113.9".parse().unwrap());
        t1.begin_shared("Alice", ip).await.unwrap();
        t2.begin_shared("alice", ip).await.unwrap();
        t1.begin_shared("ALICE", ip).await.unwrap();
        // 3 failures over two instances: the fourth is refused on either.
        for t in [&t1, &t2] {
            let refused = t.begin_shared("alice", ip).await.unwrap_err();
            assert_eq!(refused.scope(), ThrottleScope::AccountAndAddress);
            assert!(refused.retry_after() <= window && refused.retry_after() > window / 2);
        }
        // Nothing was counted locally.
        assert_eq!(t1.tracked_keys(), 0);
        let keys = keys_with_pttl(SHARED, &prefix).await;
        assert_eq!(keys.len(), 3, "{keys:?}"); // pair, address, account
        for (key, pttl) in &keys {
            assert!(key.starts_with(&format!("{prefix}{{throttle}}:")), "{key}");
            assert!(
                !key.to_lowercase().contains("alice"),
                "no username in Redis: {key}"
            );
            assert!(*pttl > 0 && *pttl <= 60_000, "{key}: {pttl}");
        }
        // Another address is not refused; a success there refunds and marks it known.
        let home = Some("198.51.100.1".parse().unwrap());
        t2.begin_shared("alice", home).await.unwrap();
        t2.settle_shared("alice", home, true).await;
        let keys = keys_with_pttl(SHARED, &prefix).await;
        let known: Vec<_> = keys.iter().filter(|(k, _)| k.contains(":known:")).collect();
        assert_eq!(known.len(), 1);
        assert!(known[0].1 > 29 * 86_400_000 && known[0].1 <= 30 * 86_400_000);
        assert!(
            !keys
                .iter()
                .any(|(k, _)| k.contains(":pair:") && k.ends_with("198.51.100.1"))
        );
    }

    /// `Sessions::with_fleet` hands the throttle to the Redis store (it counts in Redis, shared
    /// by the fleet); `Sessions::new` leaves it counting locally.
    #[tokio::test]
    async fn sessions_with_fleet_count_in_redis_and_plain_sessions_locally() {
        use tower_jwt_login::session::Sessions;
        use tower_jwt_login::throttle::LoginThrottle;
        let prefix = unique_prefix();
        let (a, b) = pair(&prefix).await;
        let (a, b) = (Sessions::with_fleet(a), Sessions::with_fleet(b));
        let throttle = || LoginThrottle::new(2, Duration::from_secs(60)).unwrap();
        let t1 = a.fleet_throttle(throttle(), b"secret");
        let t2 = b.fleet_throttle(throttle(), b"secret");
        let ip = Some("203.0.113.10".parse().unwrap());
        t1.begin_shared("carol", ip).await.unwrap();
        t2.begin_shared("carol", ip).await.unwrap();
        assert!(t1.begin_shared("carol", ip).await.is_err());
        assert_eq!(t1.tracked_keys() + t2.tracked_keys(), 0);
        assert_eq!(
            keys_with_pttl(SHARED, &prefix)
                .await
                .iter()
                .filter(|(k, _)| k.contains("{throttle}"))
                .count(),
            3
        );

        let plain = Sessions::new(store(SHARED, &unique_prefix()).await);
        let local = plain.fleet_throttle(throttle(), b"secret");
        local.begin_shared("carol", ip).await.unwrap();
        assert!(local.tracked_keys() > 0, "counted in the local table");
    }
}
