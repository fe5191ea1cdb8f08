//! [`SecondFactorStore`] on the SQL store: the second factor's enrolments next to the users, so
//! they survive restarts and serve a fleet. Every method is one statement or one transaction,
//! so concurrent instances claiming the same step or recovery code get one `true` between them.

use sqlx::Row;

use super::{Db, SqlStore};
use crate::factor::{FactorRecord, FactorStoreError, SecondFactorStore};
use crate::token::now_secs;

/// Statements of the second factor, with the prefix in.
pub(super) struct FactorQueries {
    load: String,
    setup: String,
    drop_lapsed_setups: String,
    activate: String,
    lock_enabled: String,
    delete_recovery: String,
    insert_recovery: String,
    use_recovery: String,
    claim_step: String,
    delete_user: String,
    delete_devices: String,
    drop_lapsed_devices: String,
    trust_device: String,
    is_trusted: String,
    key_check_insert: String,
    key_check_select: String,
}

impl FactorQueries {
    pub(super) fn new(p: &str) -> Self {
        FactorQueries {
            load: format!(
                "SELECT f.secret, f.pending, f.pending_expires_at, \
                 (SELECT COUNT(*) FROM {p}factor_recovery r WHERE r.subject = f.subject) \
                 FROM {p}factor_users f WHERE f.subject = $1"
            ),
            setup: format!(
                "INSERT INTO {p}factor_users (subject, pending, pending_expires_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (subject) DO UPDATE \
                 SET pending = excluded.pending, pending_expires_at = excluded.pending_expires_at"
            ),
            drop_lapsed_setups: format!(
                "DELETE FROM {p}factor_users WHERE secret IS NULL AND pending_expires_at <= $1"
            ),
            activate: format!(
                "UPDATE {p}factor_users SET secret = pending, pending = NULL, \
                 pending_expires_at = NULL WHERE subject = $1 AND pending = $2"
            ),
            // Takes the row's lock (PostgreSQL) inside the transaction; no row: not enabled.
            lock_enabled: format!(
                "UPDATE {p}factor_users SET subject = subject \
                 WHERE subject = $1 AND secret IS NOT NULL"
            ),
            delete_recovery: format!("DELETE FROM {p}factor_recovery WHERE subject = $1"),
            insert_recovery: format!(
                "INSERT INTO {p}factor_recovery (subject, code_hash) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING"
            ),
            use_recovery: format!(
                "DELETE FROM {p}factor_recovery WHERE subject = $1 AND code_hash = $2"
            ),
            claim_step: format!(
                "UPDATE {p}factor_users SET last_step = $2 \
                 WHERE subject = $1 AND (last_step IS NULL OR last_step < $2)"
            ),
            delete_user: format!("DELETE FROM {p}factor_users WHERE subject = $1"),
            delete_devices: format!("DELETE FROM {p}factor_devices WHERE subject = $1"),
            drop_lapsed_devices: format!(
                "DELETE FROM {p}factor_devices WHERE subject = $1 AND expires_at <= $2"
            ),
            trust_device: format!(
                "INSERT INTO {p}factor_devices (subject, device_hash, expires_at) \
                 SELECT $1, $2, $3 WHERE EXISTS \
                 (SELECT 1 FROM {p}factor_users WHERE subject = $1) \
                 ON CONFLICT (subject, device_hash) DO UPDATE SET expires_at = excluded.expires_at"
            ),
            is_trusted: format!(
                "SELECT 1 FROM {p}factor_devices \
                 WHERE subject = $1 AND device_hash = $2 AND expires_at > $3"
            ),
            key_check_insert: format!(
                "INSERT INTO {p}factor_key_check (id, value) VALUES (1, $1) \
                 ON CONFLICT (id) DO NOTHING"
            ),
            key_check_select: format!("SELECT value FROM {p}factor_key_check WHERE id = 1"),
        }
    }
}

/// A database failure as the second factor reports it: the database out of reach is
/// "unavailable" (the login answers 503 with `Retry-After`), anything else a store error.
fn factor_error(e: sqlx::Error) -> FactorStoreError {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            FactorStoreError::Unavailable(e.to_string())
        }
        e => FactorStoreError::Store(e.to_string()),
    }
}

/// (secret, pending, pending until, recovery codes left).
type LoadRow = (Option<Vec<u8>>, Option<Vec<u8>>, Option<i64>, i64);

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Runs `$body` with `$pool`, mapping its sqlx errors.
macro_rules! factor {
    ($store:expr, |$pool:ident| $body:expr) => {
        async {
            let result: Result<_, sqlx::Error> = async {
                match &$store.passwords.backend().db {
                    Db::Postgres($pool) => $body,
                    Db::Sqlite($pool) => $body,
                }
            }
            .await;
            result.map_err(factor_error)
        }
        .await
    };
}

impl SqlStore {
    fn fq(&self) -> &FactorQueries {
        &self.passwords.backend().factor
    }
}

impl SecondFactorStore for SqlStore {
    async fn load(&self, subject: &str) -> Result<FactorRecord, FactorStoreError> {
        let q = &self.fq().load;
        let row: Option<LoadRow> = factor!(self, |pool| sqlx::query_as(q)
            .bind(subject)
            .fetch_optional(pool)
            .await)?;
        Ok(match row {
            None => FactorRecord::default(),
            Some((secret, pending, until, left)) => FactorRecord {
                secret,
                pending: pending.map(|p| (p, until.map_or(0, |t| u64::try_from(t).unwrap_or(0)))),
                recovery_codes_left: usize::try_from(left).unwrap_or(0),
            },
        })
    }

    async fn begin_setup(
        &self,
        subject: &str,
        sealed: &[u8],
        expires_at: u64,
    ) -> Result<(), FactorStoreError> {
        let q = self.fq();
        let now = as_i64(now_secs());
        factor!(self, |pool| {
            // Setups nobody confirmed go here, so abandoned ones cannot pile up.
            sqlx::query(&q.drop_lapsed_setups)
                .bind(now)
                .execute(pool)
                .await?;
            sqlx::query(&q.setup)
                .bind(subject)
                .bind(sealed)
                .bind(as_i64(expires_at))
                .execute(pool)
                .await
                .map(|_| ())
        })
    }

    async fn activate(
        &self,
        subject: &str,
        sealed: &[u8],
        recovery_hashes: &[String],
    ) -> Result<bool, FactorStoreError> {
        let q = self.fq();
        factor!(self, |pool| {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(&q.activate)
                .bind(subject)
                .bind(sealed)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if done != 1 {
                return Ok(false);
            }
            sqlx::query(&q.delete_recovery)
                .bind(subject)
                .execute(&mut *tx)
                .await?;
            for hash in recovery_hashes {
                sqlx::query(&q.insert_recovery)
                    .bind(subject)
                    .bind(hash)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    async fn replace_recovery(
        &self,
        subject: &str,
        recovery_hashes: &[String],
    ) -> Result<bool, FactorStoreError> {
        let q = self.fq();
        factor!(self, |pool| {
            let mut tx = pool.begin().await?;
            let enabled = sqlx::query(&q.lock_enabled)
                .bind(subject)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if enabled != 1 {
                return Ok(false);
            }
            sqlx::query(&q.delete_recovery)
                .bind(subject)
                .execute(&mut *tx)
                .await?;
            for hash in recovery_hashes {
                sqlx::query(&q.insert_recovery)
                    .bind(subject)
                    .bind(hash)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    async fn use_recovery(&self, subject: &str, hash: &str) -> Result<bool, FactorStoreError> {
        let q = &self.fq().use_recovery;
        let done = factor!(self, |pool| sqlx::query(q)
            .bind(subject)
            .bind(hash)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()));
        Ok(done? == 1)
    }

    async fn claim_step(&self, subject: &str, step: u64) -> Result<bool, FactorStoreError> {
        let q = &self.fq().claim_step;
        let done = factor!(self, |pool| sqlx::query(q)
            .bind(subject)
            .bind(as_i64(step))
            .execute(pool)
            .await
            .map(|r| r.rows_affected()));
        Ok(done? == 1)
    }

    async fn remove(&self, subject: &str) -> Result<(), FactorStoreError> {
        let q = self.fq();
        factor!(self, |pool| {
            let mut tx = pool.begin().await?;
            for statement in [&q.delete_recovery, &q.delete_devices, &q.delete_user] {
                sqlx::query(statement)
                    .bind(subject)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        })
    }

    async fn trust_device(
        &self,
        subject: &str,
        device_hash: &str,
        expires_at: u64,
        now: u64,
    ) -> Result<(), FactorStoreError> {
        let q = self.fq();
        factor!(self, |pool| {
            sqlx::query(&q.drop_lapsed_devices)
                .bind(subject)
                .bind(as_i64(now))
                .execute(pool)
                .await?;
            sqlx::query(&q.trust_device)
                .bind(subject)
                .bind(device_hash)
                .bind(as_i64(expires_at))
                .execute(pool)
                .await
                .map(|_| ())
        })
    }

    async fn is_trusted(
        &self,
        subject: &str,
        device_hash: &str,
        now: u64,
    ) -> Result<bool, FactorStoreError> {
        let q = &self.fq().is_trusted;
        factor!(self, |pool| sqlx::query(q)
            .bind(subject)
            .bind(device_hash)
            .bind(as_i64(now))
            .fetch_optional(pool)
            .await
            .map(|row| row.is_some()))
    }

    async fn forget_devices(&self, subject: &str) -> Result<(), FactorStoreError> {
        let q = &self.fq().delete_devices;
        factor!(self, |pool| sqlx::query(q)
            .bind(subject)
            .execute(pool)
            .await
            .map(|_| ()))
    }

    async fn key_check(&self, candidate: &[u8]) -> Result<Vec<u8>, FactorStoreError> {
        let q = self.fq();
        factor!(self, |pool| {
            sqlx::query(&q.key_check_insert)
                .bind(candidate)
                .execute(pool)
                .await?;
            let row = sqlx::query(&q.key_check_select).fetch_one(pool).await?;
            row.try_get::<Vec<u8>, _>(0)
        })
    }
}
