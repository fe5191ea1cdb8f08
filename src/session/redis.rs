//! [`RedisSessionStore`]: sessions shared by a fleet of instances through one Redis.
//!
//! # Key layout
//!
//! With the prefix `P` (default `tjl:`), every key carries the hash tag `{sessions}`, so all of
//! them sit in one Redis Cluster slot and every script may touch them together:
//!
//! | key | type | holds | expires |
//! |---|---|---|---|
//! | `P{sessions}:sess:<sid>` | hash | `sub`, `jti` (current refresh token), `exp`, `prev`/`prev_at` (last spent token, ms), `nb` (the subject's "not before" the login saw, ms), `at` (when it started, Redis µs; the oldest is ended first at the per-subject limit), `rat` (when last refreshed, Redis s), and, when known, `ip` (client address), `ua` (`User-Agent`), `kid`/`kname` (the API key's id and name) | at `exp`, the newest refresh token's expiry |
//! | `P{sessions}:user:<sub>` | sorted set | the subject's `sid`s, scored by their `exp` (plus the millisecond of the start or last rotation, as a fraction: the lowest is the oldest) | at the latest `exp`; expired members pruned on every write |
//! | `P{sessions}:nb:<sub>` | string | the subject's "not before", ms on Redis's clock | with its revocation entry |
//! | `P{sessions}:revoked` | sorted set | revoked `sid`s, scored by when the entry expires | at the latest score; expired members pruned on every write |
//! | `P{sessions}:nbf` | sorted set | `"<not-before ms> <sub>"`, scored by when the entry expires | likewise |
//!
//! and the pub/sub channel `P{sessions}:events` carries `r <until> <sid> [<sid> …]` (revoked
//! sessions), `a <not-before ms> <until> <n> <sid>… <sub>` (a subject logged out everywhere:
//! its "not before" and the `n` sessions ended) and `x` (re-read the set: an instance wrote
//! back what Redis had lost).
//!
//! Every change is one Lua script (`EVALSHA`): start (with the per-subject limit and the "not
//! before" check), refresh/rotate (with reuse detection; it also notes the time, `rat`), end,
//! end-all, and the owner's ending of one of its sessions or of those of an API key. The
//! owner's session list is one read-only script over the subject's `user:<sub>` set, never a
//! scan of the keyspace. A login and a refresh are one round trip each. Revocation entries live
//! as long as an access token can (plus a minute): a refresh is always checked against the
//! session itself.
//!
//! # Sync
//!
//! Each store runs a background task holding a dedicated subscriber connection and a reader
//! connection of its own (independent of the shared connection's reconnect backoff). On every
//! (re)connect it first subscribes, then re-reads the whole revocation set and not-before map
//! (retrying every 100 ms until that succeeds), so nothing published while it was away is
//! missed. A lost subscriber is reconnected at once, then every 100 ms; until it is subscribed
//! again, the set is re-read every 100 ms through the shared connection. It pings the subscriber
//! to notice a silent loss, re-reads once a second after start-up, and in full every
//! [`resync_interval`](crate::redis::RedisOptions::resync_interval) as a belt. A burst of
//! events is applied as one write. Entries are only ever added to the local set (and dropped by
//! expiry); after a re-read the task writes back what Redis lacks (a server restarted without
//! persistence) and publishes `x`, so every instance — one started after the loss too — re-reads
//! and refuses the restored revocations within a moment.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use redis::Script;
use redis::aio::ConnectionLike;

use super::revocations::{Batch, NotBefore};
use super::{
    DEFAULT_MAX_SESSIONS, NewSession, RefreshVerdict, Revocations, Rotation, SessionError,
    SessionInfo, SessionKey, SessionStore, StartVerdict, retention,
};
use crate::Jwt;
use crate::redis::{RedisConnection, RedisOptions, RedisSetupError, classify};
use crate::token::now_secs;

/// Helpers every script shares: the Redis clock, expiries, revoking and deleting sessions.
const LUA_COMMON: &str = r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function keep_until(key, at)
  redis.call('EXPIREAT', key, at, 'NX')
  redis.call('EXPIREAT', key, at, 'GT')
end
local function revoke_all(revoked, sids, till, now_s)
  for i = 1, #sids, 500 do
    local args = {}
    for j = i, math.min(i + 499, #sids) do
      args[#args + 1] = till
      args[#args + 1] = sids[j]
    end
    redis.call('ZADD', revoked, 'GT', unpack(args))
  end
  redis.call('ZREMRANGEBYSCORE', revoked, '-inf', now_s)
  keep_until(revoked, till)
end
local function unlink_sessions(prefix, sids)
  for i = 1, #sids, 500 do
    local keys = {}
    for j = i, math.min(i + 499, #sids) do
      keys[#keys + 1] = prefix .. sids[j]
    end
    redis.call('UNLINK', unpack(keys))
  end
end
"#;

/// KEYS: sess, user, nb, revoked. ARGV: sid, sub, jti, exp, seen not-before ms ('' = none),
/// max sessions, retention s, channel, session key prefix, client address, User-Agent, API key
/// id, API key name (each '' = none).
/// Returns `{'refused', nb}` or `{'started', evicted sid…}`.
const LUA_START: &str = r#"
local nb = redis.call('GET', KEYS[3])
if nb and (ARGV[5] == '' or tonumber(nb) > tonumber(ARGV[5])) then
  return {'refused', nb}
end
local now = now_ms()
local now_s = math.floor(now / 1000)
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_s)
local reply = {'started'}
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[6]) + 1
if over > 0 then
  -- The oldest by start (Redis time), not by expiry: refreshes move expiries.
  local aged = {}
  for _, sid in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    aged[#aged + 1] = {sid, tonumber(redis.call('HGET', ARGV[9] .. sid, 'at')) or 0}
  end
  table.sort(aged, function(x, y) return x[2] < y[2] or (x[2] == y[2] and x[1] < y[1]) end)
  local evicted = {}
  for i = 1, over do evicted[i] = aged[i][1] end
  for i = 1, #evicted, 500 do
    redis.call('ZREM', KEYS[2], unpack(evicted, i, math.min(i + 499, #evicted)))
  end
  unlink_sessions(ARGV[9], evicted)
  local till = now_s + tonumber(ARGV[7])
  revoke_all(KEYS[4], evicted, till, now_s)
  redis.call('PUBLISH', ARGV[8], 'r ' .. till .. ' ' .. table.concat(evicted, ' '))
  for _, sid in ipairs(evicted) do reply[#reply + 1] = sid end
end
local t = redis.call('TIME')
local fields = {'sub', ARGV[2], 'jti', ARGV[3], 'exp', ARGV[4], 'nb', ARGV[5], 'at', t[1] .. string.format('%06d', tonumber(t[2]))}
if ARGV[10] ~= '' then fields[#fields + 1] = 'ip'; fields[#fields + 1] = ARGV[10] end
if ARGV[11] ~= '' then fields[#fields + 1] = 'ua'; fields[#fields + 1] = ARGV[11] end
if ARGV[12] ~= '' then
  fields[#fields + 1] = 'kid'; fields[#fields + 1] = ARGV[12]
  fields[#fields + 1] = 'kname'; fields[#fields + 1] = ARGV[13]
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('EXPIREAT', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[2], tonumber(ARGV[4]) + (now % 1000) / 1000, ARGV[1])
keep_until(KEYS[2], ARGV[4])
return reply
"#;

/// KEYS: sess, user, revoked, nb. ARGV: sid, sub, presented, successor ('' = none), successor
/// exp, grace ms, retention s, channel.
const LUA_REFRESH: &str = r#"
local s = redis.call('HMGET', KEYS[1], 'sub', 'jti', 'prev', 'prev_at', 'nb')
if not s[1] or s[1] ~= ARGV[2] then return 'ended' end
local nb = redis.call('GET', KEYS[4])
if nb and (not s[5] or s[5] == '' or tonumber(nb) > tonumber(s[5])) then return 'ended' end
local now = now_ms()
local current = s[2] == ARGV[3]
local within = (not current) and s[3] == ARGV[3] and s[4] and (now - tonumber(s[4]) < tonumber(ARGV[6]))
if current or within then
  redis.call('HSET', KEYS[1], 'rat', math.floor(now / 1000))
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
  redis.call('ZADD', KEYS[2], 'GT', tonumber(ARGV[5]) + (now % 1000) / 1000, ARGV[1])
  keep_until(KEYS[2], ARGV[5])
  return 'rotated'
end
local now_s = math.floor(now / 1000)
local till = now_s + tonumber(ARGV[7])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
revoke_all(KEYS[3], {ARGV[1]}, till, now_s)
redis.call('PUBLISH', ARGV[8], 'r ' .. till .. ' ' .. ARGV[1])
return 'reused'
"#;

/// KEYS: sess, revoked. ARGV: sid, retention s, channel, user key prefix. Returns the entry's
/// expiry.
const LUA_END: &str = r#"
local now_s = math.floor(now_ms() / 1000)
local till = now_s + tonumber(ARGV[2])
local sub = redis.call('HGET', KEYS[1], 'sub')
if sub then redis.call('ZREM', ARGV[4] .. sub, ARGV[1]) end
redis.call('DEL', KEYS[1])
revoke_all(KEYS[2], {ARGV[1]}, till, now_s)
redis.call('PUBLISH', ARGV[3], 'r ' .. till .. ' ' .. ARGV[1])
return till
"#;

/// KEYS: user. ARGV: session key prefix, sub. Returns one row per live session of the subject:
/// `{sid, exp, at, rat, ip, ua, kid, kname}` ('' = none). Reads only.
const LUA_LIST: &str = r#"
local now_s = math.floor(now_ms() / 1000)
local rows = {}
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now_s, '+inf')) do
  local s = redis.call('HMGET', ARGV[1] .. sid, 'sub', 'exp', 'at', 'rat', 'ip', 'ua', 'kid', 'kname')
  if s[1] == ARGV[2] and s[2] and tonumber(s[2]) > now_s then
    rows[#rows + 1] = {sid, s[2], s[3] or '', s[4] or '', s[5] or '', s[6] or '', s[7] or '', s[8] or ''}
  end
end
return rows
"#;

/// KEYS: sess, revoked, user. ARGV: sid, retention s, channel, sub. Ends the session if it is
/// the subject's; returns the revocation's expiry, or 0 (not the subject's session: nothing
/// done).
const LUA_END_OWN: &str = r#"
if redis.call('HGET', KEYS[1], 'sub') ~= ARGV[4] then return 0 end
local now_s = math.floor(now_ms() / 1000)
local till = now_s + tonumber(ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('DEL', KEYS[1])
revoke_all(KEYS[2], {ARGV[1]}, till, now_s)
redis.call('PUBLISH', ARGV[3], 'r ' .. till .. ' ' .. ARGV[1])
return till
"#;

/// KEYS: user, revoked. ARGV: API key id, retention s, channel, session key prefix. Ends the
/// subject's sessions started with the key; returns `{until, sid…}` (`{0}`: none).
const LUA_END_BY_KEY: &str = r#"
local ended = {}
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if redis.call('HGET', ARGV[4] .. sid, 'kid') == ARGV[1] then ended[#ended + 1] = sid end
end
if #ended == 0 then return {0} end
local now_s = math.floor(now_ms() / 1000)
local till = now_s + tonumber(ARGV[2])
for i = 1, #ended, 500 do
  redis.call('ZREM', KEYS[1], unpack(ended, i, math.min(i + 499, #ended)))
end
unlink_sessions(ARGV[4], ended)
revoke_all(KEYS[2], ended, till, now_s)
redis.call('PUBLISH', ARGV[3], 'r ' .. till .. ' ' .. table.concat(ended, ' '))
local reply = {till}
for _, sid in ipairs(ended) do reply[#reply + 1] = sid end
return reply
"#;

/// KEYS: user, revoked, nbf, nb. ARGV: sub, retention s, channel, session key prefix.
/// Returns `{not-before ms, until, {sid…}}`.
const LUA_END_ALL: &str = r#"
local now = now_ms()
local now_s = math.floor(now / 1000)
local till = now_s + tonumber(ARGV[2])
local earlier = redis.call('GET', KEYS[4])
local nb = now
if earlier then
  if tonumber(earlier) >= nb then nb = tonumber(earlier) + 1 end
  redis.call('ZREM', KEYS[3], earlier .. ' ' .. ARGV[1])
end
local sids = redis.call('ZRANGE', KEYS[1], 0, -1)
unlink_sessions(ARGV[4], sids)
redis.call('DEL', KEYS[1])
if #sids > 0 then revoke_all(KEYS[2], sids, till, now_s) end
local nbs = string.format('%d', nb)
redis.call('ZADD', KEYS[3], till, nbs .. ' ' .. ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now_s)
keep_until(KEYS[3], till)
redis.call('SET', KEYS[4], nbs, 'EXAT', till)
local event = 'a ' .. nbs .. ' ' .. till .. ' ' .. #sids
if #sids > 0 then event = event .. ' ' .. table.concat(sids, ' ') end
redis.call('PUBLISH', ARGV[3], event .. ' ' .. ARGV[1])
return {nb, till, sids}
"#;

/// KEYS: revoked, nbf. ARGV: n (session entries), "not before" key prefix, channel, publish
/// ('1' = publish `x` after), then n × (sid, till), then (sub, not-before ms, till)…
/// Writes back entries a restarted server lost.
const LUA_RESTORE: &str = r#"
local t = redis.call('TIME')
local n = tonumber(ARGV[1])
local i = 5
for _ = 1, n do
  redis.call('ZADD', KEYS[1], 'GT', ARGV[i + 1], ARGV[i])
  keep_until(KEYS[1], ARGV[i + 1])
  i = i + 2
end
while i + 2 <= #ARGV do
  local sub, nb, till = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local key = ARGV[2] .. sub
  local earlier = redis.call('GET', key)
  if not earlier or tonumber(earlier) < tonumber(nb) then
    if earlier then redis.call('ZREM', KEYS[2], earlier .. ' ' .. sub) end
    redis.call('SET', key, nb, 'EXAT', till)
  end
  redis.call('ZADD', KEYS[2], 'GT', till, nb .. ' ' .. sub)
  keep_until(KEYS[2], till)
  i = i + 3
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', t[1])
if ARGV[4] == '1' then redis.call('PUBLISH', ARGV[3], 'x') end
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
    fn not_before_prefix(&self) -> String {
        format!("{}nb:", self.base)
    }
    fn not_before_of(&self, subject: &str) -> String {
        format!("{}nb:{subject}", self.base)
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
    list: Script,
    end_own: Script,
    end_by_key: Script,
}

const BODIES: [&str; 8] = [
    LUA_START,
    LUA_REFRESH,
    LUA_END,
    LUA_END_ALL,
    LUA_RESTORE,
    LUA_LIST,
    LUA_END_OWN,
    LUA_END_BY_KEY,
];

impl Scripts {
    fn new() -> Self {
        let script = |body: &str| Script::new(&format!("{LUA_COMMON}{body}"));
        Scripts {
            start: script(LUA_START),
            refresh: script(LUA_REFRESH),
            end: script(LUA_END),
            end_all: script(LUA_END_ALL),
            restore: script(LUA_RESTORE),
            list: script(LUA_LIST),
            end_own: script(LUA_END_OWN),
            end_by_key: script(LUA_END_BY_KEY),
        }
    }
}

/// Sessions in Redis, shared by every instance of a fleet (feature `redis`). See the module
/// docs for the key layout and the sync. At most
/// [`max_sessions_per_subject`](Self::max_sessions_per_subject) live sessions per subject
/// (default 100). Cloning shares the store; the background sync task stops when the last clone
/// is dropped.
///
/// ```no_run
/// use tower_jwt_login::redis::RedisOptions;
/// use tower_jwt_login::session::{RedisSessionStore, SessionStore};
/// use tower_jwt_login::{JwtConfig, JwtKey};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let jwt = JwtConfig::new(JwtKey::from_secret("a secret of at least 32 random bytes!!")?).build()?;
/// let store = RedisSessionStore::connect("redis://127.0.0.1:6379", RedisOptions::new(), &jwt)
///     .await?
///     .max_sessions_per_subject(20);
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
    max_sessions: AtomicUsize,
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
        for body in BODIES {
            load.cmd("SCRIPT")
                .arg("LOAD")
                .arg(format!("{LUA_COMMON}{body}"));
        }
        redis
            .run(|mut con| async move { load.query_async::<()>(&mut con).await })
            .await
            .map_err(unreachable)?;
        let revocations = Revocations::new();
        let read_keys = keys.clone();
        let first = redis
            .run(|mut con| async move { read_all(&mut con, &read_keys).await })
            .await
            .map_err(unreachable)?;
        revocations.apply_async(first).await;
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
                max_sessions: AtomicUsize::new(DEFAULT_MAX_SESSIONS),
                sync,
            }),
        })
    }

    /// At most `max` live sessions per subject (default 100; at least 1). A login that would
    /// exceed it ends the subject's oldest session (the one whose refresh token expires first:
    /// the least recently started or rotated), revoked on every instance like a logout, in the
    /// same script; the login service writes an audit event for it
    /// (`session_evicted`). Applies to every clone; give every instance the same.
    #[must_use]
    pub fn max_sessions_per_subject(self, max: usize) -> Self {
        self.inner.max_sessions.store(max.max(1), Ordering::Relaxed);
        self
    }

    /// The connection (shared with the fleet throttle).
    pub fn connection(&self) -> &RedisConnection {
        &self.inner.redis
    }
}

impl SessionStore for RedisSessionStore {
    async fn start(&self, session: NewSession<'_>) -> Result<StartVerdict, SessionError> {
        let inner = &self.inner;
        let seen = session
            .not_before_seen()
            .map_or_else(String::new, |ms| ms.to_string());
        let mut call = inner.scripts.start.prepare_invoke();
        call.key(inner.keys.session(session.sid()))
            .key(inner.keys.user(session.subject()))
            .key(inner.keys.not_before_of(session.subject()))
            .key(inner.keys.revoked())
            .arg(session.sid())
            .arg(session.subject())
            .arg(session.refresh_jti())
            .arg(session.expires_at())
            .arg(seen)
            .arg(inner.max_sessions.load(Ordering::Relaxed))
            .arg(inner.retention)
            .arg(inner.keys.channel())
            .arg(inner.keys.session_prefix())
            .arg(
                session
                    .client_addr()
                    .map_or_else(String::new, |ip| ip.to_string()),
            )
            .arg(session.user_agent_str().unwrap_or_default())
            .arg(session.api_key_tag().map_or("", |key| key.id))
            .arg(session.api_key_tag().map_or("", |key| key.name));
        let reply: Vec<String> = inner
            .redis
            .run(|mut con| async move { call.invoke_async(&mut con).await })
            .await?;
        let mut reply = reply.into_iter();
        match reply.next().as_deref() {
            Some("started") => {
                let evicted: Vec<String> = reply.collect();
                if !evicted.is_empty() {
                    // The events reach this instance too; the set refuses them before the login
                    // answers.
                    let until = now_secs().saturating_add(inner.retention);
                    let batch = Batch {
                        sessions: evicted
                            .iter()
                            .map(|sid| (Arc::from(&**sid), until))
                            .collect(),
                        subjects: Vec::new(),
                    };
                    inner.revocations.apply_async(batch).await;
                }
                Ok(StartVerdict::Started { evicted })
            }
            Some("refused") => match reply.next().and_then(|nb| nb.parse().ok()) {
                Some(not_before) => Ok(StartVerdict::Refused { not_before }),
                None => Err(SessionError::Store(
                    "start refused without a not-before".to_owned(),
                )),
            },
            other => Err(SessionError::Store(format!(
                "unexpected start verdict {other:?}"
            ))),
        }
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
            .key(inner.keys.not_before_of(subject))
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
                let until = now_secs().saturating_add(inner.retention);
                inner.revocations.revoke_session(sid, until);
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
        let until: u64 = inner
            .redis
            .run_durable(|mut con| async move { call.invoke_async(&mut con).await })
            .await?;
        inner.revocations.revoke_session(sid, until);
        Ok(())
    }

    async fn end_all(&self, subject: &str) -> Result<(), SessionError> {
        let inner = &self.inner;
        let mut call = inner.scripts.end_all.prepare_invoke();
        call.key(inner.keys.user(subject))
            .key(inner.keys.revoked())
            .key(inner.keys.not_before())
            .key(inner.keys.not_before_of(subject))
            .arg(subject)
            .arg(inner.retention)
            .arg(inner.keys.channel())
            .arg(inner.keys.session_prefix());
        let (not_before, until, sids): (u64, u64, Vec<String>) = inner
            .redis
            .run_durable(|mut con| async move { call.invoke_async(&mut con).await })
            .await?;
        // Here at once, as one write: the "not before" (on Redis's clock, as every instance
        // learns it) and every session ended. The same event reaches this instance again and
        // changes nothing then.
        let len = sids.len() + 1;
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
        inner.revocations.apply_async_with(len, build).await;
        Ok(())
    }

    fn revocations(&self) -> &Revocations {
        &self.inner.revocations
    }

    async fn list(&self, subject: &str) -> Result<Vec<SessionInfo>, SessionError> {
        let inner = &self.inner;
        let mut call = inner.scripts.list.prepare_invoke();
        call.key(inner.keys.user(subject))
            .arg(inner.keys.session_prefix())
            .arg(subject);
        let rows: Vec<Vec<String>> = inner
            .redis
            .run(|mut con| async move { call.invoke_async(&mut con).await })
            .await?;
        let mut live: Vec<(u64, SessionInfo)> = Vec::with_capacity(rows.len());
        for row in rows {
            let [sid, exp, at, rat, ip, ua, kid, kname]: [String; 8] = row
                .try_into()
                .map_err(|_| SessionError::Store("unexpected session row".to_owned()))?;
            let Ok(expires_at) = exp.parse::<u64>() else {
                return Err(SessionError::Store(format!("session expiry {exp:?}")));
            };
            // `at` is Redis's clock in microseconds.
            let started_micros = at.parse::<u64>().unwrap_or(0);
            let info = SessionInfo {
                sid,
                created_at: started_micros / 1_000_000,
                refreshed_at: rat.parse().ok(),
                expires_at,
                client: ip.parse().ok(),
                user_agent: (!ua.is_empty()).then_some(ua),
                api_key: (!kid.is_empty()).then_some(SessionKey {
                    id: kid,
                    name: kname,
                }),
            };
            live.push((started_micros, info));
        }
        live.sort_unstable_by(|a, b| (a.0, &a.1.sid).cmp(&(b.0, &b.1.sid)));
        Ok(live.into_iter().map(|(_, info)| info).collect())
    }

    async fn end_session(&self, subject: &str, sid: &str) -> Result<bool, SessionError> {
        let inner = &self.inner;
        let mut call = inner.scripts.end_own.prepare_invoke();
        call.key(inner.keys.session(sid))
            .key(inner.keys.revoked())
            .key(inner.keys.user(subject))
            .arg(sid)
            .arg(inner.retention)
            .arg(inner.keys.channel())
            .arg(subject);
        let until: u64 = inner
            .redis
            .run_durable(|mut con| async move { call.invoke_async(&mut con).await })
            .await?;
        if until == 0 {
            return Ok(false);
        }
        inner.revocations.revoke_session(sid, until);
        Ok(true)
    }

    async fn end_by_key(&self, subject: &str, key_id: &str) -> Result<usize, SessionError> {
        let inner = &self.inner;
        let mut call = inner.scripts.end_by_key.prepare_invoke();
        call.key(inner.keys.user(subject))
            .key(inner.keys.revoked())
            .arg(key_id)
            .arg(inner.retention)
            .arg(inner.keys.channel())
            .arg(inner.keys.session_prefix());
        let reply: Vec<String> = inner
            .redis
            .run_durable(|mut con| async move { call.invoke_async(&mut con).await })
            .await?;
        let mut reply = reply.into_iter();
        let Some(Ok(until)) = reply.next().map(|till| till.parse::<u64>()) else {
            return Err(SessionError::Store(
                "unexpected end-by-key reply".to_owned(),
            ));
        };
        let ended: Vec<String> = reply.collect();
        if !ended.is_empty() {
            let batch = Batch {
                sessions: ended.iter().map(|sid| (Arc::from(&**sid), until)).collect(),
                subjects: Vec::new(),
            };
            inner.revocations.apply_async(batch).await;
        }
        Ok(ended.len())
    }
}

/// The login throttle counts in the store's Redis: give the store with
/// [`Sessions::with_fleet`](super::Sessions::with_fleet).
impl super::FleetThrottling for RedisSessionStore {
    fn fleet_throttle(
        &self,
        throttle: crate::throttle::LoginThrottle,
        account_key: &[u8],
    ) -> crate::throttle::LoginThrottle {
        throttle.fleet(self.connection().clone(), account_key)
    }
}

impl fmt::Debug for RedisSessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSessionStore")
            .field("redis", &self.inner.redis)
            .field("revocations", &self.inner.revocations)
            .field(
                "max_sessions_per_subject",
                &self.inner.max_sessions.load(Ordering::Relaxed),
            )
            .finish_non_exhaustive()
    }
}

/// Members per `ZSCAN` step of a re-read: a large set is read in pieces, none of which takes a
/// runtime worker long to parse.
const SCAN_COUNT: usize = 2000;

/// The live revocation entries in Redis, read with `ZSCAN` (every entry present for the whole
/// read is returned; one round trip for a small set).
async fn read_all<C: ConnectionLike + Send>(con: &mut C, keys: &Keys) -> redis::RedisResult<Batch> {
    let now = now_secs();
    let mut batch = Batch::default();
    for (key, sessions) in [(keys.revoked(), true), (keys.not_before(), false)] {
        let mut cursor = 0u64;
        loop {
            let (next, page): (u64, Vec<(String, f64)>) = redis::cmd("ZSCAN")
                .arg(&key)
                .arg(cursor)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(con)
                .await?;
            for (member, until) in page {
                let until = score(until);
                if until <= now {
                    continue;
                }
                if sessions {
                    batch.sessions.push((Arc::from(member), until));
                } else if let Some((nb, subject)) = member.split_once(' ')
                    && let Ok(millis) = nb.parse::<u64>()
                {
                    batch
                        .subjects
                        .push((Arc::from(subject), NotBefore { millis, until }));
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    Ok(batch)
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn score(value: f64) -> u64 {
    // Scores are whole Unix seconds written by the scripts.
    value.max(0.0) as u64
}

/// Entries written back per script call (a server that lost a large set is not blocked long).
const RESTORE_CHUNK: usize = 1000;

/// Writes `missing` back to Redis, then publishes `x` so that every instance re-reads.
async fn write_back<C: ConnectionLike + Send>(
    con: &mut C,
    keys: &Keys,
    scripts: &Scripts,
    missing: &Batch,
) -> redis::RedisResult<()> {
    let sessions: Vec<_> = missing.sessions.chunks(RESTORE_CHUNK).collect();
    let subjects: Vec<_> = missing.subjects.chunks(RESTORE_CHUNK).collect();
    let calls = sessions.len().max(subjects.len());
    for i in 0..calls {
        let mut call = scripts.restore.prepare_invoke();
        let these = sessions.get(i).copied().unwrap_or_default();
        call.key(keys.revoked())
            .key(keys.not_before())
            .arg(these.len())
            .arg(keys.not_before_prefix())
            .arg(keys.channel())
            .arg(if i + 1 == calls { "1" } else { "0" });
        for (sid, until) in these {
            call.arg(&**sid).arg(*until);
        }
        for (subject, nb) in subjects.get(i).copied().unwrap_or_default() {
            call.arg(&**subject).arg(nb.millis).arg(nb.until);
        }
        call.invoke_async::<()>(con).await?;
    }
    Ok(())
}

/// How a re-read ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WriteBack {
    /// Write back what Redis lacks (and publish `x`).
    Yes,
    /// Only merge (a re-read asked for by `x`: writing back then could echo forever).
    No,
}

/// Re-reads the set over `con`, merges it, and (with [`WriteBack::Yes`]) writes back what
/// Redis lacks. The comparisons run on tokio's blocking pool: a large set is no burden on the
/// runtime.
async fn resync<C: ConnectionLike + Send>(
    con: &mut C,
    keys: &Keys,
    revocations: &Revocations,
    scripts: &Scripts,
    write: WriteBack,
) -> Result<(), SessionError> {
    let remote = read_all(con, keys).await.map_err(|e| classify(&e))?;
    let local = revocations.clone();
    let compare = move || {
        local.apply(&remote);
        match write {
            // Only entries that still refuse a valid token a minute from now: one near its
            // expiry is not written back (a server whose clock runs ahead would drop it at once).
            WriteBack::Yes => local.missing_from(&remote, now_secs().saturating_add(60)),
            WriteBack::No => Batch::default(),
        }
    };
    let missing = match tokio::task::spawn_blocking(compare).await {
        Ok(missing) => missing,
        Err(error) => return Err(SessionError::Store(error.to_string())),
    };
    if missing.is_empty() {
        return Ok(());
    }
    tracing::info!(
        sessions = missing.sessions.len(),
        subjects = missing.subjects.len(),
        "restoring revocations Redis lost"
    );
    write_back(con, keys, scripts, &missing)
        .await
        .map_err(|e| classify(&e))
}

/// What one published event asks of this instance.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    /// Entries to add.
    Revoke(Batch),
    /// Re-read the set.
    Reread,
    Unknown,
}

/// Parses one published event.
fn parse_event(payload: &str) -> Event {
    let mut parts = payload.split(' ');
    match parts.next() {
        Some("r") => {
            let Some(Ok(until)) = parts.next().map(str::parse::<u64>) else {
                return Event::Unknown;
            };
            let sessions: Vec<(Arc<str>, u64)> = parts
                .filter(|sid| !sid.is_empty())
                .map(|sid| (Arc::from(sid), until))
                .collect();
            if sessions.is_empty() {
                return Event::Unknown;
            }
            Event::Revoke(Batch {
                sessions,
                subjects: Vec::new(),
            })
        }
        Some("a") => {
            let (Some(Ok(millis)), Some(Ok(until)), Some(Ok(count))) = (
                parts.next().map(str::parse::<u64>),
                parts.next().map(str::parse::<u64>),
                parts.next().map(str::parse::<usize>),
            ) else {
                return Event::Unknown;
            };
            let mut sessions = Vec::with_capacity(count.min(1 << 20));
            for _ in 0..count {
                match parts.next() {
                    Some(sid) => sessions.push((Arc::from(sid), until)),
                    None => return Event::Unknown,
                }
            }
            // The subject is the rest (it may hold spaces).
            let subject = parts.collect::<Vec<_>>().join(" ");
            if subject.is_empty() {
                return Event::Unknown;
            }
            Event::Revoke(Batch {
                sessions,
                subjects: vec![(Arc::from(subject), NotBefore { millis, until })],
            })
        }
        Some("x") if parts.next().is_none() => Event::Reread,
        _ => Event::Unknown,
    }
}

/// The most events applied as one write.
const BURST: usize = 4096;

/// Event bytes parsed on the runtime; more (a "log out everywhere" of thousands of sessions)
/// are parsed and applied on the blocking pool.
const PARSE_INLINE: usize = 64 * 1024;

/// Parses `payloads` into one batch (and whether one asks for a re-read).
fn parse_events(payloads: &[Vec<u8>]) -> (Batch, bool) {
    let mut batch = Batch::default();
    let mut reread = false;
    for payload in payloads {
        match parse_event(&String::from_utf8_lossy(payload)) {
            Event::Revoke(b) => batch.extend(b),
            Event::Reread => reread = true,
            Event::Unknown => tracing::warn!("ignoring an unknown session event"),
        }
    }
    (batch, reread)
}

/// Applies a burst of events as one write; whether one asked for a re-read.
async fn apply_events(revocations: &Revocations, payloads: Vec<Vec<u8>>) -> bool {
    let size: usize = payloads.iter().map(Vec::len).sum();
    if size <= PARSE_INLINE {
        let (batch, reread) = parse_events(&payloads);
        if !batch.is_empty() {
            revocations.apply_async(batch).await;
        }
        return reread;
    }
    let local = revocations.clone();
    let payloads = Arc::new(payloads);
    let job = Arc::clone(&payloads);
    let work = move || {
        let (batch, reread) = parse_events(&job);
        local.apply(&batch);
        reread
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(reread) => reread,
        // The pool is shutting down (the runtime is): apply here rather than lose entries.
        Err(_) => {
            let (batch, reread) = parse_events(&payloads);
            revocations.apply(&batch);
            reread
        }
    }
}

/// How soon a lost subscriber or a failed re-read is tried again.
const RETRY: Duration = Duration::from_millis(100);

/// When the one extra re-read after start-up happens.
const STARTUP_REREAD: Duration = Duration::from_secs(1);

/// The sync task's own connections: the subscriber, and a reader for re-reads and write-backs.
async fn connect(
    redis: &RedisConnection,
    channel: &str,
    timeout: Duration,
) -> Result<(redis::aio::PubSub, redis::aio::MultiplexedConnection), SessionError> {
    let connect = async {
        // The current primary's (with Sentinel, looked up again when it cannot be reached).
        let mut pubsub = redis.pubsub().await?;
        pubsub.subscribe(channel).await?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let reader = redis
            .client()
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        Ok::<_, redis::RedisError>((pubsub, reader))
    };
    match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(connections)) => Ok(connections),
        Ok(Err(error)) => Err(classify(&error)),
        Err(_) => Err(SessionError::Unavailable("timed out".to_owned())),
    }
}

/// Keeps `revocations` in step with Redis for as long as the store lives.
async fn sync_task(redis: RedisConnection, keys: Keys, revocations: Revocations, scripts: Scripts) {
    let timeout = redis.timeout();
    let channel = keys.channel();
    let mut warned = false;
    let mut startup_reread = Some(tokio::time::Instant::now() + STARTUP_REREAD);
    loop {
        let (pubsub, mut reader) = match connect(&redis, &channel, timeout).await {
            Ok(connections) => connections,
            Err(error) => {
                if !warned {
                    tracing::warn!(%error, "session sync: Redis subscriber connection lost, reconnecting");
                    warned = true;
                }
                // Until subscribed again, re-read on a short period through the shared
                // connection: it may be back before the subscriber is.
                let keys_read = keys.clone();
                if let Ok(remote) = redis
                    .run(|mut con| async move { read_all(&mut con, &keys_read).await })
                    .await
                {
                    revocations.apply_async(remote).await;
                }
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let (mut sink, mut stream) = pubsub.split();
        // Subscribed first, then read: an event published in between is in the read or arrives
        // as a message, never lost. The read is retried every `RETRY` until it succeeds, while
        // events are applied meanwhile.
        let mut synced = false;
        let mut retry_tick = tokio::time::interval(RETRY);
        let mut resync_tick = tokio::time::interval(redis.options().resync());
        resync_tick.reset();
        let mut ping_tick = tokio::time::interval(Duration::from_secs(2));
        ping_tick.reset();
        let startup = tokio::time::sleep_until(
            startup_reread
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600)),
        );
        tokio::pin!(startup);
        loop {
            tokio::select! {
                _ = retry_tick.tick(), if !synced => {
                    match resync(&mut reader, &keys, &revocations, &scripts, WriteBack::Yes).await {
                        Ok(()) => {
                            synced = true;
                            if warned {
                                tracing::info!("session sync with Redis restored");
                                warned = false;
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
                msg = stream.next() => {
                    let Some(msg) = msg else { break };
                    let mut payloads = vec![msg.get_payload_bytes().to_vec()];
                    let mut closed = false;
                    // A burst: everything already received, as one write.
                    while payloads.len() < BURST {
                        match stream.next().now_or_never() {
                            Some(Some(msg)) => payloads.push(msg.get_payload_bytes().to_vec()),
                            Some(None) => {
                                closed = true;
                                break;
                            }
                            None => break,
                        }
                    }
                    let reread = apply_events(&revocations, payloads).await;
                    if reread && synced
                        && let Err(error) = resync(&mut reader, &keys, &revocations, &scripts, WriteBack::No).await
                    {
                        tracing::warn!(%error, "re-read after a write-back failed");
                        synced = false;
                    }
                    if closed {
                        break;
                    }
                }
                _ = resync_tick.tick() => {
                    if let Err(error) = resync(&mut reader, &keys, &revocations, &scripts, WriteBack::Yes).await {
                        tracing::warn!(%error, "periodic revocation re-read failed");
                        synced = false;
                    }
                }
                _ = &mut startup, if synced && startup_reread.is_some() => {
                    startup_reread = None;
                    if let Err(error) = resync(&mut reader, &keys, &revocations, &scripts, WriteBack::Yes).await {
                        tracing::warn!(%error, "revocation re-read after start-up failed");
                        synced = false;
                    }
                }
                _ = ping_tick.tick() => {
                    // A subscribed RESP2 connection answers `["pong", ""]`, not a string.
                    let ping = tokio::time::timeout(timeout, sink.ping::<redis::Value>()).await;
                    if !matches!(ping, Ok(Ok(_))) {
                        break;
                    }
                }
            }
        }
        // Lost: reconnect at once.
        if !warned {
            tracing::warn!("session sync: Redis subscriber connection lost, reconnecting");
            warned = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Event, Keys, NotBefore, parse_event};
    use std::sync::Arc;
    use std::time::Duration;

    use crate::redis::RedisOptions;
    use crate::session::{RedisSessionStore, SessionStore, new_session_id};
    use crate::{JwtConfig, JwtKey};

    /// Events that arrive together are applied as one write, not one write each (needs the
    /// Redis on 127.0.0.1:6379 the test suite uses).
    #[tokio::test]
    async fn a_burst_of_events_is_applied_as_few_writes() {
        let jwt =
            JwtConfig::new(JwtKey::from_secret("a secret of at least 32 random bytes!!").unwrap())
                .build()
                .unwrap();
        let prefix = format!("tjl-test-{}:", new_session_id());
        let url = "redis://127.0.0.1:6379";
        let store = RedisSessionStore::connect(url, RedisOptions::new().prefix(&prefix), &jwt)
            .await
            .unwrap();
        let client = redis::Client::open(url).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let channel = Keys::new(&prefix).channel();
        loop {
            let (_, n): (String, i64) = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(&channel)
                .query_async(&mut con)
                .await
                .unwrap();
            if n == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Past the start-up re-read, which writes nothing here anyway.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let revocations = store.revocations().clone();
        let before = revocations.writes();
        let far = crate::token::now_secs() + 3600;
        let mut pipe = redis::pipe();
        for i in 0..2000 {
            pipe.cmd("PUBLISH")
                .arg(&channel)
                .arg(format!("r {far} burst-{i}"));
        }
        pipe.query_async::<()>(&mut con).await.unwrap();
        let started = std::time::Instant::now();
        while revocations.len() < 2000 {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{revocations:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let writes = revocations.writes() - before;
        println!("2000 events applied in {writes} writes");
        // One write per event would be 2000; they arrive in a few reads.
        assert!(writes <= 200, "{writes} writes for 2000 events");
    }

    #[test]
    fn events_parse_and_unknown_ones_are_ignored() {
        let far = u64::MAX / 2;
        let Event::Revoke(batch) = parse_event(&format!("r {far} sid-1 sid-2")) else {
            panic!("not parsed");
        };
        assert_eq!(
            batch.sessions,
            [(Arc::from("sid-1"), far), (Arc::from("sid-2"), far)]
        );
        let Event::Revoke(batch) =
            parse_event(&format!("a 1700000000123 {far} 2 s1 s2 user with spaces"))
        else {
            panic!("not parsed");
        };
        assert_eq!(
            batch.sessions,
            [(Arc::from("s1"), far), (Arc::from("s2"), far)]
        );
        assert_eq!(
            batch.subjects,
            [(
                Arc::from("user with spaces"),
                NotBefore {
                    millis: 1_700_000_000_123,
                    until: far
                }
            )]
        );
        let Event::Revoke(batch) = parse_event(&format!("a 5 {far} 0 bob")) else {
            panic!("not parsed");
        };
        assert!(batch.sessions.is_empty());
        assert_eq!(batch.subjects.len(), 1);
        assert_eq!(parse_event("x"), Event::Reread);
        for bad in [
            "x 1 2 3".to_owned(),
            "q 1 2".to_owned(),
            "r notanumber sid-2".to_owned(),
            format!("r {far}"),
            format!("a 1 {far} 3 s1 s2"),
            format!("a 1 {far} 1 s1"),
            String::new(),
        ] {
            assert_eq!(parse_event(&bad), Event::Unknown, "{bad:?}");
        }
    }

    #[test]
    fn keys_share_one_hash_tag() {
        let keys = Keys::new("tjl:");
        assert_eq!(keys.session("abc"), "tjl:{sessions}:sess:abc");
        assert_eq!(keys.user("alice"), "tjl:{sessions}:user:alice");
        assert_eq!(keys.not_before_of("alice"), "tjl:{sessions}:nb:alice");
        assert_eq!(keys.revoked(), "tjl:{sessions}:revoked");
        assert_eq!(keys.not_before(), "tjl:{sessions}:nbf");
        assert_eq!(keys.channel(), "tjl:{sessions}:events");
    }
}
