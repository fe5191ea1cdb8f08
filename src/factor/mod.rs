//! The second factor (opt-in): RFC 6238 TOTP codes at login, recovery codes, remembered
//! devices, and the routes that manage them (docs/second-factor.md, docs/protocol.md §8).
//!
//! [`SecondFactor`] is the shared handle: a [`SecondFactorStore`] (enrolments) and a
//! [`FactorKey`] (seals the secrets at rest). Hand clones of it to the parts that take one:
//!
//! - [`LoginService::second_factor`](crate::login::LoginService::second_factor): after the
//!   password is accepted, a user with the second factor on also needs `totp_code` (a current
//!   code, or one of their recovery codes) or a `device_trust_token` of a remembered device;
//! - [`TotpService`]: `GET`/`DELETE /api/v3/auth/totp`, `POST …/setup`, `POST …/enable`,
//!   `POST …/recovery`, for the holder of a valid access token (behind
//!   [`JwtAuthLayer`](crate::auth::JwtAuthLayer));
//! - [`About::second_factor_of`](crate::discovery::About::second_factor_of): `totp_required` in
//!   the about document;
//! - [`LogoutService::second_factor`](crate::login::LogoutService::second_factor): "log out
//!   everywhere" also forgets the user's remembered devices.
//!
//! Users without the second factor log in exactly as before, byte for byte; Auth0 logins are
//! never asked for a code.
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, StatusCode};
//! use http_body_util::{BodyExt, Full};
//! use std::time::Duration;
//! use tower::ServiceExt;
//! use tower_jwt_login::factor::{FactorKey, MemoryFactorStore, SecondFactor, totp_code};
//! use tower_jwt_login::login::LoginService;
//! use tower_jwt_login::store::PlaintextUser;
//! use tower_jwt_login::{JwtConfig, JwtKey};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let factor = SecondFactor::new(MemoryFactorStore::new(), FactorKey::random()).await.unwrap();
//! let jwt = JwtConfig::new(JwtKey::random()).build().unwrap();
//! let login = LoginService::new(jwt, PlaintextUser::new("admin", "datarhei"))
//!     .failure_delay(Duration::ZERO)
//!     .second_factor(factor.clone());
//! let attempt = |body: String| {
//!     let req = Request::post("/api/login")
//!         .header("content-type", "application/json")
//!         .body(Full::new(Bytes::from(body)))
//!         .unwrap();
//!     login.clone().oneshot(req)
//! };
//!
//! // What TotpService's setup and enable do for the logged-in user.
//! let setup = factor.setup("admin").await.unwrap();
//! assert!(setup.uri().starts_with("otpauth://totp/"));
//! let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
//! let code = totp_code(setup.secret(), now).unwrap();
//! let recovery = factor.enable("admin", &code).await.unwrap();
//! assert_eq!(recovery.codes().len(), 10);
//!
//! // The password alone is no longer enough.
//! let res = attempt(r#"{"username":"admin","password":"datarhei"}"#.into()).await.unwrap();
//! assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
//! let body = res.into_body().collect().await.unwrap().to_bytes();
//! assert_eq!(&body[..], b"{\"code\":401,\"message\":\"Unauthorized\",\"details\":[\"TOTP code required\"]}\n");
//!
//! // A recovery code stands in for the code, once.
//! let body = format!(r#"{{"username":"admin","password":"datarhei","totp_code":"{}"}}"#, recovery.codes()[0]);
//! assert_eq!(attempt(body.clone()).await.unwrap().status(), StatusCode::OK);
//! assert_eq!(attempt(body).await.unwrap().status(), StatusCode::UNAUTHORIZED);
//! # });
//! ```

mod key;
mod recovery;
#[cfg(feature = "redis")]
mod redis;
mod service;
mod store;
mod totp;
mod trust;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use zeroize::Zeroizing;

pub use key::{FactorKey, FactorKeyError};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::RedisFactorStore;
pub use service::TotpService;
pub use store::{FactorRecord, FactorStoreError, MemoryFactorStore, SecondFactorStore};
pub use trust::RememberDevice;

use store::ErasedFactorStore;

/// The code an authenticator app shows at Unix time `unix_time` for the base32 secret
/// `secret` (RFC 6238: HMAC-SHA-1, 30 s, 6 digits), or `None` when `secret` is not base32.
/// For tests and scripted clients; the server side never needs it.
///
/// ```
/// // RFC 6238 Appendix B's secret "12345678901234567890" at T = 59 s.
/// let code = tower_jwt_login::factor::totp_code("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 59);
/// assert_eq!(code.as_deref(), Some("287082"));
/// ```
pub fn totp_code(secret: &str, unix_time: u64) -> Option<String> {
    let secret = data_encoding::BASE32_NOPAD
        .decode(secret.trim_end_matches('=').as_bytes())
        .ok()
        .map(Zeroizing::new)?;
    Some(totp::code_at(&secret, unix_time))
}

type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The second factor: store, key and settings, shared by the services that take it. Cheap to
/// clone. See the [module docs](self).
#[derive(Clone)]
pub struct SecondFactor {
    inner: Arc<Inner>,
}

struct Inner {
    store: Box<dyn ErasedFactorStore>,
    key: FactorKey,
    issuer: String,
    epoch: Zeroizing<Vec<u8>>,
    clock: Clock,
    setup_lifetime: u64,
}

/// Builds a [`SecondFactor`]: [`SecondFactor::builder`].
#[must_use]
pub struct SecondFactorBuilder {
    store: Box<dyn ErasedFactorStore>,
    key: FactorKey,
    issuer: String,
    epoch: Zeroizing<Vec<u8>>,
    clock: Clock,
    setup_lifetime: u64,
}

/// Why a [`SecondFactor`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecondFactorSetupError {
    /// The store's secrets were sealed with another key: starting would lock every enrolled
    /// user out (or let them in without their second factor, had it been ignored).
    WrongKey,
    /// The store cannot be read.
    Store(FactorStoreError),
    /// The key is missing or malformed.
    Key(FactorKeyError),
}

impl fmt::Display for SecondFactorSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecondFactorSetupError::WrongKey => f.write_str(
                "the second-factor key is not the one the stored TOTP secrets were sealed with: \
                 give the key the store was set up with (CORE_API_AUTH_TOTP_KEY)",
            ),
            SecondFactorSetupError::Store(error) => error.fmt(f),
            SecondFactorSetupError::Key(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for SecondFactorSetupError {}

impl SecondFactorBuilder {
    /// The issuer the authenticator app shows (the `otpauth://` URI's; default
    /// `datarhei-core`).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self
    }

    /// A value that changes whenever the users' credentials change — for Core's one configured
    /// user, a digest of its password. Remembered devices are bound to it: changing it refuses
    /// every remembered device at once. Apps with many users call
    /// [`SecondFactor::forget_devices`] when one user's password changes instead.
    pub fn credential_epoch(mut self, epoch: impl AsRef<[u8]>) -> Self {
        self.epoch = Zeroizing::new(epoch.as_ref().to_vec());
        self
    }

    /// How long a `setup` waits for its confirmation (default 15 minutes).
    pub fn setup_lifetime(mut self, lifetime: Duration) -> Self {
        self.setup_lifetime = lifetime.as_secs().max(1);
        self
    }

    /// The clock, in Unix seconds (default: the system clock). For tests that need time to
    /// pass (a remembered device's expiry); every instance of a fleet must agree on the time.
    pub fn clock(mut self, clock: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Checks the key against the store (the first start keeps a check value there) and gives
    /// the handle. A key that does not match the store's is refused:
    /// [`SecondFactorSetupError::WrongKey`].
    pub async fn build(self) -> Result<SecondFactor, SecondFactorSetupError> {
        let candidate = self.key.check_value();
        let stored = self
            .store
            .key_check(&candidate)
            .await
            .map_err(SecondFactorSetupError::Store)?;
        if !self.key.matches_check(&stored) {
            return Err(SecondFactorSetupError::WrongKey);
        }
        Ok(SecondFactor {
            inner: Arc::new(Inner {
                store: self.store,
                key: self.key,
                issuer: self.issuer,
                epoch: self.epoch,
                clock: self.clock,
                setup_lifetime: self.setup_lifetime,
            }),
        })
    }
}

/// Whether a user has the second factor on: `GET /api/v3/auth/totp`'s answer,
/// `{"enabled":true,"pending":false,"recovery_codes_left":10}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TotpStatus {
    /// A confirmed secret: logins need a code.
    pub enabled: bool,
    /// A setup awaits confirmation.
    pub pending: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: usize,
}

/// A new secret from [`SecondFactor::setup`]: `{"secret":"<base32>","uri":"otpauth://…"}`.
pub struct TotpSetup {
    secret: Zeroizing<String>,
    uri: Zeroizing<String>,
}

impl TotpSetup {
    /// The secret in base32 (RFC 4648, no padding), for manual entry.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The `otpauth://totp/…` URI with issuer and account, for a QR code.
    pub fn uri(&self) -> &str {
        &self.uri
    }
}

impl Serialize for TotpSetup {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("TotpSetup", 2)?;
        s.serialize_field("secret", self.secret.as_str())?;
        s.serialize_field("uri", self.uri.as_str())?;
        s.end()
    }
}

impl fmt::Debug for TotpSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSetup { .. }")
    }
}

/// A fresh set of recovery codes (shown once): `{"recovery_codes":["xxxx-xxxx-xxxx-xxxx",…]}`.
pub struct RecoveryCodes {
    recovery_codes: Vec<Zeroizing<String>>,
}

impl RecoveryCodes {
    /// The codes, `xxxx-xxxx-xxxx-xxxx` each (80 random bits).
    pub fn codes(&self) -> Vec<&str> {
        self.recovery_codes.iter().map(|c| c.as_str()).collect()
    }
}

impl Serialize for RecoveryCodes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("RecoveryCodes", 1)?;
        s.serialize_field("recovery_codes", &self.codes())?;
        s.end()
    }
}

impl fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecoveryCodes({} codes)", self.recovery_codes.len())
    }
}

/// Why a management call was refused. [`TotpService`] answers each with one status and one
/// fixed detail in the §2 error shape.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FactorError {
    /// No code in the request (400, `TOTP code required`).
    CodeRequired,
    /// A wrong, replayed or spent code (400, `Invalid TOTP code`).
    InvalidCode,
    /// The call needs the second factor on (409, `TOTP not enabled`).
    NotEnabled,
    /// `setup` or `enable` while the second factor is on (409, `TOTP already enabled`).
    AlreadyEnabled,
    /// `enable` without a pending setup, or after it lapsed (409, `No TOTP setup pending`).
    NoPendingSetup,
    /// The store failed (503 with `Retry-After` when unreachable, 500 otherwise).
    Store(FactorStoreError),
}

impl FactorError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode;
        match self {
            FactorError::CodeRequired | FactorError::InvalidCode => StatusCode::BAD_REQUEST,
            FactorError::NotEnabled | FactorError::AlreadyEnabled | FactorError::NoPendingSetup => {
                StatusCode::CONFLICT
            }
            FactorError::Store(FactorStoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            FactorError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `details` string sent to the client (fixed texts only).
    pub fn detail(&self) -> &'static str {
        match self {
            FactorError::CodeRequired => crate::error::TOTP_REQUIRED_DETAIL,
            FactorError::InvalidCode => crate::error::INVALID_TOTP_DETAIL,
            FactorError::NotEnabled => "TOTP not enabled",
            FactorError::AlreadyEnabled => "TOTP already enabled",
            FactorError::NoPendingSetup => "No TOTP setup pending",
            FactorError::Store(FactorStoreError::Unavailable(_)) => {
                crate::error::FACTOR_UNAVAILABLE_DETAIL
            }
            FactorError::Store(_) => "Internal Server Error",
        }
    }

    /// A short label for logs.
    pub fn reason(&self) -> &'static str {
        match self {
            FactorError::CodeRequired => "code_required",
            FactorError::InvalidCode => "invalid_code",
            FactorError::NotEnabled => "not_enabled",
            FactorError::AlreadyEnabled => "already_enabled",
            FactorError::NoPendingSetup => "no_pending_setup",
            FactorError::Store(FactorStoreError::Unavailable(_)) => "store_unavailable",
            FactorError::Store(_) => "store_error",
        }
    }
}

impl fmt::Display for FactorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FactorError::Store(error) => error.fmt(f),
            other => f.write_str(other.detail()),
        }
    }
}

impl std::error::Error for FactorError {}

impl From<FactorStoreError> for FactorError {
    fn from(error: FactorStoreError) -> Self {
        FactorError::Store(error)
    }
}

/// The second-factor members of a login body (`totp_code`, `device_trust_token`,
/// `remember_device`), as the login service read them.
#[derive(Default)]
pub(crate) struct LoginFactor {
    pub(crate) code: Option<Zeroizing<String>>,
    pub(crate) device_token: Option<Zeroizing<String>>,
    pub(crate) remember: Option<RememberDevice>,
}

/// How a login passed the second-factor step.
pub(crate) struct Passed {
    /// The audit log's `via`.
    pub(crate) via: &'static str,
    /// A new remembered-device token, when one was asked for.
    pub(crate) device_token: Option<Zeroizing<String>>,
}

/// Why a login with the right password was refused by the second-factor step.
pub(crate) enum LoginFactorError {
    /// Neither a code nor a remembered device (401 `TOTP code required`).
    Required,
    /// A wrong, replayed or spent code (401 `Invalid TOTP code`).
    Invalid,
    /// The store failed.
    Store(FactorStoreError),
}

/// What a code turned out to be.
enum CodeMatch {
    Totp,
    Recovery,
}

impl SecondFactor {
    /// A builder over `store`, whose secrets are sealed with `key`.
    pub fn builder<S: SecondFactorStore>(store: S, key: FactorKey) -> SecondFactorBuilder {
        SecondFactorBuilder {
            store: Box::new(store),
            key,
            issuer: "datarhei-core".to_owned(),
            epoch: Zeroizing::new(Vec::new()),
            clock: Arc::new(crate::token::now_secs),
            setup_lifetime: 15 * 60,
        }
    }

    /// The second factor over `store` with `key` and the defaults (see the
    /// [builder](SecondFactorBuilder)).
    pub async fn new<S: SecondFactorStore>(
        store: S,
        key: FactorKey,
    ) -> Result<Self, SecondFactorSetupError> {
        Self::builder(store, key).build().await
    }

    fn now(&self) -> u64 {
        (self.inner.clock)()
    }

    fn store(&self) -> &dyn ErasedFactorStore {
        &*self.inner.store
    }

    /// Whether `subject` has the second factor on.
    pub async fn is_enabled(&self, subject: &str) -> Result<bool, FactorStoreError> {
        Ok(self.store().load(subject).await?.secret.is_some())
    }

    /// `subject`'s state (`GET /api/v3/auth/totp`).
    pub async fn status(&self, subject: &str) -> Result<TotpStatus, FactorError> {
        let record = self.store().load(subject).await?;
        let now = self.now();
        Ok(TotpStatus {
            enabled: record.secret.is_some(),
            pending: record.pending.is_some_and(|(_, until)| now < until),
            recovery_codes_left: if record.secret.is_some() {
                record.recovery_codes_left
            } else {
                0
            },
        })
    }

    /// A new secret for `subject`, pending until [`enable`](Self::enable) confirms it with a
    /// code (within the setup lifetime); a second setup replaces the first. Refused while the
    /// second factor is on ([`FactorError::AlreadyEnabled`]: disable it first).
    pub async fn setup(&self, subject: &str) -> Result<TotpSetup, FactorError> {
        if self.store().load(subject).await?.secret.is_some() {
            return Err(FactorError::AlreadyEnabled);
        }
        let secret = totp::new_secret();
        let sealed = self.inner.key.seal(subject, &secret);
        let until = self.now().saturating_add(self.inner.setup_lifetime);
        self.store().begin_setup(subject, &sealed, until).await?;
        Ok(TotpSetup {
            secret: totp::base32(&secret),
            uri: totp::otpauth_uri(&secret, &self.inner.issuer, subject),
        })
    }

    /// Confirms the pending setup with a current `code`: from now on `subject`'s logins need
    /// a code. Answers ten new recovery codes (any earlier ones are void).
    pub async fn enable(&self, subject: &str, code: &str) -> Result<RecoveryCodes, FactorError> {
        let record = self.store().load(subject).await?;
        if record.secret.is_some() {
            return Err(FactorError::AlreadyEnabled);
        }
        let now = self.now();
        let Some((pending, _)) = record.pending.filter(|(_, until)| now < *until) else {
            return Err(FactorError::NoPendingSetup);
        };
        let digits = parse_required(code)
            .and_then(|c| totp::parse_code(c).ok_or(FactorError::InvalidCode))?;
        let secret = self.open(subject, &pending)?;
        let Some(step) = totp::matching_step(&secret, &digits, now) else {
            return Err(FactorError::InvalidCode);
        };
        if !self.store().claim_step(subject, step).await? {
            return Err(FactorError::InvalidCode);
        }
        let (codes, hashes) = self.new_recovery_codes(subject);
        if !self.store().activate(subject, &pending, &hashes).await? {
            // Another setup replaced this one meanwhile.
            return Err(FactorError::NoPendingSetup);
        }
        Ok(codes)
    }

    /// Turns the second factor off for `subject`, with a current code or a recovery code:
    /// secret, recovery codes and remembered devices are forgotten.
    pub async fn disable(&self, subject: &str, code: &str) -> Result<(), FactorError> {
        self.confirm(subject, code).await?;
        self.store().remove(subject).await?;
        Ok(())
    }

    /// Replaces `subject`'s recovery codes with ten new ones, with a current code or a recovery
    /// code.
    pub async fn regenerate_recovery_codes(
        &self,
        subject: &str,
        code: &str,
    ) -> Result<RecoveryCodes, FactorError> {
        self.confirm(subject, code).await?;
        let (codes, hashes) = self.new_recovery_codes(subject);
        if !self.store().replace_recovery(subject, &hashes).await? {
            return Err(FactorError::NotEnabled);
        }
        Ok(codes)
    }

    /// Turns the second factor off for `subject` without a code: the operator's way out for a
    /// user who lost both the device and the recovery codes (after checking who asks). Secret,
    /// pending setup, recovery codes and remembered devices are forgotten; the next login
    /// needs the password alone.
    pub async fn reset(&self, subject: &str) -> Result<(), FactorStoreError> {
        tracing::info!(
            name: "second_factor",
            target: crate::audit::AUDIT,
            action = "totp_reset",
            outcome = "success",
            enduser.id = subject,
            "second_factor"
        );
        self.store().remove(subject).await
    }

    /// Forgets every remembered device of `subject`: call it when the user's password changes
    /// or the user is logged out everywhere (the logout service does, see
    /// [`LogoutService::second_factor`](crate::login::LogoutService::second_factor)).
    pub async fn forget_devices(&self, subject: &str) -> Result<(), FactorStoreError> {
        self.store().forget_devices(subject).await
    }

    /// Checks `code` (a current code or a recovery code) for an enrolled `subject`.
    async fn confirm(&self, subject: &str, code: &str) -> Result<CodeMatch, FactorError> {
        let record = self.store().load(subject).await?;
        let Some(sealed) = record.secret else {
            return Err(FactorError::NotEnabled);
        };
        let code = parse_required(code)?;
        self.check_code(subject, &sealed, code)
            .await?
            .ok_or(FactorError::InvalidCode)
    }

    /// `code` as a current code of the secret `sealed`, or else as a recovery code; each is
    /// spent by the check. `None`: neither.
    async fn check_code(
        &self,
        subject: &str,
        sealed: &[u8],
        code: &str,
    ) -> Result<Option<CodeMatch>, FactorError> {
        if let Some(digits) = totp::parse_code(code) {
            let secret = self.open(subject, sealed)?;
            let Some(step) = totp::matching_step(&secret, &digits, self.now()) else {
                return Ok(None);
            };
            return Ok(self
                .store()
                .claim_step(subject, step)
                .await?
                .then_some(CodeMatch::Totp));
        }
        let Some(canonical) = recovery::normalize(code) else {
            return Ok(None);
        };
        let hash = self.inner.key.recovery_hash(subject, &canonical);
        let used = self.store().use_recovery(subject, &hash).await?;
        if used {
            tracing::info!(
                name: "second_factor",
                target: crate::audit::AUDIT,
                action = "recovery_code_used",
                outcome = "success",
                enduser.id = subject,
                "second_factor"
            );
        }
        Ok(used.then_some(CodeMatch::Recovery))
    }

    /// The user's secret, opened; a sealed secret that does not open is a store error (the
    /// key was checked at start-up, so the store's bytes were altered).
    fn open(&self, subject: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, FactorError> {
        self.inner.key.open(subject, sealed).ok_or_else(|| {
            tracing::error!("a stored TOTP secret does not open with the key");
            FactorError::Store(FactorStoreError::Store(
                "sealed secret does not open".to_owned(),
            ))
        })
    }

    fn new_recovery_codes(&self, subject: &str) -> (RecoveryCodes, Vec<String>) {
        let codes = recovery::generate();
        let hashes = codes
            .iter()
            .filter_map(|code| recovery::normalize(code))
            .map(|canonical| self.inner.key.recovery_hash(subject, &canonical))
            .collect();
        (
            RecoveryCodes {
                recovery_codes: codes,
            },
            hashes,
        )
    }

    /// The second-factor step of a login whose password was accepted for `subject`.
    pub(crate) async fn at_login(
        &self,
        subject: &str,
        input: &LoginFactor,
    ) -> Result<Passed, LoginFactorError> {
        let record = self
            .store()
            .load(subject)
            .await
            .map_err(LoginFactorError::Store)?;
        let Some(sealed) = record.secret else {
            return Ok(Passed {
                via: "password",
                device_token: None,
            });
        };
        let now = self.now();
        if let Some(token) = input
            .device_token
            .as_deref()
            .filter(|t| trust::plausible(t))
        {
            let hash = self
                .inner
                .key
                .device_hash(subject, &self.inner.epoch, token);
            if self
                .store()
                .is_trusted(subject, &hash, now)
                .await
                .map_err(LoginFactorError::Store)?
            {
                return Ok(Passed {
                    via: "password+trusted_device",
                    device_token: None,
                });
            }
        }
        let Some(code) = input.code.as_deref().filter(|c| !c.is_empty()) else {
            return Err(LoginFactorError::Required);
        };
        let via = match self.check_code(subject, &sealed, code).await {
            Ok(Some(CodeMatch::Totp)) => "password+totp",
            Ok(Some(CodeMatch::Recovery)) => "password+recovery_code",
            Ok(None) => return Err(LoginFactorError::Invalid),
            Err(FactorError::Store(error)) => return Err(LoginFactorError::Store(error)),
            Err(_) => return Err(LoginFactorError::Invalid),
        };
        let device_token = match input.remember {
            None => None,
            Some(remember) => {
                let token = trust::new_token();
                let hash = self
                    .inner
                    .key
                    .device_hash(subject, &self.inner.epoch, &token);
                self.store()
                    .trust_device(subject, &hash, now.saturating_add(remember.seconds()), now)
                    .await
                    .map_err(LoginFactorError::Store)?;
                Some(token)
            }
        };
        Ok(Passed { via, device_token })
    }
}

/// A code that is present and not empty, or [`FactorError::CodeRequired`].
fn parse_required(code: &str) -> Result<&str, FactorError> {
    let code = code.trim();
    if code.is_empty() {
        Err(FactorError::CodeRequired)
    } else {
        Ok(code)
    }
}

impl fmt::Debug for SecondFactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecondFactor")
            .field("issuer", &self.inner.issuer)
            .field("setup_lifetime", &self.inner.setup_lifetime)
            .finish_non_exhaustive()
    }
}

impl From<LoginFactorError> for crate::error::LoginError {
    fn from(error: LoginFactorError) -> Self {
        use crate::error::LoginError;
        match error {
            LoginFactorError::Required => LoginError::TotpRequired,
            LoginFactorError::Invalid => LoginError::InvalidTotp,
            LoginFactorError::Store(FactorStoreError::Unavailable(why)) => {
                tracing::warn!(reason = %why, "second-factor store unavailable: login refused");
                LoginError::SecondFactorUnavailable {
                    retry_after_secs: 5,
                }
            }
            LoginFactorError::Store(error) => LoginError::Store(Box::new(error)),
        }
    }
}
