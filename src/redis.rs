//! The Redis connection the fleet features share (feature `redis`): the session store
//! ([`RedisSessionStore`](crate::session::RedisSessionStore)) and the fleet-wide login throttle.
//!
//! The client is [redis-rs](https://docs.rs/redis) 1.x, the most used and maintained Redis
//! crate: tokio support, `rediss://` over rustls, Lua scripts run as `EVALSHA` (loaded again by
//! itself when a restarted server lost them), and `aio::ConnectionManager`, one multiplexed
//! connection that reconnects by itself in the background. No RESP is written by hand.
//!
//! Every call carries a timeout ([`RedisOptions::timeout`], default 1 s): past it, or when the
//! server cannot be reached, the caller gets an "unavailable" error at once (a `503` with
//! `Retry-After` for a login), never a hanging request.
//!
//! ```no_run
//! use std::time::Duration;
//! use tower_jwt_login::redis::{RedisConnection, RedisOptions};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let options = RedisOptions::new().prefix("myapp:").timeout(Duration::from_millis(500));
//! let redis = RedisConnection::connect("redis://127.0.0.1:6379", options).await?;
//! assert_eq!(redis.prefix(), "myapp:");
//!
//! // Production: a primary with replicas under Sentinel, over TLS with a private CA, every
//! // refresh and logout acknowledged by a replica before it is answered.
//! let options = RedisOptions::new()
//!     .tls_root_ca_file("/etc/redis/ca.pem")
//!     .wait_replicas(1);
//! let redis = RedisConnection::connect(
//!     "rediss+sentinel://s1.internal:26379,s2.internal:26379,s3.internal:26379/sessions",
//!     options,
//! )
//! .await?;
//! println!("primary: {}", redis.primary_addr());
//! # Ok(()) }
//! ```
//!
//! # Servers
//!
//! - `redis://[user:password@]host[:port][/db]`: one server; `rediss://…` for TLS.
//! - `redis+sentinel://[user:password@]host[:port][,host[:port]…]/service[/db]`: the current
//!   primary of `service` (the sentinels' master name), found through the sentinels listed
//!   (port 26379 when left out); the user and password are the data nodes'. Query parameters
//!   `sentinel_username` and `sentinel_password` authenticate to the sentinels themselves.
//!   `rediss+sentinel://…` speaks TLS to the sentinels and to the data nodes. When the primary
//!   fails (a call finds it unreachable, or it answers `READONLY` because it was demoted), the
//!   connection asks the sentinels again and moves to the new primary, pub/sub included.
//! - Redis Cluster is refused at start-up ([`RedisSetupError::ClusterMode`]): the session
//!   scripts and the revocation channel need one primary. Sentinel is the supported
//!   high-availability set-up.
//!
//! TLS checks the server against the system's trust store, or only against the CA certificates
//! given with [`RedisOptions::tls_root_ca_pem`] / [`RedisOptions::tls_root_ca_file`]. The rustls
//! crypto provider is the one the app installed as the process default, or else *ring*'s.
//!
//! # Replicas
//!
//! Redis replicates asynchronously: a primary that fails right after a refresh may take the
//! rotation with it, and the replica promoted in its place would take the spent refresh token
//! again. [`RedisOptions::wait_replicas`] makes refreshes and logouts wait (Redis `WAIT`) until
//! that many replicas hold the write, and answer `503` when they do not within half the timeout.
//! See docs/fleet.md for the trade-off.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{IntoConnectionInfo, TlsCertificates, TlsMode};

use crate::error::SessionError;
use crate::throttle::{FleetCounter, FleetFuture, LoginThrottle, ThrottleScope, Throttled};

/// Settings of the Redis connection. Defaults: prefix `tjl:`, timeout 1 s, full re-read of the
/// revocation set every 30 s (besides the one after every reconnect), no wait for replicas, TLS
/// checked against the system's trust store.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    prefix: String,
    timeout: Duration,
    resync_interval: Duration,
    wait_replicas: u32,
    tls_root: Option<TlsRoot>,
}

/// The CA certificates `rediss://` trusts instead of the system's.
#[derive(Clone)]
enum TlsRoot {
    Pem(Arc<[u8]>),
    File(PathBuf),
}

impl fmt::Debug for TlsRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsRoot::Pem(pem) => write!(f, "Pem({} bytes)", pem.len()),
            TlsRoot::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            prefix: "tjl:".to_owned(),
            timeout: Duration::from_secs(1),
            resync_interval: Duration::from_secs(30),
            wait_replicas: 0,
            tls_root: None,
        }
    }
}

impl RedisOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The prefix of every key and channel the crate uses (default `tjl:`); give each app
    /// sharing a Redis its own (`CORE_API_AUTH_REDIS_PREFIX`).
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The longest any Redis call may take, connecting included (default 1 s;
    /// `CORE_API_AUTH_REDIS_TIMEOUT`).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How often the revocation set is re-read in full even without a reconnect (default 30 s):
    /// a belt besides the pub/sub sync.
    #[must_use]
    pub fn resync_interval(mut self, interval: Duration) -> Self {
        self.resync_interval = interval;
        self
    }

    /// Durable refreshes and logouts for a primary with replicas (default 0: off;
    /// `CORE_API_AUTH_REDIS_WAIT_REPLICAS`). After the script of a refresh or a logout, Redis
    /// `WAIT`s until `replicas` replicas acknowledged the write, for at most half the
    /// [timeout](Self::timeout). Fewer acknowledgements fail the call as unavailable: the
    /// refresh answers `503` and hands out no new token, the logout answers `503` (it took effect
    /// on the primary and on every instance; retrying it is harmless). Pair it with a refresh
    /// rotation grace of a few seconds, so that a client retrying a refresh answered `503` gets
    /// a successor instead of ending its session. Writes and waits go over a connection of their
    /// own, so a slow replica does not hold up logins. See docs/fleet.md.
    #[must_use]
    pub fn wait_replicas(mut self, replicas: u32) -> Self {
        self.wait_replicas = replicas;
        self
    }

    /// Trust only these CA certificates (PEM, one or more) for `rediss://`, instead of the
    /// system's trust store: for a Redis whose certificate a private CA signed. Checked when
    /// connecting ([`RedisSetupError::InvalidTls`] without a certificate in it, or with a URL
    /// that is not TLS).
    #[must_use]
    pub fn tls_root_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_root = Some(TlsRoot::Pem(Arc::from(pem.into())));
        self
    }

    /// [`tls_root_ca_pem`](Self::tls_root_ca_pem) read from a file when connecting
    /// (`CORE_API_AUTH_REDIS_TLS_CA_FILE`).
    #[must_use]
    pub fn tls_root_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls_root = Some(TlsRoot::File(path.into()));
        self
    }

    /// The configured prefix.
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    /// The configured timeout.
    pub fn call_timeout(&self) -> Duration {
        self.timeout
    }

    /// The configured number of replicas refreshes and logouts wait for.
    pub fn replicas_to_wait_for(&self) -> u32 {
        self.wait_replicas
    }

    pub(crate) fn resync(&self) -> Duration {
        self.resync_interval
    }

    /// How long a `WAIT` may block: half the call timeout, so that script and wait fit in it.
    fn wait_timeout(&self) -> Duration {
        (self.timeout / 2).max(Duration::from_millis(1))
    }

    /// The CA certificates to trust, read and checked.
    fn tls_certificates(&self) -> Result<Option<TlsCertificates>, RedisSetupError> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let pem = match &self.tls_root {
            None => return Ok(None),
            Some(TlsRoot::Pem(pem)) => pem.to_vec(),
            Some(TlsRoot::File(path)) => std::fs::read(path).map_err(|e| {
                RedisSetupError::InvalidTls(format!("cannot read {}: {e}", path.display()))
            })?,
        };
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| RedisSetupError::InvalidTls(format!("CA certificates: {e}")))?;
        if certs.is_empty() {
            return Err(RedisSetupError::InvalidTls(
                "no certificate in the CA PEM".to_owned(),
            ));
        }
        Ok(Some(TlsCertificates {
            client_tls: None,
            root_cert: Some(pem),
        }))
    }
}

/// A shared, self-reconnecting connection to one Redis primary, with the key prefix and the
/// call timeout. Behind Sentinel it follows the primary across failovers. Cheap to clone.
#[derive(Clone)]
pub struct RedisConnection {
    inner: Arc<Inner>,
}

struct Inner {
    /// The connections to the current primary; replaced when Sentinel names a new one.
    link: ArcSwap<Link>,
    /// How to find the primary again, with Sentinel.
    sentinel: Option<Sentinel>,
    options: RedisOptions,
    /// Until when (ms after `epoch`) calls fail at once because the server was just found
    /// unreachable: during an outage a login costs no reconnect attempt of its own.
    down_until: AtomicU64,
    epoch: Instant,
    /// Replicas acknowledged fewer writes than asked (logged once per episode).
    replicas_short: AtomicBool,
}

/// The connections to one server.
struct Link {
    client: redis::Client,
    manager: ConnectionManager,
    /// With [`RedisOptions::wait_replicas`]: the connection of the writes followed by `WAIT`. A
    /// `WAIT` blocks the connection it is sent on, so these do not share the main one.
    durable: Option<ConnectionManager>,
}

impl Link {
    async fn open(client: redis::Client, options: &RedisOptions) -> redis::RedisResult<Link> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.timeout))
            .set_response_timeout(Some(options.timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(2));
        let manager = client
            .get_connection_manager_with_config(config.clone())
            .await?;
        let durable = if options.wait_replicas > 0 {
            Some(client.get_connection_manager_with_config(config).await?)
        } else {
            None
        };
        Ok(Link {
            client,
            manager,
            durable,
        })
    }
}

/// The sentinels of a `redis+sentinel://` URL.
struct Sentinel {
    client: tokio::sync::Mutex<SentinelClient>,
    /// A lookup of the primary is under way.
    resolving: AtomicBool,
}

/// How long calls fail fast after a connection failure; the manager reconnects meanwhile.
const FAIL_FAST: Duration = Duration::from_millis(500);

/// The sentinel port when a `redis+sentinel://` URL leaves it out.
const SENTINEL_PORT: u16 = 26379;

/// Why [`RedisConnection::connect`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum RedisSetupError {
    /// The URL is not a Redis URL (`redis://…`, `rediss://…`, `redis+sentinel://…` or
    /// `rediss+sentinel://…`).
    InvalidUrl(String),
    /// The server did not answer in time, or refused the connection; or no sentinel named a
    /// primary.
    Unreachable(String),
    /// The CA certificates given cannot be read or hold no certificate, or were given for a URL
    /// that is not TLS.
    InvalidTls(String),
    /// The server runs in cluster mode, which the crate does not support: Sentinel is the
    /// supported high-availability set-up.
    ClusterMode,
}

impl fmt::Display for RedisSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisSetupError::InvalidUrl(why) => write!(f, "invalid Redis URL: {why}"),
            RedisSetupError::Unreachable(why) => write!(f, "Redis unreachable: {why}"),
            RedisSetupError::InvalidTls(why) => write!(f, "Redis TLS: {why}"),
            RedisSetupError::ClusterMode => f.write_str(
                "the Redis server runs in cluster mode (cluster_enabled:1), which is not \
                 supported: sessions need one primary. For high availability run a primary with \
                 replicas under Redis Sentinel and connect with \
                 redis+sentinel://sentinel1:26379,sentinel2:26379,sentinel3:26379/<master name>",
            ),
        }
    }
}

impl std::error::Error for RedisSetupError {}

/// Where the URL says to connect.
enum Target {
    Server(redis::Client),
    Sentinel(SentinelClient),
}

impl Target {
    /// The target of `url`, and whether it speaks TLS.
    fn parse(
        url: &str,
        certs: Option<&TlsCertificates>,
    ) -> Result<(Target, bool), RedisSetupError> {
        let invalid = |e: redis::RedisError| RedisSetupError::InvalidUrl(e.to_string());
        if let Some(rest) = url.strip_prefix("redis+sentinel://") {
            return Ok((
                Target::Sentinel(sentinel_client(rest, false, certs)?),
                false,
            ));
        }
        if let Some(rest) = url.strip_prefix("rediss+sentinel://") {
            return Ok((Target::Sentinel(sentinel_client(rest, true, certs)?), true));
        }
        let tls = url.starts_with("rediss://");
        if !(tls || url.starts_with("redis://")) {
            return Err(RedisSetupError::InvalidUrl(
                "expected redis://, rediss://, redis+sentinel:// or rediss+sentinel://".to_owned(),
            ));
        }
        let client = match certs {
            Some(certs) if tls => redis::Client::build_with_tls(url, certs.clone()),
            _ => redis::Client::open(url),
        }
        .map_err(invalid)?;
        Ok((Target::Server(client), tls))
    }
}

/// The sentinel client of a `redis+sentinel://` URL without its scheme:
/// `[user:password@]host[:port][,host[:port]…]/service[/db][?sentinel_username=…&sentinel_password=…]`.
fn sentinel_client(
    rest: &str,
    tls: bool,
    certs: Option<&TlsCertificates>,
) -> Result<SentinelClient, RedisSetupError> {
    let invalid = |why: &str| RedisSetupError::InvalidUrl(why.to_owned());
    let redis_invalid = |e: redis::RedisError| RedisSetupError::InvalidUrl(e.to_string());
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    };
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    let service = segments.next().ok_or_else(|| {
        invalid(
            "a redis+sentinel:// URL names the sentinels' master as its path: \
             redis+sentinel://host1:26379,host2:26379/mymaster",
        )
    })?;
    let db = segments.next().unwrap_or("0");
    if segments.next().is_some() {
        return Err(invalid(
            "a redis+sentinel:// URL's path is /<master name>[/<db>]",
        ));
    }
    let scheme = if tls { "rediss" } else { "redis" };
    // The data nodes' user, password and database, read by redis-rs' own URL parser (which
    // decodes percent-escapes); the host is a placeholder.
    let userinfo = userinfo.map(|u| format!("{u}@")).unwrap_or_default();
    let node = format!("{scheme}://{userinfo}sentinel-primary/{db}")
        .as_str()
        .into_connection_info()
        .map_err(redis_invalid)?;
    let node = node.redis_settings();
    let mut sentinels = Vec::new();
    for host in hosts.split(',').map(str::trim) {
        if host.is_empty() {
            return Err(invalid(
                "a redis+sentinel:// URL lists at least one sentinel",
            ));
        }
        let has_port = match host.strip_prefix('[') {
            Some(v6) => v6.contains("]:"),
            None => host.contains(':'),
        };
        let address = if has_port {
            format!("{scheme}://{host}")
        } else {
            format!("{scheme}://{host}:{SENTINEL_PORT}")
        };
        let info = address
            .as_str()
            .into_connection_info()
            .map_err(redis_invalid)?;
        sentinels.push(info.addr().clone());
    }
    let mut builder = SentinelClientBuilder::new(sentinels, service, SentinelServerType::Master)
        .map_err(redis_invalid)?
        .set_client_to_redis_db(node.db());
    if let Some(username) = node.username() {
        builder = builder.set_client_to_redis_username(username);
    }
    if let Some(password) = node.password() {
        builder = builder.set_client_to_redis_password(password);
    }
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value).ok_or_else(|| {
            invalid("a query value of the URL is not valid percent-encoded UTF-8")
        })?;
        builder = match key {
            "sentinel_username" => builder.set_client_to_sentinel_username(value),
            "sentinel_password" => builder.set_client_to_sentinel_password(value),
            _ => {
                return Err(RedisSetupError::InvalidUrl(format!(
                    "unknown query parameter {key:?} (known: sentinel_username, sentinel_password)"
                )));
            }
        };
    }
    if tls {
        builder = builder
            .set_client_to_redis_tls_mode(TlsMode::Secure)
            .set_client_to_sentinel_tls_mode(TlsMode::Secure);
        if let Some(certs) = certs {
            builder = builder
                .set_client_to_redis_certificates(certs.clone())
                .set_client_to_sentinel_certificates(certs.clone());
        }
    }
    builder.build().map_err(redis_invalid)
}

/// `%XX` escapes decoded; `None` for a bad escape or bytes that are not UTF-8.
fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = value.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `fut` within `timeout`; a timeout is a redis-rs I/O error like any other.
async fn within<T>(
    timeout: Duration,
    fut: impl Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out").into()),
    }
}

impl RedisConnection {
    /// Connects to `url` (see the module docs for the forms: one server, `rediss://` for TLS,
    /// `redis+sentinel://` for the primary the sentinels name). Fails when the server does not
    /// answer within the timeout (a fleet member should not start without its shared state), and
    /// refuses a server in cluster mode. Once connected, losing the server is survived (see the
    /// module docs).
    pub async fn connect(url: &str, options: RedisOptions) -> Result<Self, RedisSetupError> {
        let certs = options.tls_certificates()?;
        let (target, tls) = Target::parse(url, certs.as_ref())?;
        if certs.is_some() && !tls {
            return Err(RedisSetupError::InvalidTls(
                "CA certificates were given for a URL without TLS: use rediss:// or \
                 rediss+sentinel://"
                    .to_owned(),
            ));
        }
        if tls {
            install_rustls_provider();
        }
        let unreachable = |e: redis::RedisError| RedisSetupError::Unreachable(e.to_string());
        let (client, sentinel) = match target {
            Target::Server(client) => (client, None),
            Target::Sentinel(mut sentinel) => {
                let client = within(options.timeout, sentinel.async_get_client())
                    .await
                    .map_err(|e| {
                        RedisSetupError::Unreachable(format!("no primary from the sentinels: {e}"))
                    })?;
                (client, Some(sentinel))
            }
        };
        let link = within(options.timeout, Link::open(client, &options))
            .await
            .map_err(unreachable)?;
        refuse_cluster(&link, options.timeout).await?;
        Ok(RedisConnection {
            inner: Arc::new(Inner {
                link: ArcSwap::from_pointee(link),
                sentinel: sentinel.map(|client| Sentinel {
                    client: tokio::sync::Mutex::new(client),
                    resolving: AtomicBool::new(false),
                }),
                options,
                down_until: AtomicU64::new(0),
                epoch: Instant::now(),
                replicas_short: AtomicBool::new(false),
            }),
        })
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.options.prefix
    }

    /// The call timeout.
    pub fn timeout(&self) -> Duration {
        self.inner.options.timeout
    }

    /// The address (`host:port`) of the server calls go to: with Sentinel, the primary as last
    /// found.
    pub fn primary_addr(&self) -> String {
        self.inner
            .link
            .load()
            .client
            .get_connection_info()
            .addr()
            .to_string()
    }

    pub(crate) fn options(&self) -> &RedisOptions {
        &self.inner.options
    }

    /// A client for the current primary (with Sentinel, as last found).
    pub(crate) fn client(&self) -> redis::Client {
        self.inner.link.load().client.clone()
    }

    /// A pub/sub connection to the current primary, within the timeout. A failure to connect
    /// counts as the primary lost: with Sentinel it is looked up again.
    pub(crate) async fn pubsub(&self) -> redis::RedisResult<redis::aio::PubSub> {
        let client = self.client();
        let result = within(self.timeout(), client.get_async_pubsub()).await;
        if let Err(error) = &result
            && matches!(classify(error), SessionError::Unavailable(_))
        {
            self.primary_lost();
        }
        result
    }

    /// Runs one call on a clone of the managed connection, bounded by the timeout.
    pub(crate) async fn run<T, F, Fut>(&self, call: F) -> Result<T, SessionError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let con = self.inner.link.load().manager.clone();
        self.bounded(call(con)).await
    }

    /// Runs one call that must survive a failover: like [`run`](Self::run), but with
    /// [`RedisOptions::wait_replicas`] every command the call sends is followed by a `WAIT` in
    /// the same round trip, and fewer acknowledgements than asked make the call unavailable
    /// (its writes stay on the primary). Without replicas to wait for, exactly `run`.
    pub(crate) async fn run_durable<T, F, Fut>(&self, call: F) -> Result<T, SessionError>
    where
        F: FnOnce(DurableConnection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let options = &self.inner.options;
        let con = {
            let link = self.inner.link.load();
            link.durable.clone().unwrap_or_else(|| link.manager.clone())
        };
        let acked = Arc::new(AtomicI64::new(i64::MAX));
        let durable = DurableConnection {
            con,
            replicas: options.wait_replicas,
            wait_ms: u64::try_from(options.wait_timeout().as_millis()).unwrap_or(u64::MAX),
            acked: acked.clone(),
        };
        let value = self.bounded(call(durable)).await?;
        let wanted = i64::from(options.wait_replicas);
        let acked = acked.load(Ordering::Acquire);
        if acked < wanted {
            if !self.inner.replicas_short.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    acked,
                    wanted,
                    "Redis replicas did not acknowledge a refresh or logout in time: answering 503 until they do"
                );
            }
            return Err(SessionError::Unavailable(format!(
                "{acked} of {wanted} replicas acknowledged the write within {:?}",
                options.wait_timeout()
            )));
        }
        if options.wait_replicas > 0 && self.inner.replicas_short.swap(false, Ordering::Relaxed) {
            tracing::info!("Redis replicas acknowledge writes again");
        }
        Ok(value)
    }

    /// `call` within the timeout, failing fast while the server was just found unreachable.
    async fn bounded<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, SessionError> {
        let now = self.millis();
        if now < self.inner.down_until.load(Ordering::Relaxed) {
            return Err(SessionError::Unavailable(
                "unreachable a moment ago; reconnecting".to_owned(),
            ));
        }
        let outcome = match tokio::time::timeout(self.inner.options.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(classify(&error)),
            Err(_) => Err(SessionError::Unavailable("timed out".to_owned())),
        };
        if let Err(error) = &outcome {
            crate::metrics::redis_failed(matches!(error, SessionError::Unavailable(_)));
        }
        if let Err(SessionError::Unavailable(_)) = &outcome {
            let until = self.millis().saturating_add(FAIL_FAST.as_millis() as u64);
            self.inner.down_until.fetch_max(until, Ordering::Relaxed);
            self.primary_lost();
        }
        outcome
    }

    /// The primary failed a call: with Sentinel, look it up again in the background (one lookup
    /// at a time; the next failure after it starts another).
    fn primary_lost(&self) {
        let Some(sentinel) = &self.inner.sentinel else {
            return;
        };
        if sentinel.resolving.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            sentinel.resolving.store(false, Ordering::Release);
            return;
        };
        let this = self.clone();
        runtime.spawn(async move {
            this.follow_primary().await;
            if let Some(sentinel) = &this.inner.sentinel {
                sentinel.resolving.store(false, Ordering::Release);
            }
        });
    }

    /// Asks the sentinels for the primary; when they name another server than the current one,
    /// connects to it and sends every later call there.
    async fn follow_primary(&self) {
        let Some(sentinel) = &self.inner.sentinel else {
            return;
        };
        let timeout = self.inner.options.timeout;
        let found = within(timeout, async {
            sentinel.client.lock().await.async_get_client().await
        })
        .await;
        let client = match found {
            Ok(client) => client,
            Err(error) => {
                tracing::debug!(%error, "no Redis primary from the sentinels yet");
                return;
            }
        };
        let addr = client.get_connection_info().addr().clone();
        if self.inner.link.load().client.get_connection_info().addr() == &addr {
            return; // Still the primary: its connection manager reconnects by itself.
        }
        match within(timeout, Link::open(client, &self.inner.options)).await {
            Ok(link) => {
                self.inner.link.store(Arc::new(link));
                self.inner.down_until.store(0, Ordering::Relaxed);
                tracing::info!(primary = %addr, "following the new Redis primary");
            }
            Err(error) => {
                tracing::debug!(primary = %addr, %error, "cannot reach the new Redis primary yet");
            }
        }
    }

    fn millis(&self) -> u64 {
        u64::try_from(self.inner.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// Refuses a server in cluster mode. A server that does not let this user run `INFO` is taken
/// as it is.
async fn refuse_cluster(link: &Link, timeout: Duration) -> Result<(), RedisSetupError> {
    let mut con = link.manager.clone();
    let info = within(timeout, async {
        redis::cmd("INFO")
            .arg("cluster")
            .query_async::<String>(&mut con)
            .await
    })
    .await;
    match info {
        Ok(info) if info.lines().any(|l| l.trim() == "cluster_enabled:1") => {
            Err(RedisSetupError::ClusterMode)
        }
        Ok(_) => Ok(()),
        Err(error) => match classify(&error) {
            SessionError::Unavailable(why) => Err(RedisSetupError::Unreachable(why)),
            _ => {
                tracing::warn!(%error, "cannot tell whether Redis runs in cluster mode (INFO refused)");
                Ok(())
            }
        },
    }
}

/// The connection [`RedisConnection::run_durable`] hands its call: every command goes out with
/// `WAIT replicas timeout` behind it in one round trip, on the same connection (so the `WAIT`
/// covers exactly that command's writes); the fewest acknowledgements seen are recorded.
/// Pipelines are sent as they are.
pub(crate) struct DurableConnection {
    con: ConnectionManager,
    replicas: u32,
    wait_ms: u64,
    acked: Arc<AtomicI64>,
}

impl redis::aio::ConnectionLike for DurableConnection {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        Box::pin(async move {
            if self.replicas == 0 {
                return self.con.req_packed_command(cmd).await;
            }
            let mut pipe = redis::pipe();
            pipe.add_command(cmd.clone())
                .cmd("WAIT")
                .arg(self.replicas)
                .arg(self.wait_ms);
            let (value, acked): (redis::Value, i64) = pipe.query_async(&mut self.con).await?;
            self.acked.fetch_min(acked, Ordering::AcqRel);
            Ok(value)
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        self.con.req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.con.get_db()
    }
}

/// Connection trouble is `Unavailable` (a 503, retried later); so is a primary that cannot take
/// the write right now (demoted to replica, `READONLY`; no replicas for `min-replicas-to-write`,
/// `NOREPLICAS`; loading, `MASTERDOWN`, `TRYAGAIN`). Anything else is a store error.
pub(crate) fn classify(error: &redis::RedisError) -> SessionError {
    use redis::ServerErrorKind as S;
    if error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_unrecoverable_error()
        || matches!(
            error.kind(),
            redis::ErrorKind::Io
                | redis::ErrorKind::Server(
                    S::BusyLoading | S::ReadOnly | S::MasterDown | S::TryAgain
                )
        )
        || error.code() == Some("NOREPLICAS")
    {
        SessionError::Unavailable(error.to_string())
    } else {
        SessionError::Store(error.to_string())
    }
}

/// `rediss://` needs a rustls crypto provider for the process. The app's, when it installed one
/// (e.g. aws-lc-rs for post-quantum key exchange); otherwise the crate's, *ring*. Installing
/// fails only when the app installed one meanwhile, which is as good.
fn install_rustls_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = crate::tls::ring_provider().install_default();
    }
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection")
            .field("primary", &self.primary_addr())
            .field("sentinel", &self.inner.sentinel.is_some())
            .field("prefix", &self.inner.options.prefix)
            .field("timeout", &self.inner.options.timeout)
            .field("wait_replicas", &self.inner.options.wait_replicas)
            .finish_non_exhaustive()
    }
}

/// The redis-rs crate this module is built on, for apps that want their own connections with
/// the same version.
pub use ::redis as client;

/// One login attempt, counted for the fleet. KEYS: the counters, then (with an address) the
/// "known address" key. ARGV: n, window ms, then per counter its limit and `a` for the account
/// ceiling (which a known address skips). Returns `{0, 0}` (charged) or `{i, ms}` (refused by
/// counter `i`, whose window ends in `ms`). Refused attempts are not counted; a counter's window
/// opens with its first failure, as in the local throttle.
const LUA_THROTTLE_BEGIN: &str = r#"
local n = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local known = false
if #KEYS > n then known = redis.call('EXISTS', KEYS[n + 1]) == 1 end
local worst, wait = 0, -1
for i = 1, n do
  local limit = tonumber(ARGV[1 + 2 * i])
  if not (known and ARGV[2 + 2 * i] == 'a') then
    local count = tonumber(redis.call('GET', KEYS[i]) or '0')
    if count >= limit then
      local ttl = redis.call('PTTL', KEYS[i])
      if ttl > wait then wait = ttl; worst = i end
    end
  end
end
if worst > 0 then return {worst, wait} end
for i = 1, n do
  redis.call('INCR', KEYS[i])
  if redis.call('PTTL', KEYS[i]) < 0 then redis.call('PEXPIRE', KEYS[i], window) end
end
return {0, 0}
"#;

/// The end of an attempt that was no failure. KEYS: the counters, then (with an address) the
/// pair counter and the "known address" key. ARGV: n, `ok` (a success) or `refund`, known-address
/// lifetime ms.
const LUA_THROTTLE_SETTLE: &str = r#"
local n = tonumber(ARGV[1])
for i = 1, n do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
end
if ARGV[2] == 'ok' and #KEYS > n then
  redis.call('DEL', KEYS[n + 1])
  if tonumber(ARGV[3]) > 0 then redis.call('SET', KEYS[n + 2], '1', 'PX', ARGV[3]) end
end
return 1
"#;

impl LoginThrottle {
    /// Counts in Redis, so that the limits hold for a fleet of instances as a whole (10
    /// failures spread over two instances are 10): one script per attempt increments every
    /// counter the attempt charges, with the same limits, windows and `Retry-After` as the
    /// local counting. Account names are stored as HMAC-SHA-256 of `account_key` (give every
    /// instance the same secret; never a username in Redis). When Redis cannot be reached the
    /// throttle falls back to counting locally (logged once per outage) and returns to Redis by
    /// itself.
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    #[must_use]
    pub fn fleet(self, redis: RedisConnection, account_key: &[u8]) -> Self {
        self.counting_in(Arc::new(RedisFleetCounter::new(redis, account_key)))
    }
}

/// The fleet-wide counters of a [`LoginThrottle`] in Redis (see [`LoginThrottle::fleet`]).
///
/// Keys, with the prefix `P`: `P{throttle}:pair:<account>:<address>`, `…:addr:<address>`,
/// `…:net56:<hex>`, `…:net48:<hex>`, `…:account:<account>` (each expiring with its window) and
/// `…:known:<account>:<address>` (expiring with the known-address lifetime); `<account>` is a
/// keyed hash, IPv6 addresses are their /64. All share the hash tag `{throttle}`.
struct RedisFleetCounter {
    redis: RedisConnection,
    base: String,
    account_key: zeroize::Zeroizing<Vec<u8>>,
    begin: redis::Script,
    settle: redis::Script,
    /// Counting locally because Redis failed (logged once per outage).
    degraded: std::sync::atomic::AtomicBool,
}

impl RedisFleetCounter {
    fn new(redis: RedisConnection, account_key: &[u8]) -> Self {
        let base = format!("{}{{throttle}}:", redis.prefix());
        RedisFleetCounter {
            redis,
            base,
            account_key: zeroize::Zeroizing::new(account_key.to_vec()),
            begin: redis::Script::new(LUA_THROTTLE_BEGIN),
            settle: redis::Script::new(LUA_THROTTLE_SETTLE),
            degraded: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The account's name in Redis: 128 bits of HMAC-SHA-256 over its lowercase form.
    fn account(&self, account: &str) -> String {
        use hmac::{Hmac, Mac};
        use std::fmt::Write;
        let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(&self.account_key) {
            Ok(mac) => mac,
            Err(_) => return String::new(), // HMAC takes keys of any length.
        };
        // Domain separation: the key may serve other purposes too.
        mac.update(b"tower-jwt-login throttle account\0");
        mac.update(account.to_lowercase().as_bytes());
        let tag = mac.finalize().into_bytes();
        let mut out = String::with_capacity(32);
        for b in tag.iter().take(16) {
            let _ = write!(out, "{b:02x}");
        }
        out
    }

    fn outcome<T>(&self, result: Result<T, SessionError>) -> Option<T> {
        use std::sync::atomic::Ordering;
        match result {
            Ok(value) => {
                if self.degraded.swap(false, Ordering::Relaxed) {
                    tracing::info!("login throttle counts in Redis again");
                }
                Some(value)
            }
            Err(error) => {
                if !self.degraded.swap(true, Ordering::Relaxed) {
                    tracing::warn!(%error, "login throttle: Redis unavailable, counting locally until it is back");
                }
                None
            }
        }
    }

    /// `None` when Redis failed: the caller counts locally.
    async fn begin(
        &self,
        throttle: &LoginThrottle,
        account: &str,
        addr: Option<std::net::IpAddr>,
    ) -> Option<Result<(), Throttled>> {
        let account = self.account(account);
        let keys = throttle.shared_keys(&account, addr);
        let config = throttle.config();
        let mut call = self.begin.prepare_invoke();
        for (key, _, _) in &keys {
            call.key(format!("{}{key}", self.base));
        }
        if let Some(ip) = addr {
            call.key(format!("{}known:{account}:{ip}", self.base));
        }
        call.arg(keys.len())
            .arg(u64::try_from(config.window().as_millis()).unwrap_or(u64::MAX));
        for (_, limit, scope) in &keys {
            let account_scope = *scope == ThrottleScope::Account;
            call.arg(*limit).arg(if account_scope { "a" } else { "-" });
        }
        let result: Result<(usize, i64), _> = self
            .redis
            .run(|mut con| async move { call.invoke_async(&mut con).await })
            .await;
        let (refused_by, wait_ms) = self.outcome(result)?;
        if refused_by == 0 {
            return Some(Ok(()));
        }
        let scope = keys
            .get(refused_by.saturating_sub(1))
            .map_or(ThrottleScope::Account, |(_, _, s)| *s);
        let wait = Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0));
        Some(Err(LoginThrottle::refusal(scope, wait)))
    }

    /// `false` when Redis failed: the caller settles locally.
    async fn settle(
        &self,
        throttle: &LoginThrottle,
        account: &str,
        addr: Option<std::net::IpAddr>,
        success: bool,
    ) -> bool {
        let account = self.account(account);
        let keys = throttle.shared_keys(&account, addr);
        let mut call = self.settle.prepare_invoke();
        for (key, _, _) in &keys {
            call.key(format!("{}{key}", self.base));
        }
        if let Some(ip) = addr {
            call.key(format!("{}pair:{account}:{ip}", self.base))
                .key(format!("{}known:{account}:{ip}", self.base));
        }
        let known_ttl = throttle.config().known_address_ttl_value();
        call.arg(keys.len())
            .arg(if success { "ok" } else { "refund" })
            .arg(u64::try_from(known_ttl.as_millis()).unwrap_or(u64::MAX));
        let result = self
            .redis
            .run(|mut con| async move { call.invoke_async::<()>(&mut con).await })
            .await;
        self.outcome(result).is_some()
    }
}

impl FleetCounter for RedisFleetCounter {
    fn begin<'a>(
        &'a self,
        throttle: &'a LoginThrottle,
        account: &'a str,
        addr: Option<std::net::IpAddr>,
    ) -> FleetFuture<'a, Option<Result<(), Throttled>>> {
        Box::pin(RedisFleetCounter::begin(self, throttle, account, addr))
    }

    fn settle<'a>(
        &'a self,
        throttle: &'a LoginThrottle,
        account: &'a str,
        addr: Option<std::net::IpAddr>,
        success: bool,
    ) -> FleetFuture<'a, bool> {
        Box::pin(RedisFleetCounter::settle(
            self, throttle, account, addr, success,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::{RedisSetupError, Target, percent_decode};

    #[test]
    fn percent_escapes_are_decoded() {
        assert_eq!(percent_decode("a%40b%26c%2Fd").as_deref(), Some("a@b&c/d"));
        assert_eq!(percent_decode("plain").as_deref(), Some("plain"));
        assert_eq!(percent_decode("%C3%A9").as_deref(), Some("é"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%FF"), None);
    }

    #[test]
    fn sentinel_urls_parse() {
        for (url, tls) in [
            ("redis+sentinel://10.0.0.1/mymaster", false),
            (
                "redis+sentinel://u:p%40ss@10.0.0.1:26379,[::1],h3:1/m/3?sentinel_username=s&sentinel_password=x%26y",
                false,
            ),
            ("rediss+sentinel://h1,h2/m/", true),
        ] {
            let parsed = Target::parse(url, None).map_err(|e| e.to_string());
            assert!(
                matches!(parsed, Ok((Target::Sentinel(_), t)) if t == tls),
                "{url}: {:?}",
                parsed.err()
            );
        }
        assert!(matches!(
            Target::parse("redis+sentinel://h1/m/notanumber", None),
            Err(RedisSetupError::InvalidUrl(_))
        ));
        assert!(matches!(
            Target::parse("rediss://h1:6380", None),
            Ok((Target::Server(_), true))
        ));
    }
}
