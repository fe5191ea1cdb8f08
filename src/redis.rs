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
}

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
        let con = self.inner.manager.clone();
        match tokio::time::timeout(self.inner.options.timeout, call(con)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(classify(&error)),
            Err(_) => Err(SessionError::Unavailable("timed out".to_owned())),
        }
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
