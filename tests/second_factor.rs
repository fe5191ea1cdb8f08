//! The second factor (docs/second-factor.md, docs/protocol.md §8) over real HTTP: an axum app
//! built from the parts (JwtAuthLayer around LoginService, RefreshService, TotpService,
//! LogoutService and the about document), on one instance with the memory store and on two
//! instances sharing Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[cfg(feature = "redis")]
#[path = "redis_support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use common::*;
use http::Method;
use tower_jwt_login::auth::{JwtAuthLayer, PathPolicy};
use tower_jwt_login::auth0::{Auth0Provider, Auth0Verdict};
use tower_jwt_login::client_addr::ClientAddrResolver;
use tower_jwt_login::config::{ConfigError, CoreAuthConfig};
use tower_jwt_login::discovery::About;
use tower_jwt_login::factor::{
    FactorKey, MemoryFactorStore, SecondFactor, SecondFactorSetupError, SecondFactorStore,
    TotpService,
};
use tower_jwt_login::login::{LoginService, LogoutService, RefreshService};
use tower_jwt_login::session::{MemorySessionStore, Sessions};
use tower_jwt_login::store::PlaintextUser;
use tower_jwt_login::throttle::LoginThrottle;
use tower_jwt_login::{Jwt, JwtConfig, JwtKey, Principal};

/// The application key of these tests (64 hex digits).
const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const TOTP_REQUIRED: &str = "TOTP code required";
const INVALID_TOTP: &str = "Invalid TOTP code";
const DAY: u64 = 86_400;

/// A clock that stands still until the test moves it: the middle of a 30-second step near
/// now, so that codes never straddle a step by accident.
#[derive(Clone)]
struct Clock(Arc<AtomicU64>);

impl Clock {
    fn new() -> Self {
        Clock(Arc::new(AtomicU64::new(now() / 30 * 30 + 15)))
    }
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
    fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
    /// The code an authenticator app shows for `secret` now.
    fn code(&self, secret: &str) -> String {
        totp(secret, self.now())
    }
    /// A code that no step within the skew window has.
    fn wrong_code(&self, secret: &str) -> String {
        let window = [-30i64, 0, 30].map(|d| totp(secret, (self.now() as i64 + d) as u64));
        (0..4u32)
            .map(|n| format!("{:06}", n * 111_111))
            .find(|c| !window.contains(c))
            .unwrap()
    }
}

/// RFC 6238 written out from RFC 4226 §5.3 over `hmac` and `sha1` directly, independent of the
/// crate's implementation.
fn totp(secret_base32: &str, unix_time: u64) -> String {
    use hmac::{Hmac, Mac};
    let secret = data_encoding::BASE32_NOPAD
        .decode(secret_base32.as_bytes())
        .unwrap();
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(&secret).unwrap();
    mac.update(&(unix_time / 30).to_be_bytes());
    let tag = mac.finalize().into_bytes();
    let offset = (tag[19] & 0x0f) as usize;
    let value = u32::from_be_bytes(tag[offset..offset + 4].try_into().unwrap()) & 0x7fff_ffff;
    format!("{:06}", value % 1_000_000)
}

fn jwt() -> Jwt {
    JwtConfig::new(JwtKey::core_compatible(USER, PASSWORD, SECRET))
        .build()
        .unwrap()
}

async fn factor_on<S: SecondFactorStore>(store: S, clock: &Clock) -> SecondFactor {
    let clock = clock.clone();
    SecondFactor::builder(store, FactorKey::parse(KEY).unwrap())
        .clock(move || clock.now())
        .build()
        .await
        .unwrap()
}

/// The app from the parts, the way an application (or the crate's assembly) wires them.
async fn serve(
    factor: Option<SecondFactor>,
    sessions: Option<Sessions>,
    throttle: Option<LoginThrottle>,
) -> SocketAddr {
    let jwt = jwt();
    let client_addr = ClientAddrResolver::new()
        .peer_from(|ext| ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0));
    let mut login = LoginService::new(jwt.clone(), PlaintextUser::new(USER, PASSWORD))
        .failure_delay(Duration::ZERO)
        .client_addr(client_addr.clone())
        .throttle(throttle.clone());
    let mut about = About::new("second-factor-test", "1").login_methods(true, [] as [&str; 0]);
    let mut router = Router::new()
        .route("/api/v3/process", get(|| async { "[]" }))
        .route_service("/api/login/refresh", RefreshService::new(jwt.clone()));
    let mut policy = PathPolicy::new()
        .login_routes("/api")
        .optional_for(Method::GET, "/api");
    let mut layer = JwtAuthLayer::new(jwt.clone());
    if let Some(factor) = &factor {
        login = login.second_factor(factor.clone());
        about = about.second_factor_of(factor.clone(), USER);
        let totp = TotpService::new(factor.clone())
            .throttle(throttle)
            .client_addr(client_addr);
        for path in totp.paths() {
            router = router.route_service(&path, totp.clone());
        }
    }
    if let Some(sessions) = sessions {
        login = login.sessions(sessions.clone());
        layer = layer.revocations(sessions.revocations());
        policy = policy.public_for(Method::POST, "/api/logout/all");
        let mut logout = LogoutService::all(jwt.clone(), sessions);
        if let Some(factor) = &factor {
            logout = logout.second_factor(factor.clone());
        }
        router = router.route_service("/api/logout/all", logout);
    }
    let router = router
        .route_service("/api", about.into_service())
        .route_service("/api/login", login)
        .layer(layer.policy(policy.protected("/api").protected("/api/*")));
    spawn_router(router).await
}

fn login_body(extra: &[(&str, &str)]) -> String {
    let mut body = serde_json::json!({ "username": USER, "password": PASSWORD });
    for (k, v) in extra {
        body[*k] = serde_json::Value::from(*v);
    }
    body.to_string()
}

async fn login(addr: SocketAddr, extra: &[(&str, &str)]) -> Reply {
    Req::post("/api/login")
        .json(login_body(extra))
        .send(addr)
        .await
}

/// Asserts Core's login answer, exactly two members (or three with a remembered device's
/// token); returns (access, refresh, device token).
#[track_caller]
fn assert_pair(reply: &Reply, with_device: bool) -> (String, String, Option<String>) {
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let v = reply.json();
    let access = v["access_token"].as_str().unwrap().to_owned();
    let refresh = v["refresh_token"].as_str().unwrap().to_owned();
    let device = v["device_trust_token"].as_str().map(str::to_owned);
    let expected = match &device {
        None => format!("{{\"access_token\":\"{access}\",\"refresh_token\":\"{refresh}\"}}\n"),
        Some(d) => format!(
            "{{\"access_token\":\"{access}\",\"refresh_token\":\"{refresh}\",\"device_trust_token\":\"{d}\"}}\n"
        ),
    };
    assert_eq!(reply.text(), expected);
    assert_eq!(device.is_some(), with_device, "{}", reply.text());
    if let Some(d) = &device {
        assert_eq!(d.len(), 43);
        assert!(
            d.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }
    (access, refresh, device)
}

async fn totp_call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    access: &str,
    code: Option<&str>,
) -> Reply {
    let mut req = Req::new(method, &format!("/api/v3/auth/totp{path}")).bearer(access);
    if let Some(code) = code {
        req = req.json(serde_json::json!({ "code": code }).to_string());
    }
    req.send(addr).await
}

#[track_caller]
fn assert_status(reply: &Reply, enabled: bool, pending: bool, left: usize) {
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.text(),
        format!("{{\"enabled\":{enabled},\"pending\":{pending},\"recovery_codes_left\":{left}}}\n")
    );
}

/// `POST …/setup`: asserts the exact answer; returns the base32 secret.
async fn setup(addr: SocketAddr, access: &str) -> String {
    let reply = totp_call(addr, "POST", "/setup", access, None).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let secret = reply.json()["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 32, "160 bits in base32");
    assert!(
        secret
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
    );
    assert_eq!(
        reply.text(),
        format!(
            "{{\"secret\":\"{secret}\",\"uri\":\"otpauth://totp/datarhei-core:{USER}?secret={secret}&issuer=datarhei-core&algorithm=SHA1&digits=6&period=30\"}}\n"
        )
    );
    secret
}

/// `POST …/enable` with `code`: asserts the ten codes; returns them.
async fn enable(addr: SocketAddr, access: &str, code: &str) -> Vec<String> {
    let reply = totp_call(addr, "POST", "/enable", access, Some(code)).await;
    recovery_codes(&reply)
}

#[track_caller]
fn recovery_codes(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let codes: Vec<String> = reply.json()["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    for code in &codes {
        assert_eq!(code.len(), 19, "{code}");
        assert!(code.split('-').all(|g| {
            g.len() == 4
                && g.bytes()
                    .all(|b| b"0123456789abcdefghjkmnpqrstvwxyz".contains(&b))
        }));
    }
    assert_eq!(
        reply.text(),
        format!(
            "{{\"recovery_codes\":{}}}\n",
            serde_json::to_string(&codes).unwrap()
        )
    );
    codes
}

/// Logs in (no second factor yet) and enrols the user; returns (access token, secret,
/// recovery codes). The clock then moves one step on, past the code `enable` used.
async fn enrol(addr: SocketAddr, clock: &Clock) -> (String, String, Vec<String>) {
    let (access, _, _) = assert_pair(&login(addr, &[]).await, false);
    let secret = setup(addr, &access).await;
    let codes = enable(addr, &access, &clock.code(&secret)).await;
    clock.advance(30);
    (access, secret, codes)
}

#[tokio::test]
async fn setup_enable_login_recovery_and_disable_over_http() {
    let clock = Clock::new();
    let factor = factor_on(MemoryFactorStore::new(), &clock).await;
    let addr = serve(Some(factor), None, None).await;

    // The management routes need an access token, like every protected route.
    Req::get("/api/v3/auth/totp")
        .send(addr)
        .await
        .assert_unauthorized(false);
    let about = Req::get("/api").send(addr).await;
    assert_eq!(
        about.text(),
        "{\"app\":\"datarhei-core\",\"auths\":[\"localjwt\"],\"totp_required\":false,\"version\":{\"number\":\"16.0.0\"}}\n"
    );

    let (access, _, _) = assert_pair(&login(addr, &[]).await, false);
    assert_status(
        &totp_call(addr, "GET", "", &access, None).await,
        false,
        false,
        0,
    );
    // Enabling needs a setup first.
    totp_call(addr, "POST", "/enable", &access, Some("123456"))
        .await
        .assert_error(409, "No TOTP setup pending");
    let secret = setup(addr, &access).await;
    assert_status(
        &totp_call(addr, "GET", "", &access, None).await,
        false,
        true,
        0,
    );
    // Until it is confirmed, the password alone still logs in.
    assert_pair(&login(addr, &[]).await, false);

    totp_call(addr, "POST", "/enable", &access, None)
        .await
        .assert_error(400, TOTP_REQUIRED);
    let wrong = &clock.wrong_code(&secret);
    totp_call(addr, "POST", "/enable", &access, Some(wrong))
        .await
        .assert_error(400, INVALID_TOTP);
    let enable_code = clock.code(&secret);
    let recovery = enable(addr, &access, &enable_code).await;
    assert_status(
        &totp_call(addr, "GET", "", &access, None).await,
        true,
        false,
        10,
    );
    totp_call(addr, "POST", "/setup", &access, None)
        .await
        .assert_error(409, "TOTP already enabled");
    let about = Req::get("/api").send(addr).await;
    assert!(
        about.text().contains(",\"totp_required\":true,"),
        "{}",
        about.text()
    );

    // The password alone: the distinct detail a UI branches on, and no token.
    login(addr, &[]).await.assert_error(401, TOTP_REQUIRED);
    login(addr, &[("totp_code", "")])
        .await
        .assert_error(401, TOTP_REQUIRED);
    // A wrong password with a right code is still a wrong password.
    let reply = Req::post("/api/login")
        .json(serde_json::json!({"username": USER, "password": "nope", "totp_code": clock.code(&secret)}).to_string())
        .send(addr)
        .await;
    reply.assert_error(
        401,
        "Invalid authorization credentials: invalid username or password",
    );
    login(addr, &[("totp_code", wrong)])
        .await
        .assert_error(401, INVALID_TOTP);
    login(addr, &[("totp_code", "12345")])
        .await
        .assert_error(401, INVALID_TOTP);
    // The code that confirmed the setup was used: it does not log in.
    login(addr, &[("totp_code", &enable_code)])
        .await
        .assert_error(401, INVALID_TOTP);

    // The next step's code logs in, once.
    clock.advance(30);
    let code = clock.code(&secret);
    let (access, _, _) = assert_pair(&login(addr, &[("totp_code", &code)]).await, false);
    assert_eq!(
        Req::get("/api/v3/process")
            .bearer(&access)
            .send(addr)
            .await
            .status,
        200
    );
    login(addr, &[("totp_code", &code)])
        .await
        .assert_error(401, INVALID_TOTP);
    // A code of the next step (a phone whose clock runs a little ahead) is accepted; after it,
    // the current step's code, though never used, is older and refused.
    clock.advance(30);
    let ahead = totp(&secret, clock.now() + 30);
    assert_pair(&login(addr, &[("totp_code", &ahead)]).await, false);
    login(addr, &[("totp_code", &clock.code(&secret))])
        .await
        .assert_error(401, INVALID_TOTP);
    clock.advance(60);
    // Codes are typed with a space in the middle sometimes.
    let spaced = format!(
        "{} {}",
        &clock.code(&secret)[..3],
        &clock.code(&secret)[3..]
    );
    assert_pair(&login(addr, &[("totp_code", &spaced)]).await, false);

    // A recovery code stands in for the code, in `totp_code`, once; case and hyphens do not
    // matter.
    let shouted = recovery[0].to_uppercase().replace('-', "");
    assert_pair(&login(addr, &[("totp_code", &shouted)]).await, false);
    login(addr, &[("totp_code", &recovery[0])])
        .await
        .assert_error(401, INVALID_TOTP);
    assert_status(
        &totp_call(addr, "GET", "", &access, None).await,
        true,
        false,
        9,
    );

    // A new set replaces the whole old one.
    clock.advance(30);
    let reply = totp_call(
        addr,
        "POST",
        "/recovery",
        &access,
        Some(&clock.code(&secret)),
    )
    .await;
    let fresh = recovery_codes(&reply);
    login(addr, &[("totp_code", &recovery[1])])
        .await
        .assert_error(401, INVALID_TOTP);
    assert_status(
        &totp_call(addr, "GET", "", &access, None).await,
        true,
        false,
        10,
    );

    // Disabling needs a code too; a recovery code will do.
    totp_call(addr, "DELETE", "", &access, None)
        .await
        .assert_error(400, TOTP_REQUIRED);
    totp_call(addr, "DELETE", "", &access, Some(&recovery[2]))
        .await
        .assert_error(400, INVALID_TOTP);
    let reply = totp_call(addr, "DELETE", "", &access, Some(&fresh[0])).await;
    assert_eq!(reply.status, 204, "{}", reply.text());
    assert!(reply.body.is_empty());
    assert_status(
        &totp_call(addr, "GET", "", &access, None).await,
        false,
        false,
        0,
    );
    totp_call(addr, "DELETE", "", &access, Some(&fresh[1]))
        .await
        .assert_error(409, "TOTP not enabled");
    assert_pair(&login(addr, &[]).await, false);
    let about = Req::get("/api").send(addr).await;
    assert!(about.text().contains(",\"totp_required\":false,"));

    // Other methods and paths under the base: 404 in the error shape.
    totp_call(addr, "PUT", "", &access, None)
        .await
        .assert_error(404, "Not Found");
    totp_call(addr, "GET", "/setup", &access, None)
        .await
        .assert_error(404, "Not Found");
}

#[tokio::test]
async fn wrong_codes_are_throttled_like_wrong_passwords_and_a_missing_code_is_not() {
    let clock = Clock::new();
    let factor = factor_on(MemoryFactorStore::new(), &clock).await;
    let throttle = LoginThrottle::new(3, Duration::from_secs(900)).unwrap();
    let addr = serve(Some(factor), None, Some(throttle)).await;
    let (access, secret, _) = enrol(addr, &clock).await;

    // Asking for the code is no failed guess: any number of times.
    for _ in 0..5 {
        login(addr, &[]).await.assert_error(401, TOTP_REQUIRED);
    }
    let wrong = &clock.wrong_code(&secret);
    for _ in 0..2 {
        login(addr, &[("totp_code", wrong)])
            .await
            .assert_error(401, INVALID_TOTP);
    }
    // The management routes draw on the same budget (per user and address).
    totp_call(addr, "DELETE", "", &access, Some(wrong))
        .await
        .assert_error(400, INVALID_TOTP);
    // Three failures: now even the right code is answered 429, without being spent.
    let right = clock.code(&secret);
    let reply = login(addr, &[("totp_code", &right)]).await;
    reply.assert_error(429, "Too many failed login attempts, try again later");
    let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry));
    let reply = totp_call(addr, "DELETE", "", &access, Some(&right)).await;
    reply.assert_error(429, "Too many failed login attempts, try again later");
    assert_status(
        &totp_call(addr, "GET", "", &access, None).await,
        true,
        false,
        10,
    );
}

#[tokio::test]
async fn a_remembered_device_skips_the_code_until_it_expires() {
    let clock = Clock::new();
    let factor = factor_on(MemoryFactorStore::new(), &clock).await;
    let addr = serve(Some(factor), None, None).await;
    let (_, secret, _) = enrol(addr, &clock).await;

    // Asked for with a code: a token comes with the pair.
    let reply = login(
        addr,
        &[
            ("totp_code", &clock.code(&secret)),
            ("remember_device", "30d"),
        ],
    )
    .await;
    let (_, _, month) = assert_pair(&reply, true);
    let month = month.unwrap();
    clock.advance(30);
    let reply = login(
        addr,
        &[
            ("totp_code", &clock.code(&secret)),
            ("remember_device", "1y"),
        ],
    )
    .await;
    let year = assert_pair(&reply, true).2.unwrap();
    assert_ne!(month, year);
    // An unknown duration remembers nothing.
    clock.advance(30);
    let reply = login(
        addr,
        &[
            ("totp_code", &clock.code(&secret)),
            ("remember_device", "7d"),
        ],
    )
    .await;
    assert_pair(&reply, false);

    // The token alone passes, and brings no new token (a device is not remembered forever by
    // logging in with it).
    let reply = login(
        addr,
        &[("device_trust_token", &month), ("remember_device", "1y")],
    )
    .await;
    assert_pair(&reply, false);
    // Not a token of ours: the code is asked for.
    let last = if month.ends_with('A') { 'B' } else { 'A' };
    let forged = format!("{}{last}", &month[..42]);
    login(addr, &[("device_trust_token", &forged)])
        .await
        .assert_error(401, TOTP_REQUIRED);
    login(addr, &[("device_trust_token", "short")])
        .await
        .assert_error(401, TOTP_REQUIRED);
    // A token does not replace the password.
    let reply = Req::post("/api/login")
        .json(
            serde_json::json!({"username": USER, "password": "nope", "device_trust_token": month})
                .to_string(),
        )
        .send(addr)
        .await;
    reply.assert_error(
        401,
        "Invalid authorization credentials: invalid username or password",
    );

    // 30 days on, the month's token has lapsed; the year's has not.
    clock.advance(30 * DAY - 100);
    assert_pair(&login(addr, &[("device_trust_token", &month)]).await, false);
    clock.advance(200);
    login(addr, &[("device_trust_token", &month)])
        .await
        .assert_error(401, TOTP_REQUIRED);
    assert_pair(&login(addr, &[("device_trust_token", &year)]).await, false);
    clock.advance(335 * DAY);
    login(addr, &[("device_trust_token", &year)])
        .await
        .assert_error(401, TOTP_REQUIRED);
}

#[tokio::test]
async fn logging_out_everywhere_and_disabling_forget_remembered_devices() {
    let clock = Clock::new();
    let factor = factor_on(MemoryFactorStore::new(), &clock).await;
    let jwt = jwt();
    let sessions = Sessions::new(MemorySessionStore::new(&jwt));
    let addr = serve(Some(factor), Some(sessions), None).await;
    let (_, secret, recovery) = enrol(addr, &clock).await;

    let remember = |code: String| async move {
        let reply = login(addr, &[("totp_code", &code), ("remember_device", "1y")]).await;
        assert_pair(&reply, true)
    };
    let (access, _, device) = remember(clock.code(&secret)).await;
    let device = device.unwrap();
    assert_pair(
        &login(addr, &[("device_trust_token", &device)]).await,
        false,
    );

    let reply = Req::post("/api/logout/all")
        .bearer(&access)
        .send(addr)
        .await;
    assert_eq!(reply.status, 204, "{}", reply.text());
    login(addr, &[("device_trust_token", &device)])
        .await
        .assert_error(401, TOTP_REQUIRED);

    // Disabling forgets them too (and a re-enrolment does not bring them back).
    clock.advance(30);
    let (access, _, device) = remember(clock.code(&secret)).await;
    let reply = totp_call(addr, "DELETE", "", &access, Some(&recovery[0])).await;
    assert_eq!(reply.status, 204);
    let secret = setup(addr, &access).await;
    enable(addr, &access, &clock.code(&secret)).await;
    login(addr, &[("device_trust_token", &device.unwrap())])
        .await
        .assert_error(401, TOTP_REQUIRED);
}

#[tokio::test]
async fn a_password_change_refuses_remembered_devices() {
    // Core's one user: the configured password is the credential epoch.
    let clock = Clock::new();
    let store = Arc::new(MemoryFactorStore::new());
    let with_password = |password: &'static str| {
        let (store, clock) = (Arc::clone(&store), clock.clone());
        async move {
            SecondFactor::builder(store, FactorKey::parse(KEY).unwrap())
                .credential_epoch(password)
                .clock(move || clock.now())
                .build()
                .await
                .unwrap()
        }
    };
    let addr = serve(Some(with_password("datarhei").await), None, None).await;
    let (_, secret, _) = enrol(addr, &clock).await;
    let reply = login(
        addr,
        &[
            ("totp_code", &clock.code(&secret)),
            ("remember_device", "1y"),
        ],
    )
    .await;
    let device = assert_pair(&reply, true).2.unwrap();
    assert_pair(
        &login(addr, &[("device_trust_token", &device)]).await,
        false,
    );

    // The same store after the password changed (the enrolment itself survives).
    let changed = serve(Some(with_password("new password").await), None, None).await;
    login(changed, &[("device_trust_token", &device)])
        .await
        .assert_error(401, TOTP_REQUIRED);
    clock.advance(30);
    assert_pair(
        &login(changed, &[("totp_code", &clock.code(&secret))]).await,
        false,
    );
}

#[tokio::test]
async fn an_operator_reset_turns_the_second_factor_off_without_a_code() {
    let clock = Clock::new();
    let factor = factor_on(MemoryFactorStore::new(), &clock).await;
    let addr = serve(Some(factor.clone()), None, None).await;
    let (access, secret, recovery) = enrol(addr, &clock).await;
    let reply = login(
        addr,
        &[
            ("totp_code", &clock.code(&secret)),
            ("remember_device", "1y"),
        ],
    )
    .await;
    let device = assert_pair(&reply, true).2.unwrap();
    login(addr, &[]).await.assert_error(401, TOTP_REQUIRED);

    factor.reset(USER).await.unwrap();
    assert_status(
        &totp_call(addr, "GET", "", &access, None).await,
        false,
        false,
        0,
    );
    assert_pair(&login(addr, &[]).await, false);
    // Nothing of the old enrolment works after a new one.
    let secret = setup(addr, &access).await;
    enable(addr, &access, &clock.code(&secret)).await;
    login(addr, &[("totp_code", &recovery[0])])
        .await
        .assert_error(401, INVALID_TOTP);
    login(addr, &[("device_trust_token", &device)])
        .await
        .assert_error(401, TOTP_REQUIRED);
}

/// An Auth0 provider that accepts the bearer `auth0-admin` for `admin`.
struct FixedAuth0;

impl Auth0Provider for FixedAuth0 {
    async fn verify(&self, bearer: &str) -> Auth0Verdict {
        if bearer == "auth0-admin" {
            Auth0Verdict::Valid {
                principal: Principal::new(USER),
            }
        } else {
            Auth0Verdict::NotMine
        }
    }
}

#[tokio::test]
async fn auth0_logins_are_not_asked_for_a_code() {
    let clock = Clock::new();
    let factor = factor_on(MemoryFactorStore::new(), &clock).await;
    let addr = serve(Some(factor.clone()), None, None).await;
    enrol(addr, &clock).await;
    login(addr, &[]).await.assert_error(401, TOTP_REQUIRED);

    let auth0 = LoginService::new(jwt(), PlaintextUser::new(USER, PASSWORD))
        .failure_delay(Duration::ZERO)
        .second_factor(factor)
        .auth0(FixedAuth0);
    let auth0_addr = spawn_router(Router::new().route_service("/api/login", auth0)).await;
    let reply = Req::post("/api/login")
        .bearer("auth0-admin")
        .send(auth0_addr)
        .await;
    assert_pair(&reply, false);
    // The same service still asks a password login for the code.
    login(auth0_addr, &[])
        .await
        .assert_error(401, TOTP_REQUIRED);
}

/// What Core's clients send: the Python client (httpx's `json=`, Python's default separators)
/// and the Go client (`encoding/json`).
const CLIENT_BODIES: [&str; 2] = [
    "{\"username\": \"admin\", \"password\": \"datarhei\"}",
    "{\"username\":\"admin\",\"password\":\"datarhei\"}",
];

#[tokio::test]
async fn core_clients_log_in_unchanged_with_the_second_factor_off_or_unused() {
    let clock = Clock::new();
    let off = serve(None, None, None).await;
    let factor = factor_on(MemoryFactorStore::new(), &clock).await;
    let unused = serve(Some(factor), None, None).await;
    for addr in [off, unused] {
        for body in CLIENT_BODIES {
            let reply = Req::post("/api/login").json(body).send(addr).await;
            let (access, refresh, _) = assert_pair(&reply, false);
            assert_eq!(
                Req::get("/api/v3/process")
                    .bearer(&access)
                    .send(addr)
                    .await
                    .status,
                200
            );
            let reply = Req::get("/api/login/refresh")
                .bearer(&refresh)
                .send(addr)
                .await;
            assert_eq!(reply.status, 200);
        }
        // The extension's members with other types are ignored, like any unknown member, and a
        // user without the second factor gets no device token whatever it asks.
        let body = "{\"username\":\"admin\",\"password\":\"datarhei\",\"totp_code\":123456,\"device_trust_token\":null,\"remember_device\":\"1y\"}";
        assert_pair(&Req::post("/api/login").json(body).send(addr).await, false);
    }
    // With the extension off the about document is Core's, without a second-factor member.
    let about = Req::get("/api").send(off).await;
    assert_eq!(
        about.text(),
        "{\"app\":\"datarhei-core\",\"auths\":[\"localjwt\"],\"version\":{\"number\":\"16.0.0\"}}\n"
    );
    // And there are no management routes.
    let (access, _, _) = assert_pair(&login(off, &[]).await, false);
    assert_eq!(totp_call(off, "GET", "", &access, None).await.status, 404);
}

#[tokio::test]
async fn the_example_configuration_reads_the_second_factor_and_refuses_a_bad_key() {
    let env = |totp: &'static str, key: &'static str| {
        move |k: &str| -> Option<String> {
            match k {
                "CORE_API_AUTH_ENABLE" => Some("true".into()),
                "CORE_API_AUTH_USERNAME" => Some(USER.into()),
                "CORE_API_AUTH_PASSWORD" => Some(PASSWORD.into()),
                "CORE_API_AUTH_TOTP" => Some(totp.into()),
                "CORE_API_AUTH_TOTP_KEY" => Some(key.into()),
                _ => None,
            }
        }
    };
    let err = CoreAuthConfig::default()
        .with_lookup(env("true", ""))
        .unwrap_err();
    assert_eq!(err, ConfigError::MissingTotpKey);
    assert!(err.to_string().contains("CORE_API_AUTH_TOTP_KEY is empty"));
    let err = CoreAuthConfig::default()
        .with_lookup(env("true", "abc"))
        .unwrap_err();
    assert_eq!(err, ConfigError::InvalidTotpKey);
    let err = CoreAuthConfig::default()
        .with_lookup(env("yes", KEY))
        .unwrap_err();
    assert_eq!(
        err,
        ConfigError::InvalidBool {
            var: "CORE_API_AUTH_TOTP"
        }
    );
    // Off: no key needed, no second factor.
    let config = CoreAuthConfig::default()
        .with_lookup(env("false", ""))
        .unwrap();
    assert!(config.second_factor().await.unwrap().is_none());
    // On: a working second factor on the memory store.
    let config = CoreAuthConfig::default()
        .with_lookup(env("true", KEY))
        .unwrap();
    assert!(config.totp);
    assert!(!format!("{config:?}").contains(KEY));
    let factor = config.second_factor().await.unwrap().unwrap();
    assert!(!factor.is_enabled(USER).await.unwrap());
    let setup = factor.setup(USER).await.unwrap();
    assert!(
        setup
            .uri()
            .starts_with("otpauth://totp/datarhei-core:admin?secret=")
    );
}

#[tokio::test]
async fn a_store_sealed_under_another_key_is_refused_at_start_up() {
    let store = Arc::new(MemoryFactorStore::new());
    SecondFactor::new(Arc::clone(&store), FactorKey::parse(KEY).unwrap())
        .await
        .unwrap();
    SecondFactor::new(Arc::clone(&store), FactorKey::parse(KEY).unwrap())
        .await
        .unwrap();
    let err = SecondFactor::new(Arc::clone(&store), FactorKey::random())
        .await
        .unwrap_err();
    assert_eq!(err, SecondFactorSetupError::WrongKey);
    assert!(err.to_string().contains("CORE_API_AUTH_TOTP_KEY"));
}

#[cfg(feature = "redis")]
mod redis {
    use super::support::{SHARED, keys_with_pttl, unique_prefix};
    use super::*;
    use tower_jwt_login::factor::RedisFactorStore;
    use tower_jwt_login::redis::client::AsyncCommands;
    use tower_jwt_login::redis::{RedisConnection, RedisOptions};
    use tower_jwt_login::session::RedisSessionStore;

    /// One instance of a fleet: its own Redis connections, store and services.
    async fn instance(prefix: &str, clock: &Clock, throttle: Option<LoginThrottle>) -> SocketAddr {
        let options = RedisOptions::new().prefix(prefix);
        let redis = RedisConnection::connect(SHARED, options.clone())
            .await
            .unwrap();
        let factor = factor_on(RedisFactorStore::new(redis), clock).await;
        let sessions = RedisSessionStore::connect(SHARED, options, &jwt())
            .await
            .unwrap();
        serve(Some(factor), Some(Sessions::with_fleet(sessions)), throttle).await
    }

    #[tokio::test]
    async fn two_instances_on_redis_share_enrolment_codes_and_devices() {
        let prefix = unique_prefix();
        let clock = Clock::new();
        let a = instance(&prefix, &clock, None).await;
        let b = instance(&prefix, &clock, None).await;

        let (_, secret, recovery) = enrol(a, &clock).await;
        // Enrolled on one, asked for on the other.
        login(b, &[]).await.assert_error(401, TOTP_REQUIRED);
        let about = Req::get("/api").send(b).await;
        assert!(about.text().contains(",\"totp_required\":true,"));

        // A code used on one instance is refused on the other.
        let code = clock.code(&secret);
        assert_pair(&login(a, &[("totp_code", &code)]).await, false);
        login(b, &[("totp_code", &code)])
            .await
            .assert_error(401, INVALID_TOTP);
        // Likewise a recovery code.
        assert_pair(&login(b, &[("totp_code", &recovery[0])]).await, false);
        login(a, &[("totp_code", &recovery[0])])
            .await
            .assert_error(401, INVALID_TOTP);

        // Concurrent logins with one fresh code on both: exactly one gets in.
        clock.advance(30);
        let code = clock.code(&secret);
        let extra = [("totp_code", code.as_str())];
        let (ra, rb) = tokio::join!(login(a, &extra), login(b, &extra));
        let mut statuses = [ra.status, rb.status];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 401], "{} / {}", ra.text(), rb.text());

        // A device remembered on one is remembered on the other, until "log out everywhere"
        // on either.
        clock.advance(30);
        let reply = login(
            a,
            &[
                ("totp_code", &clock.code(&secret)),
                ("remember_device", "30d"),
            ],
        )
        .await;
        let device = assert_pair(&reply, true).2.unwrap();
        let (access, _, _) =
            assert_pair(&login(b, &[("device_trust_token", &device)]).await, false);
        let reply = Req::post("/api/logout/all").bearer(&access).send(b).await;
        assert_eq!(reply.status, 204);
        login(a, &[("device_trust_token", &device)])
            .await
            .assert_error(401, TOTP_REQUIRED);

        // Disabled on one, off on both.
        clock.advance(30);
        let (access, _, _) = assert_pair(
            &login(a, &[("totp_code", &clock.code(&secret))]).await,
            false,
        );
        clock.advance(30);
        let reply = totp_call(b, "DELETE", "", &access, Some(&clock.code(&secret))).await;
        assert_eq!(reply.status, 204, "{}", reply.text());
        assert_pair(&login(a, &[]).await, false);
    }

    #[tokio::test]
    async fn redis_holds_no_secret_or_code_in_clear_and_lapsed_setups_expire() {
        let prefix = unique_prefix();
        let clock = Clock::new();
        let addr = instance(&prefix, &clock, None).await;
        let (access, _, _) = assert_pair(&login(addr, &[]).await, false);
        // A setup nobody confirms lapses by itself.
        setup(addr, &access).await;
        let keys = keys_with_pttl(SHARED, &prefix).await;
        let user_key = format!("{prefix}{{factor}}:user:{USER}");
        let (_, pttl) = keys.iter().find(|(k, _)| *k == user_key).unwrap();
        assert!((1..=16 * 60 * 1000).contains(pttl), "{keys:?}");

        let (_, secret, recovery) = enrol(addr, &clock).await;
        let reply = login(
            addr,
            &[
                ("totp_code", &clock.code(&secret)),
                ("remember_device", "30d"),
            ],
        )
        .await;
        let device = assert_pair(&reply, true).2.unwrap();

        let client = tower_jwt_login::redis::client::Client::open(SHARED).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let raw_secret = data_encoding::BASE32_NOPAD
            .decode(secret.as_bytes())
            .unwrap();
        let mut everything = Vec::new();
        for (key, pttl) in keys_with_pttl(SHARED, &prefix).await {
            let kind: String = tower_jwt_login::redis::client::cmd("TYPE")
                .arg(&key)
                .query_async(&mut con)
                .await
                .unwrap();
            let values: Vec<Vec<u8>> = match kind.as_str() {
                "hash" => {
                    let all: Vec<(Vec<u8>, Vec<u8>)> = con.hgetall(&key).await.unwrap();
                    all.into_iter().flat_map(|(k, v)| [k, v]).collect()
                }
                "set" => con.smembers(&key).await.unwrap(),
                "string" => vec![con.get(&key).await.unwrap()],
                _ => Vec::new(),
            };
            if key == user_key {
                assert_eq!(pttl, -1, "a confirmed enrolment does not expire");
            }
            everything.extend(values);
        }
        let secrets: Vec<Vec<u8>> = [secret.as_bytes().to_vec(), raw_secret, device.into_bytes()]
            .into_iter()
            .chain(
                recovery
                    .iter()
                    .flat_map(|c| [c.clone().into_bytes(), c.replace('-', "").into_bytes()]),
            )
            .collect();
        assert!(!everything.is_empty());
        for value in &everything {
            for secret in &secrets {
                assert!(
                    !value.windows(secret.len()).any(|w| w == &secret[..]),
                    "a secret in clear in Redis"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_second_instance_with_another_key_does_not_start() {
        let prefix = unique_prefix();
        let options = RedisOptions::new().prefix(&prefix);
        let redis = RedisConnection::connect(SHARED, options).await.unwrap();
        SecondFactor::new(
            RedisFactorStore::new(redis.clone()),
            FactorKey::parse(KEY).unwrap(),
        )
        .await
        .unwrap();
        let err = SecondFactor::new(RedisFactorStore::new(redis.clone()), FactorKey::random())
            .await
            .unwrap_err();
        assert_eq!(err, SecondFactorSetupError::WrongKey);
        // Through the example's configuration: Redis sessions put the enrolments in Redis.
        let config = |key: &'static str| {
            let prefix = prefix.clone();
            CoreAuthConfig::default()
                .with_lookup(move |k| match k {
                    "CORE_API_AUTH_ENABLE" | "CORE_API_AUTH_TOTP" => Some("true".into()),
                    "CORE_API_AUTH_USERNAME" => Some(USER.into()),
                    "CORE_API_AUTH_PASSWORD" => Some(PASSWORD.into()),
                    "CORE_API_AUTH_TOTP_KEY" => Some(key.into()),
                    "CORE_API_AUTH_SESSIONS" => Some(SHARED.into()),
                    "CORE_API_AUTH_REDIS_PREFIX" => Some(prefix.clone()),
                    _ => None,
                })
                .unwrap()
        };
        assert!(config(KEY).second_factor().await.unwrap().is_some());
        let other = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
        let err = config(other).second_factor().await.unwrap_err();
        assert_eq!(err, SecondFactorSetupError::WrongKey);
    }

    #[tokio::test]
    async fn wrong_codes_count_across_the_fleet() {
        let prefix = unique_prefix();
        let clock = Clock::new();
        let redis = RedisConnection::connect(SHARED, RedisOptions::new().prefix(&prefix))
            .await
            .unwrap();
        let throttle = || {
            LoginThrottle::new(2, Duration::from_secs(900))
                .unwrap()
                .fleet(redis.clone(), SECRET.as_bytes())
        };
        let a = instance(&prefix, &clock, Some(throttle())).await;
        let b = instance(&prefix, &clock, Some(throttle())).await;
        let (_, secret, _) = enrol(a, &clock).await;
        let wrong = &clock.wrong_code(&secret);
        login(a, &[("totp_code", wrong)])
            .await
            .assert_error(401, INVALID_TOTP);
        login(b, &[("totp_code", wrong)])
            .await
            .assert_error(401, INVALID_TOTP);
        login(a, &[("totp_code", &clock.code(&secret))])
            .await
            .assert_error(429, "Too many failed login attempts, try again later");
    }
}
