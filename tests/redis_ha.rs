//! Redis as production runs it, under the example server: a primary with replicas under three
//! Sentinels that lose the primary mid-run, refreshes and logouts that wait for a replica
//! (`WAIT`), `rediss://` against a server whose certificate a private CA signed (directly and
//! through Sentinel), and Redis Cluster refused at start-up. Every server is a private
//! `redis-server` on loopback ports, started and killed by the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "redis_support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use support::{PrivateRedis, SentinelNode, TempDir, eventually_async, info, unique_prefix};
use tower_jwt_login::config::{ConfigError, CoreAuthConfig, SessionBackend};
use tower_jwt_login::redis::{RedisConnection, RedisOptions, RedisSetupError};

const UNAVAILABLE: &str = "{\"code\":503,\"message\":\"Service Unavailable\",\"details\":[\"Session store unavailable, try again later\"]}\n";
const MASTER: &str = "tjl";

/// The example app on `url`, with refresh rotation.
struct Setup<'a> {
    url: &'a str,
    prefix: &'a str,
    wait_replicas: u32,
    grace: Duration,
    ca_file: Option<&'a str>,
}

impl Setup<'_> {
    fn config(&self) -> CoreAuthConfig {
        let mut config = core_config(Duration::ZERO);
        config.sessions = SessionBackend::Redis(self.url.to_owned().into());
        config.redis_prefix = self.prefix.to_owned();
        config.redis_timeout = Duration::from_secs(1);
        config.redis_wait_replicas = self.wait_replicas;
        config.redis_tls_ca_file = self.ca_file.map(PathBuf::from);
        config.refresh_rotation = true;
        config.refresh_rotation_grace = self.grace;
        config
    }

    async fn spawn(&self) -> SocketAddr {
        let app = core_server::app_from_env(&self.config()).await.unwrap();
        spawn_router(app).await
    }
}

fn assert_unavailable(reply: &Reply) {
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert_eq!(reply.text(), UNAVAILABLE);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("retry-after"), Some("5"));
}

fn login_req() -> Req {
    Req::post("/api/login").json(format!(
        "{{\"username\":\"{USER}\",\"password\":\"{PASSWORD}\"}}"
    ))
}

async fn protected(addr: SocketAddr, access: &str) -> Reply {
    Req::get("/api/v3/process").bearer(access).send(addr).await
}

async fn refresh(addr: SocketAddr, refresh_token: &str) -> Reply {
    Req::get("/api/login/refresh")
        .bearer(refresh_token)
        .send(addr)
        .await
}

async fn logout(addr: SocketAddr, access: &str) -> Reply {
    Req::post("/api/logout").bearer(access).send(addr).await
}

/// The (access, refresh) pair of a 200 login or rotating refresh, its body checked.
fn pair(reply: &Reply) -> (String, String) {
    assert_eq!(reply.status, 200, "{}", reply.text());
    let v = reply.json();
    let access = v["access_token"].as_str().unwrap().to_owned();
    let refresh = v["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        reply.text(),
        format!("{{\"access_token\":\"{access}\",\"refresh_token\":\"{refresh}\"}}\n")
    );
    (access, refresh)
}

/// A claim of a token, as a string.
fn claim(token: &str, name: &str) -> String {
    let claims: serde_json::Value = serde_json::from_str(&decode_parts(token).1).unwrap();
    claims[name].as_str().unwrap().to_owned()
}

fn replica_of(primary: &PrivateRedis) -> PrivateRedis {
    let port = primary.port.to_string();
    PrivateRedis::start_with(move |_| vec!["--replicaof".into(), "127.0.0.1".into(), port])
}

async fn wait_replica_synced(replica: &PrivateRedis) {
    let url = replica.url();
    let synced = eventually_async(Duration::from_secs(10), || async {
        info(&url, "replication")
            .await
            .is_some_and(|i| i.contains("master_link_status:up"))
    })
    .await;
    assert!(synced.is_some(), "replica on {} never synced", replica.port);
}

/// `SENTINEL MASTER <MASTER>` as field → value.
async fn sentinel_view(sentinel: &SentinelNode) -> std::collections::HashMap<String, String> {
    let fields: Vec<String> = support::cmd(&sentinel.url(), &["SENTINEL", "MASTER", MASTER]).await;
    fields
        .chunks(2)
        .filter_map(|kv| Some((kv.first()?.clone(), kv.get(1)?.clone())))
        .collect()
}

/// One primary, two replicas (so that after losing the primary, the new one still has a replica
/// to acknowledge `WAIT 1`), three sentinels with a quorum of two. The primary is killed after a
/// rotation; meanwhile protected routes are asked every 100 ms on two instances and must never
/// fail, logins answer 200 or the exact 503 and come back by themselves, and afterwards the
/// rotation made before the kill is still in force (the spent token is reuse), logouts are
/// enforced across the instances, and a fresh session refreshes and logs out on the new primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_keeps_sessions_working() {
    let test_started = Instant::now();
    let dir = TempDir::new();
    let mut primary = PrivateRedis::start();
    let replicas = [replica_of(&primary), replica_of(&primary)];
    for replica in &replicas {
        wait_replica_synced(replica).await;
    }
    let sentinels: Vec<SentinelNode> = (0..3)
        .map(|_| SentinelNode::start(&dir, MASTER, primary.port, 2, |_| Vec::new()))
        .collect();
    for sentinel in &sentinels {
        let ready = eventually_async(Duration::from_secs(15), || async {
            let view = sentinel_view(sentinel).await;
            view.get("num-slaves").map(String::as_str) == Some("2")
                && view.get("num-other-sentinels").map(String::as_str) == Some("2")
        })
        .await;
        assert!(
            ready.is_some(),
            "sentinels never saw each other and the replicas"
        );
    }
    println!("topology ready after {:?}", test_started.elapsed());

    let hosts: Vec<String> = sentinels
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port))
        .collect();
    let url = format!("redis+sentinel://{}/{MASTER}", hosts.join(","));
    let prefix = unique_prefix();
    let setup = Setup {
        url: &url,
        prefix: &prefix,
        wait_replicas: 1,
        grace: Duration::ZERO,
        ca_file: None,
    };
    let a = setup.spawn().await;
    let b = setup.spawn().await;

    // Before: a session rotated on b, a logout on b enforced by a.
    let (access, first) = login(a).await;
    assert_eq!(protected(b, &access).await.status, 200);
    let (_, second) = pair(&refresh(b, &first).await);
    let (gone_access, _) = login(a).await;
    assert_eq!(logout(b, &gone_access).await.status, 204);
    let synced = eventually_async(Duration::from_secs(3), || async {
        protected(a, &gone_access).await.status == 401
    })
    .await;
    assert!(synced.is_some(), "logout not synced before the failover");
    // The rotation just before the primary dies: acknowledged by a replica before its answer.
    let (live_access, third) = pair(&refresh(a, &second).await);
    let sid = claim(&third, "sid");

    primary.kill();
    let killed = Instant::now();

    // During the failover: protected routes never fail, logins answer 200 or exactly 503.
    let mut back = [None, None];
    let mut unavailable = 0;
    while back.iter().any(Option::is_none) {
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "no failover within 30 s"
        );
        for (i, addr) in [a, b].into_iter().enumerate() {
            let reply = protected(addr, &live_access).await;
            assert_eq!(reply.status, 200, "protected route during the failover");
            protected(addr, &gone_access)
                .await
                .assert_invalid_token("token revoked");
            let reply = login_req().send(addr).await;
            match reply.status {
                200 => {
                    pair(&reply);
                    back[i].get_or_insert(killed.elapsed());
                }
                _ => {
                    assert_unavailable(&reply);
                    unavailable += 1;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "logins back after {:?} (a) and {:?} (b), {unavailable} logins answered 503 meanwhile",
        back[0], back[1]
    );
    // The replica the sentinels promoted.
    let mut new_primary = None;
    for replica in &replicas {
        if info(&replica.url(), "replication")
            .await
            .is_some_and(|i| i.contains("role:master"))
        {
            new_primary = Some(replica.port);
        }
    }
    let new_primary = new_primary.expect("a replica was promoted");

    // The rotation made before the kill survived: the spent token is reuse, which ends the
    // session on b at once and on a as soon as the event arrives over the new primary.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = refresh(b, &second).await;
        if reply.status != 503 {
            reply.assert_unauthorized(true);
            break;
        }
        // The new primary's second replica may still be syncing: WAIT 1 fails closed meanwhile.
        assert_unavailable(&reply);
        assert!(Instant::now() < deadline, "refreshes never came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    refresh(b, &third).await.assert_unauthorized(true);
    let synced = eventually_async(Duration::from_secs(5), || async {
        protected(a, &live_access).await.status == 401
    })
    .await;
    println!("reuse after the failover enforced on a after {synced:?}");
    assert!(
        synced.is_some(),
        "revocation sync did not follow the primary"
    );
    protected(a, &live_access)
        .await
        .assert_invalid_token("token revoked");
    let hash: Option<String> = support::cmd(
        &format!("redis://127.0.0.1:{new_primary}"),
        &["HGET", &format!("{prefix}{{sessions}}:sess:{sid}"), "jti"],
    )
    .await;
    assert_eq!(hash, None, "the reused session is gone on the new primary");

    // A fresh session lives on the new primary: login on a, refresh on b, logout on b, enforced
    // on a.
    let (_, refresh_token) = login(a).await;
    let (access, _) = pair(&refresh(b, &refresh_token).await);
    assert_eq!(protected(a, &access).await.status, 200);
    assert_eq!(logout(b, &access).await.status, 204);
    let synced = eventually_async(Duration::from_secs(5), || async {
        protected(a, &access).await.status == 401
    })
    .await;
    assert!(synced.is_some(), "logout after the failover not synced");
    println!("whole test took {:?}", test_started.elapsed());
}

/// `WAIT` for one replica: a rotation answered 200 is on the replica at once; with the replica
/// frozen, refreshes and logouts answer 503 within the timeout while logins and protected
/// routes carry on; an instance that does not wait still refreshes; and once the replica is
/// back, a refresh answered 503 can be retried within the grace. Writes sent to a replica
/// answer 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_a_replica_fails_refresh_and_logout_closed() {
    let primary = PrivateRedis::start();
    let replica = replica_of(&primary);
    wait_replica_synced(&replica).await;
    let prefix = unique_prefix();
    let url = primary.url();
    let durable = Setup {
        url: &url,
        prefix: &prefix,
        wait_replicas: 1,
        grace: Duration::from_secs(10),
        ca_file: None,
    };
    let addr = durable.spawn().await;
    let eager = Setup {
        wait_replicas: 0,
        ..durable
    }
    .spawn()
    .await;

    let (_, first) = login(addr).await;
    let (access, second) = pair(&refresh(addr, &first).await);
    // Acknowledged: the replica holds the rotation already.
    let key = format!("{prefix}{{sessions}}:sess:{}", claim(&second, "sid"));
    let on_replica: Option<String> = support::cmd(&replica.url(), &["HGET", &key, "jti"]).await;
    assert_eq!(on_replica.as_deref(), Some(claim(&second, "jti").as_str()));

    replica.pause();
    let started = Instant::now();
    let reply = refresh(addr, &second).await;
    let took = started.elapsed();
    assert_unavailable(&reply);
    assert!(took < Duration::from_millis(1500), "refresh took {took:?}");
    // Logins do not wait for replicas, and are not held up by the waiting refreshes.
    let (other_access, other_refresh) = login(addr).await;
    assert_eq!(protected(addr, &access).await.status, 200);
    // A logout answers 503 too, but took effect on the primary and, through its event, on the
    // instances.
    assert_unavailable(&logout(addr, &other_access).await);
    let revoked = eventually_async(Duration::from_secs(3), || async {
        protected(addr, &other_access).await.status == 401
    })
    .await;
    assert!(revoked.is_some(), "the logout answered 503 did not revoke");
    protected(addr, &other_access)
        .await
        .assert_invalid_token("token revoked");
    refresh(eager, &other_refresh)
        .await
        .assert_unauthorized(true);
    // Without WAIT the same refresh goes through.
    let (_, eager_refresh) = login(eager).await;
    pair(&refresh(eager, &eager_refresh).await);

    replica.resume();
    // The 503 refresh retried within the grace: a successor, which then refreshes.
    let (_, third) = pair(&refresh(addr, &second).await);
    pair(&refresh(addr, &third).await);

    // An instance pointed at the replica (as at a primary demoted behind its back): its writes
    // are refused with READONLY, which is a 503 to retry, not a 500.
    let replica_url = replica.url();
    let on_replica = Setup {
        url: &replica_url,
        ..durable
    }
    .spawn()
    .await;
    assert_unavailable(&login_req().send(on_replica).await);
}

/// A test CA and a server certificate it signed for 127.0.0.1, as PEM files.
struct TestCa {
    ca: String,
    cert: String,
    key: String,
}

impl TestCa {
    fn new(dir: &TempDir, name: &str) -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("tower-jwt-login {name} CA"));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let server_key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "redis test server");
        let server_cert = params.signed_by(&server_key, &issuer).unwrap();
        TestCa {
            ca: dir.write(&format!("{name}-ca.pem"), ca_cert.pem()),
            cert: dir.write(&format!("{name}-server.pem"), server_cert.pem()),
            key: dir.write(&format!("{name}-server.key"), server_key.serialize_pem()),
        }
    }

    /// `redis-server` arguments for TLS on `port` only (no plain port), clients unauthenticated.
    fn server_args(&self, port: u16) -> Vec<String> {
        [
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            &self.cert,
            "--tls-key-file",
            &self.key,
            "--tls-ca-cert-file",
            &self.ca,
            "--tls-auth-clients",
            "no",
        ]
        .map(str::to_owned)
        .to_vec()
    }
}

/// `rediss://` to a server whose certificate a private CA signed: trusted with the CA given
/// (`CORE_API_AUTH_REDIS_TLS_CA_FILE`), refused with the system's trust store or another CA,
/// and a CA given for a plain URL or a missing file is a set-up error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_a_private_ca() {
    let dir = TempDir::new();
    let ca = TestCa::new(&dir, "test");
    let other = TestCa::new(&dir, "other");
    let server = PrivateRedis::start_with(|port| ca.server_args(port));
    let url = format!("rediss://127.0.0.1:{}", server.port);
    let prefix = unique_prefix();
    let setup = Setup {
        url: &url,
        prefix: &prefix,
        wait_replicas: 0,
        grace: Duration::ZERO,
        ca_file: Some(&ca.ca),
    };
    let addr = setup.spawn().await;
    let (_, first) = login(addr).await;
    let (access, _) = pair(&refresh(addr, &first).await);
    assert_eq!(protected(addr, &access).await.status, 200);
    assert_eq!(logout(addr, &access).await.status, 204);
    protected(addr, &access)
        .await
        .assert_invalid_token("token revoked");
    // The sessions went over TLS: the server has no plain port.
    let pem = std::fs::read(&ca.ca).unwrap();
    let redis = RedisConnection::connect(&url, RedisOptions::new().tls_root_ca_pem(pem))
        .await
        .unwrap();
    assert_eq!(redis.primary_addr(), format!("127.0.0.1:{}", server.port));

    for options in [
        RedisOptions::new(),
        RedisOptions::new().tls_root_ca_file(&other.ca),
    ] {
        let err = RedisConnection::connect(&url, options).await.unwrap_err();
        let RedisSetupError::Unreachable(why) = &err else {
            panic!("{err:?}");
        };
        assert!(why.contains("certificate"), "{why}");
    }
    let plain = format!("redis://127.0.0.1:{}", server.port);
    let err = RedisConnection::connect(&plain, RedisOptions::new().tls_root_ca_file(&ca.ca))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Redis TLS: CA certificates were given for a URL without TLS: use rediss:// or \
         rediss+sentinel://"
    );
    let missing = dir.0.join("missing.pem");
    let err = RedisConnection::connect(&url, RedisOptions::new().tls_root_ca_file(&missing))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RedisSetupError::InvalidTls(why) if why.starts_with(&format!("cannot read {}: ", missing.display()))),
        "{err}"
    );
    let err = RedisConnection::connect(&url, RedisOptions::new().tls_root_ca_pem("no pem here"))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "Redis TLS: no certificate in the CA PEM");
}

/// `rediss+sentinel://`: TLS to the sentinel and to the primary it names, with the private CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_sentinel_with_a_private_ca() {
    let dir = TempDir::new();
    let ca = TestCa::new(&dir, "test");
    let primary = PrivateRedis::start_with(|port| ca.server_args(port));
    let sentinel = SentinelNode::start(&dir, MASTER, primary.port, 1, |port| {
        vec![
            "port 0".to_owned(),
            format!("tls-port {port}"),
            format!("tls-cert-file {}", ca.cert),
            format!("tls-key-file {}", ca.key),
            format!("tls-ca-cert-file {}", ca.ca),
            "tls-auth-clients no".to_owned(),
            "tls-replication yes".to_owned(),
        ]
    });
    let url = format!("rediss+sentinel://127.0.0.1:{}/{MASTER}", sentinel.port);
    let prefix = unique_prefix();
    let addr = Setup {
        url: &url,
        prefix: &prefix,
        wait_replicas: 0,
        grace: Duration::ZERO,
        ca_file: Some(&ca.ca),
    }
    .spawn()
    .await;
    let (_, first) = login(addr).await;
    let (access, _) = pair(&refresh(addr, &first).await);
    assert_eq!(logout(addr, &access).await.status, 204);
    let redis = RedisConnection::connect(&url, RedisOptions::new().tls_root_ca_file(&ca.ca))
        .await
        .unwrap();
    assert_eq!(redis.primary_addr(), format!("127.0.0.1:{}", primary.port));
    // Without the CA the sentinel itself is refused.
    let err = RedisConnection::connect(&url, RedisOptions::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RedisSetupError::Unreachable(why) if why.starts_with("no primary from the sentinels: ")),
        "{err}"
    );
}

/// The passwords of a Sentinel URL: the user part's for the data nodes (percent-escapes
/// decoded), `sentinel_password` for the sentinels themselves; a wrong one of either is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_urls_carry_the_passwords() {
    let dir = TempDir::new();
    let primary = PrivateRedis::start_with(|_| vec!["--requirepass".into(), "pri@mary pw".into()]);
    let sentinel = SentinelNode::start(&dir, MASTER, primary.port, 1, |_| {
        vec![
            "requirepass sentinel&pw".to_owned(),
            format!("sentinel auth-pass {MASTER} \"pri@mary pw\""),
        ]
    });
    let url = |data: &str, sentinel_pw: &str| {
        format!(
            "redis+sentinel://:{data}@127.0.0.1:{}/{MASTER}?sentinel_password={sentinel_pw}",
            sentinel.port
        )
    };
    let good = url("pri%40mary%20pw", "sentinel%26pw");
    let redis = RedisConnection::connect(&good, RedisOptions::new())
        .await
        .unwrap();
    assert_eq!(redis.primary_addr(), format!("127.0.0.1:{}", primary.port));
    let prefix = unique_prefix();
    let addr = Setup {
        url: &good,
        prefix: &prefix,
        wait_replicas: 0,
        grace: Duration::ZERO,
        ca_file: None,
    }
    .spawn()
    .await;
    let (_, first) = login(addr).await;
    pair(&refresh(addr, &first).await);

    for bad in [
        url("wrong", "sentinel%26pw"),
        url("pri%40mary%20pw", "wrong"),
    ] {
        let err = RedisConnection::connect(&bad, RedisOptions::new())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, RedisSetupError::Unreachable(why) if why.starts_with("no primary from the sentinels: ")),
            "{err}"
        );
    }
}

/// Sentinels that know no reachable primary: start-up fails with the reason, within the
/// timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_without_a_reachable_primary_refuses_to_start() {
    let dir = TempDir::new();
    let nowhere = support::free_port();
    let sentinel = SentinelNode::start(&dir, MASTER, nowhere, 1, |_| Vec::new());
    let url = format!("redis+sentinel://127.0.0.1:{}/{MASTER}", sentinel.port);
    let started = Instant::now();
    let err = RedisConnection::connect(&url, RedisOptions::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RedisSetupError::Unreachable(why) if why.starts_with("no primary from the sentinels: ")),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    // A master name the sentinels do not know.
    let url = format!("redis+sentinel://127.0.0.1:{}/unknown", sentinel.port);
    let err = RedisConnection::connect(&url, RedisOptions::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RedisSetupError::Unreachable(why) if why.starts_with("no primary from the sentinels: ")),
        "{err}"
    );
}

/// A server in cluster mode is refused at start-up with a message that names Sentinel, also
/// through the configuration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_mode_is_refused_at_start_up() {
    let dir = TempDir::new();
    let nodes = dir.0.join("nodes.conf");
    let server = PrivateRedis::start_with(|_| {
        vec![
            "--cluster-enabled".into(),
            "yes".into(),
            "--cluster-config-file".into(),
            nodes.display().to_string(),
            "--dir".into(),
            dir.0.display().to_string(),
        ]
    });
    let expected = "the Redis server runs in cluster mode (cluster_enabled:1), which is not \
                    supported: sessions need one primary. For high availability run a primary \
                    with replicas under Redis Sentinel and connect with \
                    redis+sentinel://sentinel1:26379,sentinel2:26379,sentinel3:26379/<master name>";
    let err = RedisConnection::connect(&server.url(), RedisOptions::new())
        .await
        .unwrap_err();
    assert!(matches!(err, RedisSetupError::ClusterMode));
    assert_eq!(err.to_string(), expected);

    let prefix = unique_prefix();
    let url = server.url();
    let config = Setup {
        url: &url,
        prefix: &prefix,
        wait_replicas: 0,
        grace: Duration::ZERO,
        ca_file: None,
    }
    .config();
    let jwt = config.jwt_config().unwrap().build().unwrap();
    let err = config.connect_sessions(&jwt).await.unwrap_err();
    assert_eq!(err.to_string(), format!("session store: {expected}"));
    // The plain server next door is fine.
    let plain = PrivateRedis::start();
    RedisConnection::connect(&plain.url(), RedisOptions::new())
        .await
        .unwrap();
}

/// Malformed Sentinel URLs are refused before any connection, each with its reason.
#[tokio::test]
async fn sentinel_urls_are_checked() {
    let cases = [
        (
            "redis+sentinel://127.0.0.1:26379",
            "invalid Redis URL: a redis+sentinel:// URL names the sentinels' master as its \
             path: redis+sentinel://host1:26379,host2:26379/mymaster",
        ),
        (
            "redis+sentinel://127.0.0.1:26379/mymaster/0/extra",
            "invalid Redis URL: a redis+sentinel:// URL's path is /<master name>[/<db>]",
        ),
        (
            "redis+sentinel://h1,,h2/mymaster",
            "invalid Redis URL: a redis+sentinel:// URL lists at least one sentinel",
        ),
        (
            "redis+sentinel://h1/mymaster?password=x",
            "invalid Redis URL: unknown query parameter \"password\" (known: \
             sentinel_username, sentinel_password)",
        ),
        (
            "redis+sentinel://h1/mymaster?sentinel_password=%zz",
            "invalid Redis URL: a query value of the URL is not valid percent-encoded UTF-8",
        ),
        (
            "http://127.0.0.1:6379",
            "invalid Redis URL: expected redis://, rediss://, redis+sentinel:// or \
             rediss+sentinel://",
        ),
    ];
    for (url, expected) in cases {
        let err = RedisConnection::connect(url, RedisOptions::new())
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), expected, "{url}");
    }
}

/// The Redis variables: Sentinel URLs, replicas to wait for, the CA file; `Debug` shows no
/// password of a Sentinel URL, in its user part or its query.
#[test]
fn redis_variables_from_the_environment() {
    let url =
        "redis+sentinel://app:s3cret@10.0.0.1:26379,10.0.0.2/sessions/2?sentinel_password=t0p";
    let env = [
        ("CORE_API_AUTH_SESSIONS", url),
        ("CORE_API_AUTH_REDIS_WAIT_REPLICAS", "1"),
        ("CORE_API_AUTH_REDIS_TLS_CA_FILE", "/etc/redis/ca.pem"),
    ];
    let config = CoreAuthConfig::default()
        .with_lookup(|k| {
            env.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        })
        .unwrap();
    assert_eq!(
        config.sessions,
        SessionBackend::Redis(url.to_owned().into())
    );
    assert_eq!(
        format!("{:?}", config.sessions),
        "Redis(10.0.0.1:26379,10.0.0.2/sessions/2)"
    );
    assert!(!format!("{config:?}").contains("s3cret"));
    assert!(!format!("{config:?}").contains("t0p"));
    assert_eq!(config.redis_wait_replicas, 1);
    assert_eq!(
        config.redis_tls_ca_file.as_deref(),
        Some(std::path::Path::new("/etc/redis/ca.pem"))
    );
    let options = config.redis_options();
    assert_eq!(options.replicas_to_wait_for(), 1);

    let rediss = "rediss+sentinel://10.0.0.1/sessions";
    let config = CoreAuthConfig::default()
        .with_lookup(|k| (k == "CORE_API_AUTH_SESSIONS").then(|| rediss.to_owned()))
        .unwrap();
    assert_eq!(
        config.sessions,
        SessionBackend::Redis(rediss.to_owned().into())
    );
    assert_eq!(config.redis_wait_replicas, 0);
    assert_eq!(config.redis_tls_ca_file, None);

    for (var, value, expected) in [
        (
            "CORE_API_AUTH_REDIS_WAIT_REPLICAS",
            "one",
            ConfigError::InvalidCount {
                var: "CORE_API_AUTH_REDIS_WAIT_REPLICAS",
            },
        ),
        (
            "CORE_API_AUTH_SESSIONS",
            "sentinel://10.0.0.1/sessions",
            ConfigError::InvalidSessions,
        ),
    ] {
        let err = CoreAuthConfig::default()
            .with_lookup(|k| (k == var).then(|| value.to_owned()))
            .unwrap_err();
        assert_eq!(err, expected);
    }
    assert_eq!(
        ConfigError::InvalidSessions.to_string(),
        "CORE_API_AUTH_SESSIONS must be `memory` or a redis://, rediss://, redis+sentinel:// or \
         rediss+sentinel:// URL"
    );
}
