//! Login failure throttling (docs/protocol.md §3 "better"): per account and client address, per
//! address (and per IPv6 /56 and /48), and a larger per-account ceiling, in bounded memory.
//!
//! Core answers a wrong password after 5 s and nothing more, so parallel guessing is unlimited.
//! [`LoginThrottle`] counts failed logins in a window and, once a limit is reached, makes
//! [`LoginService`](crate::login::LoginService) answer at once with
//! `429 Too Many Requests`, a `Retry-After` header and the §2 error body — without consulting
//! the credential store and without the failure delay.
//!
//! ```
//! use std::net::IpAddr;
//! use std::time::Duration;
//! use tower_jwt_login::throttle::LoginThrottle;
//!
//! let throttle = LoginThrottle::new(3, Duration::from_secs(900)).unwrap();
//! let attacker: IpAddr = "203.0.113.7".parse().unwrap();
//! for _ in 0..3 {
//!     // A login attempt is charged before the password is checked; a wrong password keeps
//!     // the charge.
//!     throttle.begin("admin", Some(attacker)).unwrap();
//! }
//! let refused = throttle.begin("admin", Some(attacker)).unwrap_err();
//! assert!(refused.retry_after() <= Duration::from_secs(900));
//!
//! // The real user, elsewhere, still logs in; a success refunds its own charge.
//! let user: IpAddr = "198.51.100.1".parse().unwrap();
//! throttle.begin("admin", Some(user)).unwrap();
//! throttle.succeeded("admin", Some(user));
//!
//! // A throttle that would count nothing cannot be built.
//! assert!(LoginThrottle::new(3, Duration::ZERO).is_err());
//! ```
//!
//! # How it counts
//!
//! Three counters are charged for every attempt with a username and password: the (account,
//! address) pair, the address, and the account (for IPv6 also the address's /56 and /48). Each counts in a fixed window that opens with
//! its first failure and lasts `window` (a window that ran out starts afresh at the next
//! failure), so the worst case is twice a limit in a short burst around a window's end. An
//! attempt is refused when any counter it would charge is at its limit; refused attempts are not
//! counted. Charging happens *before* the store is asked, so parallel requests cannot overshoot a
//! limit. A success refunds its charge and clears the pair's counter; a store error refunds it.
//!
//! - per (account, address): `max_failures` (default 10 per 15 min);
//! - per address: `per_address` (default 5 × `max_failures`): one host spraying a password across
//!   many accounts; it is not cleared by a success elsewhere, so knowing one account does not
//!   buy guesses on another;
//! - per IPv6 /56 and /48: `per_ipv6_56` (default 20 × `max_failures`) and `per_ipv6_48`
//!   (default 50 × `max_failures`): one routed prefix gives an attacker 256 or 65 536 /64s, so
//!   counting per /64 alone would multiply the per-address budget by as much. With the defaults
//!   (10 per pair): 50 per /64, 200 per /56 (a home or small-office delegation), 500 per /48 (a
//!   site) — larger limits, because many real users can share one provider's /48;
//! - per account: `per_account` (default 10 × `max_failures`): the total a distributed attacker
//!   gets against one account. It can lock the real user out, but only until the window ends,
//!   and never from an address that logged in to that account successfully within
//!   `known_address_ttl` (default 30 days): such addresses are exempt from the account ceiling
//!   (not from the other two limits).
//!
//! Account names are compared case-insensitively and stored only as a keyed 64-bit hash, so a
//! tracked key costs the same few bytes whatever the username length. IPv6 addresses are counted
//! per /64 (one customer's prefix) for the pair and per-address limits, and per /56 and /48 for
//! their own limits; IPv4-mapped IPv6 as IPv4. A request without a known client
//! address (the server recorded no peer, see [`client_addr`](crate::client_addr)) is counted
//! against the account ceiling only.
//!
//! Memory is bounded by `max_tracked_keys` (default 100 000 keys, a few MiB): when the table is
//! full, counters whose window has ended are dropped first; if that frees nothing, the oldest
//! tenth of the counters that are not currently refusing anything (and are no known address)
//! goes, then the oldest of the rest. An attacker who floods the table to evict a counter must
//! send far more requests than the guesses that eviction gives back.
//!
//! A throttle always throttles: a zero window or a zero `max_failures` (which would count or
//! refuse nothing) is refused by [`ThrottleConfig::build`]. To run without one, say so:
//! [`LoginService::throttle(None)`](crate::login::LoginService::throttle).

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

pub use crate::error::{ThrottleScope, Throttled};

/// The limits of a [`LoginThrottle`]. Build one with [`ThrottleConfig::new`] and adjust it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleConfig {
    max_failures: u32,
    per_address: u32,
    per_ipv6_56: u32,
    per_ipv6_48: u32,
    per_account: u32,
    window: Duration,
    known_address_ttl: Duration,
    max_tracked_keys: usize,
}

impl Default for ThrottleConfig {
    /// 10 failures per account and address in 15 minutes (50 per address or IPv6 /64, 200 per
    /// IPv6 /56, 500 per IPv6 /48, 100 per account).
    fn default() -> Self {
        ThrottleConfig::new(10, Duration::from_secs(15 * 60))
    }
}

/// Limits that would make a throttle that refuses nothing; see [`ThrottleConfig::build`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ThrottleConfigError {
    /// The window is zero: no failure would ever be counted.
    ZeroWindow,
    /// `max_failures` is zero.
    ZeroMaxFailures,
}

impl fmt::Display for ThrottleConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ThrottleConfigError::ZeroWindow => {
                "the login failure window is zero, which would count no failure at all: use a \
                 positive window (default 15 minutes), or turn throttling off explicitly"
            }
            ThrottleConfigError::ZeroMaxFailures => {
                "max_failures is zero: use a positive limit (default 10), or turn throttling off \
                 explicitly"
            }
        })
    }
}

impl std::error::Error for ThrottleConfigError {}

impl ThrottleConfig {
    /// `max_failures` per (account, address) in `window`; per address (IPv6: per /64) 5 ×, per
    /// IPv6 /56 20 ×, per IPv6 /48 50 × and per account 10 × as many; 100 000 tracked keys.
    /// [`build`](Self::build) refuses a zero `max_failures` or `window`.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        ThrottleConfig {
            max_failures,
            per_address: max_failures.saturating_mul(5),
            per_ipv6_56: max_failures.saturating_mul(20),
            per_ipv6_48: max_failures.saturating_mul(50),
            per_account: max_failures.saturating_mul(10),
            window,
            known_address_ttl: Duration::from_secs(30 * 24 * 3600),
            max_tracked_keys: 100_000,
        }
    }

    /// Failures per client address (IPv6: per /64) across all accounts (`0`: no per-address
    /// limit).
    #[must_use]
    pub fn per_address(mut self, limit: u32) -> Self {
        self.per_address = limit;
        self
    }

    /// Failures per IPv6 /56 across all accounts and /64s in it (`0`: no such limit).
    #[must_use]
    pub fn per_ipv6_56(mut self, limit: u32) -> Self {
        self.per_ipv6_56 = limit;
        self
    }

    /// Failures per IPv6 /48 across all accounts and /64s in it (`0`: no such limit).
    #[must_use]
    pub fn per_ipv6_48(mut self, limit: u32) -> Self {
        self.per_ipv6_48 = limit;
        self
    }

    /// Failures per account from all addresses together (`0`: no per-account ceiling).
    #[must_use]
    pub fn per_account(mut self, limit: u32) -> Self {
        self.per_account = limit;
        self
    }

    /// How long an address that logged in successfully stays exempt from that account's
    /// ceiling (default 30 days; zero disables the exemption).
    #[must_use]
    pub fn known_address_ttl(mut self, ttl: Duration) -> Self {
        self.known_address_ttl = ttl;
        self
    }

    /// The most counters kept at once (at least 1).
    #[must_use]
    pub fn max_tracked_keys(mut self, max: usize) -> Self {
        self.max_tracked_keys = max.max(1);
        self
    }

    /// Failures per (account, address) in the window.
    pub fn max_failures(&self) -> u32 {
        self.max_failures
    }

    /// The window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// How long an address that logged in stays exempt from the account ceiling.
    #[cfg(feature = "redis")]
    pub(crate) fn known_address_ttl_value(&self) -> Duration {
        self.known_address_ttl
    }

    /// The limits per address (IPv6 /64), IPv6 /56, IPv6 /48 and account, in that order
    /// (`0`: that limit is off).
    pub fn limits(&self) -> [u32; 4] {
        [
            self.per_address,
            self.per_ipv6_56,
            self.per_ipv6_48,
            self.per_account,
        ]
    }

    /// The throttle with these limits, or an error when it would refuse nothing: a zero
    /// window or a zero `max_failures`. (To run a login without a throttle, say so:
    /// [`LoginService::throttle(None)`](crate::login::LoginService::throttle).)
    pub fn build(self) -> Result<LoginThrottle, ThrottleConfigError> {
        if self.window.is_zero() {
            return Err(ThrottleConfigError::ZeroWindow);
        }
        if self.max_failures == 0 {
            return Err(ThrottleConfigError::ZeroMaxFailures);
        }
        Ok(LoginThrottle::with_config(self))
    }
}

/// Counts failed logins and refuses further attempts over a limit. Cheap to clone (one `Arc`);
/// clones share the counters. See the [module docs](self).
#[derive(Clone)]
pub struct LoginThrottle {
    inner: Arc<Inner>,
    /// The counters shared by the fleet, when there are (Redis: `LoginThrottle::fleet`).
    fleet: Option<Arc<dyn FleetCounter>>,
}

/// The boxed future of a [`FleetCounter`] call.
pub(crate) type FleetFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Counters shared by a fleet of instances, which a [`LoginThrottle`] counts in instead of its
/// own table (implemented on Redis, feature `redis`: `LoginThrottle::fleet`). The throttle
/// depends on this trait, the backend implements it.
pub(crate) trait FleetCounter: Send + Sync {
    /// Charges an attempt (`addr` already an [`address_key`]): `None` when the backend failed
    /// and the caller counts locally.
    fn begin<'a>(
        &'a self,
        throttle: &'a LoginThrottle,
        account: &'a str,
        addr: Option<IpAddr>,
    ) -> FleetFuture<'a, Option<Result<(), Throttled>>>;

    /// Settles an attempt (success or refund): `false` when the backend failed and the caller
    /// settles locally.
    fn settle<'a>(
        &'a self,
        throttle: &'a LoginThrottle,
        account: &'a str,
        addr: Option<IpAddr>,
        success: bool,
    ) -> FleetFuture<'a, bool>;
}

struct Inner {
    config: ThrottleConfig,
    hasher: RandomState,
    table: Mutex<HashMap<Key, Entry>>,
}

/// A tracked counter. Accounts are keyed hashes; addresses are /64 for IPv6; the IPv6 networks
/// are the address's leading 64 bits, masked to /56 or /48.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Pair(u64, IpAddr),
    Address(IpAddr),
    Net56(u64),
    Net48(u64),
    Account(u64),
    /// An address that logged in to the account (exempt from the account ceiling).
    Known(u64, IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    count: u32,
    start: Instant,
}

impl LoginThrottle {
    /// `max_failures` per (account, address) in `window`, other limits at their defaults (see
    /// [`ThrottleConfig::new`]); an error for a zero `max_failures` or `window`.
    pub fn new(max_failures: u32, window: Duration) -> Result<Self, ThrottleConfigError> {
        ThrottleConfig::new(max_failures, window).build()
    }

    /// The standard limits ([`ThrottleConfig::default`], valid by construction).
    pub(crate) fn standard() -> Self {
        LoginThrottle::with_config(ThrottleConfig::default())
    }

    fn with_config(config: ThrottleConfig) -> Self {
        LoginThrottle {
            inner: Arc::new(Inner {
                config,
                hasher: RandomState::new(),
                table: Mutex::new(HashMap::new()),
            }),
            fleet: None,
        }
    }

    /// Counts in `fleet` instead of the local table (`LoginThrottle::fleet` gives it Redis).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn counting_in(mut self, fleet: Arc<dyn FleetCounter>) -> Self {
        self.fleet = Some(fleet);
        self
    }

    /// [`begin`](Self::begin), counted in Redis when the throttle counts for a fleet
    /// (`LoginThrottle::fleet`, feature `redis`), locally otherwise or while Redis is
    /// unreachable. What [`LoginService`](crate::login::LoginService) calls.
    pub async fn begin_shared(&self, account: &str, addr: Option<IpAddr>) -> Result<(), Throttled> {
        if let Some(fleet) = &self.fleet
            && let Some(verdict) = fleet.begin(self, account, addr.map(address_key)).await
        {
            return verdict;
        }
        self.begin(account, addr)
    }

    /// [`succeeded`](Self::succeeded) (`true`) or [`refund`](Self::refund) (`false`), in Redis
    /// when the throttle counts for a fleet (see [`begin_shared`](Self::begin_shared)).
    pub async fn settle_shared(&self, account: &str, addr: Option<IpAddr>, success: bool) {
        if let Some(fleet) = &self.fleet
            && fleet
                .settle(self, account, addr.map(address_key), success)
                .await
        {
            return;
        }
        if success {
            self.succeeded(account, addr);
        } else {
            self.refund(account, addr);
        }
    }

    /// The counters an attempt from `addr` (already an [`address_key`]) charges, named for a
    /// shared store: (name, limit, scope); `account` is the account's stable hash.
    #[cfg(feature = "redis")]
    pub(crate) fn shared_keys(
        &self,
        account: &str,
        addr: Option<IpAddr>,
    ) -> Vec<(String, u32, ThrottleScope)> {
        let c = &self.inner.config;
        let v6 = addr.and_then(|ip| match ip {
            IpAddr::V6(v6) => Some((u128::from(v6) >> 64) as u64),
            IpAddr::V4(_) => None,
        });
        let keys = [
            (
                addr.map(|ip| format!("pair:{account}:{ip}")),
                c.max_failures,
                ThrottleScope::AccountAndAddress,
            ),
            (
                addr.map(|ip| format!("addr:{ip}")),
                c.per_address,
                ThrottleScope::Address,
            ),
            (
                v6.map(|net| format!("net56:{:x}", net & NET56)),
                c.per_ipv6_56,
                ThrottleScope::Ipv6Net56,
            ),
            (
                v6.map(|net| format!("net48:{:x}", net & NET48)),
                c.per_ipv6_48,
                ThrottleScope::Ipv6Net48,
            ),
            (
                Some(format!("account:{account}")),
                c.per_account,
                ThrottleScope::Account,
            ),
        ];
        keys.into_iter()
            .filter_map(|(key, limit, scope)| Some((key?, limit, scope)).filter(|_| limit > 0))
            .collect()
    }

    /// A refusal for `scope` with `retry_after` to wait (from a shared store).
    #[cfg(feature = "redis")]
    pub(crate) fn refusal(scope: ThrottleScope, retry_after: Duration) -> Throttled {
        Throttled::new(retry_after, scope)
    }

    /// The limits.
    pub fn config(&self) -> &ThrottleConfig {
        &self.inner.config
    }

    /// Whether this throttle refuses anything at all: always `true`, since a throttle that
    /// would refuse nothing cannot be [built](ThrottleConfig::build).
    pub fn is_enabled(&self) -> bool {
        self.inner.config.max_failures > 0 && !self.inner.config.window.is_zero()
    }

    /// How many counters are tracked now (never more than `max_tracked_keys`).
    pub fn tracked_keys(&self) -> usize {
        self.table().len()
    }

    /// Starts a login attempt for `account` from `addr`: refuses it when a limit is reached,
    /// otherwise charges it as a failure (call [`succeeded`](Self::succeeded) or
    /// [`refund`](Self::refund) when it turns out not to be one).
    pub fn begin(&self, account: &str, addr: Option<IpAddr>) -> Result<(), Throttled> {
        self.begin_at(account, addr, Instant::now())
    }

    /// The attempt succeeded: refund its charge, clear the (account, address) counter and
    /// remember the address as known for the account.
    pub fn succeeded(&self, account: &str, addr: Option<IpAddr>) {
        self.succeeded_at(account, addr, Instant::now());
    }

    /// The attempt was neither a success nor a failure (the store failed): refund its charge.
    pub fn refund(&self, account: &str, addr: Option<IpAddr>) {
        self.refund_at(account, addr, Instant::now());
    }

    fn table(&self) -> MutexGuard<'_, HashMap<Key, Entry>> {
        // The critical sections cannot panic half-way through an update that matters; a
        // poisoned lock still holds consistent counters.
        self.inner
            .table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn account_key(&self, account: &str) -> u64 {
        let mut h = self.inner.hasher.build_hasher();
        for c in account.chars().flat_map(char::to_lowercase) {
            h.write_u32(u32::from(c));
        }
        h.finish()
    }

    /// The counters an attempt charges, with their limits.
    fn keys(&self, account: u64, addr: Option<IpAddr>) -> [(Option<Key>, u32, ThrottleScope); 5] {
        let c = &self.inner.config;
        let v6 = addr.and_then(|ip| match ip {
            IpAddr::V6(v6) => Some((u128::from(v6) >> 64) as u64),
            IpAddr::V4(_) => None,
        });
        let keys = [
            (
                addr.map(|ip| Key::Pair(account, ip)),
                c.max_failures,
                ThrottleScope::AccountAndAddress,
            ),
            (
                addr.map(Key::Address),
                c.per_address,
                ThrottleScope::Address,
            ),
            (
                v6.map(|net| Key::Net56(net & NET56)),
                c.per_ipv6_56,
                ThrottleScope::Ipv6Net56,
            ),
            (
                v6.map(|net| Key::Net48(net & NET48)),
                c.per_ipv6_48,
                ThrottleScope::Ipv6Net48,
            ),
            (
                Some(Key::Account(account)),
                c.per_account,
                ThrottleScope::Account,
            ),
        ];
        // A limit of 0 is off: its counter is not even kept.
        keys.map(|(key, limit, scope)| (key.filter(|_| limit > 0), limit, scope))
    }

    fn begin_at(&self, account: &str, addr: Option<IpAddr>, now: Instant) -> Result<(), Throttled> {
        let config = self.inner.config;
        let account = self.account_key(account);
        let addr = addr.map(address_key);
        let keys = self.keys(account, addr);
        let mut table = self.table();
        let known = addr.is_some_and(|ip| {
            table
                .get(&Key::Known(account, ip))
                .is_some_and(|e| now.saturating_duration_since(e.start) < config.known_address_ttl)
        });

        let mut refusal: Option<Throttled> = None;
        for (key, limit, scope) in keys {
            let Some(key) = key else { continue };
            if known && scope == ThrottleScope::Account {
                continue;
            }
            let Some(entry) = table.get(&key) else {
                continue;
            };
            let age = now.saturating_duration_since(entry.start);
            if age < config.window && entry.count >= limit {
                let wait = config.window.saturating_sub(age);
                if refusal.is_none_or(|r| wait > r.retry_after()) {
                    refusal = Some(Throttled::new(wait, scope));
                }
            }
        }
        if let Some(refusal) = refusal {
            return Err(refusal);
        }

        for (key, limit, scope) in keys {
            let Some(key) = key else { continue };
            match table.get_mut(&key) {
                Some(entry) => {
                    if now.saturating_duration_since(entry.start) >= config.window {
                        *entry = Entry {
                            count: 0,
                            start: now,
                        };
                    }
                    entry.count = entry.count.saturating_add(1);
                    if entry.count == limit {
                        // Once per counter and window: the log cannot be flooded.
                        tracing::warn!(
                            limit = scope.as_str(),
                            client = ?addr,
                            "login failure limit reached; further attempts get 429 until the window ends"
                        );
                    }
                }
                None => {
                    make_room(&mut table, &config, now);
                    table.insert(
                        key,
                        Entry {
                            count: 1,
                            start: now,
                        },
                    );
                }
            }
        }
        Ok(())
    }

    fn refund_keys(&self, table: &mut HashMap<Key, Entry>, account: u64, addr: Option<IpAddr>) {
        for (key, _, _) in self.keys(account, addr) {
            if let Some(entry) = key.and_then(|k| table.get_mut(&k)) {
                entry.count = entry.count.saturating_sub(1);
            }
        }
    }

    fn succeeded_at(&self, account: &str, addr: Option<IpAddr>, now: Instant) {
        let config = self.inner.config;
        let account = self.account_key(account);
        let addr = addr.map(address_key);
        let mut table = self.table();
        self.refund_keys(&mut table, account, addr);
        if let Some(ip) = addr {
            table.remove(&Key::Pair(account, ip));
            if !config.known_address_ttl.is_zero() {
                let key = Key::Known(account, ip);
                if !table.contains_key(&key) {
                    make_room(&mut table, &config, now);
                }
                table.insert(
                    key,
                    Entry {
                        count: 0,
                        start: now,
                    },
                );
            }
        }
    }

    fn refund_at(&self, account: &str, addr: Option<IpAddr>, _now: Instant) {
        let account = self.account_key(account);
        let addr = addr.map(address_key);
        let mut table = self.table();
        self.refund_keys(&mut table, account, addr);
    }
}

impl fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginThrottle")
            .field("config", &self.inner.config)
            .field("tracked_keys", &self.tracked_keys())
            .finish()
    }
}

/// The /56 and /48 masks over an IPv6 address's leading 64 bits.
const NET56: u64 = 0xffff_ffff_ffff_ff00;
const NET48: u64 = 0xffff_ffff_ffff_0000;

/// IPv4 (and IPv4-mapped IPv6) as is; IPv6 by its /64.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(
            u128::from(v6) & 0xffff_ffff_ffff_ffff_0000_0000_0000_0000,
        )),
    }
}

impl Key {
    fn limit(&self, config: &ThrottleConfig) -> u32 {
        match self {
            Key::Pair(..) => config.max_failures,
            Key::Address(_) => config.per_address,
            Key::Net56(_) => config.per_ipv6_56,
            Key::Net48(_) => config.per_ipv6_48,
            Key::Account(_) => config.per_account,
            Key::Known(..) => 0,
        }
    }

    fn lifetime(&self, config: &ThrottleConfig) -> Duration {
        match self {
            Key::Known(..) => config.known_address_ttl,
            _ => config.window,
        }
    }
}

/// Makes room for one more key when the table is full: drops ended windows, then (if that was
/// not enough) the oldest tenth, preferring counters that refuse nothing.
fn make_room(table: &mut HashMap<Key, Entry>, config: &ThrottleConfig, now: Instant) {
    let cap = config.max_tracked_keys;
    if table.len() < cap {
        return;
    }
    table.retain(|key, e| now.saturating_duration_since(e.start) < key.lifetime(config));
    if table.len() < cap {
        return;
    }
    // Evict at least a tenth at once, so the O(n) pass is amortized over many inserts.
    let evict = (table.len() + 1 - cap).max(cap / 10).min(table.len());
    if evict == 0 {
        return;
    }
    let rank = |key: &Key, e: &Entry| {
        let limit = key.limit(config);
        let protected = matches!(key, Key::Known(..)) || (limit > 0 && e.count >= limit);
        (protected, e.start)
    };
    let mut ranks: Vec<(bool, Instant)> = table.iter().map(|(k, e)| rank(k, e)).collect();
    let (_, nth, _) = ranks.select_nth_unstable(evict - 1);
    let threshold = *nth;
    let mut removed = 0;
    table.retain(|key, e| {
        if removed < evict && rank(key, e) <= threshold {
            removed += 1;
            false
        } else {
            true
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(900);

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn eleventh_failure_is_refused_until_the_window_ends() {
        let t = LoginThrottle::new(10, WINDOW).unwrap();
        let start = Instant::now();
        let a = ip("203.0.113.1");
        for i in 0..10 {
            t.begin_at("admin", a, start + Duration::from_secs(i))
                .unwrap();
        }
        let refused = t
            .begin_at("admin", a, start + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(refused.scope(), ThrottleScope::AccountAndAddress);
        assert_eq!(refused.retry_after(), WINDOW - Duration::from_secs(10));
        assert_eq!(refused.retry_after_secs(), 890);
        // Case does not make a new account.
        assert!(
            t.begin_at("ADMIN", a, start + Duration::from_secs(11))
                .is_err()
        );
        // After the window, a fresh one starts.
        t.begin_at("admin", a, start + WINDOW).unwrap();
    }

    #[test]
    fn success_clears_the_pair_but_not_the_address() {
        let t = ThrottleConfig::new(3, WINDOW)
            .per_address(5)
            .build()
            .unwrap();
        let now = Instant::now();
        let a = ip("203.0.113.1");
        for _ in 0..2 {
            t.begin_at("alice", a, now).unwrap();
        }
        t.begin_at("alice", a, now).unwrap();
        t.succeeded_at("alice", a, now);
        // The pair starts over; the address still holds two failures.
        for _ in 0..3 {
            t.begin_at("alice", a, now).unwrap();
        }
        let refused = t.begin_at("alice", a, now).unwrap_err();
        assert_eq!(refused.scope(), ThrottleScope::AccountAndAddress);
        let refused = t.begin_at("bob", a, now).unwrap_err();
        assert_eq!(refused.scope(), ThrottleScope::Address);
    }

    #[test]
    fn account_ceiling_spares_known_addresses() {
        let t = ThrottleConfig::new(2, WINDOW)
            .per_account(4)
            .build()
            .unwrap();
        let now = Instant::now();
        let home = ip("198.51.100.1");
        t.begin_at("admin", home, now).unwrap();
        t.succeeded_at("admin", home, now);
        for i in 0..4 {
            let a = Some(IpAddr::from([203, 0, 113, i]));
            t.begin_at("admin", a, now).unwrap();
        }
        let refused = t.begin_at("admin", ip("192.0.2.1"), now).unwrap_err();
        assert_eq!(refused.scope(), ThrottleScope::Account);
        // The user's own address is exempt from the ceiling (not from the pair limit).
        t.begin_at("admin", home, now).unwrap();
        t.succeeded_at("admin", home, now);
        // Without an address only the ceiling applies.
        assert!(t.begin_at("admin", None, now).is_err());
    }

    #[test]
    fn ipv6_counts_per_64_and_refunds_work() {
        let t = LoginThrottle::new(1, WINDOW).unwrap();
        let now = Instant::now();
        t.begin_at("x", ip("2001:db8:1:2::1"), now).unwrap();
        assert!(t.begin_at("x", ip("2001:db8:1:2:ffff::9"), now).is_err());
        t.begin_at("x", ip("2001:db8:1:3::1"), now).unwrap();
        t.refund_at("x", ip("2001:db8:1:3::1"), now);
        t.begin_at("x", ip("2001:db8:1:3::1"), now).unwrap();
    }

    /// A zero window counted nothing while `is_enabled()` said true; now it cannot be built.
    #[test]
    fn a_throttle_that_would_refuse_nothing_cannot_be_built() {
        assert_eq!(
            LoginThrottle::new(10, Duration::ZERO).unwrap_err(),
            ThrottleConfigError::ZeroWindow
        );
        assert_eq!(
            ThrottleConfig::new(10, Duration::from_nanos(0))
                .per_address(3)
                .build()
                .unwrap_err(),
            ThrottleConfigError::ZeroWindow
        );
        assert_eq!(
            LoginThrottle::new(0, WINDOW).unwrap_err(),
            ThrottleConfigError::ZeroMaxFailures
        );
        assert!(
            ThrottleConfigError::ZeroWindow
                .to_string()
                .contains("window is zero")
        );
        // The smallest window that builds does throttle, and says so.
        let t = LoginThrottle::new(1, Duration::from_nanos(1)).unwrap();
        assert!(t.is_enabled());
        let now = Instant::now();
        t.begin_at("admin", ip("203.0.113.1"), now).unwrap();
        assert!(t.begin_at("admin", ip("203.0.113.1"), now).is_err());
    }

    #[test]
    fn ipv6_56_and_48_have_their_own_budgets() {
        let t = ThrottleConfig::new(100, WINDOW)
            .per_address(4)
            .per_ipv6_56(6)
            .per_ipv6_48(10)
            .per_account(0)
            .build()
            .unwrap();
        let now = Instant::now();
        let at = |net56: u16, net64: u16| {
            Some(IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                0x1,
                (net56 << 8) | net64,
                0,
                0,
                0,
                1,
            )))
        };
        // Three /64s of one /56: the /56 limit (6) refuses before any /64 is at 4.
        for i in 0..6u16 {
            t.begin_at(&format!("u{i}"), at(0, i % 3), now).unwrap();
        }
        let refused = t.begin_at("x", at(0, 7), now).unwrap_err();
        assert_eq!(refused.scope(), ThrottleScope::Ipv6Net56);
        assert_eq!(refused.retry_after(), WINDOW);
        // Other /56s of the same /48 until the /48 total reaches 10.
        for i in 0..4u16 {
            t.begin_at(&format!("v{i}"), at(1 + i, 0), now).unwrap();
        }
        let refused = t.begin_at("x", at(9, 9), now).unwrap_err();
        assert_eq!(refused.scope(), ThrottleScope::Ipv6Net48);
        // Another /48, and IPv4 (mapped or not), are unaffected.
        t.begin_at("x", ip("2001:db8:2::1"), now).unwrap();
        t.begin_at("x", ip("::ffff:203.0.113.1"), now).unwrap();
        // A success refunds its charge on the networks too.
        let in3 = |net56: u16, net64: u16| {
            Some(IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                0x3,
                (net56 << 8) | net64,
                0,
                0,
                0,
                1,
            )))
        };
        for i in 0..5u16 {
            t.begin_at(&format!("w{i}"), in3(0, i), now).unwrap();
        }
        t.begin_at("w", in3(0, 5), now).unwrap();
        t.succeeded_at("w", in3(0, 5), now);
        t.begin_at("w6", in3(0, 6), now).unwrap();
        let refused = t.begin_at("w7", in3(0, 7), now).unwrap_err();
        assert_eq!(refused.scope(), ThrottleScope::Ipv6Net56);
    }

    #[test]
    fn default_limits() {
        let c = ThrottleConfig::default();
        assert_eq!(c.max_failures(), 10);
        assert_eq!(c.limits(), [50, 200, 500, 100]);
    }

    #[test]
    fn memory_stays_bounded_and_refusing_counters_survive_eviction() {
        let cap = 1000;
        let t = ThrottleConfig::new(10, WINDOW)
            .per_address(0)
            .max_tracked_keys(cap)
            .build()
            .unwrap();
        let now = Instant::now();
        let victim = ip("203.0.113.1");
        for _ in 0..10 {
            t.begin_at("admin", victim, now).unwrap();
        }
        for i in 0..20_000u32 {
            let a = Some(IpAddr::from(i.to_be_bytes()));
            t.begin_at(&format!("user{i}"), a, now + Duration::from_millis(1))
                .unwrap();
            assert!(t.tracked_keys() <= cap);
        }
        assert!(t.begin_at("admin", victim, now).is_err());
    }
}
