//! [`Metrics`]: atomic counters of logins, refreshes, rejections, throttling and JWKS fetches,
//! for any metrics system.
//!
//! Create one [`Metrics`], attach clones of it to the pieces that count
//! ([`JwtAuthLayer::metrics`](crate::auth::JwtAuthLayer::metrics),
//! [`LoginService::metrics`](crate::login::LoginService::metrics),
//! [`RefreshService::metrics`](crate::login::RefreshService::metrics)), and read a
//! [`MetricsSnapshot`] whenever your exporter scrapes. Counting is one relaxed atomic add; a
//! component without metrics attached counts nothing.
//!
//! Exporting, here in Prometheus' text format (any other system works the same way: walk
//! [`MetricsSnapshot::samples`]):
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

use crate::error::{AuthError, LoginError, TokenError};

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

    /// Counts a request the [`JwtAuthLayer`](crate::auth::JwtAuthLayer) refused, under its reason.
    pub fn record_rejection(&self, error: &AuthError) {
        let c = &self.inner;
        bump(match error {
            AuthError::MissingToken => &c.rejected_missing_token,
            AuthError::MultipleAuthorizationHeaders | AuthError::InvalidAuthorizationHeader => {
                &c.rejected_invalid_header
            }
            AuthError::InvalidToken(TokenError::Expired) => &c.rejected_expired,
            AuthError::InvalidToken(TokenError::WrongTokenUse) => &c.rejected_wrong_token_use,
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
        const LOGIN_FAILURES: &str = "jwt_login_failures_total";
        const REJECTIONS: &str = "jwt_auth_rejections_total";
        let f = &self.login_failures;
        let r = &self.rejections;
        [
            ("jwt_login_successes_total", None, self.login_successes),
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
            ("jwt_login_throttled_total", None, self.throttled),
            ("jwt_refreshes_total", None, self.refreshes),
            ("jwt_refresh_failures_total", None, self.refresh_failures),
            (REJECTIONS, Some("missing_token"), r.missing_token),
            (REJECTIONS, Some("invalid_header"), r.invalid_header),
            (REJECTIONS, Some("expired"), r.expired),
            (REJECTIONS, Some("wrong_token_use"), r.wrong_token_use),
            (REJECTIONS, Some("invalid_token"), r.invalid_token),
            ("jwt_jwks_fetches_total", None, self.jwks_fetches),
            (
                "jwt_jwks_fetch_failures_total",
                None,
                self.jwks_fetch_failures,
            ),
            ("jwt_csrf_refusals_total", None, self.csrf_refusals),
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
