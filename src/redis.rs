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
//! # Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::session::SessionError;

/// Settings of the Redis connection. Defaults: prefix `tjl:`, timeout 1 s, full re-read of the
/// revocation set every 30 s (besides the one after every reconnect).
#[derive(Debug, Clone)]
pub struct RedisOptions {
    prefix: String,
    timeout: Duration,
    resync_interval: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            prefix: "tjl:".to_owned(),
            timeout: Duration::from_secs(1),
            resync_interval: Duration::from_secs(30),
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
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The longest any Redis call may take, connecting included (default 1 s;
    /// `CORE_API_AUTH_REDIS_TIMEOUT`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How often the revocation set is re-read in full even without a reconnect (default 30 s):
    /// a belt besides the pub/sub sync.
    pub fn resync_interval(mut self, interval: Duration) -> Self {
        self.resync_interval = interval;
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

    pub(crate) fn resync(&self) -> Duration {
        self.resync_interval
    }
}

/// A shared, self-reconnecting connection to one Redis, with the key prefix and the call
/// timeout. Cheap to clone.
#[derive(Clone)]
pub struct RedisConnection {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    manager: ConnectionManager,
    options: RedisOptions,
    /// Until when (ms after `epoch`) calls fail at once because the server was just found
    /// unreachable: during an outage a login costs no reconnect attempt of its own.
    down_until: std::sync::atomic::AtomicU64,
    epoch: std::time::Instant,
}

/// How long calls fail fast after a connection failure; the manager reconnects meanwhile.
const FAIL_FAST: Duration = Duration::from_millis(500);

/// Why [`RedisConnection::connect`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum RedisSetupError {
    /// The URL is not a Redis URL (`redis://…` or `rediss://…`).
    InvalidUrl(String),
    /// The server did not answer in time, or refused the connection.
    Unreachable(String),
}

impl fmt::Display for RedisSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisSetupError::InvalidUrl(why) => write!(f, "invalid Redis URL: {why}"),
            RedisSetupError::Unreachable(why) => write!(f, "Redis unreachable: {why}"),
        }
    }
}

impl std::error::Error for RedisSetupError {}

impl RedisConnection {
    /// Connects to `url` (`redis://[user:password@]host[:port][/db]` or `rediss://…` for TLS,
    /// checked against the system's trust store). Fails when the server does not answer within
    /// the timeout: a fleet member should not start without its shared state. Once connected,
    /// losing the server is survived (see the module docs).
    pub async fn connect(url: &str, options: RedisOptions) -> Result<Self, RedisSetupError> {
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(RedisSetupError::InvalidUrl(
                "expected redis:// or rediss://".to_owned(),
            ));
        }
        #[cfg(feature = "redis")]
        install_rustls_provider();
        let client =
            redis::Client::open(url).map_err(|e| RedisSetupError::InvalidUrl(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.timeout))
            .set_response_timeout(Some(options.timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(2));
        let manager = tokio::time::timeout(
            options.timeout,
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| RedisSetupError::Unreachable("timed out".to_owned()))?
        .map_err(|e| RedisSetupError::Unreachable(e.to_string()))?;
        Ok(RedisConnection {
            inner: Arc::new(Inner {
                client,
                manager,
                options,
                down_until: std::sync::atomic::AtomicU64::new(0),
                epoch: std::time::Instant::now(),
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

    pub(crate) fn options(&self) -> &RedisOptions {
        &self.inner.options
    }

    pub(crate) fn client(&self) -> &redis::Client {
        &self.inner.client
    }

    /// Runs one call on a clone of the managed connection, bounded by the timeout.
    pub(crate) async fn run<T, F, Fut>(&self, call: F) -> Result<T, SessionError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        use std::sync::atomic::Ordering;
        let now = self.millis();
        if now < self.inner.down_until.load(Ordering::Relaxed) {
            return Err(SessionError::Unavailable(
                "unreachable a moment ago; reconnecting".to_owned(),
            ));
        }
        let con = self.inner.manager.clone();
        let outcome = match tokio::time::timeout(self.inner.options.timeout, call(con)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(classify(&error)),
            Err(_) => Err(SessionError::Unavailable("timed out".to_owned())),
        };
        if let Err(SessionError::Unavailable(_)) = &outcome {
            let until = self.millis().saturating_add(FAIL_FAST.as_millis() as u64);
            self.inner.down_until.fetch_max(until, Ordering::Relaxed);
        }
        outcome
    }

    fn millis(&self) -> u64 {
        u64::try_from(self.inner.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// Connection trouble is `Unavailable` (a 503, retried later); anything else is a store error.
pub(crate) fn classify(error: &redis::RedisError) -> SessionError {
    if error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_unrecoverable_error()
        || matches!(
            error.kind(),
            redis::ErrorKind::Io | redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading)
        )
    {
        SessionError::Unavailable(error.to_string())
    } else {
        SessionError::Store(error.to_string())
    }
}

/// `rediss://` needs a rustls crypto provider; the crate's is ring. Installing fails only when
/// the app installed one already, which is as good.
fn install_rustls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection")
            .field("prefix", &self.inner.options.prefix)
            .field("timeout", &self.inner.options.timeout)
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

/// The fleet-wide counters of a [`LoginThrottle`](crate::throttle::LoginThrottle) (see
/// [`LoginThrottle::fleet`](crate::throttle::LoginThrottle::fleet)).
///
/// Keys, with the prefix `P`: `P{throttle}:pair:<account>:<address>`, `…:addr:<address>`,
/// `…:net56:<hex>`, `…:net48:<hex>`, `…:account:<account>` (each expiring with its window) and
/// `…:known:<account>:<address>` (expiring with the known-address lifetime); `<account>` is a
/// keyed hash, IPv6 addresses are their /64. All share the hash tag `{throttle}`, so one
/// attempt's script runs in one Redis Cluster slot.
pub(crate) struct FleetCounter {
    redis: RedisConnection,
    base: String,
    account_key: zeroize::Zeroizing<Vec<u8>>,
    begin: redis::Script,
    settle: redis::Script,
    /// Counting locally because Redis failed (logged once per outage).
    degraded: std::sync::atomic::AtomicBool,
}

impl FleetCounter {
    pub(crate) fn new(redis: RedisConnection, account_key: &[u8]) -> Self {
        let base = format!("{}{{throttle}}:", redis.prefix());
        FleetCounter {
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

    fn outcome<T>(&self, result: Result<T, crate::session::SessionError>) -> Option<T> {
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
    pub(crate) async fn begin(
        &self,
        throttle: &crate::throttle::LoginThrottle,
        account: &str,
        addr: Option<std::net::IpAddr>,
    ) -> Option<Result<(), crate::throttle::Throttled>> {
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
            let account_scope = *scope == crate::throttle::ThrottleScope::Account;
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
            .map_or(crate::throttle::ThrottleScope::Account, |(_, _, s)| *s);
        let wait = Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0));
        Some(Err(crate::throttle::LoginThrottle::refusal(scope, wait)))
    }

    /// `false` when Redis failed: the caller settles locally.
    pub(crate) async fn settle(
        &self,
        throttle: &crate::throttle::LoginThrottle,
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
