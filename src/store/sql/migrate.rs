//! The embedded, versioned migrations of [`SqlStore`](super::SqlStore), with the table prefix.
//!
//! The SQL lives in `migrations/{postgres,sqlite}/NNNN_name.sql` at the crate root, compiled in.
//! `{prefix}` in it becomes the configured table prefix, so sqlx's own migrator (one fixed
//! statement text and one fixed bookkeeping table per database) is not used: the runner below
//! keeps its bookkeeping in `{prefix}migrations` (version, description, SHA-256 of the
//! migration's text, time applied), applies the missing versions in order, in one transaction,
//! holding a lock so that instances starting together migrate once (PostgreSQL: a transaction
//! advisory lock per schema and prefix; SQLite: `BEGIN IMMEDIATE`).

use sha2::{Digest, Sha256};

use super::{Db, SqlError};
use crate::token::now_secs;

/// One schema step.
pub(super) struct Migration {
    pub(super) version: i64,
    pub(super) description: &'static str,
    postgres: &'static str,
    sqlite: &'static str,
}

/// Every step, in order.
pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "accounts",
        postgres: include_str!("../../../migrations/postgres/0001_accounts.sql"),
        sqlite: include_str!("../../../migrations/sqlite/0001_accounts.sql"),
    },
    Migration {
        version: 2,
        description: "second factor",
        postgres: include_str!("../../../migrations/postgres/0002_second_factor.sql"),
        sqlite: include_str!("../../../migrations/sqlite/0002_second_factor.sql"),
    },
];

impl Migration {
    fn template(&self, db: &Db) -> &'static str {
        match db {
            Db::Postgres(_) => self.postgres,
            Db::Sqlite(_) => self.sqlite,
        }
    }

    /// The SHA-256 (hex) of the migration's text before the prefix goes in.
    fn checksum(&self, db: &Db) -> String {
        Sha256::digest(self.template(db).as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Applies the missing migrations; how many were applied.
pub(super) async fn run(db: &Db, prefix: &str) -> Result<usize, SqlError> {
    let create = format!(
        "CREATE TABLE IF NOT EXISTS {prefix}migrations (
            version     BIGINT PRIMARY KEY,
            description TEXT   NOT NULL,
            checksum    TEXT   NOT NULL,
            applied_at  BIGINT NOT NULL
        )"
    );
    let select = format!("SELECT version, checksum FROM {prefix}migrations ORDER BY version");
    let insert = format!(
        "INSERT INTO {prefix}migrations (version, description, checksum, applied_at) \
         VALUES ($1, $2, $3, $4)"
    );
    macro_rules! migrate {
        ($tx:ident, $lock:expr) => {{
            let applied = async {
                if let Some(lock) = $lock {
                    sqlx::query(lock)
                        .bind(format!("{prefix}migrations"))
                        .execute(&mut *$tx)
                        .await?;
                }
                sqlx::raw_sql(&create).execute(&mut *$tx).await?;
                let applied: Vec<(i64, String)> =
                    sqlx::query_as(&select).fetch_all(&mut *$tx).await?;
                let todo = plan(db, &applied)?;
                for migration in &todo {
                    let sql = migration.template(db).replace("{prefix}", prefix);
                    sqlx::raw_sql(&sql).execute(&mut *$tx).await?;
                    sqlx::query(&insert)
                        .bind(migration.version)
                        .bind(migration.description)
                        .bind(migration.checksum(db))
                        .bind(i64::try_from(now_secs()).unwrap_or(i64::MAX))
                        .execute(&mut *$tx)
                        .await?;
                    tracing::info!(
                        version = migration.version,
                        description = migration.description,
                        "database migrated"
                    );
                }
                Ok::<usize, SqlError>(todo.len())
            }
            .await;
            match applied {
                Ok(n) => {
                    $tx.commit().await?;
                    Ok(n)
                }
                Err(e) => {
                    // At once, not when the connection is next used: the lock and any DDL of
                    // the transaction go with it.
                    let _ = $tx.rollback().await;
                    Err(e)
                }
            }
        }};
    }
    match db {
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            // One migrator per schema and prefix at a time; released with the transaction.
            migrate!(
                tx,
                Some("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.' || $1))")
            )
        }
        Db::Sqlite(pool) => {
            // The write lock from the start: a second instance waits (busy timeout), then sees
            // the versions applied.
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            migrate!(tx, None::<&str>)
        }
    }
}

/// The migrations still to apply, after checking the applied ones against this build's.
fn plan(db: &Db, applied: &[(i64, String)]) -> Result<Vec<&'static Migration>, SqlError> {
    for (version, checksum) in applied {
        match MIGRATIONS.iter().find(|m| m.version == *version) {
            None => {
                return Err(SqlError::Migration(format!(
                    "the database has migration {version}, which this build does not know: it \
                     was migrated by a newer version"
                )));
            }
            Some(m) if m.checksum(db) != *checksum => {
                return Err(SqlError::Migration(format!(
                    "migration {version} ({}) differs from the one applied to the database",
                    m.description
                )));
            }
            Some(_) => {}
        }
    }
    Ok(MIGRATIONS
        .iter()
        .filter(|m| !applied.iter().any(|(v, _)| *v == m.version))
        .collect())
}

/// The newest schema version this build knows.
pub(super) fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}
