//! The sessions a user can see, over real HTTP through the assembly (`LoginKit`), on the memory
//! store and on Redis: `GET /api/v3/auth/sessions` lists the caller's live sessions, `DELETE
//! /api/v3/auth/sessions/{id}` ends one (its refresh token and access tokens stop); another
//! user's session is a 404; no token is a 401; a store that cannot list is a 501, one that
//! cannot be reached a 503.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod redis_support;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use common::{INVALID_TOKEN, NOT_FOUND, Reply, Req, spawn_router};
use redis_support::{SHARED, unique_prefix};
use tower::Layer;
use tower_jwt_login::redis::RedisOptions;
use tower_jwt_login::session::{
    KeyTag, MemorySessionStore, NewSession, RedisSessionStore, RefreshVerdict, Revocations,
    Rotation, SessionError, SessionInfo, SessionKey, SessionStore, Sessions, StartVerdict,
};
use tower_jwt_login::store::Argon2Store;
use tower_jwt_login::{Claims, Jwt, JwtConfig, JwtKey, TokenUse};

const SECRET: &str = "a secret of at least 32 random bytes!!";
const LIST: &str = "/api/v3/auth/sessions";
const SESSION_NOT_FOUND: &str =
    "{\"code\":404,\"message\":\"Not Found\",\"details\":[\"Session not found\"]}\n";

fn jwt() -> Jwt {
    JwtConfig::new(JwtKey::from_secret(SECRET).unwrap())
        .build()
        .unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn serve(jwt: &Jwt, sessions: Sessions) -> SocketAddr {
    serve_with(jwt, Some(sessions)).await
}

async fn serve_with(jwt: &Jwt, sessions: Option<Sessions>) -> SocketAddr {
    let users = Argon2Store::new()
        .with_password("alice", "alice-pw")
        .unwrap()
        .with_password("bob", "bob-pw")
        .unwrap();
    let mut kit =
        tower_jwt_login::kit::LoginKit::new(jwt.clone(), users).failure_delay(Duration::ZERO);
    if let Some(sessions) = sessions {
        kit = kit.sessions(sessions);
    }
    let layer = kit.build().unwrap();
    let app = Router::new().route(
        "/api/notes",
        get(|claims: Claims| async move { format!("notes of {}", claims.subject()) }),
    );
    spawn_router(Router::new().fallback_service(layer.layer(app))).await
}

/// A login with `User-Agent: agent` from the local address `from`: the access and refresh
/// tokens.
async fn login(addr: SocketAddr, user: &str, agent: &str, from: &str) -> (String, String) {
    let body = serde_json::json!({ "username": user, "password": format!("{user}-pw") });
    let reply = Req::post("/api/login")
        .header("User-Agent", agent)
        .json(body.to_string())
        .send_from(addr, from.parse().unwrap())
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let v = reply.json();
    (
        v["access_token"].as_str().unwrap().to_owned(),
        v["refresh_token"].as_str().unwrap().to_owned(),
    )
}

fn sid_of(jwt: &Jwt, access: &str) -> String {
    let claims = jwt.verify(access, TokenUse::Access).unwrap();
    claims.session_id().unwrap().to_owned()
}

fn expiry_of(jwt: &Jwt, refresh: &str) -> u64 {
    jwt.verify(refresh, TokenUse::Refresh).unwrap().expires_at()
}

async fn list(addr: SocketAddr, access: &str) -> Reply {
    Req::get(LIST).bearer(access).send(addr).await
}

async fn delete(addr: SocketAddr, access: Option<&str>, sid: &str) -> Reply {
    let req = Req::new("DELETE", &format!("{LIST}/{sid}"));
    match access {
        Some(access) => req.bearer(access),
        None => req,
    }
    .send(addr)
    .await
}

async fn refresh(addr: SocketAddr, refresh: &str) -> Reply {
    Req::get("/api/login/refresh")
        .bearer(refresh)
        .send(addr)
        .await
}

/// One listed session as the test expects it; the times of the answer are checked against
/// what the test knows, then written into the expected body.
struct Expect<'a> {
    sid: &'a str,
    expires_at: u64,
    client: &'a str,
    user_agent: &'a str,
    current: bool,
}

/// Asserts a list answer: `200`, its headers, and its exact body, with `created_at` within
/// `created` and `refreshed_at` `null` or within `refreshed` (one range per session).
#[track_caller]
fn assert_list(
    reply: &Reply,
    expected: &[Expect<'_>],
    created: std::ops::RangeInclusive<u64>,
    refreshed: &[Option<std::ops::RangeInclusive<u64>>],
) {
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let v = reply.json();
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), expected.len(), "{}", reply.text());
    let mut body = String::from("[");
    for (i, (item, want)) in items.iter().zip(expected).enumerate() {
        let created_at = item["created_at"].as_u64().unwrap();
        assert!(created.contains(&created_at), "{created_at} {created:?}");
        let refreshed_at = match &refreshed[i] {
            None => "null".to_owned(),
            Some(range) => {
                let at = item["refreshed_at"].as_u64().unwrap();
                assert!(range.contains(&at), "{at} {range:?}");
                at.to_string()
            }
        };
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!(
            "{{\"id\":\"{}\",\"created_at\":{created_at},\"refreshed_at\":{refreshed_at},\
             \"expires_at\":{},\"client\":\"{}\",\"user_agent\":\"{}\",\"api_key\":null,\
             \"current\":{}}}",
            want.sid, want.expires_at, want.client, want.user_agent, want.current
        ));
    }
    body.push_str("]\n");
    assert_eq!(reply.text(), body);
}

/// Everything a user does with its sessions, on the store behind `sessions`.
async fn the_user_sees_and_ends_its_sessions(sessions: Sessions) {
    let jwt = jwt();
    let addr = serve(&jwt, sessions).await;

    let t0 = now();
    let (a1, r1) = login(addr, "alice", "Firefox/128.0", "127.0.0.1").await;
    let (a2, r2) = login(addr, "alice", "curl/8.5.0", "127.0.0.2").await;
    let (b1, rb1) = login(addr, "bob", "Safari/17", "127.0.0.3").await;
    let t1 = now();
    let (s1, s2, sb) = (sid_of(&jwt, &a1), sid_of(&jwt, &a2), sid_of(&jwt, &b1));
    let (e1, e2) = (expiry_of(&jwt, &r1), expiry_of(&jwt, &r2));

    // Alice's two sessions, oldest first; `current` follows the token of the request.
    let first = |current| Expect {
        sid: &s1,
        expires_at: e1,
        client: "127.0.0.1",
        user_agent: "Firefox/128.0",
        current,
    };
    let second = |current| Expect {
        sid: &s2,
        expires_at: e2,
        client: "127.0.0.2",
        user_agent: "curl/8.5.0",
        current,
    };
    assert_list(
        &list(addr, &a1).await,
        &[first(true), second(false)],
        t0..=t1,
        &[None, None],
    );
    assert_list(
        &list(addr, &a2).await,
        &[first(false), second(true)],
        t0..=t1,
        &[None, None],
    );
    // Bob sees only his.
    assert_list(
        &list(addr, &b1).await,
        &[Expect {
            sid: &sb,
            expires_at: expiry_of(&jwt, &rb1),
            client: "127.0.0.3",
            user_agent: "Safari/17",
            current: true,
        }],
        t0..=t1,
        &[None],
    );
    // HEAD: the same status and headers, no body.
    let reply = Req::new("HEAD", LIST).bearer(&a1).send(addr).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert!(reply.body.is_empty());

    // A refresh notes its time.
    let t2 = now();
    assert_eq!(refresh(addr, &r1).await.status, 200);
    let t3 = now();
    assert_list(
        &list(addr, &a1).await,
        &[first(true), second(false)],
        t0..=t1,
        &[Some(t2..=t3), None],
    );

    // No token, or a bad one: the protected route's 401.
    let reply = Req::get(LIST).send(addr).await;
    reply.assert_unauthorized(false);
    assert_eq!(reply.text(), INVALID_TOKEN);
    delete(addr, None, &s2).await.assert_unauthorized(false);
    Req::get(LIST)
        .bearer("not.a.token")
        .send(addr)
        .await
        .assert_unauthorized(true);
    // A refresh token is no access token.
    list(addr, &r1)
        .await
        .assert_invalid_token("wrong token use");

    // Another user's session, an unknown one, one that cannot be an id: 404, nothing ended.
    for sid in [sb.as_str(), "AAAAAAAAAAAAAAAAAAAAAA", "a%20b", "x.y"] {
        let reply = delete(addr, Some(&a1), sid).await;
        assert_eq!(
            (reply.status, reply.text()),
            (404, SESSION_NOT_FOUND),
            "{sid}"
        );
        assert_eq!(reply.header("content-type"), Some("application/json"));
    }
    assert_eq!(refresh(addr, &rb1).await.status, 200);
    let reply = Req::get("/api/notes").bearer(&b1).send(addr).await;
    assert_eq!((reply.status, reply.text()), (200, "notes of bob"));

    // Other methods: 404 with a token, 401 without (as on the other own routes).
    for (method, path) in [
        ("POST", LIST.to_owned()),
        ("DELETE", LIST.to_owned()),
        ("GET", format!("{LIST}/{s2}")),
        ("PUT", format!("{LIST}/{s2}")),
    ] {
        let reply = Req::new(method, &path).bearer(&a1).send(addr).await;
        assert_eq!(
            (reply.status, reply.text()),
            (404, NOT_FOUND),
            "{method} {path}"
        );
        Req::new(method, &path)
            .send(addr)
            .await
            .assert_unauthorized(false);
    }

    // Alice ends her other session: its refresh token stops, its access token is refused.
    let reply = delete(addr, Some(&a1), &s2).await;
    assert_eq!(reply.status, 204, "{}", reply.text());
    assert!(reply.body.is_empty());
    refresh(addr, &r2).await.assert_unauthorized(true);
    Req::get("/api/notes")
        .bearer(&a2)
        .send(addr)
        .await
        .assert_invalid_token("token revoked");
    list(addr, &a2).await.assert_invalid_token("token revoked");
    // Gone from the list; ending it again is a 404.
    assert_list(
        &list(addr, &a1).await,
        &[first(true)],
        t0..=t1,
        &[Some(t2..=t3)],
    );
    let reply = delete(addr, Some(&a1), &s2).await;
    assert_eq!((reply.status, reply.text()), (404, SESSION_NOT_FOUND));

    // Her own current session too: the token that asked stops at once.
    assert_eq!(delete(addr, Some(&a1), &s1).await.status, 204);
    list(addr, &a1).await.assert_invalid_token("token revoked");
    refresh(addr, &r1).await.assert_unauthorized(true);
    // Bob's session lives on.
    assert_eq!(list(addr, &b1).await.json().as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_user_sees_and_ends_its_sessions_in_memory() {
    let jwt = jwt();
    the_user_sees_and_ends_its_sessions(Sessions::new(MemorySessionStore::new(&jwt))).await;
}

#[tokio::test]
async fn the_user_sees_and_ends_its_sessions_on_redis() {
    let jwt = jwt();
    let options = RedisOptions::new().prefix(unique_prefix());
    let store = RedisSessionStore::connect(SHARED, options, &jwt)
        .await
        .unwrap();
    the_user_sees_and_ends_its_sessions(Sessions::new(store)).await;
}

/// A store of the application's own that does not implement `list`.
struct NoList(MemorySessionStore);

/// A store whose backend cannot be reached for the list.
struct Down(MemorySessionStore);

macro_rules! delegate {
    ($store:ident) => {
        impl SessionStore for $store {
            async fn start(&self, session: NewSession<'_>) -> Result<StartVerdict, SessionError> {
                self.0.start(session).await
            }
            async fn refresh(
                &self,
                sid: &str,
                subject: &str,
                presented_jti: &str,
                rotation: Option<Rotation<'_>>,
            ) -> Result<RefreshVerdict, SessionError> {
                self.0.refresh(sid, subject, presented_jti, rotation).await
            }
            async fn end(&self, sid: &str) -> Result<(), SessionError> {
                self.0.end(sid).await
            }
            async fn end_all(&self, subject: &str) -> Result<(), SessionError> {
                self.0.end_all(subject).await
            }
            fn revocations(&self) -> &Revocations {
                self.0.revocations()
            }
            delegate!(@list $store);
        }
    };
    (@list NoList) => {};
    (@list Down) => {
        async fn list(&self, _subject: &str) -> Result<Vec<SessionInfo>, SessionError> {
            Err(SessionError::Unavailable("connection refused".to_owned()))
        }
    };
}

delegate!(NoList);
delegate!(Down);

#[tokio::test]
async fn a_store_that_cannot_list_answers_501_and_one_that_is_down_503() {
    let jwt = jwt();
    let unsupported = "{\"code\":501,\"message\":\"Not Implemented\",\"details\":[\"The session store cannot list sessions\"]}\n";
    let addr = serve(&jwt, Sessions::new(NoList(MemorySessionStore::new(&jwt)))).await;
    let (access, _) = login(addr, "alice", "Firefox/128.0", "127.0.0.1").await;
    let sid = sid_of(&jwt, &access);
    for reply in [
        list(addr, &access).await,
        delete(addr, Some(&access), &sid).await,
    ] {
        assert_eq!((reply.status, reply.text()), (501, unsupported));
        assert_eq!(reply.header("content-type"), Some("application/json"));
    }
    // Nothing was ended.
    let reply = Req::get("/api/notes").bearer(&access).send(addr).await;
    assert_eq!((reply.status, reply.text()), (200, "notes of alice"));

    let sessions =
        Sessions::new(Down(MemorySessionStore::new(&jwt))).retry_after(Duration::from_secs(7));
    let addr = serve(&jwt, sessions).await;
    let (access, _) = login(addr, "alice", "Firefox/128.0", "127.0.0.1").await;
    let sid = sid_of(&jwt, &access);
    for reply in [
        list(addr, &access).await,
        delete(addr, Some(&access), &sid).await,
    ] {
        reply.assert_error(503, "Session store unavailable, try again later");
        assert_eq!(reply.header("retry-after"), Some("7"));
    }
}

/// The store side on Redis: what a login records (client, `User-Agent`, API key), expired and
/// other subjects' sessions left out, ending one or all of an API key's.
#[tokio::test]
async fn redis_store_lists_what_logins_recorded_and_ends_by_key() {
    let jwt = jwt();
    let options = RedisOptions::new().prefix(unique_prefix());
    let store = RedisSessionStore::connect(SHARED, options, &jwt)
        .await
        .unwrap();
    let far = now() + 3600;
    let before = now();
    let client: IpAddr = "2001:db8::7".parse().unwrap();
    let key = KeyTag {
        id: "k1",
        name: "ci pipeline",
    };
    let starts = [
        NewSession::new("s1", "alice", "j1", far)
            .client(Some(client))
            .user_agent(Some("Firefox")),
        NewSession::new("s2", "alice", "j2", far + 10).api_key(Some(key)),
        NewSession::new("b1", "bob", "j3", far).api_key(Some(key)),
        NewSession::new("s3", "alice", "j4", before - 1),
    ];
    for start in starts {
        store.start(start).await.unwrap();
    }
    let rotation = Rotation::new("j1b", far + 20, Duration::ZERO);
    let verdict = store.refresh("s1", "alice", "j1", Some(rotation)).await;
    assert_eq!(verdict.unwrap(), RefreshVerdict::Rotated);
    let after = now();

    let mut list = store.list("alice").await.unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    for info in &list {
        assert!((before..=after).contains(&info.created_at), "{info:?}");
    }
    assert!((before..=after).contains(&list[0].refreshed_at.unwrap()));
    for info in &mut list {
        info.created_at = 0;
    }
    list[0].refreshed_at = Some(0);
    let expected = [
        SessionInfo {
            sid: "s1".to_owned(),
            created_at: 0,
            refreshed_at: Some(0),
            expires_at: far + 20,
            client: Some(client),
            user_agent: Some("Firefox".to_owned()),
            api_key: None,
        },
        SessionInfo {
            sid: "s2".to_owned(),
            created_at: 0,
            refreshed_at: None,
            expires_at: far + 10,
            client: None,
            user_agent: None,
            api_key: Some(SessionKey {
                id: "k1".to_owned(),
                name: "ci pipeline".to_owned(),
            }),
        },
    ];
    assert_eq!(list, expected);
    assert!(store.list("carol").await.unwrap().is_empty());

    assert!(!store.end_session("alice", "b1").await.unwrap());
    assert!(!store.end_session("alice", "s3").await.unwrap());
    assert!(!store.revocations().is_session_revoked("b1"));
    assert!(store.end_session("alice", "s1").await.unwrap());
    assert!(store.revocations().is_session_revoked("s1"));
    let verdict = store.refresh("s1", "alice", "j1b", None).await;
    assert_eq!(verdict.unwrap(), RefreshVerdict::Ended);

    assert_eq!(store.end_by_key("alice", "k1").await.unwrap(), 1);
    assert!(store.revocations().is_session_revoked("s2"));
    assert_eq!(
        store.refresh("s2", "alice", "j2", None).await.unwrap(),
        RefreshVerdict::Ended
    );
    assert!(store.list("alice").await.unwrap().is_empty());
    assert_eq!(store.list("bob").await.unwrap().len(), 1);
    assert_eq!(store.end_by_key("alice", "k1").await.unwrap(), 0);
}

/// Without sessions the paths are the app's like any other: protected, then the app's answer
/// (here axum's empty 404).
#[tokio::test]
async fn without_sessions_the_paths_are_the_apps() {
    let jwt = jwt();
    let addr = serve_with(&jwt, None).await;
    let (access, _) = login(addr, "alice", "Firefox/128.0", "127.0.0.1").await;
    assert!(
        jwt.verify(&access, TokenUse::Access)
            .unwrap()
            .session_id()
            .is_none()
    );
    Req::get(LIST).send(addr).await.assert_unauthorized(false);
    let reply = list(addr, &access).await;
    assert_eq!((reply.status, reply.body.len()), (404, 0));
    let reply = delete(addr, Some(&access), "AAAAAAAAAAAAAAAAAAAAAA").await;
    assert_eq!((reply.status, reply.body.len()), (404, 0));
}
