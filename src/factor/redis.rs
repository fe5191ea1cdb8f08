//! [`RedisFactorStore`]: second-factor enrolments shared by a fleet through one Redis.

use std::fmt;
use std::future::Future;

use redis::Script;

use super::store::{FactorRecord, FactorStoreError, SecondFactorStore};
use crate::redis::RedisConnection;
use crate::session::SessionError;

/// KEYS: user. ARGV: sealed, lapse (Unix s). A user without a confirmed secret goes with it.
const LUA_SETUP: &str = r#"
redis.call('HSET', KEYS[1], 'pending', ARGV[1], 'pending_exp', ARGV[2])
if redis.call('HEXISTS', KEYS[1], 'secret') == 0 then redis.call('EXPIREAT', KEYS[1], ARGV[2]) end
return 1
"#;

/// KEYS: user, recovery. ARGV: sealed, then the recovery hashes.
const LUA_ACTIVATE: &str = r#"
if redis.call('HGET', KEYS[1], 'pending') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'secret', ARGV[1])
redis.call('HDEL', KEYS[1], 'pending', 'pending_exp')
redis.call('PERSIST', KEYS[1])
redis.call('DEL', KEYS[2])
for i = 2, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
return 1
"#;

/// KEYS: user, recovery. ARGV: the recovery hashes.
const LUA_REPLACE_RECOVERY: &str = r#"
if redis.call('HEXISTS', KEYS[1], 'secret') == 0 then return 0 end
redis.call('DEL', KEYS[2])
for i = 1, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
return 1
"#;

/// KEYS: user. ARGV: step. Only a step later than every one used before is claimed.
const LUA_CLAIM_STEP: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local last = redis.call('HGET', KEYS[1], 'step')
if last and tonumber(last) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'step', ARGV[1])
return 1
"#;

/// KEYS: devices. ARGV: hash, expiry, now (Unix s). Lapsed devices are dropped; the key lives
/// as long as its latest device.
const LUA_TRUST: &str = r#"
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if tonumber(all[i + 1]) <= tonumber(ARGV[3]) then redis.call('HDEL', KEYS[1], all[i]) end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIREAT', KEYS[1], ARGV[2], 'NX')
redis.call('EXPIREAT', KEYS[1], ARGV[2], 'GT')
return 1
"#;

/// KEYS: check. ARGV: candidate.
const LUA_KEY_CHECK: &str = r#"
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
"#;

/// Second-factor enrolments in Redis (feature `redis`), shared by every instance on the same
/// Redis and prefix: an enrolment made on one instance is asked for on all, and a code used on
/// one is refused on the others (the step is claimed in one atomic script).
///
/// Keys, with the connection's prefix `P`, all with the hash tag `{factor}` (one Redis Cluster
/// slot):
///
/// | key | type | holds | expires |
/// |---|---|---|---|
/// | `P{factor}:user:<sub>` | hash | `secret` (sealed), `pending` (sealed), `pending_exp`, `step` (last used) | with a lapsed setup; never once confirmed |
/// | `P{factor}:recovery:<sub>` | set | HMAC-SHA-256 of each unused recovery code | — |
/// | `P{factor}:devices:<sub>` | hash | HMAC-SHA-256 of a device token → its expiry (Unix s) | with the latest device |
/// | `P{factor}:keycheck` | string | the key-check value (sealed known bytes) | — |
///
/// ```no_run
/// use tower_jwt_login::factor::{FactorKey, RedisFactorStore, SecondFactor};
/// use tower_jwt_login::redis::{RedisConnection, RedisOptions};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let redis = RedisConnection::connect("redis://127.0.0.1:6379", RedisOptions::new()).await?;
/// let key = FactorKey::parse(&std::env::var("CORE_API_AUTH_TOTP_KEY")?)?;
/// let factor = SecondFactor::new(RedisFactorStore::new(redis), key).await?;
/// # let _ = factor; Ok(()) }
/// ```
pub struct RedisFactorStore {
    redis: RedisConnection,
    base: String,
    setup: Script,
    activate: Script,
    replace_recovery: Script,
    claim_step: Script,
    trust: Script,
    key_check: Script,
}

impl RedisFactorStore {
    /// The store on `redis`, under its prefix.
    pub fn new(redis: RedisConnection) -> Self {
        let base = format!("{}{{factor}}:", redis.prefix());
        RedisFactorStore {
            redis,
            base,
            setup: Script::new(LUA_SETUP),
            activate: Script::new(LUA_ACTIVATE),
            replace_recovery: Script::new(LUA_REPLACE_RECOVERY),
            claim_step: Script::new(LUA_CLAIM_STEP),
            trust: Script::new(LUA_TRUST),
            key_check: Script::new(LUA_KEY_CHECK),
        }
    }

    fn key(&self, kind: &str, subject: &str) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.base.len() + kind.len() + 1 + subject.len());
        key.extend_from_slice(self.base.as_bytes());
        key.extend_from_slice(kind.as_bytes());
        key.push(b':');
        key.extend_from_slice(subject.as_bytes());
        key
    }

    async fn run<T, F, Fut>(&self, call: F) -> Result<T, FactorStoreError>
    where
        F: FnOnce(redis::aio::ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        self.redis.run(call).await.map_err(|error| match error {
            SessionError::Unavailable(why) => FactorStoreError::Unavailable(why),
            other => FactorStoreError::Store(other.to_string()),
        })
    }
}

impl SecondFactorStore for RedisFactorStore {
    async fn load(&self, subject: &str) -> Result<FactorRecord, FactorStoreError> {
        let user = self.key("user", subject);
        let recovery = self.key("recovery", subject);
        let mut pipe = redis::pipe();
        pipe.cmd("HMGET")
            .arg(&user)
            .arg("secret")
            .arg("pending")
            .arg("pending_exp")
            .cmd("SCARD")
            .arg(&recovery);
        let (fields, left): (Vec<Option<Vec<u8>>>, usize) = self
            .run(|mut con| async move { pipe.query_async(&mut con).await })
            .await?;
        let mut fields = fields.into_iter();
        let secret = fields.next().flatten();
        let pending = fields.next().flatten();
        let pending_exp = fields
            .next()
            .flatten()
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.parse::<u64>().ok());
        Ok(FactorRecord {
            secret,
            pending: pending.zip(pending_exp),
            recovery_codes_left: left,
        })
    }

    async fn begin_setup(
        &self,
        subject: &str,
        sealed: &[u8],
        expires_at: u64,
    ) -> Result<(), FactorStoreError> {
        let mut call = self.setup.prepare_invoke();
        call.key(self.key("user", subject))
            .arg(sealed)
            .arg(expires_at);
        self.run(|mut con| async move { call.invoke_async::<()>(&mut con).await })
            .await
    }

    async fn activate(
        &self,
        subject: &str,
        sealed: &[u8],
        recovery_hashes: &[String],
    ) -> Result<bool, FactorStoreError> {
        let mut call = self.activate.prepare_invoke();
        call.key(self.key("user", subject))
            .key(self.key("recovery", subject))
            .arg(sealed);
        for hash in recovery_hashes {
            call.arg(hash.as_str());
        }
        self.run(|mut con| async move { call.invoke_async::<bool>(&mut con).await })
            .await
    }

    async fn replace_recovery(
        &self,
        subject: &str,
        recovery_hashes: &[String],
    ) -> Result<bool, FactorStoreError> {
        let mut call = self.replace_recovery.prepare_invoke();
        call.key(self.key("user", subject))
            .key(self.key("recovery", subject));
        for hash in recovery_hashes {
            call.arg(hash.as_str());
        }
        self.run(|mut con| async move { call.invoke_async::<bool>(&mut con).await })
            .await
    }

    async fn use_recovery(&self, subject: &str, hash: &str) -> Result<bool, FactorStoreError> {
        let key = self.key("recovery", subject);
        self.run(|mut con| async move {
            redis::cmd("SREM")
                .arg(key)
                .arg(hash)
                .query_async::<bool>(&mut con)
                .await
        })
        .await
    }

    async fn claim_step(&self, subject: &str, step: u64) -> Result<bool, FactorStoreError> {
        let mut call = self.claim_step.prepare_invoke();
        call.key(self.key("user", subject)).arg(step);
        self.run(|mut con| async move { call.invoke_async::<bool>(&mut con).await })
            .await
    }

    async fn remove(&self, subject: &str) -> Result<(), FactorStoreError> {
        let keys = [
            self.key("user", subject),
            self.key("recovery", subject),
            self.key("devices", subject),
        ];
        self.run(|mut con| async move {
            redis::cmd("DEL")
                .arg(&keys[..])
                .query_async::<()>(&mut con)
                .await
        })
        .await
    }

    async fn trust_device(
        &self,
        subject: &str,
        device_hash: &str,
        expires_at: u64,
        now: u64,
    ) -> Result<(), FactorStoreError> {
        let mut call = self.trust.prepare_invoke();
        call.key(self.key("devices", subject))
            .arg(device_hash)
            .arg(expires_at)
            .arg(now);
        self.run(|mut con| async move { call.invoke_async::<()>(&mut con).await })
            .await
    }

    async fn is_trusted(
        &self,
        subject: &str,
        device_hash: &str,
        now: u64,
    ) -> Result<bool, FactorStoreError> {
        let key = self.key("devices", subject);
        let until: Option<u64> = self
            .run(|mut con| async move {
                redis::cmd("HGET")
                    .arg(key)
                    .arg(device_hash)
                    .query_async(&mut con)
                    .await
            })
            .await?;
        Ok(until.is_some_and(|until| now < until))
    }

    async fn forget_devices(&self, subject: &str) -> Result<(), FactorStoreError> {
        let key = self.key("devices", subject);
        self.run(
            |mut con| async move { redis::cmd("DEL").arg(key).query_async::<()>(&mut con).await },
        )
        .await
    }

    async fn key_check(&self, candidate: &[u8]) -> Result<Vec<u8>, FactorStoreError> {
        let mut call = self.key_check.prepare_invoke();
        call.key(format!("{}keycheck", self.base)).arg(candidate);
        self.run(|mut con| async move { call.invoke_async::<Vec<u8>>(&mut con).await })
            .await
    }
}

impl fmt::Debug for RedisFactorStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisFactorStore")
            .field("redis", &self.redis)
            .finish_non_exhaustive()
    }
}
