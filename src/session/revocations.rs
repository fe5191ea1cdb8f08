//! [`Revocations`]: the local set of revoked sessions and per-subject "not before" times that
//! the layer consults on every request, without I/O and without a lock.
//!
//! # Layout
//!
//! The set is an immutable [`Snapshot`] behind an [`ArcSwap`]. A snapshot holds two tables (the
//! revoked sessions, the subjects' "not before"), and each table is 256 shards: plain
//! `HashMap`s behind `Arc`s, a key's shard chosen by bits of its hash. A reader loads the
//! snapshot (one atomic load) and probes one shard (one hash lookup). A writer copies only the
//! shards its entries fall in (and those holding expired entries, which it drops), shares every
//! other shard with the previous snapshot, and swaps the new snapshot in: a write of one entry
//! into a set of 100,000 copies about 400 entries and 256 pointers, not the set. Writers take a
//! mutex among themselves (readers never do), so a write is done once, not retried.
//!
//! A write of many entries (a "log out everywhere" of thousands of sessions, a full re-read)
//! builds its snapshot on tokio's blocking pool when a runtime is there
//! ([`Revocations::apply_async`]), so no runtime worker is held for long.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;

use crate::token::{Claims, now_secs};

/// Shards per table: 2^8.
const SHARD_BITS: u32 = 8;
const SHARDS: usize = 1 << SHARD_BITS;

/// Batches larger than this are built off the runtime by [`Revocations::apply_async`].
const INLINE_ENTRIES: usize = 1024;

/// The revoked sessions (by `sid`) and per-subject "not before" times of this instance.
///
/// The layer ([`JwtAuthLayer::revocations`](crate::auth::JwtAuthLayer::revocations)) refuses a
/// token whose session is in the set, or whose `iat` is before its subject's "not before". A
/// [`SessionStore`](super::SessionStore) owns one and keeps it current: the memory store writes
/// into it directly, the Redis store also applies what other instances publish and re-reads the
/// whole set after every reconnect.
///
/// Reads take no lock: one atomic load of an immutable snapshot, then one hash lookup per key
/// (the session id; the subject when some subject has a "not before"). Writes copy only the
/// part of the snapshot they change (1/256 of it, see the module source), drop expired entries
/// there, and swap the copy in. Every entry expires once no token it could refuse is valid any
/// more, so the set stays bounded by the logouts of one access-token lifetime. Cloning shares
/// the set.
///
/// ```
/// use tower_jwt_login::session::Revocations;
/// use tower_jwt_login::{Grant, JwtConfig, JwtKey, TokenUse};
///
/// let jwt = JwtConfig::new(JwtKey::from_secret("a secret of at least 32 random bytes!!").unwrap())
///     .build()
///     .unwrap();
/// let token = jwt.issue(&Grant::new("alice").session("x3L9vC1qZ0m5bQ7sT2kYpA")).tokens.access_token;
/// let claims = jwt.verify(&token, TokenUse::Access).unwrap();
///
/// let revocations = Revocations::new();
/// assert!(!revocations.is_revoked(&claims));
/// revocations.revoke_session("x3L9vC1qZ0m5bQ7sT2kYpA", u64::MAX);
/// assert!(revocations.is_revoked(&claims));
/// ```
#[derive(Clone, Default)]
pub struct Revocations {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    current: ArcSwap<Snapshot>,
    /// Serializes writers; readers never take it.
    write: Mutex<()>,
    /// The hash of every table: a key's shard is chosen from bits 32..40 of it (the maps use
    /// the low bits and the top seven, so the shard choice leaves them spread).
    hasher: RandomState,
    /// Snapshots swapped in (the tests count writes).
    #[cfg(test)]
    writes: std::sync::atomic::AtomicU64,
}

/// A value of a table: when it expires, and how it combines with a value learnt later.
pub(crate) trait Entry: Copy + PartialEq + Send + Sync + 'static {
    /// When the entry expires (Unix seconds).
    fn until(&self) -> u64;
    /// This value after learning `other` (the union of both).
    fn merged(self, other: Self) -> Self;
}

impl Entry for u64 {
    fn until(&self) -> u64 {
        *self
    }
    fn merged(self, other: Self) -> Self {
        self.max(other)
    }
}

/// A subject's "not before": tokens issued (`iat`) before `millis / 1000` are refused until
/// `until`. Milliseconds on the clock of the store that set it (Redis's for the Redis store),
/// so that a store can tell "logged out everywhere after this login began" exactly.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct NotBefore {
    pub(crate) millis: u64,
    pub(crate) until: u64,
}

impl Entry for NotBefore {
    fn until(&self) -> u64 {
        self.until
    }
    fn merged(self, other: Self) -> Self {
        NotBefore {
            millis: self.millis.max(other.millis),
            until: self.until.max(other.until),
        }
    }
}

/// Entries to add, applied as one write ([`Revocations::apply`]).
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub(crate) struct Batch {
    /// `sid` → when the entry expires (Unix seconds).
    pub(crate) sessions: Vec<(Arc<str>, u64)>,
    /// `sub` → its "not before".
    pub(crate) subjects: Vec<(Arc<str>, NotBefore)>,
}

impl Batch {
    pub(crate) fn len(&self) -> usize {
        self.sessions.len() + self.subjects.len()
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn is_empty(&self) -> bool {
        self.sessions.is_empty() && self.subjects.is_empty()
    }

    /// Adds `other`'s entries.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn extend(&mut self, other: Batch) {
        self.sessions.extend(other.sessions);
        self.subjects.extend(other.subjects);
    }
}

/// One shard: a plain map, and the earliest expiry in it (`u64::MAX` when empty).
#[derive(Clone)]
struct Shard<V> {
    map: HashMap<Arc<str>, V, RandomState>,
    min_until: u64,
}

/// One table of a snapshot: `SHARDS` shards, shared with other snapshots until written.
#[derive(Clone)]
struct Table<V> {
    shards: Arc<[Arc<Shard<V>>]>,
    len: usize,
}

fn shard_of(hash: u64) -> usize {
    // Bits 32..40: independent of the bucket (low bits) and control (top 7 bits) bits the map
    // itself takes from the same hash.
    ((hash >> 32) as usize) & (SHARDS - 1)
}

impl<V: Entry> Table<V> {
    fn empty(hasher: &RandomState) -> Self {
        let shard = Arc::new(Shard {
            map: HashMap::with_hasher(hasher.clone()),
            min_until: u64::MAX,
        });
        Table {
            shards: (0..SHARDS).map(|_| Arc::clone(&shard)).collect(),
            len: 0,
        }
    }

    fn get(&self, key: &str, hasher: &RandomState) -> Option<&V> {
        if self.len == 0 {
            return None;
        }
        self.shards
            .get(shard_of(hasher.hash_one(key)))
            .and_then(|shard| shard.map.get(key))
    }

    fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &V)> {
        self.shards.iter().flat_map(|shard| shard.map.iter())
    }

    /// The table with `entries` added (each merged with what is there) and the expired entries
    /// of every copied shard dropped; `None` when that changes nothing.
    fn with(&self, hasher: &RandomState, now: u64, entries: &[(Arc<str>, V)]) -> Option<Self> {
        // Only entries that add something, grouped by shard.
        let mut news: Vec<(usize, &Arc<str>, V)> = entries
            .iter()
            .filter(|(_, value)| value.until() > now)
            .filter_map(|(key, value)| {
                let shard = shard_of(hasher.hash_one(&**key));
                match self.shards.get(shard).and_then(|s| s.map.get(&**key)) {
                    Some(old) if old.merged(*value) == *old => None,
                    _ => Some((shard, key, *value)),
                }
            })
            .collect();
        let expired = self.shards.iter().any(|s| s.min_until <= now);
        if news.is_empty() && !expired {
            return None;
        }
        news.sort_unstable_by_key(|(shard, _, _)| *shard);
        let mut shards: Vec<Arc<Shard<V>>> = self.shards.to_vec();
        let mut len = self.len;
        let mut news = news.as_slice();
        for (index, slot) in shards.iter_mut().enumerate() {
            let count = news.iter().take_while(|(s, _, _)| *s == index).count();
            let (mine, rest) = news.split_at(count);
            news = rest;
            if mine.is_empty() && slot.min_until > now {
                continue;
            }
            let mut shard = Shard::clone(slot);
            let before = shard.map.len();
            let mut min_until = u64::MAX;
            if shard.min_until <= now {
                shard.map.retain(|_, value| value.until() > now);
            }
            for (_, key, value) in mine {
                shard
                    .map
                    .entry(Arc::clone(key))
                    .and_modify(|old| *old = old.merged(*value))
                    .or_insert(*value);
            }
            for value in shard.map.values() {
                min_until = min_until.min(value.until());
            }
            shard.min_until = min_until;
            len = len - before + shard.map.len();
            *slot = Arc::new(shard);
        }
        Some(Table {
            shards: shards.into(),
            len,
        })
    }
}

/// One immutable state of the set.
#[derive(Clone)]
pub(crate) struct Snapshot {
    sessions: Table<u64>,
    subjects: Table<NotBefore>,
}

impl Default for Snapshot {
    fn default() -> Self {
        // Only a placeholder: `Inner::default` swaps in one made with the set's own hasher at
        // the first write (see `Revocations::tables`).
        Snapshot {
            sessions: Table {
                shards: Arc::from(Vec::new()),
                len: 0,
            },
            subjects: Table {
                shards: Arc::from(Vec::new()),
                len: 0,
            },
        }
    }
}

impl Snapshot {
    fn is_empty(&self) -> bool {
        self.sessions.len == 0 && self.subjects.len == 0
    }
}

impl Revocations {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the layer must refuse a token with these (verified) claims: its session was
    /// revoked, or it was issued before its subject's "not before". Lock-free: one atomic load
    /// and a hash lookup.
    pub fn is_revoked(&self, claims: &Claims) -> bool {
        let snapshot = self.inner.current.load();
        if snapshot.is_empty() {
            return false;
        }
        let hasher = &self.inner.hasher;
        if let Some(sid) = claims.session_id()
            && snapshot.sessions.get(sid, hasher).is_some()
        {
            return true;
        }
        match snapshot.subjects.get(claims.subject(), hasher) {
            Some(nb) => claims.issued_at().is_none_or(|iat| iat < nb.millis / 1000),
            None => false,
        }
    }

    /// Whether the session `sid` is in the set.
    pub fn is_session_revoked(&self, sid: &str) -> bool {
        let snapshot = self.inner.current.load();
        snapshot.sessions.get(sid, &self.inner.hasher).is_some()
    }

    /// The "not before" time of `subject` (Unix seconds), if one is set.
    pub fn not_before(&self, subject: &str) -> Option<u64> {
        self.not_before_millis(subject).map(|ms| ms / 1000)
    }

    /// The "not before" time of `subject` in milliseconds on the clock of the store that set it
    /// (Redis's for the Redis store), if one is set. Read it before checking a login's
    /// credentials and hand it to [`NewSession::seen_not_before`](super::NewSession::seen_not_before).
    pub fn not_before_millis(&self, subject: &str) -> Option<u64> {
        let snapshot = self.inner.current.load();
        snapshot
            .subjects
            .get(subject, &self.inner.hasher)
            .map(|nb| nb.millis)
    }

    /// Revokes the session `sid` until `until` (Unix seconds; pass the time after which no token
    /// of the session can be valid any more). Only this instance's set changes: to revoke across
    /// a fleet, end the session in the [`SessionStore`](super::SessionStore).
    pub fn revoke_session(&self, sid: &str, until: u64) {
        self.apply(&Batch {
            sessions: vec![(Arc::from(sid), until)],
            subjects: Vec::new(),
        });
    }

    /// Refuses every token of `subject` issued before `not_before` until `until` (Unix seconds).
    /// Only this instance's set changes (see [`Revocations::revoke_session`]).
    pub fn revoke_subject_before(&self, subject: &str, not_before: u64, until: u64) {
        self.apply(&Batch {
            sessions: Vec::new(),
            subjects: vec![(
                Arc::from(subject),
                NotBefore {
                    millis: not_before.saturating_mul(1000),
                    until,
                },
            )],
        });
    }

    /// The number of entries (sessions and subjects; expired ones count until the next write
    /// drops them).
    pub fn len(&self) -> usize {
        let snapshot = self.inner.current.load();
        snapshot.sessions.len + snapshot.subjects.len
    }

    /// Whether the set has no entry.
    pub fn is_empty(&self) -> bool {
        self.inner.current.load().is_empty()
    }

    /// A handle on the current snapshot (one atomic load; later writes do not change it).
    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.current.load_full()
    }

    /// `subject`'s "not before" in `snapshot`, in milliseconds.
    pub(crate) fn not_before_in(&self, snapshot: &Snapshot, subject: &str) -> Option<u64> {
        snapshot
            .subjects
            .get(subject, &self.inner.hasher)
            .map(|nb| nb.millis)
    }

    /// Adds the entries of `batch` (merged with those present) as one write; `false` when that
    /// changed nothing (no snapshot is swapped in then). Entries are only ever added, never
    /// dropped but by expiry: a store that lost its data (a restarted Redis without
    /// persistence) does not un-revoke anything this instance knew.
    pub(crate) fn apply(&self, batch: &Batch) -> bool {
        let _writer = self.writer();
        let now = now_secs();
        let current = self.inner.current.load_full();
        let (sessions, subjects) = self.tables(&current);
        let new_sessions = sessions.with(&self.inner.hasher, now, &batch.sessions);
        let new_subjects = subjects.with(&self.inner.hasher, now, &batch.subjects);
        if new_sessions.is_none() && new_subjects.is_none() {
            return false;
        }
        self.inner.current.store(Arc::new(Snapshot {
            sessions: new_sessions.unwrap_or(sessions),
            subjects: new_subjects.unwrap_or(subjects),
        }));
        crate::metrics::revoked_entries(self.len());
        #[cfg(test)]
        self.inner
            .writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        true
    }

    /// [`apply`](Self::apply), with a large batch built on tokio's blocking pool (when called
    /// inside a runtime) so that no runtime worker is held for more than a moment. The set has
    /// every entry when this returns.
    pub(crate) async fn apply_async(&self, batch: Batch) -> bool {
        self.apply_async_with(batch.len(), move || batch).await
    }

    /// [`apply_async`](Self::apply_async) of the batch `build` makes (of about `len` entries),
    /// made on the blocking pool too when large.
    pub(crate) async fn apply_async_with(
        &self,
        len: usize,
        build: impl FnOnce() -> Batch + Send + 'static,
    ) -> bool {
        if len <= INLINE_ENTRIES || tokio::runtime::Handle::try_current().is_err() {
            return self.apply(&build());
        }
        let this = self.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let job = move || {
            let batch = build();
            let changed = this.apply(&batch);
            // Handed back only if the job's result is lost (the runtime shutting down).
            let _ = tx.send(batch);
            changed
        };
        match tokio::task::spawn_blocking(job).await {
            Ok(changed) => changed,
            // The pool is shutting down (the runtime is): apply here rather than lose entries.
            Err(_) => rx.try_recv().is_ok_and(|batch| self.apply(&batch)),
        }
    }

    /// Entries of this set that `remote` lacks (or holds with an earlier expiry or "not
    /// before"), among those that still refuse a valid token after `after` (Unix seconds).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn missing_from(&self, remote: &Batch, after: u64) -> Batch {
        let snapshot = self.snapshot();
        let (sessions, subjects) = self.tables(&snapshot);
        let theirs: HashMap<&str, u64> = remote
            .sessions
            .iter()
            .map(|(sid, until)| (&**sid, *until))
            .collect();
        let their_subjects: HashMap<&str, NotBefore> = remote
            .subjects
            .iter()
            .map(|(sub, nb)| (&**sub, *nb))
            .collect();
        Batch {
            sessions: sessions
                .iter()
                .filter(|(sid, until)| {
                    **until > after && theirs.get(&***sid).is_none_or(|u| u < *until)
                })
                .map(|(sid, until)| (Arc::clone(sid), *until))
                .collect(),
            subjects: subjects
                .iter()
                .filter(|(sub, nb)| {
                    nb.until > after
                        && their_subjects
                            .get(&***sub)
                            .is_none_or(|theirs| theirs.merged(**nb) != *theirs)
                })
                .map(|(sub, nb)| (Arc::clone(sub), *nb))
                .collect(),
        }
    }

    /// The tables of `snapshot`, or empty ones for the placeholder of a new set.
    fn tables(&self, snapshot: &Snapshot) -> (Table<u64>, Table<NotBefore>) {
        if snapshot.sessions.shards.is_empty() {
            (
                Table::empty(&self.inner.hasher),
                Table::empty(&self.inner.hasher),
            )
        } else {
            (snapshot.sessions.clone(), snapshot.subjects.clone())
        }
    }

    /// The number of snapshots swapped in so far.
    #[cfg(test)]
    pub(crate) fn writes(&self) -> u64 {
        self.inner.writes.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn writer(&self) -> MutexGuard<'_, ()> {
        // The guarded data is `()`: a writer that panicked left nothing half-written (the
        // snapshot is swapped whole or not at all).
        self.inner
            .write
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl fmt::Debug for Revocations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let snapshot = self.inner.current.load();
        f.debug_struct("Revocations")
            .field("sessions", &snapshot.sessions.len)
            .field("subjects", &snapshot.subjects.len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Grant, JwtConfig, JwtKey, TokenUse};

    fn claims(grant: &Grant<'_>) -> Claims {
        let jwt =
            JwtConfig::new(JwtKey::from_secret("a secret of at least 32 random bytes!!").unwrap())
                .build()
                .unwrap();
        let token = jwt.issue(grant).tokens.access_token;
        jwt.verify(&token, TokenUse::Access).unwrap()
    }

    fn shards_shared(a: &Snapshot, b: &Snapshot) -> usize {
        a.sessions
            .shards
            .iter()
            .zip(b.sessions.shards.iter())
            .filter(|(x, y)| Arc::ptr_eq(x, y))
            .count()
    }

    #[test]
    fn sessions_subjects_and_expiry() {
        let r = Revocations::new();
        let a = claims(&Grant::new("alice").session("sid-a"));
        let b = claims(&Grant::new("bob").session("sid-b"));
        let plain = claims(&Grant::new("alice"));
        assert!(r.is_empty());
        assert!(!r.is_revoked(&a) && !r.is_revoked(&plain));

        let now = now_secs();
        r.revoke_session("sid-a", now + 60);
        assert!(r.is_revoked(&a));
        assert!(!r.is_revoked(&b));
        assert!(!r.is_revoked(&plain));

        // Not-before: tokens issued before it are refused, later ones pass.
        r.revoke_subject_before("bob", now + 1, now + 60);
        assert!(r.is_revoked(&b));
        r.revoke_subject_before("alice", now, now + 60);
        assert!(!r.is_revoked(&plain), "iat == not-before passes");
        assert_eq!(r.not_before("bob"), Some(now + 1));
        assert_eq!(r.not_before_millis("bob"), Some((now + 1) * 1000));
        assert_eq!(r.len(), 3);

        // Expired entries are never added, and dropped at the next write.
        r.revoke_session("old", now - 1);
        assert!(!r.is_session_revoked("old"));
        // A clone shares the set.
        let clone = r.clone();
        clone.revoke_session("sid-b", now + 60);
        assert!(r.is_session_revoked("sid-b"));

        // apply only adds; missing_from finds what a store lacks.
        let other = Batch {
            sessions: vec![(Arc::from("sid-c"), now + 60)],
            subjects: Vec::new(),
        };
        assert!(r.apply(&other));
        assert!(!r.apply(&other), "nothing new: no write");
        assert!(r.is_session_revoked("sid-c") && r.is_session_revoked("sid-a"));
        let missing = r.missing_from(&other, now);
        let mut sids: Vec<&str> = missing.sessions.iter().map(|(s, _)| &**s).collect();
        sids.sort_unstable();
        assert_eq!(sids, ["sid-a", "sid-b"]);
        assert_eq!(missing.subjects.len(), 2);
        // Entries that refuse nothing valid after `after` are not missing.
        assert!(r.missing_from(&other, now + 60).is_empty());
    }

    #[test]
    fn a_write_copies_only_the_shards_it_touches_and_drops_expired_entries() {
        let r = Revocations::new();
        let far = now_secs() + 3600;
        let batch = Batch {
            sessions: (0..10_000)
                .map(|i| (Arc::from(format!("sid-{i}")), far))
                .collect(),
            subjects: Vec::new(),
        };
        assert!(r.apply(&batch));
        assert_eq!(r.len(), 10_000);
        let before = r.snapshot();
        r.revoke_session("one-more", far);
        let after = r.snapshot();
        assert_eq!(shards_shared(&before, &after), SHARDS - 1);
        assert!(Arc::ptr_eq(&before.subjects.shards, &after.subjects.shards));
        assert_eq!(r.len(), 10_001);

        // An entry about to expire: dropped by the first write after its expiry.
        let soon = now_secs() + 1;
        r.revoke_session("short-lived", soon);
        assert!(r.is_session_revoked("short-lived"));
        std::thread::sleep(std::time::Duration::from_millis(2100));
        r.revoke_session("trigger", far);
        assert!(!r.is_session_revoked("short-lived"));
        assert_eq!(r.len(), 10_002);
    }

    #[test]
    fn merged_values_keep_the_latest() {
        let r = Revocations::new();
        let far = now_secs() + 3600;
        r.revoke_subject_before("carol", 100, far);
        r.revoke_subject_before("carol", 50, far + 10);
        assert_eq!(r.not_before("carol"), Some(100));
        let missing = r.missing_from(
            &Batch {
                sessions: Vec::new(),
                subjects: vec![(
                    Arc::from("carol"),
                    NotBefore {
                        millis: 100_000,
                        until: far,
                    },
                )],
            },
            0,
        );
        assert_eq!(missing.subjects.len(), 1, "a later expiry is news");
    }
}
