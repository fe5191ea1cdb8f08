//! Metrics: every series the crate records, in one place. Two ways out:
//!
//! - with the `metrics` feature, into the [`metrics`](https://docs.rs/metrics) facade, the
//!   ecosystem's metrics API: install a recorder (metrics-exporter-prometheus, OpenTelemetry,
//!   StatsD, …) and every login, refresh, logout, rejection, throttle refusal, CSRF refusal,
//!   second-factor outcome, JWKS fetch and Redis error is counted under the series of
//!   docs/operations.md, with login and refresh latency histograms and a gauge of the local
//!   revocation set's size. Nothing to attach: the pieces record whether or not they have a
//!   [`Metrics`]. `describe()` registers each series' help text and unit with the recorder.
//! - [`Metrics`], atomic counters of one assembly (no feature, no global recorder): attach clones
//!   of it to the pieces that count
//!   ([`LoginKit::metrics`](crate::kit::LoginKit::metrics),
//!   [`JwtAuthLayer::metrics`](crate::auth::JwtAuthLayer::metrics),
//!   [`LoginService::metrics`](crate::login::LoginService::metrics),
//!   [`RefreshService::metrics`](crate::login::RefreshService::metrics)), and read a
//!   [`MetricsSnapshot`] whenever your exporter scrapes. Counting is one relaxed atomic add; a
//!   component without metrics attached counts nothing here. Its samples use the facade's
//!   series names (a subset of the series, `reason` their only label).
//!
//! Exporting the snapshot, here in Prometheus' text format (any other system works the same
//! way: walk [`MetricsSnapshot::samples`]):
//!
//! ```
//! use std::fmt::Write;
//! use tower_jwt_login::auth::JwtAuthLayer;
//! use tower_jwt_login::login::{LoginService, RefreshService};
//! use tower_jwt_login::metrics::Metrics;
//! use tower_jwt_login::store::PlaintextUser;
//! use tower_jwt_login::{JwtConfig, JwtKey};
//!
//! let metrics = Metrics::new();
//! let jwt = JwtConfig::new(JwtKey::random()).build().unwrap();
//! let layer = JwtAuthLayer::new(jwt.clone()).metrics(metrics.clone());
//! let login = LoginService::new(jwt.clone(), PlaintextUser::new("admin", "datarhei"))
//!     .metrics(metrics.clone());
//! let refresh = RefreshService::new(jwt).metrics(metrics.clone());
//! # let _ = (layer, login, refresh);
//!
//! // Somewhere in a `GET /metrics` handler:
//! let mut text = String::new();
//! for sample in metrics.snapshot().samples() {
//!     match sample.reason {
//!         Some(reason) => writeln!(text, "{}{{reason=\"{reason}\"}} {}", sample.name, sample.value),
//!         None => writeln!(text, "{} {}", sample.name, sample.value),
//!     }
//!     .unwrap();
//! }
//! assert!(text.contains("jwt_login_successes_total 0\n"));
//! assert!(text.contains("jwt_login_failures_total{reason=\"invalid_credentials\"} 0\n"));
//! assert!(text.contains("jwt_auth_rejections_total{reason=\"missing_token\"} 0\n"));
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::error::{AuthError, LoginError, TokenError};

/// Every series the crate records: name, kind (its unit for histograms), help text. docs/operations.md lists them with
/// their labels; `describe()` (feature `metrics`) hands them to the recorder.
pub const SERIES: &[(&str, SeriesKind, &str)] = &[
    (
        LOGIN_SUCCESSES,
        SeriesKind::Counter,
        "Logins answered with a token pair, by `via`.",
    ),
    (
        LOGIN_FAILURES,
        SeriesKind::Counter,
        "Failed logins (400, 401, 413, 500, 503), by `reason`; throttled ones are in jwt_login_throttled_total.",
    ),
    (
        LOGIN_THROTTLED,
        SeriesKind::Counter,
        "Logins refused by the throttle (429), by the refusing `limit`.",
    ),
    (
        LOGIN_DURATION,
        SeriesKind::Seconds,
        "Time to answer a login (without the failure delay), by `outcome`.",
    ),
    (
        REFRESHES,
        SeriesKind::Counter,
        "Refreshes answered with a new access token.",
    ),
    (
        REFRESH_FAILURES,
        SeriesKind::Counter,
        "Refused refreshes (401, 500, 503), by `reason`.",
    ),
    (
        REFRESH_DURATION,
        SeriesKind::Seconds,
        "Time to answer a refresh, by `outcome`.",
    ),
    (
        LOGOUTS,
        SeriesKind::Counter,
        "Logouts, by `scope` (`session`, `all`), `outcome` and, unless a success, `reason`.",
    ),
    (
        REJECTIONS,
        SeriesKind::Counter,
        "Requests the guard refused with 401, by `reason`.",
    ),
    (
        FORBIDDEN,
        SeriesKind::Counter,
        "Requests the guard refused with 403 (a valid token short of the path's requirement).",
    ),
    (
        CSRF_REFUSALS,
        SeriesKind::Counter,
        "Requests refused by the browser mode's CSRF check (403).",
    ),
    (
        SECOND_FACTOR,
        SeriesKind::Counter,
        "Second-factor (TOTP) outcomes, by `action`, `outcome` and, unless a success, `reason`.",
    ),
    (
        JWKS_FETCHES,
        SeriesKind::Counter,
        "Fetches of an Auth0 tenant's JWKS.",
    ),
    (
        JWKS_FETCH_FAILURES,
        SeriesKind::Counter,
        "JWKS fetches that failed (network, status, unusable document).",
    ),
    (
        REDIS_ERRORS,
        SeriesKind::Counter,
        "Redis calls that failed, by `kind` (`unavailable`: unreachable, timed out, read-only; `error`: anything else).",
    ),
    (
        REVOKED_ENTRIES,
        SeriesKind::Gauge,
        "Entries (sessions and subjects) in the local revocation set.",
    ),
];

/// The kind of a series in [`SERIES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SeriesKind {
    /// A counter (only grows).
    Counter,
    /// A histogram of durations in seconds.
    Seconds,
    /// A gauge.
    Gauge,
}

const LOGIN_SUCCESSES: &str = "jwt_login_successes_total";
const LOGIN_FAILURES: &str = "jwt_login_failures_total";
const LOGIN_THROTTLED: &str = "jwt_login_throttled_total";
const LOGIN_DURATION: &str = "jwt_login_duration_seconds";
const REFRESHES: &str = "jwt_refreshes_total";
const REFRESH_FAILURES: &str = "jwt_refresh_failures_total";
const REFRESH_DURATION: &str = "jwt_refresh_duration_seconds";
const LOGOUTS: &str = "jwt_logouts_total";
const REJECTIONS: &str = "jwt_auth_rejections_total";
const FORBIDDEN: &str = "jwt_auth_forbidden_total";
const CSRF_REFUSALS: &str = "jwt_csrf_refusals_total";
const SECOND_FACTOR: &str = "jwt_second_factor_total";
const JWKS_FETCHES: &str = "jwt_jwks_fetches_total";
const JWKS_FETCH_FAILURES: &str = "jwt_jwks_fetch_failures_total";
const REDIS_ERRORS: &str = "jwt_redis_errors_total";
const REVOKED_ENTRIES: &str = "jwt_revoked_entries";

/// Registers the help text and unit of every series in [`SERIES`] with the installed recorder
/// (Prometheus shows them as `# HELP`). Call it once, after installing the recorder.
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub fn describe() {
    for &(name, kind, help) in SERIES {
        match kind {
            SeriesKind::Counter => ::metrics::describe_counter!(name, help),
            SeriesKind::Seconds => {
                ::metrics::describe_histogram!(name, ::metrics::Unit::Seconds, help);
            }
            SeriesKind::Gauge => ::metrics::describe_gauge!(name, help),
        }
    }
}

/// Adds one to a counter of the facade. With a literal name and literal labels the key is a
/// static (no allocation: the guard's rejections use this form); otherwise the labels are
/// collected per call.
#[cfg(feature = "metrics")]
macro_rules! add {
    ($($key:tt)*) => {
        ::metrics::counter!($($key)*).increment(1)
    };
}

/// The seconds since `started`, into a histogram of the facade.
#[cfg(feature = "metrics")]
fn observe(name: &'static str, outcome: &'static str, started: Instant) {
    ::metrics::histogram!(name, "outcome" => outcome).record(started.elapsed().as_secs_f64());
}

/// The `outcome` of a login (the audit event's): `success`, `failure`, `throttled`,
/// `unavailable` or `error`.
pub(crate) fn login_outcome(error: &LoginError) -> &'static str {
    match error {
        LoginError::Throttled(_) => "throttled",
        LoginError::Unavailable { .. } | LoginError::SecondFactorUnavailable { .. } => {
            "unavailable"
        }
        LoginError::Store(_) => "error",
        _ => "failure",
    }
}

/// A login answered with a token pair (`via`: `password`, `auth0`, `api_key`,
/// `password+totp`, …), `started` when its request came in.
pub(crate) fn login_succeeded(metrics: Option<&Metrics>, via: &'static str, started: Instant) {
    if let Some(metrics) = metrics {
        metrics.record_login_success();
    }
    #[cfg(feature = "metrics")]
    {
        add!(LOGIN_SUCCESSES, "via" => via);
        observe(LOGIN_DURATION, "success", started);
        if let Some(method) = via.strip_prefix("password+") {
            add!(SECOND_FACTOR, "action" => "login", "outcome" => "success", "method" => method);
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (via, started);
}

/// A refused login, `started` when its request came in.
pub(crate) fn login_failed(metrics: Option<&Metrics>, error: &LoginError, started: Instant) {
    if let Some(metrics) = metrics {
        metrics.record_login_failure(error);
    }
    #[cfg(feature = "metrics")]
    {
        let outcome = login_outcome(error);
        match error {
            LoginError::Throttled(refused) => {
                add!(LOGIN_THROTTLED, "limit" => refused.scope().as_str());
            }
            _ => add!(LOGIN_FAILURES, "reason" => error.reason()),
        }
        if matches!(
            error,
            LoginError::TotpRequired
                | LoginError::InvalidTotp
                | LoginError::SecondFactorUnavailable { .. }
        ) {
            add!(SECOND_FACTOR, "action" => "login", "outcome" => outcome, "reason" => error.reason());
        }
        observe(LOGIN_DURATION, outcome, started);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = started;
}

/// A refresh's outcome (`success`, `failure`, `unavailable`, `error`) and, unless a success,
/// its reason.
pub(crate) fn refreshed(metrics: Option<&Metrics>, outcome: &'static str, reason: &'static str) {
    if let Some(metrics) = metrics {
        if outcome == "success" {
            metrics.record_refresh();
        } else {
            metrics.record_refresh_failure();
        }
    }
    #[cfg(feature = "metrics")]
    if outcome == "success" {
        add!(REFRESHES);
    } else {
        add!(REFRESH_FAILURES, "reason" => reason);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = reason;
}

/// A refresh answered with `status`, `started` when its request came in.
pub(crate) fn refresh_timed(status: http::StatusCode, started: Instant) {
    #[cfg(feature = "metrics")]
    observe(
        REFRESH_DURATION,
        match status.as_u16() {
            200 => "success",
            503 => "unavailable",
            500..=599 => "error",
            _ => "failure",
        },
        started,
    );
    #[cfg(not(feature = "metrics"))]
    let _ = (status, started);
}

/// A logout (`everywhere`: `POST /api/logout/all`) with its outcome and, unless a success, its
/// reason.
pub(crate) fn logged_out(everywhere: bool, outcome: &'static str, reason: Option<&'static str>) {
    #[cfg(feature = "metrics")]
    {
        let scope = if everywhere { "all" } else { "session" };
        match reason {
            None => add!(LOGOUTS, "scope" => scope, "outcome" => outcome),
            Some(reason) => {
                add!(LOGOUTS, "scope" => scope, "outcome" => outcome, "reason" => reason)
            }
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (everywhere, outcome, reason);
}

/// A request the guard refused: 401 under its reason, or 403. Allocation-free (static keys).
pub(crate) fn rejected(metrics: Option<&Metrics>, error: &AuthError) {
    if let Some(metrics) = metrics {
        metrics.record_rejection(error);
    }
    #[cfg(feature = "metrics")]
    {
        // The names as literals (those of REJECTIONS and FORBIDDEN): with literal names and
        // labels the facade's keys are statics, built at compile time.
        macro_rules! rejection {
            ($reason:literal) => {
                add!("jwt_auth_rejections_total", "reason" => $reason)
            };
        }
        match error {
            AuthError::MissingToken => rejection!("missing_token"),
            AuthError::MultipleAuthorizationHeaders | AuthError::InvalidAuthorizationHeader => {
                rejection!("invalid_header");
            }
            AuthError::InvalidToken(TokenError::Expired) => rejection!("expired"),
            AuthError::InvalidToken(TokenError::WrongTokenUse) => rejection!("wrong_token_use"),
            AuthError::InvalidToken(TokenError::Revoked) => rejection!("revoked"),
            AuthError::Forbidden => add!("jwt_auth_forbidden_total"),
            _ => rejection!("invalid_token"),
        }
    }
}

/// A request refused by the browser mode's CSRF check.
pub(crate) fn csrf_refused(metrics: Option<&Metrics>) {
    if let Some(metrics) = metrics {
        metrics.record_csrf_refusal();
    }
    #[cfg(feature = "metrics")]
    add!("jwt_csrf_refusals_total");
}

/// A second-factor management action (`setup`, `enable`, `recovery_codes`, `disable`) with its
/// outcome (`success`, `failure`, `throttled`) and, unless a success, its reason.
pub(crate) fn second_factor(
    action: &'static str,
    outcome: &'static str,
    reason: Option<&'static str>,
) {
    #[cfg(feature = "metrics")]
    match reason {
        None => add!(SECOND_FACTOR, "action" => action, "outcome" => outcome),
        Some(reason) => {
            add!(SECOND_FACTOR, "action" => action, "outcome" => outcome, "reason" => reason);
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (action, outcome, reason);
}

/// One fetch of an Auth0 tenant's JWKS (`ok`: it gave a usable key set).
#[cfg_attr(not(feature = "auth0"), allow(dead_code))]
pub(crate) fn jwks_fetched(metrics: Option<&Metrics>, ok: bool) {
    if let Some(metrics) = metrics {
        metrics.record_jwks_fetch(ok);
    }
    #[cfg(feature = "metrics")]
    {
        add!(JWKS_FETCHES);
        if !ok {
            add!(JWKS_FETCH_FAILURES);
        }
    }
}

/// A failed Redis call: `unavailable` (unreachable, timed out, read-only primary) or not.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn redis_failed(unavailable: bool) {
    #[cfg(feature = "metrics")]
    add!(REDIS_ERRORS, "kind" => if unavailable { "unavailable" } else { "error" });
    #[cfg(not(feature = "metrics"))]
    let _ = unavailable;
}

/// The local revocation set now holds `entries`.
pub(crate) fn revoked_entries(entries: usize) {
    #[cfg(feature = "metrics")]
    ::metrics::gauge!(REVOKED_ENTRIES).set(entries as f64);
    #[cfg(not(feature = "metrics"))]
    let _ = entries;
}

/// Shared atomic counters. Cloning is cheap and every clone counts into the same counters.
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    login_successes: AtomicU64,
    login_missing_credentials: AtomicU64,
    login_invalid_credentials: AtomicU64,
    login_auth0_rejected: AtomicU64,
    login_payload_too_large: AtomicU64,
    login_store_error: AtomicU64,
    login_other: AtomicU64,
    throttled: AtomicU64,
    refreshes: AtomicU64,
    refresh_failures: AtomicU64,
    rejected_missing_token: AtomicU64,
    rejected_invalid_header: AtomicU64,
    rejected_expired: AtomicU64,
    rejected_wrong_token_use: AtomicU64,
    rejected_invalid_token: AtomicU64,
    jwks_fetches: AtomicU64,
    jwks_fetch_failures: AtomicU64,
    csrf_refusals: AtomicU64,
    forbidden: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl Metrics {
    /// Fresh counters, all zero.
    pub fn new() -> Self {
        Metrics::default()
    }

    /// Counts a successful login (username/password or Auth0).
    pub fn record_login_success(&self) {
        bump(&self.inner.login_successes);
    }

    /// Counts a failed login under its reason ([`LoginError::reason`]).
    pub fn record_login_failure(&self, error: &LoginError) {
        let c = &self.inner;
        bump(match error.reason() {
            "missing_credentials" => &c.login_missing_credentials,
            "invalid_credentials" => &c.login_invalid_credentials,
            "auth0_rejected" => &c.login_auth0_rejected,
            "payload_too_large" => &c.login_payload_too_large,
            "store_error" => &c.login_store_error,
            "throttled" | "too_many_requests" => &c.throttled,
            _ => &c.login_other,
        });
    }

    /// Counts a request refused by the login throttle (429).
    pub fn record_throttled(&self) {
        bump(&self.inner.throttled);
    }

    /// Counts a refresh that issued a new access token.
    pub fn record_refresh(&self) {
        bump(&self.inner.refreshes);
    }

    /// Counts a refused refresh (missing, invalid or non-refresh token).
    pub fn record_refresh_failure(&self) {
        bump(&self.inner.refresh_failures);
    }

    /// Counts a request the [`JwtAuthLayer`](crate::auth::JwtAuthLayer) refused, under its
    /// reason ([`AuthError::Forbidden`], a 403, apart from the 401s).
    pub fn record_rejection(&self, error: &AuthError) {
        let c = &self.inner;
        bump(match error {
            AuthError::MissingToken => &c.rejected_missing_token,
            AuthError::MultipleAuthorizationHeaders | AuthError::InvalidAuthorizationHeader => {
                &c.rejected_invalid_header
            }
            AuthError::InvalidToken(TokenError::Expired) => &c.rejected_expired,
            AuthError::InvalidToken(TokenError::WrongTokenUse) => &c.rejected_wrong_token_use,
            AuthError::Forbidden => &c.forbidden,
            _ => &c.rejected_invalid_token,
        });
    }

    /// Counts one fetch of an Auth0 tenant's JWKS, successful or not (`ok` says which).
    pub fn record_jwks_fetch(&self, ok: bool) {
        bump(&self.inner.jwks_fetches);
        if !ok {
            bump(&self.inner.jwks_fetch_failures);
        }
    }

    /// Counts a request refused by the browser mode's CSRF check (403).
    pub fn record_csrf_refusal(&self) {
        bump(&self.inner.csrf_refusals);
    }

    /// The current values.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let c = &self.inner;
        MetricsSnapshot {
            login_successes: read(&c.login_successes),
            login_failures: LoginFailures {
                missing_credentials: read(&c.login_missing_credentials),
                invalid_credentials: read(&c.login_invalid_credentials),
                auth0_rejected: read(&c.login_auth0_rejected),
                payload_too_large: read(&c.login_payload_too_large),
                store_error: read(&c.login_store_error),
                other: read(&c.login_other),
            },
            throttled: read(&c.throttled),
            refreshes: read(&c.refreshes),
            refresh_failures: read(&c.refresh_failures),
            rejections: Rejections {
                missing_token: read(&c.rejected_missing_token),
                invalid_header: read(&c.rejected_invalid_header),
                expired: read(&c.rejected_expired),
                wrong_token_use: read(&c.rejected_wrong_token_use),
                invalid_token: read(&c.rejected_invalid_token),
            },
            jwks_fetches: read(&c.jwks_fetches),
            jwks_fetch_failures: read(&c.jwks_fetch_failures),
            csrf_refusals: read(&c.csrf_refusals),
            forbidden: read(&c.forbidden),
        }
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.snapshot().fmt(f)
    }
}

/// The counters' values at one moment ([`Metrics::snapshot`]). Every counter only grows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Logins answered with a token pair.
    pub login_successes: u64,
    /// Failed logins, by reason (throttled ones are in [`throttled`](Self::throttled)).
    pub login_failures: LoginFailures,
    /// Login requests refused by the throttle (429).
    pub throttled: u64,
    /// Refreshes answered with a new access token.
    pub refreshes: u64,
    /// Refused refreshes.
    pub refresh_failures: u64,
    /// Requests the layer refused, by reason.
    pub rejections: Rejections,
    /// JWKS fetches, successful or not.
    pub jwks_fetches: u64,
    /// JWKS fetches that failed (network, status, unusable document).
    pub jwks_fetch_failures: u64,
    /// Requests refused by the browser mode's CSRF check (403).
    pub csrf_refusals: u64,
    /// Requests the layer refused with 403 (a valid token short of the path's requirement).
    pub forbidden: u64,
}

/// Failed logins by reason (the labels of [`LoginError::reason`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoginFailures {
    /// 400: no usable credentials.
    pub missing_credentials: u64,
    /// 401: wrong username or password.
    pub invalid_credentials: u64,
    /// 401: an Auth0 token claimed by a tenant but refused.
    pub auth0_rejected: u64,
    /// 413: body over the limit.
    pub payload_too_large: u64,
    /// 500: the credential store failed.
    pub store_error: u64,
    /// Any other reason.
    pub other: u64,
}

impl LoginFailures {
    /// All failed logins.
    pub fn total(&self) -> u64 {
        self.missing_credentials
            + self.invalid_credentials
            + self.auth0_rejected
            + self.payload_too_large
            + self.store_error
            + self.other
    }
}

/// Requests refused by the layer, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rejections {
    /// No `Authorization` header.
    pub missing_token: u64,
    /// An `Authorization` header that is not one `Bearer <token>`.
    pub invalid_header: u64,
    /// An expired token.
    pub expired: u64,
    /// A refresh token where an access token is required.
    pub wrong_token_use: u64,
    /// Any other invalid token (signature, algorithm, claims, format).
    pub invalid_token: u64,
}

impl Rejections {
    /// All refused requests.
    pub fn total(&self) -> u64 {
        self.missing_token
            + self.invalid_header
            + self.expired
            + self.wrong_token_use
            + self.invalid_token
    }
}

/// One counter value for export: a metric name, an optional `reason` label, the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sample {
    /// The metric name, Prometheus style (`jwt_login_failures_total`).
    pub name: &'static str,
    /// The `reason` label, for counters split by reason.
    pub reason: Option<&'static str>,
    /// The counter's value.
    pub value: u64,
}

impl MetricsSnapshot {
    /// Every counter as a [`Sample`], in a fixed order, for exporters.
    pub fn samples(&self) -> impl Iterator<Item = Sample> {
        let f = &self.login_failures;
        let r = &self.rejections;
        [
            (LOGIN_SUCCESSES, None, self.login_successes),
            (
                LOGIN_FAILURES,
                Some("missing_credentials"),
                f.missing_credentials,
            ),
            (
                LOGIN_FAILURES,
                Some("invalid_credentials"),
                f.invalid_credentials,
            ),
            (LOGIN_FAILURES, Some("auth0_rejected"), f.auth0_rejected),
            (
                LOGIN_FAILURES,
                Some("payload_too_large"),
                f.payload_too_large,
            ),
            (LOGIN_FAILURES, Some("store_error"), f.store_error),
            (LOGIN_FAILURES, Some("other"), f.other),
            (LOGIN_THROTTLED, None, self.throttled),
            (REFRESHES, None, self.refreshes),
            (REFRESH_FAILURES, None, self.refresh_failures),
            (REJECTIONS, Some("missing_token"), r.missing_token),
            (REJECTIONS, Some("invalid_header"), r.invalid_header),
            (REJECTIONS, Some("expired"), r.expired),
            (REJECTIONS, Some("wrong_token_use"), r.wrong_token_use),
            (REJECTIONS, Some("invalid_token"), r.invalid_token),
            (FORBIDDEN, None, self.forbidden),
            (JWKS_FETCHES, None, self.jwks_fetches),
            (JWKS_FETCH_FAILURES, None, self.jwks_fetch_failures),
            (CSRF_REFUSALS, None, self.csrf_refusals),
        ]
        .into_iter()
        .map(|(name, reason, value)| Sample {
            name,
            reason,
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_documented_once_and_named_in_prometheus_style() {
        let docs = include_str!("../docs/operations.md");
        for &(name, kind, help) in SERIES {
            let row = format!("| `{name}` |");
            assert_eq!(
                docs.matches(&row).count(),
                1,
                "{name} in docs/operations.md"
            );
            assert!(name.starts_with("jwt_") && !help.is_empty(), "{name}");
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
            match kind {
                SeriesKind::Counter => assert!(name.ends_with("_total"), "{name}"),
                SeriesKind::Seconds => assert!(name.ends_with("_seconds"), "{name}"),
                SeriesKind::Gauge => assert!(!name.ends_with("_total"), "{name}"),
            }
        }
        let samples = MetricsSnapshot::default();
        for sample in samples.samples() {
            assert!(
                SERIES.iter().any(|(name, ..)| *name == sample.name),
                "{} is no series",
                sample.name
            );
        }
    }

    #[test]
    fn counts_by_reason() {
        let m = Metrics::new();
        let clone = m.clone();
        clone.record_login_success();
        m.record_login_failure(&LoginError::InvalidCredentials);
        m.record_login_failure(&LoginError::MissingCredentials);
        m.record_throttled();
        m.record_refresh();
        m.record_refresh_failure();
        m.record_rejection(&AuthError::MissingToken);
        m.record_rejection(&AuthError::InvalidToken(TokenError::Expired));
        m.record_rejection(&AuthError::InvalidToken(TokenError::WrongTokenUse));
        m.record_rejection(&AuthError::InvalidToken(TokenError::InvalidSignature));
        m.record_rejection(&AuthError::InvalidAuthorizationHeader);
        m.record_jwks_fetch(true);
        m.record_jwks_fetch(false);
        let s = m.snapshot();
        assert_eq!(s.login_successes, 1);
        assert_eq!(s.login_failures.invalid_credentials, 1);
        assert_eq!(s.login_failures.missing_credentials, 1);
        assert_eq!(s.login_failures.total(), 2);
        assert_eq!((s.throttled, s.refreshes, s.refresh_failures), (1, 1, 1));
        assert_eq!(s.rejections.total(), 5);
        assert_eq!(s.rejections.expired, 1);
        assert_eq!(s.rejections.wrong_token_use, 1);
        assert_eq!((s.jwks_fetches, s.jwks_fetch_failures), (2, 1));
        let total: u64 = s.samples().map(|x| x.value).sum();
        assert_eq!(total, 1 + 2 + 1 + 2 + 5 + 3);
    }
}
