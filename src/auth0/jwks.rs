//! [`JwksCache`]: one tenant's signing keys, fetched from its JWKS URL and kept fresh.
//!
//! - **Reads take no lock**: the key set sits behind an [`ArcSwap`]; a fetch swaps in a new one.
//! - **Nothing at start-up**: the first lookup fetches, so a server starts while the endpoint is
//!   down.
//! - **Periodic refresh**: once the keys are older than
//!   [`refresh_interval`](JwksSettings::refresh_interval) (default 1 h), the next lookup starts
//!   a refresh in the background and is answered from the keys at hand.
//! - **Unknown `kid`**: one re-fetch, single-flight (concurrent lookups wait for the fetch in
//!   flight instead of starting their own), at most one per
//!   [`cooldown`](JwksSettings::cooldown) (default 5 min) — a flood of invented `kid`s costs one
//!   fetch per cooldown.
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
//!     JwksSettings::default().cooldown(Duration::from_secs(60)),
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
use super::jwk::{DocumentError, KeySet, VerifyingKey, parse_jwks};
use crate::metrics::Metrics;

/// How a [`JwksCache`] fetches and refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksSettings {
    refresh_interval: Duration,
    cooldown: Duration,
    fetch_timeout: Duration,
    max_bytes: usize,
}

impl Default for JwksSettings {
    /// Refresh after 1 h, unknown-`kid` cooldown 5 min, fetch timeout 5 s, documents up to
    /// 256 KiB (Auth0's are about 3 KiB).
    fn default() -> Self {
        JwksSettings {
            refresh_interval: Duration::from_secs(3600),
            cooldown: Duration::from_secs(300),
            fetch_timeout: Duration::from_secs(5),
            max_bytes: 256 * 1024,
        }
    }
}

impl JwksSettings {
    /// Keys older than this are refreshed in the background on the next lookup.
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// The least time from the end of one fetch to the start of the next caused by an unknown
    /// `kid` or a due refresh.
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// The longest a fetch may take, from connecting to the last byte.
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// The largest JWKS document accepted, in bytes.
    pub fn max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
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
    /// Where fetches are also counted, once the app attaches its [`Metrics`].
    metrics: OnceLock<Metrics>,
}

struct Gate {
    /// When the last fetch ended (successful or not): the cooldown runs from there, so a slow
    /// endpoint is not asked again the moment a timed-out fetch gives up.
    last_attempt: Option<Instant>,
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
                gate: Arc::new(Mutex::new(Gate { last_attempt: None })),
                fetches: AtomicU64::new(0),
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

    /// Fetches now, ignoring the cooldown (waits for a fetch already in flight first). On
    /// failure the cached keys stay. Apps may call it at start-up in a spawned task to warm the
    /// cache; nothing requires it.
    pub async fn refresh(&self) -> Result<(), FetchError> {
        let mut gate = self.inner.gate.lock().await;
        let result = self.inner.fetch().await;
        gate.last_attempt = Some(Instant::now());
        result
    }

    /// The key for `kid`: from the cached set without a lock, else after one single-flight
    /// re-fetch unless one ran within the cooldown.
    pub(crate) async fn lookup(&self, kid: &str) -> Lookup {
        if let Some(found) = self.inner.find(kid) {
            return found;
        }
        let mut gate = self.inner.gate.lock().await;
        // A fetch may have completed while this lookup waited for the gate.
        if let Some(found) = self.inner.find(kid) {
            return found;
        }
        let cooldown = self.inner.settings.cooldown;
        if gate.last_attempt.is_some_and(|t| t.elapsed() < cooldown) {
            return self.inner.missing();
        }
        tracing::debug!(url = %self.inner.url, kid, "unknown kid: re-fetching the JWKS");
        // Errors are logged by `fetch`; the cached keys are unchanged.
        let _ = self.inner.fetch().await;
        gate.last_attempt = Some(Instant::now());
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

    /// Starts a refresh task unless a fetch is in flight or one started within the cooldown.
    fn refresh_in_background(self: &Arc<Self>) {
        let Ok(mut gate) = Arc::clone(&self.gate).try_lock_owned() else {
            return;
        };
        if gate
            .last_attempt
            .is_some_and(|t| t.elapsed() < self.settings.cooldown)
        {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let this = Arc::clone(self);
        runtime.spawn(async move {
            tracing::debug!(url = %this.url, "JWKS keys are due for refresh");
            let _ = this.fetch().await;
            gate.last_attempt = Some(Instant::now());
        });
    }

    /// One fetch: bounded in time and size; a usable document replaces the key set.
    async fn fetch(&self) -> Result<(), FetchError> {
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
        if let Some(metrics) = self.metrics.get() {
            metrics.record_jwks_fetch(parsed.is_ok());
        }
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
