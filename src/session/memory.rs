//! [`MemorySessionStore`]: sessions in this process, for a single instance.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::revocations::{Batch, NotBefore};
use super::{
    DEFAULT_MAX_SESSIONS, NewSession, RefreshVerdict, Revocations, Rotation, SessionError,
    SessionInfo, SessionKey, SessionStore, StartVerdict, retention,
};
use crate::Jwt;
use crate::token::now_secs;

/// Sessions held in this process: correct for one instance (a fleet needs a shared store, such
/// as the Redis one). A mutex guards the map; it is taken on login, refresh and logout only,
/// never on a protected request (the layer reads [`Revocations`]). Expired sessions are dropped
/// as logins go by. At most [`max_sessions_per_subject`](Self::max_sessions_per_subject) live
/// sessions per subject (default 100). Cloning shares the store.
///
/// ```
/// use tower_jwt_login::session::{MemorySessionStore, NewSession, RefreshVerdict, SessionStore};
/// use tower_jwt_login::{JwtConfig, JwtKey};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let jwt = JwtConfig::new(JwtKey::from_secret("a secret of at least 32 random bytes!!").unwrap())
///     .build()
///     .unwrap();
/// let store = MemorySessionStore::new(&jwt).max_sessions_per_subject(10);
/// store.start(NewSession::new("s1", "alice", "jti-1", u64::MAX)).await.unwrap();
/// assert_eq!(store.refresh("s1", "alice", "jti-1", None).await.unwrap(), RefreshVerdict::Live);
/// store.end("s1").await.unwrap();
/// assert_eq!(store.refresh("s1", "alice", "jti-1", None).await.unwrap(), RefreshVerdict::Ended);
/// assert!(store.revocations().is_session_revoked("s1"));
/// # });
/// ```
#[derive(Clone)]
pub struct MemorySessionStore {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    revocations: Revocations,
    /// Seconds a revocation is kept.
    retention: u64,
    max_sessions: AtomicUsize,
}

#[derive(Default)]
struct State {
    sessions: HashMap<String, Session>,
    by_subject: HashMap<String, HashSet<String>>,
    /// `sub` → its "not before" (ms) and until when it is kept (s).
    not_before: HashMap<String, (u64, u64)>,
    /// Starts since every session was last checked for expiry.
    starts: usize,
    /// Counts starts and rotations: orders sessions that expire in the same second.
    seq: u64,
}

struct Session {
    subject: String,
    current: String,
    /// The last spent refresh token and when it was spent (ms since the epoch).
    previous: Option<(String, u64)>,
    expires_at: u64,
    /// The subject's "not before" (ms) the login saw: the session is older than any later one.
    seen_not_before: Option<u64>,
    /// When it was started or last rotated ([`State::seq`]).
    touched: u64,
    /// When it started, Unix seconds, and the order of its start ([`State::seq`]).
    created_at: u64,
    started: u64,
    /// When it was last refreshed, Unix seconds.
    refreshed_at: Option<u64>,
    /// Where the login came from.
    client: Option<IpAddr>,
    user_agent: Option<String>,
    /// The API key it was started with: id, name.
    api_key: Option<(String, String)>,
}

impl Session {
    fn info(&self, sid: &str) -> SessionInfo {
        SessionInfo {
            sid: sid.to_owned(),
            created_at: self.created_at,
            refreshed_at: self.refreshed_at,
            expires_at: self.expires_at,
            client: self.client,
            user_agent: self.user_agent.clone(),
            api_key: self.api_key.as_ref().map(|(id, name)| SessionKey {
                id: id.clone(),
                name: name.clone(),
            }),
        }
    }
}

impl MemorySessionStore {
    /// An empty store for the tokens of `jwt` (its lifetimes bound how long revocations are
    /// kept).
    pub fn new(jwt: &Jwt) -> Self {
        MemorySessionStore {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                revocations: Revocations::new(),
                retention: retention(jwt),
                max_sessions: AtomicUsize::new(DEFAULT_MAX_SESSIONS),
            }),
        }
    }

    /// At most `max` live sessions per subject (default 100; at least 1). A login that would
    /// exceed it ends the subject's oldest session (the one whose refresh token expires first:
    /// the least recently started or rotated), revoked like a logout; the login service writes
    /// an audit event for it (`session_evicted`). Applies to every clone.
    #[must_use]
    pub fn max_sessions_per_subject(self, max: usize) -> Self {
        self.inner.max_sessions.store(max.max(1), Ordering::Relaxed);
        self
    }

    /// The number of live sessions.
    pub fn len(&self) -> usize {
        let now = now_secs();
        self.lock()
            .sessions
            .values()
            .filter(|s| s.expires_at > now)
            .count()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-changed in a way that
        // matters more than refusing every login would; keep serving.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn revoke_until(&self) -> u64 {
        now_secs().saturating_add(self.inner.retention)
    }
}

impl State {
    fn remove(&mut self, sid: &str) -> Option<Session> {
        let session = self.sessions.remove(sid)?;
        if let Some(sids) = self.by_subject.get_mut(&session.subject) {
            sids.remove(sid);
            if sids.is_empty() {
                self.by_subject.remove(&session.subject);
            }
        }
        Some(session)
    }

    /// Drops every expired session and "not before" — every so many starts, so that a start
    /// costs the same however many sessions there are.
    fn prune_now_and_then(&mut self, now: u64) {
        self.starts += 1;
        if self.starts < self.sessions.len().max(1024) {
            return;
        }
        self.starts = 0;
        let expired: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.expires_at <= now)
            .map(|(sid, _)| sid.clone())
            .collect();
        for sid in expired {
            self.remove(&sid);
        }
        self.not_before.retain(|_, (_, until)| *until > now);
    }

    /// `subject`'s live "not before" (ms).
    fn not_before(&self, subject: &str, now: u64) -> Option<u64> {
        self.not_before
            .get(subject)
            .filter(|(_, until)| *until > now)
            .map(|(nb, _)| *nb)
    }

    /// At `max` sessions or more, ends `subject`'s expired sessions, then its oldest ones until
    /// fewer than `max` are left; returns the live ones ended. Below `max`, costs nothing.
    fn make_room(&mut self, subject: &str, max: usize, now: u64) -> Vec<String> {
        let Some(sids) = self.by_subject.get(subject) else {
            return Vec::new();
        };
        if sids.len() < max {
            // Room whatever has expired (expired sessions go at the next prune): no scan.
            return Vec::new();
        }
        let mut live: Vec<(u64, u64, &String)> = Vec::with_capacity(sids.len());
        let mut expired: Vec<String> = Vec::new();
        for sid in sids {
            match self.sessions.get(sid) {
                Some(s) if s.expires_at > now => live.push((s.expires_at, s.touched, sid)),
                _ => expired.push(sid.clone()),
            }
        }
        let mut evicted = Vec::new();
        if live.len() >= max {
            live.sort_unstable();
            let over = live.len() + 1 - max;
            evicted = live
                .iter()
                .take(over)
                .map(|(_, _, sid)| (*sid).clone())
                .collect();
        }
        for sid in expired.iter().chain(&evicted) {
            self.remove(sid);
        }
        evicted
    }
}
/// Sessions removed under one hold of the lock by `end_all`.
const REMOVE_CHUNK: usize = 1024;

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl SessionStore for MemorySessionStore {
    async fn start(&self, session: NewSession<'_>) -> Result<StartVerdict, SessionError> {
        let now = now_secs();
        let subject = session.subject();
        let evicted = {
            let mut state = self.lock();
            state.prune_now_and_then(now);
            if let Some(not_before) = state.not_before(subject, now)
                && Some(not_before) > session.not_before_seen()
            {
                return Ok(StartVerdict::Refused { not_before });
            }
            state.remove(session.sid());
            let max = self.inner.max_sessions.load(Ordering::Relaxed);
            let evicted = state.make_room(subject, max, now);
            state.seq += 1;
            let touched = state.seq;
            state.sessions.insert(
                session.sid().to_owned(),
                Session {
                    subject: subject.to_owned(),
                    current: session.refresh_jti().to_owned(),
                    previous: None,
                    expires_at: session.expires_at(),
                    seen_not_before: session.not_before_seen(),
                    touched,
                    created_at: now,
                    started: touched,
                    refreshed_at: None,
                    client: session.client_addr(),
                    user_agent: session
                        .user_agent_str()
                        .filter(|ua| !ua.is_empty())
                        .map(str::to_owned),
                    api_key: session
                        .api_key_tag()
                        .map(|key| (key.id.to_owned(), key.name.to_owned())),
                },
            );
            state
                .by_subject
                .entry(subject.to_owned())
                .or_default()
                .insert(session.sid().to_owned());
            evicted
        };
        if !evicted.is_empty() {
            let until = self.revoke_until();
            let batch = Batch {
                sessions: evicted
                    .iter()
                    .map(|sid| (Arc::from(&**sid), until))
                    .collect(),
                subjects: Vec::new(),
            };
            self.inner.revocations.apply_async(batch).await;
        }
        Ok(StartVerdict::Started { evicted })
    }

    async fn refresh(
        &self,
        sid: &str,
        subject: &str,
        presented_jti: &str,
        rotation: Option<Rotation<'_>>,
    ) -> Result<RefreshVerdict, SessionError> {
        let mut state = self.lock();
        let now_ms = now_millis();
        let Some(session) = state.sessions.get(sid) else {
            return Ok(RefreshVerdict::Ended);
        };
        if session.subject != subject || session.expires_at <= now_ms / 1000 {
            return Ok(RefreshVerdict::Ended);
        }
        let seen = session.seen_not_before;
        if let Some(not_before) = state.not_before(subject, now_ms / 1000)
            && Some(not_before) > seen
        {
            // Started before its subject was logged out everywhere (`end_all` ends such
            // sessions; this holds even if one slipped through).
            return Ok(RefreshVerdict::Ended);
        }
        state.seq += 1;
        let touched = state.seq;
        let Some(session) = state.sessions.get_mut(sid) else {
            return Ok(RefreshVerdict::Ended);
        };
        let current = session.current == presented_jti;
        let grace = rotation.map_or(Duration::ZERO, |r| r.grace());
        let within_grace = session.previous.as_ref().is_some_and(|(jti, spent)| {
            jti == presented_jti && now_ms.saturating_sub(*spent) < millis(grace)
        });
        if current || within_grace {
            session.refreshed_at = Some(now_ms / 1000);
            let Some(rotation) = rotation else {
                return Ok(RefreshVerdict::Live);
            };
            if current {
                let spent =
                    std::mem::replace(&mut session.current, rotation.successor_jti().to_owned());
                session.previous = Some((spent, now_ms));
            } else {
                // A retry within the grace: the lost successor is replaced; the grace is not
                // extended (it counts from the first spending).
                session.current = rotation.successor_jti().to_owned();
            }
            session.expires_at = session.expires_at.max(rotation.expires_at());
            session.touched = touched;
            return Ok(RefreshVerdict::Rotated);
        }
        // A signed refresh token of this session that is not current: spent. End the session.
        state.remove(sid);
        drop(state);
        self.inner
            .revocations
            .revoke_session(sid, self.revoke_until());
        Ok(RefreshVerdict::Reused)
    }

    async fn end(&self, sid: &str) -> Result<(), SessionError> {
        self.lock().remove(sid);
        self.inner
            .revocations
            .revoke_session(sid, self.revoke_until());
        Ok(())
    }

    async fn end_all(&self, subject: &str) -> Result<(), SessionError> {
        let now_s = now_secs();
        let until = self.revoke_until();
        let (sids, not_before) = {
            let mut state = self.lock();
            let sids: Vec<String> = state
                .by_subject
                .remove(subject)
                .map(|s| s.into_iter().collect())
                .unwrap_or_default();
            // Strictly later than any earlier one, even if the clock stepped back.
            let earlier = state.not_before.get(subject).map_or(0, |(nb, _)| *nb);
            let not_before = now_millis().max(earlier.saturating_add(1));
            state
                .not_before
                .insert(subject.to_owned(), (not_before, until));
            state.not_before.retain(|_, (_, till)| *till > now_s);
            (sids, not_before)
        };
        let sids_len = sids.len();
        // The sessions go in pieces, the lock released in between: from here on a refresh of
        // one not yet removed is refused by the "not before" just set, and a start that saw an
        // earlier one is refused.
        for (i, chunk) in sids.chunks(REMOVE_CHUNK).enumerate() {
            if i > 0 {
                tokio::task::yield_now().await;
            }
            let mut state = self.lock();
            for sid in chunk {
                state.sessions.remove(sid);
            }
        }
        // One write for the whole subject (built off the runtime when large).
        let subject: Arc<str> = Arc::from(subject);
        let build = move || Batch {
            sessions: sids.iter().map(|sid| (Arc::from(&**sid), until)).collect(),
            subjects: vec![(
                subject,
                NotBefore {
                    millis: not_before,
                    until,
                },
            )],
        };
        self.inner
            .revocations
            .apply_async_with(sids_len + 1, build)
            .await;
        Ok(())
    }

    fn revocations(&self) -> &Revocations {
        &self.inner.revocations
    }

    async fn list(&self, subject: &str) -> Result<Vec<SessionInfo>, SessionError> {
        let now = now_secs();
        let state = self.lock();
        let Some(sids) = state.by_subject.get(subject) else {
            return Ok(Vec::new());
        };
        let mut live: Vec<(u64, u64, SessionInfo)> = sids
            .iter()
            .filter_map(|sid| {
                let session = state.sessions.get(sid)?;
                (session.subject == subject && session.expires_at > now)
                    .then(|| (session.created_at, session.started, session.info(sid)))
            })
            .collect();
        drop(state);
        // Oldest first: by start (the clock, then the order of starts).
        live.sort_unstable_by(|a, b| (a.0, a.1, &a.2.sid).cmp(&(b.0, b.1, &b.2.sid)));
        Ok(live.into_iter().map(|(_, _, info)| info).collect())
    }

    async fn end_session(&self, subject: &str, sid: &str) -> Result<bool, SessionError> {
        let now = now_secs();
        {
            let mut state = self.lock();
            let owned = state
                .sessions
                .get(sid)
                .is_some_and(|s| s.subject == subject && s.expires_at > now);
            if !owned {
                return Ok(false);
            }
            state.remove(sid);
        }
        self.inner
            .revocations
            .revoke_session(sid, self.revoke_until());
        Ok(true)
    }

    async fn end_by_key(&self, subject: &str, key_id: &str) -> Result<usize, SessionError> {
        let now = now_secs();
        let ended: Vec<String> = {
            let mut state = self.lock();
            let Some(sids) = state.by_subject.get(subject) else {
                return Ok(0);
            };
            let ended: Vec<String> = sids
                .iter()
                .filter(|sid| {
                    state.sessions.get(*sid).is_some_and(|s| {
                        s.expires_at > now && s.api_key.as_ref().is_some_and(|(id, _)| id == key_id)
                    })
                })
                .cloned()
                .collect();
            for sid in &ended {
                state.remove(sid);
            }
            ended
        };
        if !ended.is_empty() {
            let until = self.revoke_until();
            let batch = Batch {
                sessions: ended.iter().map(|sid| (Arc::from(&**sid), until)).collect(),
                subjects: Vec::new(),
            };
            self.inner.revocations.apply_async(batch).await;
        }
        Ok(ended.len())
    }
}

impl fmt::Debug for MemorySessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorySessionStore")
            .field("sessions", &self.lock().sessions.len())
            .field("revocations", &self.inner.revocations)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JwtConfig, JwtKey};

    fn store() -> MemorySessionStore {
        let jwt =
            JwtConfig::new(JwtKey::from_secret("a secret of at least 32 random bytes!!").unwrap())
                .build()
                .unwrap();
        MemorySessionStore::new(&jwt).max_sessions_per_subject(10_000)
    }

    #[tokio::test]
    async fn end_all_is_one_write_however_many_sessions_it_ends() {
        let store = store();
        let far = now_secs() + 3600;
        let sids: Vec<String> = (0..2000).map(|i| format!("sid-{i}")).collect();
        for sid in &sids {
            let verdict = store.start(NewSession::new(sid, "alice", "j", far)).await;
            assert_eq!(verdict.unwrap(), StartVerdict::Started { evicted: vec![] });
        }
        let revocations = store.revocations().clone();
        let before = revocations.writes();
        store.end_all("alice").await.unwrap();
        assert_eq!(revocations.writes() - before, 1);
        assert!(sids.iter().all(|sid| revocations.is_session_revoked(sid)));
        assert!(revocations.not_before("alice").is_some());
        assert!(store.is_empty());
    }

    #[tokio::test]
    async fn the_owner_lists_its_live_sessions_oldest_first_and_ends_them() {
        use crate::session::{KeyTag, SessionInfo, SessionKey};
        let store = store();
        let far = now_secs() + 3600;
        let before = now_secs();
        let client: IpAddr = "203.0.113.7".parse().unwrap();
        let key = KeyTag {
            id: "k1",
            name: "ci",
        };
        let starts = [
            NewSession::new("s1", "alice", "j1", far)
                .client(Some(client))
                .user_agent(Some("Firefox")),
            NewSession::new("s2", "alice", "j2", far + 10).api_key(Some(key)),
            NewSession::new("b1", "bob", "j3", far).api_key(Some(key)),
            // Expired already: never listed.
            NewSession::new("s3", "alice", "j4", before.saturating_sub(1)),
        ];
        for start in starts {
            store.start(start).await.unwrap();
        }
        let rotation = Rotation::new("j1b", far, Duration::ZERO);
        let verdict = store.refresh("s1", "alice", "j1", Some(rotation)).await;
        assert_eq!(verdict.unwrap(), RefreshVerdict::Rotated);
        let after = now_secs();

        let mut list = store.list("alice").await.unwrap();
        assert_eq!(list.len(), 2, "{list:?}");
        for info in &list {
            assert!((before..=after).contains(&info.created_at), "{info:?}");
        }
        let refreshed = list[0].refreshed_at.unwrap();
        assert!((before..=after).contains(&refreshed));
        for info in &mut list {
            info.created_at = 0;
        }
        list[0].refreshed_at = Some(0);
        let expected = [
            SessionInfo {
                sid: "s1".to_owned(),
                created_at: 0,
                refreshed_at: Some(0),
                expires_at: far,
                client: Some(client),
                user_agent: Some("Firefox".to_owned()),
                api_key: None,
            },
            SessionInfo {
                sid: "s2".to_owned(),
                created_at: 0,
                refreshed_at: None,
                expires_at: far + 10,
                client: None,
                user_agent: None,
                api_key: Some(SessionKey {
                    id: "k1".to_owned(),
                    name: "ci".to_owned(),
                }),
            },
        ];
        assert_eq!(list, expected);
        assert!(store.list("carol").await.unwrap().is_empty());

        // Another subject's session, an expired one and an unknown one are not alice's to end.
        assert!(!store.end_session("alice", "b1").await.unwrap());
        assert!(!store.end_session("alice", "s3").await.unwrap());
        assert!(!store.end_session("alice", "nope").await.unwrap());
        assert!(!store.revocations().is_session_revoked("b1"));
        assert!(store.end_session("alice", "s1").await.unwrap());
        assert!(store.revocations().is_session_revoked("s1"));
        let verdict = store.refresh("s1", "alice", "j1b", None).await;
        assert_eq!(verdict.unwrap(), RefreshVerdict::Ended);

        // Revoking the key ends alice's session of it, not bob's.
        assert_eq!(store.end_by_key("alice", "k1").await.unwrap(), 1);
        assert!(store.revocations().is_session_revoked("s2"));
        assert!(store.list("alice").await.unwrap().is_empty());
        assert_eq!(store.list("bob").await.unwrap().len(), 1);
        assert_eq!(store.end_by_key("alice", "k1").await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_login_beyond_the_limit_ends_the_oldest_session() {
        let store = store().max_sessions_per_subject(3);
        let far = now_secs() + 3600;
        for sid in ["s1", "s2", "s3"] {
            let verdict = store.start(NewSession::new(sid, "alice", "j", far)).await;
            assert_eq!(verdict.unwrap(), StartVerdict::Started { evicted: vec![] });
        }
        // Rotating s1 makes it the most recently used: s2 is the oldest now.
        let rotation = Rotation::new("j2", far, Duration::ZERO);
        let verdict = store.refresh("s1", "alice", "j", Some(rotation)).await;
        assert_eq!(verdict.unwrap(), RefreshVerdict::Rotated);
        let verdict = store.start(NewSession::new("s4", "alice", "j", far)).await;
        assert_eq!(
            verdict.unwrap(),
            StartVerdict::Started {
                evicted: vec!["s2".to_owned()]
            }
        );
        assert!(store.revocations().is_session_revoked("s2"));
        assert_eq!(
            store.refresh("s2", "alice", "j", None).await.unwrap(),
            RefreshVerdict::Ended
        );
        assert_eq!(store.len(), 3);
        // Another subject is not limited by alice's sessions.
        let verdict = store.start(NewSession::new("b1", "bob", "j", far)).await;
        assert_eq!(verdict.unwrap(), StartVerdict::Started { evicted: vec![] });
    }
}
