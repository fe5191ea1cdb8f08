//! Core-compatible configuration from the environment (`CORE_API_AUTH_*`).
//!
//! ```
//! use std::collections::HashMap;
//! use tower_jwt_login::client_addr::ClientIpHeader;
//! use tower_jwt_login::config::{ConfigError, CoreAuthConfig};
//!
//! let env = HashMap::from([
//!     ("CORE_API_AUTH_ENABLE", "true"),
//!     ("RS_USERNAME", "admin"),
//!     ("CORE_API_AUTH_PASSWORD", "datarhei"),
//!     ("CORE_API_AUTH_JWT_SECRET", "secretsecret"),
//!     ("CORE_API_AUTH_LOGIN_FAILURE_DELAY", "0"),
//!     ("CORE_API_AUTH_LOGIN_MAX_FAILURES", "5"),
//!     ("CORE_API_AUTH_LOGIN_FAILURE_WINDOW", "600"),
//!     ("CORE_API_AUTH_TRUSTED_PROXIES", "10.0.0.0/8, fd00::/8"),
//!     ("CORE_API_AUTH_CLIENT_IP_HEADER", "X-Real-IP"),
//! ]);
//! let config = CoreAuthConfig::default()
//!     .with_lookup(|k| env.get(k).map(|v| v.to_string()))
//!     .unwrap();
//! assert!(config.enable);
//! assert_eq!(config.username, "admin");
//! assert_eq!(config.jwt_key().expose_secret(), b"admindatarheisecretsecret");
//! let throttle = config.login_throttle().unwrap().expect("throttling is on");
//! assert_eq!(throttle.config().max_failures(), 5);
//! assert_eq!(throttle.config().window().as_secs(), 600);
//! assert!(config.trusted_proxies.contains("10.1.2.3".parse().unwrap()));
//! assert_eq!(config.client_addr_resolver().header(), ClientIpHeader::XRealIp);
//!
//! // A zero window would count nothing: refused at start-up.
//! let env = HashMap::from([("CORE_API_AUTH_LOGIN_FAILURE_WINDOW", "0")]);
//! let err = CoreAuthConfig::default().with_lookup(|k| env.get(k).map(|v| v.to_string()));
//! assert_eq!(err.unwrap_err(), ConfigError::ZeroFailureWindow);
//!
//! let env = HashMap::from([("CORE_API_AUTH_ENABLE", "true"), ("CORE_API_AUTH_USERNAME", "admin")]);
//! let err = CoreAuthConfig::default().with_lookup(|k| env.get(k).map(|v| v.to_string()));
//! assert_eq!(err.unwrap_err(), ConfigError::MissingCredentials);
//! ```

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use zeroize::Zeroizing;

mod users;

pub use users::{CoreUsers, CoreUsersError};

use crate::browser::Browser;
use crate::client_addr::{ClientAddrResolver, ClientIpHeader, TrustedProxies};
use crate::env::parse_bool;
use crate::factor::{
    FactorKey, FactorKeyError, MemoryFactorStore, SecondFactor, SecondFactorSetupError,
};
use crate::kit::{Cors, LoginKit};
use crate::session::{MemorySessionStore, Sessions};
use crate::store::PlaintextUser;
use crate::throttle::{LoginThrottle, ThrottleConfig};
use crate::token::{
    Algorithm, Jwt, JwtConfig, JwtKey, KeyError, KeyProblem, MAX_PREVIOUS_SECRETS, SigningKey,
    VerificationKey,
};

/// Why the configured session store could not be set up (Redis unreachable, no `redis`
/// feature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSetupError(String);

impl fmt::Display for SessionSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session store: {}", self.0)
    }
}

impl std::error::Error for SessionSetupError {}

/// The auth part of datarhei Core's configuration, plus the crate's login failure delay.
#[derive(Clone)]
pub struct CoreAuthConfig {
    /// `CORE_API_AUTH_ENABLE`: whether the API requires login.
    pub enable: bool,
    /// `CORE_API_AUTH_USERNAME` (alias `RS_USERNAME`).
    pub username: String,
    password: Zeroizing<String>,
    jwt_secret: Zeroizing<String>,
    /// The random secret used while `jwt_secret` is empty: made once, shared by the clones, so
    /// every key made from these settings is the same key.
    random_secret: std::sync::Arc<std::sync::OnceLock<Zeroizing<String>>>,
    /// `CORE_API_AUTH_LOGIN_FAILURE_DELAY` in seconds (the crate's; default 5 like Core).
    pub login_failure_delay: Duration,
    /// `CORE_API_AUTH_LOGIN_MAX_FAILURES`: failed logins per account and client address in the
    /// window before `429` (the crate's; default 10; `0` turns throttling off).
    pub login_max_failures: u32,
    /// `CORE_API_AUTH_LOGIN_FAILURE_WINDOW` in seconds (the crate's; default 900; `0` is
    /// refused).
    pub login_failure_window: Duration,
    /// `CORE_API_AUTH_TRUSTED_PROXIES`: proxy networks whose client address header is believed,
    /// comma-separated CIDRs (the crate's; default none).
    pub trusted_proxies: TrustedProxies,
    /// `CORE_API_AUTH_CLIENT_IP_HEADER`: the one header the trusted proxies set, read only from
    /// them: `X-Forwarded-For` (default), `X-Real-IP`, `Forwarded`, `CF-Connecting-IP`,
    /// `True-Client-IP` or `Fly-Client-IP` (the crate's; anything else is refused).
    pub client_ip_header: ClientIpHeader,
    /// The key ring's settings (`CORE_API_AUTH_JWT_ALGORITHM`, `_PRIVATE_KEY`, `_VERIFY_KEYS`,
    /// `_PREVIOUS_SECRETS`; the crate's): see [`JwtKeySettings`].
    pub jwt_keys: JwtKeySettings,
    /// `CORE_API_AUTH_SESSIONS`: where sessions live (off by default: stateless, as Core).
    pub sessions: SessionBackend,
    /// `CORE_API_AUTH_REFRESH_ROTATION`: refresh-token rotation with reuse detection (needs
    /// sessions; default false).
    pub refresh_rotation: bool,
    /// `CORE_API_AUTH_REFRESH_ROTATION_GRACE`: seconds after spending a refresh token in which
    /// presenting it again still rotates (default 0).
    pub refresh_rotation_grace: Duration,
    /// `CORE_API_AUTH_REDIS_PREFIX`: the prefix of every Redis key and channel (default `tjl:`).
    pub redis_prefix: String,
    /// `CORE_API_AUTH_REDIS_TIMEOUT`: seconds any Redis call may take (default 1).
    pub redis_timeout: Duration,
    /// `CORE_API_AUTH_CORS_ORIGINS`: the origins allowed to call the API from a browser,
    /// comma-separated, `*` for every origin (the crate's; default `*`, as Core answers).
    pub cors: Cors,
    /// `CORE_API_AUTH_COOKIES`: browser mode (the crate's; default off): `true` keeps the
    /// refresh token in an `HttpOnly` cookie, `access` the access token too (see
    /// [`crate::browser`]). Needs sessions.
    pub cookies: CookieMode,
    /// `CORE_API_AUTH_DATABASE`: the SQL store of users, API keys and second factors
    /// (`postgres://…` or `sqlite://…`; the crate's, feature `sql`; default none: Core's one
    /// configured user). See [`sql_store`](Self::sql_store).
    pub database: Option<DatabaseUrl>,
    /// `CORE_API_AUTH_TOTP`: the second factor (TOTP) for the configured user (the crate's;
    /// default false). Needs `CORE_API_AUTH_TOTP_KEY`; see [`second_factor`](Self::second_factor).
    pub totp: bool,
    /// `CORE_API_AUTH_TOTP_KEY`: the key that seals TOTP secrets at rest, 32 bytes as base64 or
    /// hex.
    totp_key: Zeroizing<String>,
    /// `CORE_API_AUTH_REDIS_WAIT_REPLICAS`: replicas that must acknowledge every refresh and
    /// logout before it is answered (default 0: none; see
    /// [`RedisOptions::wait_replicas`](crate::redis::RedisOptions::wait_replicas)).
    pub redis_wait_replicas: u32,
    /// `CORE_API_AUTH_REDIS_TLS_CA_FILE`: a PEM file of the CA certificates `rediss://` trusts
    /// instead of the system's (default unset: the system's trust store).
    pub redis_tls_ca_file: Option<PathBuf>,
}

/// The browser mode of the configuration (`CORE_API_AUTH_COOKIES`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CookieMode {
    /// No cookies: Core's JSON protocol only (the default).
    #[default]
    Off,
    /// `true`: the refresh token in a cookie, the access token in the body.
    Refresh,
    /// `access`: both tokens in cookies (the access token in the body too).
    Access,
}

/// Where [sessions](crate::session) live (`CORE_API_AUTH_SESSIONS`).
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionBackend {
    /// No sessions: stateless tokens, no logout (unset or empty; the default).
    #[default]
    Off,
    /// `memory`: [`MemorySessionStore`], one instance.
    Memory,
    /// `redis://…`, `rediss://…`, `redis+sentinel://…` or `rediss+sentinel://…`: the Redis
    /// store shared by a fleet (feature `redis`; the forms are described in
    /// [`crate::redis`]'s docs). The URL may hold passwords; `Debug` shows neither them nor the
    /// query.
    Redis(Zeroizing<String>),
}

impl fmt::Debug for SessionBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionBackend::Off => f.write_str("Off"),
            SessionBackend::Memory => f.write_str("Memory"),
            SessionBackend::Redis(url) => {
                // Hosts only: anything before an `@` may be a password, and so may the query.
                let host = url.split('?').next().unwrap_or_default();
                let host = host.rsplit('@').next().unwrap_or_default();
                let host = host.split("://").last().unwrap_or_default();
                write!(f, "Redis({host})")
            }
        }
    }
}

impl Default for CoreAuthConfig {
    /// Core's defaults: auth disabled, no user, no secret, 5 s failure delay.
    fn default() -> Self {
        CoreAuthConfig {
            enable: false,
            username: String::new(),
            password: Zeroizing::new(String::new()),
            jwt_secret: Zeroizing::new(String::new()),
            random_secret: std::sync::Arc::default(),
            login_failure_delay: Duration::from_secs(5),
            login_max_failures: 10,
            login_failure_window: Duration::from_secs(15 * 60),
            trusted_proxies: TrustedProxies::none(),
            sessions: SessionBackend::Off,
            refresh_rotation: false,
            refresh_rotation_grace: Duration::ZERO,
            redis_prefix: "tjl:".to_owned(),
            redis_timeout: Duration::from_secs(1),
            redis_wait_replicas: 0,
            redis_tls_ca_file: None,
            client_ip_header: ClientIpHeader::default(),
            jwt_keys: JwtKeySettings::default(),
            cors: Cors::core(),
            cookies: CookieMode::Off,
            database: None,
            totp: false,
            totp_key: Zeroizing::new(String::new()),
        }
    }
}

/// An invalid Core configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// Auth is enabled but the username or the password is empty.
    MissingCredentials,
    /// A boolean variable holds something Go's `strconv.ParseBool` would refuse.
    InvalidBool {
        /// The variable.
        var: &'static str,
    },
    /// A duration variable is not a non-negative number of seconds.
    InvalidSeconds {
        /// The variable.
        var: &'static str,
    },
    /// A count variable is not a non-negative integer.
    InvalidCount {
        /// The variable.
        var: &'static str,
    },
    /// A network list variable is not comma-separated CIDRs.
    InvalidNetworks {
        /// The variable.
        var: &'static str,
    },
    /// `CORE_API_AUTH_SESSIONS` is neither `memory` nor a `redis://`, `rediss://`,
    /// `redis+sentinel://` or `rediss+sentinel://` URL.
    InvalidSessions,
    /// `CORE_API_AUTH_REFRESH_ROTATION` is true without `CORE_API_AUTH_SESSIONS`: a spent token
    /// could not be told from a live one.
    RotationWithoutSessions,
    /// `CORE_API_AUTH_COOKIES` is on without `CORE_API_AUTH_SESSIONS`: logout could not end
    /// the refresh token kept in the cookie.
    CookiesWithoutSessions,
    /// `CORE_API_AUTH_LOGIN_FAILURE_WINDOW` is zero, which would count no failure at all.
    ZeroFailureWindow,
    /// `CORE_API_AUTH_CLIENT_IP_HEADER` names no supported header.
    InvalidClientIpHeader {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
    },
    /// An origin list variable holds something that is no `scheme://host[:port]`.
    InvalidOrigins {
        /// The variable.
        var: &'static str,
    },
    /// `CORE_API_AUTH_DATABASE` names neither PostgreSQL nor SQLite, or the build has no `sql`
    /// feature.
    InvalidDatabase,
    /// `CORE_API_AUTH_JWT_ALGORITHM` names no supported algorithm.
    InvalidAlgorithm {
        /// The value.
        value: String,
    },
    /// `CORE_API_AUTH_TOTP` is true (with auth enabled) but `CORE_API_AUTH_TOTP_KEY` is empty.
    MissingTotpKey,
    /// `CORE_API_AUTH_TOTP_KEY` is not 32 bytes in base64 or hex.
    InvalidTotpKey,
    /// `CORE_API_AUTH_JWT_PREVIOUS_SECRETS` lists more than [`MAX_PREVIOUS_SECRETS`] secrets: a
    /// token without `kid` may be tried against each.
    TooManyPreviousSecrets {
        /// How many were listed.
        count: usize,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::MissingCredentials => f.write_str(
                "CORE_API_AUTH_ENABLE is true but CORE_API_AUTH_USERNAME (RS_USERNAME) or \
                 CORE_API_AUTH_PASSWORD (RS_PASSWORD) is empty",
            ),
            ConfigError::InvalidBool { var } => {
                write!(
                    f,
                    "{var} must be true or false (1, t, T, TRUE, true, True, 0, f, …)"
                )
            }
            ConfigError::InvalidSeconds { var } => {
                write!(f, "{var} must be a non-negative number of seconds")
            }
            ConfigError::InvalidCount { var } => {
                write!(f, "{var} must be a non-negative integer")
            }
            ConfigError::InvalidSessions => f.write_str(
                "CORE_API_AUTH_SESSIONS must be `memory` or a redis://, rediss://, \
                 redis+sentinel:// or rediss+sentinel:// URL",
            ),
            ConfigError::CookiesWithoutSessions => f.write_str(
                "CORE_API_AUTH_COOKIES needs sessions: set CORE_API_AUTH_SESSIONS (memory or a \
                 redis:// URL)",
            ),
            ConfigError::RotationWithoutSessions => f.write_str(
                "CORE_API_AUTH_REFRESH_ROTATION needs sessions: set CORE_API_AUTH_SESSIONS",
            ),
            ConfigError::TooManyPreviousSecrets { count } => write!(
                f,
                "CORE_API_AUTH_JWT_PREVIOUS_SECRETS lists {count} secrets, but at most \
                 {MAX_PREVIOUS_SECRETS} are taken (a token without kid may be tried against \
                 each): drop the oldest, whose tokens expired a refresh lifetime after it stopped \
                 signing"
            ),
            ConfigError::InvalidDatabase => f.write_str(if cfg!(feature = "sql") {
                "CORE_API_AUTH_DATABASE must be a postgres://, postgresql:// or sqlite: URL \
                 (e.g. sqlite://users.db?mode=rwc)"
            } else {
                "CORE_API_AUTH_DATABASE is set, but this build has no SQL support: enable the \
                 `sql` feature"
            }),
            ConfigError::InvalidAlgorithm { value } => write!(
                f,
                "CORE_API_AUTH_JWT_ALGORITHM={value:?} is not one of HS256, HS384, HS512, EdDSA, \
                 ES256, RS256"
            ),
            ConfigError::InvalidNetworks { var } => {
                write!(
                    f,
                    "{var} must be comma-separated networks like 10.0.0.0/8, fd00::/8"
                )
            }
            ConfigError::InvalidOrigins { var } => write!(
                f,
                "{var} must be `*` or comma-separated origins like https://ui.example.com, \
                 http://localhost:3000"
            ),
            ConfigError::MissingTotpKey => f.write_str(
                "CORE_API_AUTH_TOTP is true but CORE_API_AUTH_TOTP_KEY is empty: give the key \
                 that seals the TOTP secrets, 32 random bytes as base64 or hex (openssl rand \
                 -base64 32), the same on every instance",
            ),
            ConfigError::InvalidTotpKey => f.write_str(
                "CORE_API_AUTH_TOTP_KEY must be 32 bytes written as base64 or as 64 hex digits \
                 (openssl rand -base64 32)",
            ),
            ConfigError::ZeroFailureWindow => f.write_str(
                "CORE_API_AUTH_LOGIN_FAILURE_WINDOW is 0, which would count no failed login and so \
                 turn the login throttle off: set a positive number of seconds (default 900), or \
                 turn throttling off explicitly with CORE_API_AUTH_LOGIN_MAX_FAILURES=0",
            ),
            ConfigError::InvalidClientIpHeader { var, value } => {
                write!(
                    f,
                    "{var}={value:?} is not supported: name the one header your proxy sets, "
                )?;
                f.write_str("one of ")?;
                for (i, h) in ClientIpHeader::ALL.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(h.as_str())?;
                }
                f.write_str(" (default X-Forwarded-For)")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

impl CoreAuthConfig {
    /// These settings, overridden by the process environment; then validated.
    pub fn with_env(self) -> Result<Self, ConfigError> {
        self.with_lookup(|k| std::env::var(k).ok())
    }

    /// These settings, overridden by the variables `lookup` finds; then validated. A `CORE_*`
    /// variable wins over its `RS_*` alias.
    pub fn with_lookup(
        mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        if let Some(v) = lookup("CORE_API_AUTH_ENABLE") {
            self.enable = parse_bool(&v).ok_or(ConfigError::InvalidBool {
                var: "CORE_API_AUTH_ENABLE",
            })?;
        }
        if let Some(v) = lookup("CORE_API_AUTH_USERNAME").or_else(|| lookup("RS_USERNAME")) {
            self.username = v;
        }
        if let Some(v) = lookup("CORE_API_AUTH_PASSWORD").or_else(|| lookup("RS_PASSWORD")) {
            self.password = Zeroizing::new(v);
        }
        if let Some(v) = lookup("CORE_API_AUTH_JWT_SECRET") {
            self.jwt_secret = Zeroizing::new(v);
        }
        if let Some(v) = lookup("CORE_API_AUTH_LOGIN_FAILURE_DELAY") {
            self.login_failure_delay = parse_seconds(&v).ok_or(ConfigError::InvalidSeconds {
                var: "CORE_API_AUTH_LOGIN_FAILURE_DELAY",
            })?;
        }
        if let Some(v) = lookup("CORE_API_AUTH_LOGIN_MAX_FAILURES") {
            self.login_max_failures = v.trim().parse().map_err(|_| ConfigError::InvalidCount {
                var: "CORE_API_AUTH_LOGIN_MAX_FAILURES",
            })?;
        }
        if let Some(v) = lookup("CORE_API_AUTH_LOGIN_FAILURE_WINDOW") {
            self.login_failure_window = parse_seconds(&v).ok_or(ConfigError::InvalidSeconds {
                var: "CORE_API_AUTH_LOGIN_FAILURE_WINDOW",
            })?;
        }
        if let Some(v) = lookup("CORE_API_AUTH_TRUSTED_PROXIES") {
            self.trusted_proxies = v.parse().map_err(|_| ConfigError::InvalidNetworks {
                var: "CORE_API_AUTH_TRUSTED_PROXIES",
            })?;
        }
        if let Some(v) = lookup("CORE_API_AUTH_SESSIONS") {
            let v = v.trim();
            self.sessions = if v.is_empty() {
                SessionBackend::Off
            } else if v.eq_ignore_ascii_case("memory") {
                SessionBackend::Memory
            } else if [
                "redis://",
                "rediss://",
                "redis+sentinel://",
                "rediss+sentinel://",
            ]
            .iter()
            .any(|scheme| v.starts_with(scheme))
            {
                SessionBackend::Redis(Zeroizing::new(v.to_owned()))
            } else {
                return Err(ConfigError::InvalidSessions);
            };
        }
        if let Some(v) = lookup("CORE_API_AUTH_REFRESH_ROTATION") {
            self.refresh_rotation = parse_bool(&v).ok_or(ConfigError::InvalidBool {
                var: "CORE_API_AUTH_REFRESH_ROTATION",
            })?;
        }
        if let Some(v) = lookup("CORE_API_AUTH_REFRESH_ROTATION_GRACE") {
            self.refresh_rotation_grace = parse_seconds(&v).ok_or(ConfigError::InvalidSeconds {
                var: "CORE_API_AUTH_REFRESH_ROTATION_GRACE",
            })?;
        }
        if let Some(v) = lookup("CORE_API_AUTH_REDIS_PREFIX") {
            self.redis_prefix = v;
        }
        if let Some(v) = lookup("CORE_API_AUTH_REDIS_TIMEOUT") {
            self.redis_timeout =
                parse_seconds(&v)
                    .filter(|t| !t.is_zero())
                    .ok_or(ConfigError::InvalidSeconds {
                        var: "CORE_API_AUTH_REDIS_TIMEOUT",
                    })?;
        }
        if let Some(v) = lookup("CORE_API_AUTH_REDIS_WAIT_REPLICAS") {
            self.redis_wait_replicas = v.trim().parse().map_err(|_| ConfigError::InvalidCount {
                var: "CORE_API_AUTH_REDIS_WAIT_REPLICAS",
            })?;
        }
        if let Some(v) = lookup("CORE_API_AUTH_REDIS_TLS_CA_FILE") {
            let v = v.trim();
            self.redis_tls_ca_file = (!v.is_empty()).then(|| PathBuf::from(v));
        }
        if let Some(v) = lookup("CORE_API_AUTH_CLIENT_IP_HEADER") {
            self.client_ip_header = v.parse().map_err(|_| ConfigError::InvalidClientIpHeader {
                var: "CORE_API_AUTH_CLIENT_IP_HEADER",
                value: v.clone(),
            })?;
        }
        if let Some(v) = lookup("CORE_API_AUTH_CORS_ORIGINS") {
            self.cors = Cors::parse(&v);
            self.cors.check().map_err(|_| ConfigError::InvalidOrigins {
                var: "CORE_API_AUTH_CORS_ORIGINS",
            })?;
        }
        if let Some(v) = lookup("CORE_API_AUTH_COOKIES") {
            self.cookies = if v.trim().eq_ignore_ascii_case("access") {
                CookieMode::Access
            } else {
                match parse_bool(v.trim()).ok_or(ConfigError::InvalidBool {
                    var: "CORE_API_AUTH_COOKIES",
                })? {
                    true => CookieMode::Refresh,
                    false => CookieMode::Off,
                }
            };
        }
        if let Some(v) = lookup("CORE_API_AUTH_TOTP") {
            self.totp = parse_bool(&v).ok_or(ConfigError::InvalidBool {
                var: "CORE_API_AUTH_TOTP",
            })?;
        }
        if let Some(v) = lookup("CORE_API_AUTH_TOTP_KEY") {
            self.totp_key = Zeroizing::new(v);
        }
        if let Some(v) = lookup("CORE_API_AUTH_DATABASE") {
            let v = v.trim();
            self.database = if v.is_empty() {
                None
            } else {
                Some(DatabaseUrl::parse(v).ok_or(ConfigError::InvalidDatabase)?)
            };
        }
        self.jwt_keys = self.jwt_keys.with_lookup(&lookup)?;
        self.validate()?;
        Ok(self)
    }

    /// Refuses auth enabled without a username or password, a zero failure window, refresh
    /// rotation without sessions, the second factor without a well-formed key, and more than
    /// [`MAX_PREVIOUS_SECRETS`] previous JWT secrets.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let count = self.jwt_keys.previous_secrets.len();
        if count > MAX_PREVIOUS_SECRETS {
            return Err(ConfigError::TooManyPreviousSecrets { count });
        }
        if self.enable && self.totp {
            match FactorKey::parse(&self.totp_key) {
                Ok(_) => {}
                Err(FactorKeyError::Missing) => return Err(ConfigError::MissingTotpKey),
                Err(_) => return Err(ConfigError::InvalidTotpKey),
            }
        }
        if self.enable && (self.username.is_empty() || self.password.is_empty()) {
            return Err(ConfigError::MissingCredentials);
        }
        if self.login_failure_window.is_zero() {
            return Err(ConfigError::ZeroFailureWindow);
        }
        if self.refresh_rotation && self.sessions == SessionBackend::Off {
            return Err(ConfigError::RotationWithoutSessions);
        }
        if self.cookies != CookieMode::Off && self.sessions == SessionBackend::Off {
            return Err(ConfigError::CookiesWithoutSessions);
        }
        Ok(())
    }

    /// Enables or disables auth.
    #[must_use]
    pub fn enable(mut self, enable: bool) -> Self {
        self.enable = enable;
        self
    }

    /// Sets the username.
    #[must_use]
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = username.into();
        self
    }

    /// Sets the password.
    #[must_use]
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Zeroizing::new(password.into());
        self
    }

    /// Sets the JWT secret.
    #[must_use]
    pub fn jwt_secret(mut self, secret: impl Into<String>) -> Self {
        self.jwt_secret = Zeroizing::new(secret.into());
        self
    }

    /// Turns the second factor on or off (`CORE_API_AUTH_TOTP`).
    #[must_use]
    pub fn totp(mut self, on: bool) -> Self {
        self.totp = on;
        self
    }

    /// Sets the key that seals TOTP secrets (`CORE_API_AUTH_TOTP_KEY`).
    #[must_use]
    pub fn totp_key(mut self, key: impl Into<String>) -> Self {
        self.totp_key = Zeroizing::new(key.into());
        self
    }

    /// The second factor of these settings (`CORE_API_AUTH_TOTP`), for the configured user:
    /// `None` when it is off (or auth is). Its store is the session store's Redis (under the
    /// same prefix) when `CORE_API_AUTH_SESSIONS` names one, so a fleet shares enrolments, else
    /// [`MemoryFactorStore`] (one process: enrolments end with it). Remembered devices are
    /// bound to the configured password: changing `CORE_API_AUTH_PASSWORD` forgets them all.
    /// A missing or malformed `CORE_API_AUTH_TOTP_KEY`, or one that does not open the stored
    /// secrets, is an error.
    ///
    /// ```
    /// use tower_jwt_login::config::CoreAuthConfig;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let config = CoreAuthConfig::default()
    ///     .with_lookup(|k| match k {
    ///         "CORE_API_AUTH_ENABLE" => Some("true".into()),
    ///         "CORE_API_AUTH_USERNAME" => Some("admin".into()),
    ///         "CORE_API_AUTH_PASSWORD" => Some("datarhei".into()),
    ///         "CORE_API_AUTH_TOTP" => Some("true".into()),
    ///         "CORE_API_AUTH_TOTP_KEY" => Some("q0JqGqV9o5sU1Vd8m3uQ6x1Zb7cY2eT4rN8wP0aL5kM=".into()),
    ///         _ => None,
    ///     })
    ///     .unwrap();
    /// let factor = config.second_factor().await.unwrap().expect("TOTP is on");
    /// assert!(!factor.is_enabled("admin").await.unwrap());
    /// # });
    /// ```
    pub async fn second_factor(&self) -> Result<Option<SecondFactor>, SecondFactorSetupError> {
        let Some((key, epoch)) = self.factor_key_and_epoch()? else {
            return Ok(None);
        };
        match &self.sessions {
            #[cfg(feature = "redis")]
            SessionBackend::Redis(url) => {
                let redis = crate::redis::RedisConnection::connect(url, self.redis_options())
                    .await
                    .map_err(|e| {
                        SecondFactorSetupError::Store(crate::factor::FactorStoreError::Unavailable(
                            e.to_string(),
                        ))
                    })?;
                SecondFactor::builder(crate::factor::RedisFactorStore::new(redis), key)
                    .credential_epoch(epoch)
                    .build()
                    .await
                    .map(Some)
            }
            _ => SecondFactor::builder(MemoryFactorStore::new(), key)
                .credential_epoch(epoch)
                .build()
                .await
                .map(Some),
        }
    }

    /// [`second_factor`](Self::second_factor) for `users`: with users in a database
    /// ([`CoreUsers::sql`]) the second factors live there too (and survive a restart);
    /// otherwise as `second_factor` says.
    pub async fn second_factor_for(
        &self,
        users: &CoreUsers,
    ) -> Result<Option<SecondFactor>, SecondFactorSetupError> {
        #[cfg(feature = "sql")]
        if let Some(store) = users.sql_store() {
            let Some((key, epoch)) = self.factor_key_and_epoch()? else {
                return Ok(None);
            };
            return SecondFactor::builder(store.clone(), key)
                .credential_epoch(epoch)
                .build()
                .await
                .map(Some);
        }
        let _ = users;
        self.second_factor().await
    }

    /// The key that seals TOTP secrets and the credential epoch of the configured user, when
    /// the second factor is on.
    fn factor_key_and_epoch(
        &self,
    ) -> Result<Option<(FactorKey, [u8; 32])>, SecondFactorSetupError> {
        use sha2::Digest;
        if !(self.enable && self.totp) {
            return Ok(None);
        }
        let key = FactorKey::parse(&self.totp_key).map_err(SecondFactorSetupError::Key)?;
        let mut epoch = sha2::Sha256::new();
        epoch.update(b"tower-jwt-login credential epoch\0");
        epoch.update(self.username.as_bytes());
        epoch.update([0]);
        epoch.update(self.password.as_bytes());
        Ok(Some((key, epoch.finalize().into())))
    }

    /// The configured password.
    pub fn expose_password(&self) -> &str {
        &self.password
    }

    /// Core's key: `username + password + jwt_secret`. Without a secret, a random one (with a
    /// warning: tokens die on restart), made once for these settings and their clones, so that
    /// every key made from them verifies the others' tokens.
    pub fn jwt_key(&self) -> JwtKey {
        if !self.jwt_secret.is_empty() {
            return JwtKey::core_compatible(&self.username, &self.password, &self.jwt_secret);
        }
        let secret = self.random_secret.get_or_init(|| {
            tracing::warn!(
                "no JWT secret configured: using a random one, tokens will not survive a restart"
            );
            let chars = crate::token::random_alphanumeric::<32>();
            Zeroizing::new(String::from_utf8_lossy(chars.as_slice()).into_owned())
        });
        JwtKey::core_compatible(&self.username, &self.password, secret)
    }

    /// The login throttle of these settings ([`login_max_failures`](Self::login_max_failures)
    /// per account and address in [`login_failure_window`](Self::login_failure_window), the
    /// other limits at their defaults); `Ok(None)` when `login_max_failures` is 0 (throttling
    /// turned off on purpose), an error for a zero window. Give it to
    /// [`LoginService::throttle`](crate::login::LoginService::throttle) as it is: `None` turns
    /// the default throttle off.
    pub fn login_throttle(&self) -> Result<Option<LoginThrottle>, ConfigError> {
        if self.login_failure_window.is_zero() {
            return Err(ConfigError::ZeroFailureWindow);
        }
        if self.login_max_failures == 0 {
            return Ok(None);
        }
        ThrottleConfig::new(self.login_max_failures, self.login_failure_window)
            .build()
            .map(Some)
            .map_err(|_| ConfigError::ZeroFailureWindow)
    }

    /// The client-address resolver of these settings: the default peer sources, the
    /// [`trusted_proxies`](Self::trusted_proxies) and their
    /// [`client_ip_header`](Self::client_ip_header).
    pub fn client_addr_resolver(&self) -> ClientAddrResolver {
        ClientAddrResolver::new()
            .trusted_proxies(self.trusted_proxies.clone())
            .client_ip_header(self.client_ip_header)
    }

    /// The session store the configuration names, for the tokens of `jwt`: `None` with
    /// sessions off; a Redis store is connected (and its revocation set read) before this
    /// returns.
    pub async fn connect_sessions(&self, jwt: &Jwt) -> Result<Option<Sessions>, SessionSetupError> {
        match &self.sessions {
            SessionBackend::Off => Ok(None),
            SessionBackend::Memory => Ok(Some(Sessions::new(MemorySessionStore::new(jwt)))),
            #[cfg(feature = "redis")]
            SessionBackend::Redis(url) => {
                let store =
                    crate::session::RedisSessionStore::connect(url, self.redis_options(), jwt)
                        .await
                        .map_err(|e| SessionSetupError(e.to_string()))?;
                Ok(Some(Sessions::with_fleet(store)))
            }
            #[cfg(not(feature = "redis"))]
            SessionBackend::Redis(_) => Err(SessionSetupError(
                "CORE_API_AUTH_SESSIONS names Redis, but this build has no Redis support: \
                 enable the `redis` feature"
                    .to_owned(),
            )),
        }
    }

    /// The Redis settings: prefix, timeout, replicas to wait for, and the CA file (read when
    /// connecting).
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis_options(&self) -> crate::redis::RedisOptions {
        let options = crate::redis::RedisOptions::new()
            .prefix(self.redis_prefix.clone())
            .timeout(self.redis_timeout)
            .wait_replicas(self.redis_wait_replicas);
        match &self.redis_tls_ca_file {
            Some(path) => options.tls_root_ca_file(path.clone()),
            None => options,
        }
    }

    /// Core's one user as a credential store.
    pub fn credential_store(&self) -> PlaintextUser {
        PlaintextUser::new(self.username.clone(), &self.password)
    }

    /// The users and API keys of this configuration: with `CORE_API_AUTH_DATABASE` the SQL
    /// store ([`sql_store`](Self::sql_store): connected, migrated, the configured user created
    /// when missing), otherwise Core's one configured user with API keys in memory.
    pub async fn users(&self) -> Result<CoreUsers, SetupError> {
        #[cfg(feature = "sql")]
        if let Some(store) = self.sql_store().await? {
            return Ok(CoreUsers::sql(store));
        }
        Ok(CoreUsers::configured(self.credential_store()))
    }

    /// The whole login of this configuration as one [`LoginKit`]: the key ring, the users
    /// ([`users`](Self::users): the database of `CORE_API_AUTH_DATABASE`, or Core's one user),
    /// API keys and the password change over them, the failure delay, the throttle (counting
    /// for the fleet with Redis sessions), the client address and trusted proxies, the sessions
    /// (a Redis store is connected here), rotation, CORS, browser mode and the second factor
    /// (in the database when there is one). Add the app's own parts (the about document, Auth0,
    /// the policy) and build it.
    ///
    /// ```
    /// use tower_jwt_login::config::CoreAuthConfig;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let config = CoreAuthConfig::default()
    ///     .with_lookup(|k| match k {
    ///         "CORE_API_AUTH_ENABLE" => Some("true".into()),
    ///         "CORE_API_AUTH_USERNAME" => Some("admin".into()),
    ///         "CORE_API_AUTH_PASSWORD" => Some("datarhei".into()),
    ///         "CORE_API_AUTH_JWT_SECRET" => Some("secret".into()),
    ///         "CORE_API_AUTH_SESSIONS" => Some("memory".into()),
    ///         _ => None,
    ///     })
    ///     .unwrap();
    /// let layer = config.login_kit().await.unwrap().build().unwrap();
    /// assert!(layer.sessions().is_some());
    /// # });
    /// ```
    pub async fn login_kit(&self) -> Result<LoginKit<CoreUsers>, SetupError> {
        let jwt = self.jwt_config()?.build()?;
        let sessions = self.connect_sessions(&jwt).await?;
        let users = self.users().await?;
        let factor = self
            .second_factor_for(&users)
            .await
            .map_err(|e| SetupError::SecondFactor(e.to_string()))?;
        let mut kit = self.login_kit_with(jwt, sessions, users)?;
        if let Some(factor) = factor {
            kit = kit.second_factor(factor);
        }
        Ok(kit)
    }

    /// [`login_kit`](Self::login_kit) with the tokens of `jwt`, the sessions given (`None`:
    /// stateless, whatever `CORE_API_AUTH_SESSIONS` says) and Core's one configured user with
    /// API keys in memory ([`CoreUsers::configured`]), without I/O and without the second
    /// factor.
    pub fn login_kit_for(
        &self,
        jwt: Jwt,
        sessions: Option<Sessions>,
    ) -> Result<LoginKit<CoreUsers>, SetupError> {
        self.login_kit_with(
            jwt,
            sessions,
            CoreUsers::configured(self.credential_store()),
        )
    }

    /// [`login_kit_for`](Self::login_kit_for) over `users` (made by [`users`](Self::users)):
    /// they are the credential store, the API-key store
    /// ([`LoginKit::api_keys`]) and the password-change store
    /// ([`LoginKit::password_change`]).
    pub fn login_kit_with(
        &self,
        jwt: Jwt,
        sessions: Option<Sessions>,
        users: CoreUsers,
    ) -> Result<LoginKit<CoreUsers>, SetupError> {
        let mut kit = LoginKit::new(jwt, users.clone())
            .api_keys(users.clone())
            .password_change(users)
            .failure_delay(self.login_failure_delay)
            .throttle(self.login_throttle()?)
            .fleet_key(self.jwt_key().expose_secret())
            .client_addr(self.client_addr_resolver())
            .cors(self.cors.clone());
        if let Some(sessions) = sessions {
            kit = kit.sessions(sessions);
            if self.refresh_rotation {
                kit = kit.rotation(self.refresh_rotation_grace);
            }
            if self.cookies != CookieMode::Off {
                kit = kit.browser(Browser::new().access_cookie(self.cookies == CookieMode::Access));
            }
        }
        Ok(kit)
    }
}

/// The URL of `CORE_API_AUTH_DATABASE`: `postgres://…`, `postgresql://…` or `sqlite:…`. It may
/// hold a password: `Debug` shows the scheme and host only, and the text is zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(Zeroizing<String>);

impl DatabaseUrl {
    /// The URL, when it names PostgreSQL or SQLite (and the build has the `sql` feature).
    pub fn parse(url: &str) -> Option<Self> {
        let known = ["postgres://", "postgresql://", "sqlite:"]
            .iter()
            .any(|scheme| url.starts_with(scheme));
        (known && cfg!(feature = "sql")).then(|| DatabaseUrl(Zeroizing::new(url.to_owned())))
    }

    /// The URL, password included.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Scheme and host only: anything before an `@` may be a password.
        let (scheme, rest) = self.0.split_once(':').unwrap_or(("?", ""));
        let host = rest.rsplit('@').next().unwrap_or_default();
        let host = host
            .trim_start_matches('/')
            .split(['/', '?'])
            .next()
            .unwrap_or_default();
        write!(f, "DatabaseUrl({scheme}://{host})")
    }
}

#[cfg(feature = "sql")]
#[cfg_attr(docsrs, doc(cfg(feature = "sql")))]
impl CoreAuthConfig {
    /// The SQL store `CORE_API_AUTH_DATABASE` names, connected and migrated, with the configured
    /// user (`CORE_API_AUTH_USERNAME` / `_PASSWORD`) created when it is missing (an existing
    /// user's password is left alone: change it with the store's API or the `accounts` example);
    /// `None` when the variable is unset.
    ///
    /// ```
    /// use tower_jwt_login::config::CoreAuthConfig;
    /// use tower_jwt_login::store::{CredentialStore, Credentials};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let config = CoreAuthConfig::default()
    ///     .with_lookup(|k| match k {
    ///         "CORE_API_AUTH_ENABLE" => Some("true".into()),
    ///         "CORE_API_AUTH_USERNAME" => Some("admin".into()),
    ///         "CORE_API_AUTH_PASSWORD" => Some("datarhei".into()),
    ///         "CORE_API_AUTH_DATABASE" => Some("sqlite::memory:".into()),
    ///         _ => None,
    ///     })
    ///     .unwrap();
    /// let store = config.sql_store().await.unwrap().expect("a database is configured");
    /// let ok = store.authenticate(&Credentials::new("admin", "datarhei")).await.unwrap();
    /// assert_eq!(ok.as_deref(), Some("admin"));
    /// # });
    /// ```
    pub async fn sql_store(&self) -> Result<Option<crate::store::SqlStore>, SetupError> {
        let Some(url) = &self.database else {
            return Ok(None);
        };
        let store = crate::store::SqlStore::connect_and_migrate(
            url.expose(),
            crate::store::SqlOptions::new(),
        )
        .await
        .map_err(|e| SetupError::Database(e.to_string()))?;
        if self.enable && !self.username.is_empty() && !self.password.is_empty() {
            let created = store
                .ensure_user(&self.username, &self.password)
                .await
                .map_err(|e| SetupError::Database(e.to_string()))?;
            if created {
                tracing::info!(
                    user = self.username.as_str(),
                    "configured user created in the database"
                );
            }
        }
        Ok(Some(store))
    }
}

/// Why a [`CoreAuthConfig`] could not be turned into a running login.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SetupError {
    /// A variable is invalid.
    Config(ConfigError),
    /// A key (file) is unusable.
    Key(KeyError),
    /// The session store could not be set up.
    Sessions(SessionSetupError),
    /// The second factor could not be set up (its store, or a wrong key).
    SecondFactor(String),
    /// The SQL store could not be set up (`CORE_API_AUTH_DATABASE` unreachable, a migration
    /// refused, the configured user not created).
    Database(String),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Config(e) => e.fmt(f),
            SetupError::Key(e) => e.fmt(f),
            SetupError::Sessions(e) => e.fmt(f),
            SetupError::SecondFactor(why) => write!(f, "second factor: {why}"),
            SetupError::Database(why) => write!(f, "database: {why}"),
        }
    }
}

impl std::error::Error for SetupError {}

impl From<ConfigError> for SetupError {
    fn from(e: ConfigError) -> Self {
        SetupError::Config(e)
    }
}

impl From<KeyError> for SetupError {
    fn from(e: KeyError) -> Self {
        SetupError::Key(e)
    }
}

impl From<SessionSetupError> for SetupError {
    fn from(e: SessionSetupError) -> Self {
        SetupError::Sessions(e)
    }
}

impl fmt::Debug for CoreAuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoreAuthConfig")
            .field("enable", &self.enable)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("jwt_secret", &"<redacted>")
            .field("login_failure_delay", &self.login_failure_delay)
            .field("login_max_failures", &self.login_max_failures)
            .field("login_failure_window", &self.login_failure_window)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("sessions", &self.sessions)
            .field("refresh_rotation", &self.refresh_rotation)
            .field("refresh_rotation_grace", &self.refresh_rotation_grace)
            .field("redis_prefix", &self.redis_prefix)
            .field("redis_timeout", &self.redis_timeout)
            .field("redis_wait_replicas", &self.redis_wait_replicas)
            .field("redis_tls_ca_file", &self.redis_tls_ca_file)
            .field("client_ip_header", &self.client_ip_header)
            .field("jwt_keys", &self.jwt_keys)
            .field("cors", &self.cors)
            .field("cookies", &self.cookies)
            .field("totp", &self.totp)
            .field("totp_key", &"<redacted>")
            .finish()
    }
}

/// The key ring's settings from the environment (the crate's variables; see docs/keys.md).
///
/// ```
/// use tower_jwt_login::Algorithm;
/// use tower_jwt_login::config::CoreAuthConfig;
///
/// let config = CoreAuthConfig::default()
///     .with_lookup(|k| match k {
///         "CORE_API_AUTH_JWT_ALGORITHM" => Some("HS512".into()),
///         "CORE_API_AUTH_JWT_PREVIOUS_SECRETS" => Some("old-one, older-one".into()),
///         _ => None,
///     })
///     .unwrap();
/// assert_eq!(config.jwt_keys.algorithm, Algorithm::HS512);
/// let jwt = config.username("admin").password("pw").jwt_secret("new").jwt_config().unwrap().build().unwrap();
/// assert_eq!(jwt.kids().len(), 3); // with previous secrets, every key has a kid
/// ```
#[derive(Clone, Default)]
pub struct JwtKeySettings {
    /// `CORE_API_AUTH_JWT_ALGORITHM`: `HS256` (default), `HS384`, `HS512`, `EdDSA`, `ES256`,
    /// `RS256` (the last three need the cargo feature `asymmetric`).
    pub algorithm: Algorithm,
    /// `CORE_API_AUTH_JWT_PRIVATE_KEY`: the PKCS#8 PEM file of the signing key (asymmetric
    /// algorithms; without one a fresh key is used, with a warning).
    pub private_key: Option<PathBuf>,
    /// `CORE_API_AUTH_JWT_VERIFY_KEYS`: comma-separated PEM files (public or private) of keys
    /// that only verify.
    pub verify_keys: Vec<PathBuf>,
    /// `CORE_API_AUTH_JWT_PREVIOUS_SECRETS`: comma-separated previous JWT secrets, each keyed as
    /// Core keys the current one (`username + password + secret`), most recent first; at most
    /// [`MAX_PREVIOUS_SECRETS`]. They verify the tokens they signed, by `kid`, and also tokens
    /// without `kid` (minted while a secret signed alone) that fail the signing key.
    previous_secrets: Vec<Zeroizing<String>>,
}

impl JwtKeySettings {
    fn with_lookup(
        mut self,
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let list = |v: String| -> Vec<String> {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        if let Some(v) = lookup("CORE_API_AUTH_JWT_ALGORITHM").filter(|v| !v.trim().is_empty()) {
            self.algorithm =
                Algorithm::from_name(v.trim()).ok_or(ConfigError::InvalidAlgorithm { value: v })?;
        }
        if let Some(v) = lookup("CORE_API_AUTH_JWT_PRIVATE_KEY").filter(|v| !v.trim().is_empty()) {
            self.private_key = Some(PathBuf::from(v.trim()));
        }
        if let Some(v) = lookup("CORE_API_AUTH_JWT_VERIFY_KEYS") {
            self.verify_keys = list(v).into_iter().map(PathBuf::from).collect();
        }
        if let Some(v) = lookup("CORE_API_AUTH_JWT_PREVIOUS_SECRETS") {
            self.previous_secrets = list(v).into_iter().map(Zeroizing::new).collect();
        }
        Ok(self)
    }

    /// Adds a previous JWT secret (more than [`MAX_PREVIOUS_SECRETS`] fail
    /// [`CoreAuthConfig::validate`]).
    #[must_use]
    pub fn previous_secret(mut self, secret: impl Into<String>) -> Self {
        self.previous_secrets.push(Zeroizing::new(secret.into()));
        self
    }
}

impl fmt::Debug for JwtKeySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKeySettings")
            .field("algorithm", &self.algorithm)
            .field("private_key", &self.private_key)
            .field("verify_keys", &self.verify_keys)
            .field("previous_secrets", &self.previous_secrets.len())
            .finish()
    }
}

impl CoreAuthConfig {
    /// The token settings of this configuration: the key ring from [`jwt_keys`](Self::jwt_keys)
    /// and Core's key ([`jwt_key`](Self::jwt_key)), Core's lifetimes.
    ///
    /// HMAC algorithms sign with Core's key; an asymmetric one with the private key file (or a
    /// fresh key, with a warning). The verify key files and the previous secrets join the ring as
    /// verification-only keys. Key files are read here: a bad one is a [`KeyError::BadKey`]
    /// naming the file and the problem.
    pub fn jwt_config(&self) -> Result<JwtConfig, KeyError> {
        let keys = &self.jwt_keys;
        let alg = keys.algorithm;
        let signing = if alg.is_hmac() {
            SigningKey::hmac(self.jwt_key()).algorithm(alg)
        } else if let Some(path) = &keys.private_key {
            let key = SigningKey::from_pem_file(path)?;
            match key.key_algorithm() {
                Some(own) if own != alg => {
                    return Err(KeyError::BadKey {
                        origin: path.display().to_string(),
                        problem: KeyProblem::WrongType(format!(
                            "an {} key, but CORE_API_AUTH_JWT_ALGORITHM is {}",
                            own.as_str(),
                            alg.as_str()
                        )),
                    });
                }
                _ => key,
            }
        } else {
            SigningKey::generate(alg)?
        };
        let mut config = JwtConfig::new(signing);
        for path in &keys.verify_keys {
            config = config.verification_key(VerificationKey::from_pem_file(path)?);
        }
        for secret in &keys.previous_secrets {
            let key = JwtKey::core_compatible(&self.username, &self.password, secret);
            let hmac_alg = if alg.is_hmac() { alg } else { Algorithm::HS256 };
            config = config.verification_key(VerificationKey::hmac(key).algorithm(hmac_alg));
        }
        Ok(config)
    }
}

/// A random 24-character password from `[A-Za-z0-9]` (about 143 bits), for generated defaults.
pub fn random_password() -> String {
    let chars = crate::token::random_alphanumeric::<24>();
    String::from_utf8_lossy(chars.as_slice()).into_owned()
}

fn parse_seconds(v: &str) -> Option<Duration> {
    let secs: f64 = v.trim().parse().ok()?;
    Duration::try_from_secs_f64(secs).ok()
}
