//! [`MemorySessionStore`]: sessions in this process, for a single instance.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{RefreshVerdict, Revocations, Rotation, SessionError, SessionStore, retention};
use crate::Jwt;
use crate::token::now_secs;

/// Sessions held in this process: correct for one instance (a fleet needs a shared store, such
/// as the Redis one). A mutex guards the map; it is taken on login, refresh and logout only,
/// never on a protected request (the layer reads [`Revocations`]). Expired sessions are dropped
/// as logins go by. Cloning shares the store.
///
/// ```
/// use tower_jwt_login::session::{MemorySessionStore, RefreshVerdict, SessionStore};
/// use tower_jwt_login::{JwtConfig, JwtKey};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let jwt = JwtConfig::new(JwtKey::from_secret("a secret of at least 32 random bytes!!").unwrap())
///     .build()
///     .unwrap();
/// let store = MemorySessionStore::new(&jwt);
/// store.start("s1", "alice", "jti-1", u64::MAX).await.unwrap();
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
}

#[derive(Default)]
struct State {
    sessions: HashMap<String, Session>,
    by_subject: HashMap<String, HashSet<String>>,
}

struct Session {
    subject: String,
    current: String,
    /// The last spent refresh token and when it was spent (ms since the epoch).
    previous: Option<(String, u64)>,
    expires_at: u64,
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
            }),
        }
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

    fn prune(&mut self, now: u64) {
        let expired: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.expires_at <= now)
            .map(|(sid, _)| sid.clone())
            .collect();
        for sid in expired {
            self.remove(&sid);
        }
    }
}

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
    async fn start(
        &self,
        sid: &str,
        subject: &str,
        refresh_jti: &str,
        expires_at: u64,
    ) -> Result<(), SessionError> {
        let mut state = self.lock();
        state.prune(now_secs());
        state.remove(sid);
        state.sessions.insert(
            sid.to_owned(),
            Session {
                subject: subject.to_owned(),
                current: refresh_jti.to_owned(),
                previous: None,
                expires_at,
            },
        );
        state
            .by_subject
            .entry(subject.to_owned())
            .or_default()
            .insert(sid.to_owned());
        Ok(())
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
        let Some(session) = state.sessions.get_mut(sid) else {
            return Ok(RefreshVerdict::Ended);
        };
        if session.subject != subject || session.expires_at <= now_ms / 1000 {
            return Ok(RefreshVerdict::Ended);
        }
        let current = session.current == presented_jti;
        let grace = rotation.map_or(Duration::ZERO, |r| r.grace());
        let within_grace = session.previous.as_ref().is_some_and(|(jti, spent)| {
            jti == presented_jti && now_ms.saturating_sub(*spent) < millis(grace)
        });
        if current || within_grace {
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
        let sids: Vec<String> = {
            let mut state = self.lock();
            let sids: Vec<String> = state
                .by_subject
                .get(subject)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            for sid in &sids {
                state.remove(sid);
            }
            sids
        };
        let until = self.revoke_until();
        for sid in &sids {
            self.inner.revocations.revoke_session(sid, until);
        }
        self.inner
            .revocations
            .revoke_subject_before(subject, now_secs(), until);
        Ok(())
    }

    fn revocations(&self) -> &Revocations {
        &self.inner.revocations
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
