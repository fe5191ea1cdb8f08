//! [`RedisSessionStore`]: sessions shared by a fleet of instances through one Redis.
//!
//! # Key layout
//!
//! With the prefix `P` (default `tjl:`), every key carries the hash tag `{sessions}`, so all of
//! them sit in one Redis Cluster slot and every script may touch them together:
//!
//! | key | type | holds | expires |
//! |---|---|---|---|
//! | `P{sessions}:sess:<sid>` | hash | `sub`, `jti` (current refresh token), `exp`, `prev`/`prev_at` (last spent token, ms) | at `exp`, the newest refresh token's expiry |
//! | `P{sessions}:user:<sub>` | sorted set | the subject's `sid`s, scored by their `exp` | at the latest `exp`; expired members pruned on every write |
//! | `P{sessions}:revoked` | sorted set | revoked `sid`s, scored by when the entry expires | at the latest score; expired members pruned on every write |
//! | `P{sessions}:nbf` | sorted set | `"<not-before> <sub>"`, scored by when the entry expires | likewise |
//!
//! and the pub/sub channel `P{sessions}:events` carries `r <until> <sid>` (a revoked session)
//! and `n <not-before> <until> <sub>` (a subject's "not before").
//!
//! Every change is one Lua script (`EVALSHA`): start, refresh/rotate (with reuse detection),
//! end, end-all. A login and a refresh are one round trip each.
//!
//! # Sync
//!
//! Each store runs a background task holding a dedicated subscriber connection. On every
//! (re)connect it first subscribes, then re-reads the whole revocation set and not-before map,
//! so nothing published while it was away is missed; it pings the subscriber connection to
//! notice a silent loss, reconnects with a growing delay, and re-reads in full every
//! [`resync_interval`](crate::redis::RedisOptions::resync_interval) as a belt. Entries are only
//! ever added to the local set (and dropped by expiry); after a re-read the task writes back
//! what Redis lacks (a server restarted without persistence), so a logout survives an outage.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::Script;

use super::revocations::Snapshot;
use super::{RefreshVerdict, Revocations, Rotation, SessionError, SessionStore, retention};
use crate::Jwt;
use crate::redis::{RedisConnection, RedisOptions, RedisSetupError, classify};
use crate::token::now_secs;

/// Helpers every script shares: the Redis clock, and revoking one session.
const LUA_COMMON: &str = r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function keep_until(key, at)
  redis.call('EXPIREAT', key, at, 'NX')
  redis.call('EXPIREAT', key, at, 'GT')
end
local function revoke(revoked, sid, till, now_s, channel)
  redis.call('ZADD', revoked, till, sid)
  redis.call('ZREMRANGEBYSCORE', revoked, '-inf', now_s)
  keep_until(revoked, till)
  redis.call('PUBLISH', channel, 'r ' .. till .. ' ' .. sid)
end
"#;

/// KEYS: sess, user. ARGV: sid, sub, jti, exp.
const LUA_START: &str = r#"
local t = redis.call('TIME')
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'sub', ARGV[2], 'jti', ARGV[3], 'exp', ARGV[4])
redis.call('EXPIREAT', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', t[1])
keep_until(KEYS[2], ARGV[4])
return 1
"#;

/// KEYS: sess, user, revoked. ARGV: sid, sub, presented, successor ('' = none), successor exp,
/// grace ms, retention s, channel.
const LUA_REFRESH: &str = r#"
local s = redis.call('HMGET', KEYS[1], 'sub', 'jti', 'prev', 'prev_at')
if not s[1] or s[1] ~= ARGV[2] then return 'ended' end
local now = now_ms()
local current = s[2] == ARGV[3]
local within = (not current) and s[3] == ARGV[3] and s[4] and (now - tonumber(s[4]) < tonumber(ARGV[6]))
if current or within then
  if ARGV[4] == '' then return 'live' end
  if current then
    redis.call('HSET', KEYS[1], 'jti', ARGV[4], 'prev', ARGV[3], 'prev_at', now)
  else
    redis.call('HSET', KEYS[1], 'jti', ARGV[4])
  end
  if tonumber(ARGV[5]) > tonumber(redis.call('HGET', KEYS[1], 'exp')) then
    redis.call('HSET', KEYS[1], 'exp', ARGV[5])
    redis.call('EXPIREAT', KEYS[1], ARGV[5])
  end
  redis.call('ZADD', KEYS[2], 'GT', ARGV[5], ARGV[1])
  keep_until(KEYS[2], ARGV[5])
  return 'rotated'
end
local now_s = math.floor(now / 1000)
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
revoke(KEYS[3], ARGV[1], now_s + tonumber(ARGV[7]), now_s, ARGV[8])
return 'reused'
"#;

/// KEYS: sess, revoked. ARGV: sid, retention s, channel, user key prefix.
const LUA_END: &str = r#"
local now_s = math.floor(now_ms() / 1000)
local sub = redis.call('HGET', KEYS[1], 'sub')
if sub then redis.call('ZREM', ARGV[4] .. sub, ARGV[1]) end
redis.call('DEL', KEYS[1])
revoke(KEYS[2], ARGV[1], now_s + tonumber(ARGV[2]), now_s, ARGV[3])
return 1
"#;

/// KEYS: user, revoked, nbf. ARGV: sub, retention s, channel, session key prefix.
const LUA_END_ALL: &str = r#"
local now_s = math.floor(now_ms() / 1000)
local till = now_s + tonumber(ARGV[2])
local sids = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, sid in ipairs(sids) do
  redis.call('DEL', ARGV[4] .. sid)
  revoke(KEYS[2], sid, till, now_s, ARGV[3])
end
redis.call('DEL', KEYS[1])
redis.call('ZADD', KEYS[3], till, now_s .. ' ' .. ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now_s)
keep_until(KEYS[3], till)
redis.call('PUBLISH', ARGV[3], 'n ' .. now_s .. ' ' .. till .. ' ' .. ARGV[1])
return #sids
"#;

/// KEYS: revoked, nbf. ARGV: n (session entries), then n × (sid, till), then (member, till)…
/// Writes back entries a restarted server lost; nothing is published (every instance has them).
const LUA_RESTORE: &str = r#"
local t = redis.call('TIME')
local n = tonumber(ARGV[1])
local i = 2
for _ = 1, n do
  redis.call('ZADD', KEYS[1], 'GT', ARGV[i + 1], ARGV[i])
  keep_until(KEYS[1], ARGV[i + 1])
  i = i + 2
end
while i < #ARGV do
  redis.call('ZADD', KEYS[2], 'GT', ARGV[i + 1], ARGV[i])
  keep_until(KEYS[2], ARGV[i + 1])
  i = i + 2
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', t[1])
return 1
"#;

/// The key names under one prefix.
#[derive(Clone)]
struct Keys {
    base: String,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        Keys {
            base: format!("{prefix}{{sessions}}:"),
        }
    }
    fn session_prefix(&self) -> String {
        format!("{}sess:", self.base)
    }
    fn session(&self, sid: &str) -> String {
        format!("{}sess:{sid}", self.base)
    }
    fn user_prefix(&self) -> String {
        format!("{}user:", self.base)
    }
    fn user(&self, subject: &str) -> String {
        format!("{}user:{subject}", self.base)
    }
    fn revoked(&self) -> String {
        format!("{}revoked", self.base)
    }
    fn not_before(&self) -> String {
        format!("{}nbf", self.base)
    }
    fn channel(&self) -> String {
        format!("{}events", self.base)
    }
}

struct Scripts {
    start: Script,
    refresh: Script,
    end: Script,
    end_all: Script,
    restore: Script,
}

impl Scripts {
    fn new() -> Self {
        let script = |body: &str| Script::new(&format!("{LUA_COMMON}{body}"));
        Scripts {
            start: script(LUA_START),
            refresh: script(LUA_REFRESH),
            end: script(LUA_END),
            end_all: script(LUA_END_ALL),
            restore: script(LUA_RESTORE),
        }
    }
}

/// Sessions in Redis, shared by every instance of a fleet (feature `redis`). See the module
/// docs for the key layout and the sync. Cloning shares the store; the background sync task
/// stops when the last clone is dropped.
///
/// ```no_run
/// use tower_jwt_login::redis::RedisOptions;
/// use tower_jwt_login::session::{RedisSessionStore, SessionStore};
/// use tower_jwt_login::{JwtConfig, JwtKey};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let jwt = JwtConfig::new(JwtKey::from_secret("a secret of at least 32 random bytes!!")?).build()?;
/// let store = RedisSessionStore::connect("redis://127.0.0.1:6379", RedisOptions::new(), &jwt).await?;
/// // "Log this user out everywhere", on every instance within a second:
/// store.end_all("alice").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisSessionStore {
    inner: Arc<Inner>,
}

struct Inner {
    redis: RedisConnection,
    keys: Keys,
    scripts: Scripts,
    revocations: Revocations,
    retention: u64,
    sync: tokio::task::AbortHandle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.sync.abort();
    }
}

impl RedisSessionStore {
    /// Connects to `url` and starts a store for the tokens of `jwt`: see
    /// [`RedisSessionStore::new`].
    pub async fn connect(
        url: &str,
        options: RedisOptions,
        jwt: &Jwt,
    ) -> Result<Self, RedisSetupError> {
        let redis = RedisConnection::connect(url, options).await?;
        Self::new(redis, jwt).await
    }

    /// A store on `redis` for the tokens of `jwt` (their lifetimes bound how long revocations
    /// are kept). Loads the scripts, reads the revocation set once (so this instance refuses what
    /// the fleet revoked before it started) and spawns the sync task on the current tokio
    /// runtime.
    pub async fn new(redis: RedisConnection, jwt: &Jwt) -> Result<Self, RedisSetupError> {
        let keys = Keys::new(redis.prefix());
        let scripts = Scripts::new();
        let unreachable = |e: SessionError| RedisSetupError::Unreachable(e.to_string());
        let mut load = redis::pipe();
        for body in [LUA_START, LUA_REFRESH, LUA_END, LUA_END_ALL, LUA_RESTORE] {
            load.cmd("SCRIPT")
                .arg("LOAD")
                .arg(format!("{LUA_COMMON}{body}"));
        }
        redis
            .run(|mut con| async move { load.query_async::<()>(&mut con).await })
            .await
            .map_err(unreachable)?;
        let revocations = Revocations::new();
        let first = read_all(&redis, &keys).await.map_err(unreachable)?;
        revocations.merge(&first);
        let sync = tokio::spawn(sync_task(
            redis.clone(),
            keys.clone(),
            revocations.clone(),
            Scripts::new(),
        ))
        .abort_handle();
        Ok(RedisSessionStore {
            inner: Arc::new(Inner {
                redis,
                keys,
                scripts,
                revocations,
                retention: retention(jwt),
                sync,
            }),
        })
    }

    /// The connection (shared with the fleet throttle).
    pub fn connection(&self) -> &RedisConnection {
        &self.inner.redis
    }

    fn revoke_until(&self) -> u64 {
        now_secs().saturating_add(self.inner.retention)
    }
}

impl SessionStore for RedisSessionStore {
    async fn start(
        &self,
        sid: &str,
        subject: &str,
        refresh_jti: &str,
        expires_at: u64,
    ) -> Result<(), SessionError> {
        let inner = &self.inner;
        let mut call = inner.scripts.start.prepare_invoke();
        call.key(inner.keys.session(sid))
            .key(inner.keys.user(subject))
            .arg(sid)
            .arg(subject)
            .arg(refresh_jti)
            .arg(expires_at);
        inner
            .redis
            .run(|mut con| async move { call.invoke_async::<()>(&mut con).await })
            .await
    }

    async fn refresh(
        &self,
        sid: &str,
        subject: &str,
        presented_jti: &str,
        rotation: Option<Rotation<'_>>,
    ) -> Result<RefreshVerdict, SessionError> {
        let inner = &self.inner;
        let grace_ms = rotation.map_or(0, |r| {
            u64::try_from(r.grace().as_millis()).unwrap_or(u64::MAX)
        });
        let mut call = inner.scripts.refresh.prepare_invoke();
        call.key(inner.keys.session(sid))
            .key(inner.keys.user(subject))
            .key(inner.keys.revoked())
            .arg(sid)
            .arg(subject)
            .arg(presented_jti)
            .arg(rotation.map_or("", |r| r.successor_jti()))
            .arg(rotation.map_or(0, |r| r.expires_at()))
            .arg(grace_ms)
            .arg(inner.retention)
            .arg(inner.keys.channel());
        let verdict: String = inner
            .redis
            .run_durable(|mut con| async move { call.invoke_async(&mut con).await })
            .await?;
        let verdict = match verdict.as_str() {
            "live" => RefreshVerdict::Live,
            "rotated" => RefreshVerdict::Rotated,
            "reused" => {
                inner.revocations.revoke_session(sid, self.revoke_until());
                RefreshVerdict::Reused
            }
            "ended" => RefreshVerdict::Ended,
            other => {
                return Err(SessionError::Store(format!(
                    "unexpected refresh verdict {other:?}"
                )));
            }
        };
        Ok(verdict)
    }

    async fn end(&self, sid: &str) -> Result<(), SessionError> {
        let inner = &self.inner;
        let mut call = inner.scripts.end.prepare_invoke();
        call.key(inner.keys.session(sid))
            .key(inner.keys.revoked())
            .arg(sid)
            .arg(inner.retention)
            .arg(inner.keys.channel())
            .arg(inner.keys.user_prefix());
        inner
            .redis
            .run_durable(|mut con| async move { call.invoke_async::<()>(&mut con).await })
            .await?;
        inner.revocations.revoke_session(sid, self.revoke_until());
        Ok(())
    }

    async fn end_all(&self, subject: &str) -> Result<(), SessionError> {
        let inner = &self.inner;
        let mut call = inner.scripts.end_all.prepare_invoke();
        call.key(inner.keys.user(subject))
            .key(inner.keys.revoked())
            .key(inner.keys.not_before())
            .arg(subject)
            .arg(inner.retention)
            .arg(inner.keys.channel())
            .arg(inner.keys.session_prefix());
        inner
            .redis
            .run_durable(|mut con| async move { call.invoke_async::<()>(&mut con).await })
            .await?;
        // The sids ended are applied as their messages arrive (this instance is subscribed too);
        // the not-before takes effect here at once, and covers them meanwhile.
        inner
            .revocations
            .revoke_subject_before(subject, now_secs(), self.revoke_until());
        Ok(())
    }

    fn revocations(&self) -> &Revocations {
        &self.inner.revocations
    }
}

impl fmt::Debug for RedisSessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSessionStore")
            .field("redis", &self.inner.redis)
            .field("revocations", &self.inner.revocations)
            .finish_non_exhaustive()
    }
}

/// Members of a sorted set with their scores.
type Scored = Vec<(String, f64)>;

/// The live revocation entries in Redis: one round trip.
async fn read_all(redis: &RedisConnection, keys: &Keys) -> Result<Snapshot, SessionError> {
    let now = now_secs();
    let mut pipe = redis::pipe();
    pipe.cmd("ZRANGEBYSCORE")
        .arg(keys.revoked())
        .arg(now)
        .arg("+inf")
        .arg("WITHSCORES")
        .cmd("ZRANGEBYSCORE")
        .arg(keys.not_before())
        .arg(now)
        .arg("+inf")
        .arg("WITHSCORES");
    let (sessions, subjects): (Scored, Scored) = redis
        .run(|mut con| async move { pipe.query_async(&mut con).await })
        .await?;
    let mut snapshot = Snapshot::default();
    for (sid, until) in sessions {
        snapshot.sessions.insert(sid.into_boxed_str(), score(until));
    }
    for (member, until) in subjects {
        if let Some((nb, subject)) = member.split_once(' ')
            && let Ok(nb) = nb.parse::<u64>()
        {
            let entry = snapshot
                .not_before
                .entry(Box::from(subject))
                .or_insert((nb, score(until)));
            entry.0 = entry.0.max(nb);
            entry.1 = entry.1.max(score(until));
        }
    }
    Ok(snapshot)
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn score(value: f64) -> u64 {
    // Scores are whole Unix seconds written by the scripts.
    value.max(0.0) as u64
}

/// Re-reads the set, merges it, and writes back what Redis lacks.
async fn resync(
    redis: &RedisConnection,
    keys: &Keys,
    revocations: &Revocations,
    scripts: &Scripts,
) -> Result<(), SessionError> {
    let remote = read_all(redis, keys).await?;
    // Swap in a new snapshot only when Redis holds something this instance lacks.
    let news = remote.missing_from(&revocations.snapshot());
    if !news.is_empty() {
        revocations.merge(&news);
    }
    let missing = revocations.snapshot().missing_from(&remote);
    if missing.is_empty() {
        return Ok(());
    }
    tracing::info!(
        sessions = missing.sessions.len(),
        subjects = missing.not_before.len(),
        "restoring revocations Redis lost"
    );
    let mut call = scripts.restore.prepare_invoke();
    call.key(keys.revoked())
        .key(keys.not_before())
        .arg(missing.sessions.len());
    for (sid, until) in &missing.sessions {
        call.arg(&**sid).arg(*until);
    }
    for (subject, (nb, until)) in &missing.not_before {
        call.arg(format!("{nb} {subject}")).arg(*until);
    }
    redis
        .run(|mut con| async move { call.invoke_async::<()>(&mut con).await })
        .await
}

/// Applies one published event to the local set.
fn apply(revocations: &Revocations, payload: &str) {
    let mut parts = payload.splitn(4, ' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("r"), Some(until), Some(sid), None) => {
            if let Ok(until) = until.parse() {
                revocations.revoke_session(sid, until);
            }
        }
        (Some("n"), Some(nb), Some(until), Some(subject)) => {
            if let (Ok(nb), Ok(until)) = (nb.parse(), until.parse()) {
                revocations.revoke_subject_before(subject, nb, until);
            }
        }
        _ => tracing::warn!("ignoring an unknown session event"),
    }
}

/// Keeps `revocations` in step with Redis for as long as the store lives.
async fn sync_task(redis: RedisConnection, keys: Keys, revocations: Revocations, scripts: Scripts) {
    let timeout = redis.timeout();
    let channel = keys.channel();
    let mut delay = Duration::from_millis(50);
    let mut warned = false;
    loop {
        match subscribe(&redis, &channel, timeout).await {
            Ok(pubsub) => {
                let (mut sink, mut stream) = pubsub.split();
                // Subscribed first, then read: an event published in between is in the read or
                // arrives as a message, never lost.
                match resync(&redis, &keys, &revocations, &scripts).await {
                    Ok(()) => {
                        if warned {
                            tracing::info!("session sync with Redis restored");
                            warned = false;
                        }
                        delay = Duration::from_millis(50);
                        let mut resync_tick = tokio::time::interval(redis.options().resync());
                        resync_tick.reset();
                        let mut ping_tick = tokio::time::interval(Duration::from_secs(2));
                        ping_tick.reset();
                        loop {
                            tokio::select! {
                                msg = stream.next() => match msg {
                                    Some(msg) => apply(&revocations, &String::from_utf8_lossy(msg.get_payload_bytes())),
                                    None => break,
                                },
                                _ = resync_tick.tick() => {
                                    if let Err(error) = resync(&redis, &keys, &revocations, &scripts).await {
                                        tracing::warn!(%error, "periodic revocation re-read failed");
                                    }
                                }
                                _ = ping_tick.tick() => {
                                    let ping = tokio::time::timeout(timeout, sink.ping::<String>()).await;
                                    if !matches!(ping, Ok(Ok(_))) {
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    Err(error) => {
                        if !warned {
                            tracing::warn!(%error, "session sync: re-reading revocations failed");
                            warned = true;
                        }
                    }
                }
            }
            Err(error) => {
                if !warned {
                    tracing::warn!(%error, "session sync: Redis subscriber connection lost, reconnecting");
                    warned = true;
                }
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

async fn subscribe(
    redis: &RedisConnection,
    channel: &str,
    timeout: Duration,
) -> Result<redis::aio::PubSub, SessionError> {
    let connect = async {
        let mut pubsub = redis.pubsub().await?;
        pubsub.subscribe(channel).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(pubsub)) => Ok(pubsub),
        Ok(Err(error)) => Err(classify(&error)),
        Err(_) => Err(SessionError::Unavailable("timed out".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::{Keys, apply};
    use crate::session::Revocations;

    #[test]
    fn events_apply_and_unknown_ones_are_ignored() {
        let r = Revocations::new();
        let far = u64::MAX / 2;
        apply(&r, &format!("r {far} sid-1"));
        apply(&r, &format!("n 100 {far} user with spaces"));
        apply(&r, "x 1 2");
        apply(&r, "r notanumber sid-2");
        assert!(r.is_session_revoked("sid-1"));
        assert!(!r.is_session_revoked("sid-2"));
        assert_eq!(r.not_before("user with spaces"), Some(100));
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn keys_share_one_hash_tag() {
        let keys = Keys::new("tjl:");
        assert_eq!(keys.session("abc"), "tjl:{sessions}:sess:abc");
        assert_eq!(keys.user("alice"), "tjl:{sessions}:user:alice");
        assert_eq!(keys.revoked(), "tjl:{sessions}:revoked");
        assert_eq!(keys.not_before(), "tjl:{sessions}:nbf");
        assert_eq!(keys.channel(), "tjl:{sessions}:events");
    }
}
