//! [`Revocations`]: the local set of revoked sessions and per-subject "not before" times that
//! the layer consults on every request, without I/O and without a lock.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::token::{Claims, now_secs};

/// The revoked sessions (by `sid`) and per-subject "not before" times of this instance.
///
/// The layer ([`JwtAuthLayer::revocations`](crate::auth::JwtAuthLayer::revocations)) refuses a
/// token whose session is in the set, or whose `iat` is before its subject's "not before". A
/// [`SessionStore`](super::SessionStore) owns one and keeps it current: the memory store writes
/// into it directly, the Redis store also applies what other instances publish and re-reads the
/// whole set after every reconnect.
///
/// Reads take no lock: the set is an immutable snapshot behind an [`ArcSwap`]; an empty set (the
/// common case) is answered after one atomic load. Writes (rare: a logout) copy the snapshot,
/// drop the expired entries and swap the copy in. Every entry expires with the longest token
/// lifetime, after which no token it could refuse is valid anyway, so the set stays small.
/// Cloning shares the set.
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
    snapshot: Arc<ArcSwap<Snapshot>>,
}

/// One immutable state of the set.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub(crate) struct Snapshot {
    /// `sid` → when the entry expires (Unix seconds).
    pub(crate) sessions: HashMap<Box<str>, u64>,
    /// `sub` → (not before, when the entry expires), Unix seconds.
    pub(crate) not_before: HashMap<Box<str>, (u64, u64)>,
}

impl Snapshot {
    fn is_empty(&self) -> bool {
        self.sessions.is_empty() && self.not_before.is_empty()
    }

    fn prune(&mut self, now: u64) {
        self.sessions.retain(|_, until| *until > now);
        self.not_before.retain(|_, (_, until)| *until > now);
    }

    fn add_session(&mut self, sid: &str, until: u64) {
        let entry = self.sessions.entry(Box::from(sid)).or_insert(until);
        *entry = (*entry).max(until);
    }

    fn add_not_before(&mut self, subject: &str, not_before: u64, until: u64) {
        let entry = self
            .not_before
            .entry(Box::from(subject))
            .or_insert((not_before, until));
        entry.0 = entry.0.max(not_before);
        entry.1 = entry.1.max(until);
    }

    /// Entries of `self` that `other` lacks (or holds with an earlier expiry / not-before).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn missing_from(&self, other: &Snapshot) -> Snapshot {
        Snapshot {
            sessions: self
                .sessions
                .iter()
                .filter(|(sid, until)| other.sessions.get(*sid).is_none_or(|u| u < *until))
                .map(|(sid, until)| (sid.clone(), *until))
                .collect(),
            not_before: self
                .not_before
                .iter()
                .filter(|(sub, (nb, until))| {
                    other
                        .not_before
                        .get(*sub)
                        .is_none_or(|(onb, ou)| onb < nb || ou < until)
                })
                .map(|(sub, v)| (sub.clone(), *v))
                .collect(),
        }
    }
}

impl Revocations {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the layer must refuse a token with these (verified) claims: its session was
    /// revoked, or it was issued before its subject's "not before". Lock-free.
    pub fn is_revoked(&self, claims: &Claims) -> bool {
        let snapshot = self.snapshot.load();
        if snapshot.is_empty() {
            return false;
        }
        if let Some(sid) = claims.session_id()
            && snapshot.sessions.contains_key(sid)
        {
            return true;
        }
        match snapshot.not_before.get(claims.subject()) {
            Some((not_before, _)) => claims.issued_at().is_none_or(|iat| iat < *not_before),
            None => false,
        }
    }

    /// Whether the session `sid` is in the set.
    pub fn is_session_revoked(&self, sid: &str) -> bool {
        self.snapshot.load().sessions.contains_key(sid)
    }

    /// The "not before" time of `subject` (Unix seconds), if one is set.
    pub fn not_before(&self, subject: &str) -> Option<u64> {
        self.snapshot
            .load()
            .not_before
            .get(subject)
            .map(|(nb, _)| *nb)
    }

    /// Revokes the session `sid` until `until` (Unix seconds; pass the time after which no token
    /// of the session can be valid any more). Only this instance's set changes: to revoke across
    /// a fleet, end the session in the [`SessionStore`](super::SessionStore).
    pub fn revoke_session(&self, sid: &str, until: u64) {
        self.update(|s| s.add_session(sid, until));
    }

    /// Refuses every token of `subject` issued before `not_before` until `until` (Unix seconds).
    /// Only this instance's set changes (see [`Revocations::revoke_session`]).
    pub fn revoke_subject_before(&self, subject: &str, not_before: u64, until: u64) {
        self.update(|s| s.add_not_before(subject, not_before, until));
    }

    /// The number of live entries (sessions and subjects).
    pub fn len(&self) -> usize {
        let snapshot = self.snapshot.load();
        snapshot.sessions.len() + snapshot.not_before.len()
    }

    /// Whether the set has no entry.
    pub fn is_empty(&self) -> bool {
        self.snapshot.load().is_empty()
    }

    /// A copy of the current snapshot.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot::clone(&self.snapshot.load())
    }

    /// Adds every entry of `other` (a full re-read from the shared store). Entries are only ever
    /// added here, never dropped but by expiry: a store that lost its data (a restarted Redis
    /// without persistence) does not un-revoke anything this instance knew.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn merge(&self, other: &Snapshot) {
        self.update(|s| {
            for (sid, until) in &other.sessions {
                s.add_session(sid, *until);
            }
            for (sub, (nb, until)) in &other.not_before {
                s.add_not_before(sub, *nb, *until);
            }
        });
    }

    /// Copy, change, prune, swap. Writers are rare; `rcu` retries if two race.
    fn update(&self, change: impl Fn(&mut Snapshot)) {
        let now = now_secs();
        self.snapshot.rcu(|current| {
            let mut next = Snapshot::clone(current);
            change(&mut next);
            next.prune(now);
            next
        });
    }
}

impl fmt::Debug for Revocations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let snapshot = self.snapshot.load();
        f.debug_struct("Revocations")
            .field("sessions", &snapshot.sessions.len())
            .field("subjects", &snapshot.not_before.len())
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
        assert_eq!(r.len(), 3);

        // Expired entries are dropped at the next write.
        r.revoke_session("old", now - 1);
        assert!(!r.is_session_revoked("old"));
        // A clone shares the set.
        let clone = r.clone();
        clone.revoke_session("sid-b", now + 60);
        assert!(r.is_session_revoked("sid-b"));

        // merge only adds; missing_from finds what a store lacks.
        let mut other = Snapshot::default();
        other.sessions.insert("sid-c".into(), now + 60);
        r.merge(&other);
        assert!(r.is_session_revoked("sid-c") && r.is_session_revoked("sid-a"));
        let missing = r.snapshot().missing_from(&other);
        assert!(missing.sessions.contains_key("sid-a"));
        assert!(!missing.sessions.contains_key("sid-c"));
        assert_eq!(missing.not_before.len(), 2);
    }
}
