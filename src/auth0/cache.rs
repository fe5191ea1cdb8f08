//! [`JwksCache`]: one tenant's signing keys, fetched from its JWKS URL and kept fresh.
//!
//! - **Reads take no lock**: the key set sits behind an [`ArcSwap`]; a fetch swaps in a new one.
//! - **Nothing at start-up**: the first lookup fetches, so a server starts while the endpoint is
//!   down.
//! - **Periodic refresh**: once the keys are older than
//!   [`refresh_interval`](JwksSettings::refresh_interval) (default 1 h), the next lookup starts
//!   a refresh in the background and is answered from the keys at hand. A failed refresh is
//!   retried no sooner than one refill interval of the re-fetch budget later (12 s by default).
//! - **Unknown `kid`**: the lookup re-fetches the document at once, so a key the tenant has just
//!   published is accepted on its first use. These re-fetches — and only these — are limited by
//!   the [`refetch_budget`](JwksSettings::refetch_budget) (default 5 per minute, a token bucket
//!   as in node's `jwks-rsa`): up to 5 back to back, then one every 12 s. They are single-flight:
//!   lookups that miss while a fetch is in flight wait for it and take its result, so a burst of
//!   invented `kid`s costs one fetch, and a sustained stream of them at most the budget. Any
//!   fetch brings the whole document, so a real rotation still arrives with the next re-fetch,
//!   whoever caused it.
//! - **Outages**: a fetch that fails, times out, is too large or is not a JWKS with a usable key
//!   changes nothing; the cached keys keep serving.
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use tower_jwt_login::auth0::{FetchError, JwksCache, JwksFetcher, JwksSettings};
//!
//! struct Down;
//! impl JwksFetcher for Down {
//!     async fn fetch(&self, _url: &str, _max: usize) -> Result<Bytes, FetchError> {
//!         Err(FetchError::Timeout)
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let cache = JwksCache::new(
//!     "https://example.eu.auth0.com/.well-known/jwks.json",
//!     Down,
//!     // At most 10 unknown-kid re-fetches a minute (the default is 5).
//!     JwksSettings::default().refetch_budget(10, Duration::from_secs(60)),
//! );
//! assert!(cache.key_ids().is_empty()); // constructing it fetched nothing
//! assert!(cache.refresh().await.is_err());
//! assert_eq!(cache.fetch_count(), 1);
//! # });
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::Mutex;

use super::fetch::{FetchError, HttpsFetcher, JwksFetcher};
use crate::metrics::Metrics;
use crate::token::jwk::{self, DocumentError, JwkAlg, PublicJwk};

/// One usable verification key of a tenant.
pub(crate) struct VerifyingKey {
    pub(crate) alg: jsonwebtoken::Algorithm,
    pub(crate) key: jsonwebtoken::DecodingKey,
}

/// The keys of one fetched document.
pub(crate) type KeySet = jwk::KeySet<VerifyingKey>;

/// A JWKS document → the tenant's verification keys (the JWK checks are shared with the key
/// ring: `crate::token::jwk`).
fn parse_jwks(bytes: &[u8], url: &str) -> Result<KeySet, DocumentError> {
    use jsonwebtoken::{Algorithm, DecodingKey};
    jwk::parse_jwks(bytes, url, |alg, key| VerifyingKey {
        alg: match alg {
            JwkAlg::RS256 => Algorithm::RS256,
            JwkAlg::PS256 => Algorithm::PS256,
            JwkAlg::ES256 => Algorithm::ES256,
            JwkAlg::EdDSA => Algorithm::EdDSA,
        },
        key: match key {
            PublicJwk::Rsa { n, e } => DecodingKey::from_rsa_raw_components(n, e),
            PublicJwk::P256 { x, y } => {
                let mut point = Vec::with_capacity(65);
                point.push(0x04);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                DecodingKey::from_ec_der(&point)
            }
            PublicJwk::Ed25519 { x } => DecodingKey::from_ed_der(x),
        },
    })
}

/// How a [`JwksCache`] fetches and refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksSettings {
    refresh_interval: Duration,
    refetch_count: u32,
    refetch_period: Duration,
    fetch_timeout: Duration,
    max_bytes: usize,
}

impl Default for JwksSettings {
    /// Refresh after 1 h, at most 5 unknown-`kid` re-fetches per minute, fetch timeout 5 s,
    /// documents up to 256 KiB (Auth0's are about 3 KiB).
    fn default() -> Self {
        JwksSettings {
            refresh_interval: Duration::from_secs(3600),
            refetch_count: 5,
            refetch_period: Duration::from_secs(60),
            fetch_timeout: Duration::from_secs(5),
            max_bytes: 256 * 1024,
        }
    }
}

/// The longest budget period honoured: long enough for any sane setting, short enough that
/// `Instant` arithmetic cannot overflow.
const MAX_REFETCH_PERIOD: Duration = Duration::from_secs(24 * 3600);

impl JwksSettings {
    /// Keys older than this are refreshed in the background on the next lookup.
    #[must_use]
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// Limits the re-fetches caused by an unknown `kid` to `count` per `per` (default 5 per
    /// minute), as a token bucket: `count` may run back to back, then one more each
    /// `per / count`. Every fetch a lookup starts because its `kid` is not cached draws from it —
    /// the very first fetch of an empty cache included, so an endpoint that is down is asked at
    /// most at this pace. Periodic refreshes and [`JwksCache::refresh`] neither draw from the
    /// budget nor wait for it.
    ///
    /// A `count` of 0 is taken as 1 (with no re-fetch at all, a cache would never get its first
    /// keys); `per` is capped at 24 h; `Duration::ZERO` lifts the limit (single flight still
    /// applies: concurrent misses share one fetch).
    #[must_use]
    pub fn refetch_budget(mut self, count: u32, per: Duration) -> Self {
        self.refetch_count = count.max(1);
        self.refetch_period = per.min(MAX_REFETCH_PERIOD);
        self
    }

    /// The former gate: one cooldown armed by every fetch, the first included, so a key published
    /// within the cooldown after the first login was refused as `unknown key`. Kept for existing
    /// callers as an unknown-`kid` budget of one re-fetch per `cooldown`; only unknown-`kid`
    /// re-fetches are limited now.
    #[deprecated(
        note = "use `refetch_budget(count, per)`; `cooldown(d)` is `refetch_budget(1, d)`"
    )]
    #[must_use]
    pub fn cooldown(self, cooldown: Duration) -> Self {
        self.refetch_budget(1, cooldown)
    }

    /// The longest a fetch may take, from connecting to the last byte.
    #[must_use]
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// The largest JWKS document accepted, in bytes.
    #[must_use]
    pub fn max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// One token's worth of the budget: `per / count` (zero when unlimited).
    fn refill_interval(&self) -> Duration {
        self.refetch_period / self.refetch_count.max(1)
    }
}

/// The outcome of looking up a `kid`.
pub(crate) enum Lookup {
    Found(Arc<VerifyingKey>),
    /// The document lists the `kid`, but the key is not used (the fixed reason).
    Refused(&'static str),
    /// Not in the keys, and no re-fetch allowed or the re-fetch did not bring it.
    Unknown,
    /// No key set was ever fetched successfully.
    Unavailable,
}

/// One JWKS URL's keys. Cheap to clone (shared state).
pub struct JwksCache<F = HttpsFetcher> {
    inner: Arc<Inner<F>>,
}

impl<F> Clone for JwksCache<F> {
    fn clone(&self) -> Self {
        JwksCache {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<F> fmt::Debug for JwksCache<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksCache")
            .field("url", &self.inner.url)
            .field("settings", &self.inner.settings)
            .field("key_ids", &self.inner.keys.load().kids())
            .finish_non_exhaustive()
    }
}

struct Inner<F> {
    url: String,
    fetcher: Arc<F>,
    settings: JwksSettings,
    keys: ArcSwap<KeySet>,
    /// Held for the duration of a fetch: the single flight. Behind an `Arc` so a background
    /// refresh can own it.
    gate: Arc<Mutex<Gate>>,
    fetches: AtomicU64,
    /// Fetches finished (successful or not); bumped under the gate after the keys are stored.
    /// A lookup that missed and then sees it move while waiting for the gate takes that fetch's
    /// result instead of starting another.
    finished: AtomicU64,
    /// Where fetches are also counted, once the app attaches its [`Metrics`].
    metrics: OnceLock<Metrics>,
}

struct Gate {
    /// When the last fetch ended (successful or not). A background refresh is not started
    /// within one refill interval of it, so a failing endpoint is not asked again by every
    /// login while the keys are due.
    last_attempt: Option<Instant>,
    /// The unknown-`kid` re-fetch budget.
    budget: Budget,
}

/// A token bucket kept as one instant (GCRA): `count` tokens, one more each `per / count`.
#[derive(Default)]
struct Budget {
    /// When the bucket will be full again; `None`: full.
    full_at: Option<Instant>,
}

impl Budget {
    /// Takes a token if one is left at `now`.
    fn take(&mut self, now: Instant, settings: &JwksSettings) -> bool {
        let interval = settings.refill_interval();
        if interval.is_zero() {
            return true;
        }
        let full_at = self.full_at.map_or(now, |t| t.max(now));
        // The bucket holds `count` tokens: full_at may run ahead of now by the time that
        // `count - 1` tokens take to come back, not more.
        let burst = settings.refetch_period.saturating_sub(interval);
        if full_at.saturating_duration_since(now) > burst {
            return false;
        }
        match full_at.checked_add(interval) {
            Some(next) => {
                self.full_at = Some(next);
                true
            }
            None => false,
        }
    }
}

impl<F: JwksFetcher> JwksCache<F> {
    /// A cache for `url`, empty until the first lookup or [`refresh`](Self::refresh).
    pub fn new(url: impl Into<String>, fetcher: F, settings: JwksSettings) -> Self {
        Self::shared(url.into(), Arc::new(fetcher), settings)
    }

    pub(crate) fn shared(url: String, fetcher: Arc<F>, settings: JwksSettings) -> Self {
        JwksCache {
            inner: Arc::new(Inner {
                url,
                fetcher,
                settings,
                keys: ArcSwap::from_pointee(KeySet::default()),
                gate: Arc::new(Mutex::new(Gate {
                    last_attempt: None,
                    budget: Budget::default(),
                })),
                fetches: AtomicU64::new(0),
                finished: AtomicU64::new(0),
                metrics: OnceLock::new(),
            }),
        }
    }

    /// The JWKS URL.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The `kid`s of the usable keys now cached, sorted.
    pub fn key_ids(&self) -> Vec<String> {
        self.inner.keys.load().kids()
    }

    /// Counts this cache's fetches (and failed fetches) in `metrics` from now on. The first
    /// call wins; later calls are ignored.
    pub fn attach_metrics(&self, metrics: &Metrics) {
        let _ = self.inner.metrics.set(metrics.clone());
    }

    /// How many fetches were started so far (for metrics and tests).
    pub fn fetch_count(&self) -> u64 {
        self.inner.fetches.load(Ordering::Relaxed)
    }

    /// Fetches now (waits for a fetch already in flight first), outside the re-fetch budget:
    /// it neither needs nor spends a token. On failure the cached keys stay. Apps may call it at
    /// start-up in a spawned task to warm the cache; nothing requires it.
    pub async fn refresh(&self) -> Result<(), FetchError> {
        let mut gate = self.inner.gate.lock().await;
        self.inner.fetch(&mut gate).await
    }

    /// The key for `kid`: from the cached set without a lock; else the result of the fetch in
    /// flight, or of one re-fetch if the budget allows.
    pub(crate) async fn lookup(&self, kid: &str) -> Lookup {
        let finished = self.inner.finished.load(Ordering::Acquire);
        if let Some(found) = self.inner.find(kid) {
            return found;
        }
        let mut gate = self.inner.gate.lock().await;
        // A fetch may have completed while this lookup waited for the gate.
        if let Some(found) = self.inner.find(kid) {
            return found;
        }
        // Single flight: a fetch that ended since this lookup missed is its answer too.
        if self.inner.finished.load(Ordering::Acquire) != finished {
            return self.inner.missing();
        }
        if !gate.budget.take(Instant::now(), &self.inner.settings) {
            tracing::debug!(
                url = %self.inner.url,
                kid,
                "unknown kid: re-fetch budget spent, not re-fetching the JWKS"
            );
            return self.inner.missing();
        }
        tracing::debug!(url = %self.inner.url, kid, "unknown kid: re-fetching the JWKS");
        // Errors are logged by `fetch`; the cached keys are unchanged.
        let _ = self.inner.fetch(&mut gate).await;
        drop(gate);
        self.inner.find(kid).unwrap_or_else(|| self.inner.missing())
    }
}

impl<F: JwksFetcher> Inner<F> {
    /// Looks `kid` up in the current set; starts a background refresh when the set is stale.
    fn find(self: &Arc<Self>, kid: &str) -> Option<Lookup> {
        let keys = self.keys.load();
        let found = match keys.keys.get(kid) {
            Some(key) => Some(Lookup::Found(Arc::clone(key))),
            None => keys.refused.get(kid).map(|reason| Lookup::Refused(reason)),
        };
        if found.is_some()
            && keys
                .fetched_at
                .is_some_and(|t| t.elapsed() >= self.settings.refresh_interval)
        {
            self.refresh_in_background();
        }
        found
    }

    fn missing(&self) -> Lookup {
        if self.keys.load().fetched_at.is_some() {
            Lookup::Unknown
        } else {
            Lookup::Unavailable
        }
    }

    /// Starts a refresh task unless a fetch is in flight or one ended within a refill interval
    /// of the re-fetch budget (the pace at which a failed refresh is retried).
    fn refresh_in_background(self: &Arc<Self>) {
        let Ok(mut gate) = Arc::clone(&self.gate).try_lock_owned() else {
            return;
        };
        let retry = self.settings.refill_interval();
        if gate.last_attempt.is_some_and(|t| t.elapsed() < retry) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let this = Arc::clone(self);
        runtime.spawn(async move {
            tracing::debug!(url = %this.url, "JWKS keys are due for refresh");
            let _ = this.fetch(&mut gate).await;
        });
    }

    /// One fetch, with the gate held: bounded in time and size; a usable document replaces the
    /// key set. Records the attempt in the gate and counts it as finished.
    async fn fetch(&self, gate: &mut Gate) -> Result<(), FetchError> {
        let result = self.fetch_document().await;
        gate.last_attempt = Some(Instant::now());
        self.finished.fetch_add(1, Ordering::Release);
        result
    }

    async fn fetch_document(&self) -> Result<(), FetchError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let max = self.settings.max_bytes;
        let fetched = tokio::time::timeout(
            self.settings.fetch_timeout,
            self.fetcher.fetch(&self.url, max),
        )
        .await;
        let parsed = match fetched {
            Err(_) => Err(FetchError::Timeout),
            Ok(Err(e)) => Err(e),
            Ok(Ok(body)) if body.len() > max => Err(FetchError::TooLarge),
            Ok(Ok(body)) => parse_jwks(&body, &self.url).map_err(|e| match e {
                DocumentError::NotJwks => FetchError::InvalidDocument,
                DocumentError::NoUsableKey => FetchError::NoUsableKey,
            }),
        };
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        crate::metrics::jwks_fetched(self.metrics.get(), parsed.is_ok());
        match parsed {
            Ok(mut set) => {
                set.fetched_at = Some(Instant::now());
                let old = self.keys.load_full();
                let new_kids = set.kids();
                let old_kids = old.kids();
                if old.fetched_at.is_none() {
                    tracing::info!(url = %self.url, kids = ?new_kids, elapsed_ms, "JWKS fetched");
                } else if new_kids != old_kids {
                    let added: Vec<&String> =
                        new_kids.iter().filter(|k| !old_kids.contains(k)).collect();
                    let removed: Vec<&String> =
                        old_kids.iter().filter(|k| !new_kids.contains(k)).collect();
                    tracing::info!(url = %self.url, ?added, ?removed, elapsed_ms, "JWKS keys rotated");
                } else {
                    tracing::debug!(url = %self.url, elapsed_ms, "JWKS refreshed, keys unchanged");
                }
                self.keys.store(Arc::new(set));
                Ok(())
            }
            Err(error) => {
                let cached = self.keys.load().keys.len();
                tracing::warn!(
                    url = %self.url,
                    %error,
                    cached_keys = cached,
                    elapsed_ms,
                    "JWKS fetch failed; cached keys stay in use"
                );
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn budget_is_a_token_bucket() {
        let settings = JwksSettings::default(); // 5 per minute
        let mut budget = Budget::default();
        let t0 = Instant::now();
        // Five back to back, then none until a token comes back after 12 s.
        for _ in 0..5 {
            assert!(budget.take(t0, &settings));
        }
        assert!(!budget.take(t0, &settings));
        assert!(!budget.take(t0 + Duration::from_secs(11), &settings));
        assert!(budget.take(t0 + Duration::from_secs(12), &settings));
        assert!(!budget.take(t0 + Duration::from_secs(12), &settings));
        // Sustained demand gets one per 12 s.
        let mut granted = 0;
        for s in 13..=120 {
            if budget.take(t0 + Duration::from_secs(s), &settings) {
                granted += 1;
            }
        }
        assert_eq!(granted, 9); // at 24, 36, …, 120 s
        // After a long quiet spell the bucket is full again, never fuller.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..5 {
            assert!(budget.take(later, &settings));
        }
        assert!(!budget.take(later, &settings));
    }

    #[test]
    fn budget_settings_edges() {
        let t0 = Instant::now();
        // Zero period: no limit.
        let unlimited = JwksSettings::default().refetch_budget(1, Duration::ZERO);
        let mut budget = Budget::default();
        assert!((0..1000).all(|_| budget.take(t0, &unlimited)));
        // A count of 0 is 1: the cache still gets its first keys.
        let one = JwksSettings::default().refetch_budget(0, MINUTE);
        assert_eq!(one, JwksSettings::default().refetch_budget(1, MINUTE));
        let mut budget = Budget::default();
        assert!(budget.take(t0, &one));
        assert!(!budget.take(t0 + Duration::from_secs(59), &one));
        assert!(budget.take(t0 + MINUTE, &one));
        // An absurd period is capped, not an overflow.
        let capped = JwksSettings::default().refetch_budget(1, Duration::MAX);
        assert_eq!(capped.refill_interval(), MAX_REFETCH_PERIOD);
        let mut budget = Budget::default();
        assert!(budget.take(t0, &capped));
        assert!(!budget.take(t0, &capped));
        // The old setting maps onto the budget.
        #[allow(deprecated)]
        let old = JwksSettings::default().cooldown(Duration::from_secs(300));
        assert_eq!(
            old,
            JwksSettings::default().refetch_budget(1, Duration::from_secs(300))
        );
    }
}
