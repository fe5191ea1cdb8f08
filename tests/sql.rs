//! The SQL store against the real PostgreSQL (127.0.0.1:5432, database `test`, a schema of
//! its own per test, dropped after; `TJL_TEST_POSTGRES` names another server) and against
//! SQLite (a file in a temporary directory per test): the shared account suite over real HTTP
//! (tests/accounts_suite), then what only a database has — migrations, prefixes, restarts, the
//! management API, hashes upgraded in place.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounts_suite;
mod common;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use accounts_suite::Accounts;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tower_jwt_login::apikey::{ApiKey, ApiKeyInfo, ApiKeyStore};
use tower_jwt_login::config::{ConfigError, CoreAuthConfig};
use tower_jwt_login::factor::{FactorRecord, SecondFactorStore};
use tower_jwt_login::store::{
    CredentialStore, Credentials, HashParams, Lookup, SqlError, SqlOptions, SqlStore, UserInfo,
    hash_password,
};

fn postgres_url() -> String {
    std::env::var("TJL_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn unique() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let mut random = [0u8; 6];
    getrandom::getrandom(&mut random).unwrap();
    let random: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}_{}_{random}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Where a test's database lives; removed on drop.
enum Place {
    Postgres { schema: String },
    Sqlite { dir: PathBuf },
}

struct TestDb {
    place: Place,
}

impl TestDb {
    async fn postgres() -> Self {
        let schema = format!("tjl_test_{}", unique());
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&postgres_url())
            .await
            .expect("PostgreSQL on 127.0.0.1:5432 (`.ci/run` starts it)");
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        TestDb {
            place: Place::Postgres { schema },
        }
    }

    fn sqlite() -> Self {
        let dir = std::env::temp_dir().join(format!("tjl-sql-{}", unique()));
        std::fs::create_dir_all(&dir).unwrap();
        TestDb {
            place: Place::Sqlite { dir },
        }
    }

    /// A store on this database (a new pool each time: a restart), migrated.
    async fn open_with(&self, options: SqlOptions) -> SqlStore {
        let store = match &self.place {
            Place::Postgres { schema } => {
                let connect = PgConnectOptions::from_str(&postgres_url())
                    .unwrap()
                    .options([("search_path", schema.as_str())]);
                let pool = PgPoolOptions::new()
                    .max_connections(4)
                    .connect_with(connect)
                    .await
                    .unwrap();
                SqlStore::postgres(pool, options).unwrap()
            }
            Place::Sqlite { dir } => {
                let url = format!("sqlite://{}", dir.join("users.db").display());
                SqlStore::connect(&url, options).await.unwrap()
            }
        };
        store.migrate().await.unwrap();
        store
    }

    async fn open(&self) -> SqlStore {
        self.open_with(SqlOptions::new()).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.place {
            Place::Postgres { schema } => {
                let schema = schema.clone();
                // Drop runs inside the test's runtime: a thread of its own with its own runtime.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        if let Ok(pool) = PgPoolOptions::new()
                            .max_connections(1)
                            .connect(&postgres_url())
                            .await
                        {
                            // A connection left in a transaction must not hang the test.
                            let _ = sqlx::query("SET lock_timeout = '10s'").execute(&pool).await;
                            let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                                .execute(&pool)
                                .await;
                            pool.close().await;
                        }
                    });
                })
                .join();
            }
            Place::Sqlite { dir } => {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

/// The suite's view of a SQL store.
struct Sql {
    store: SqlStore,
    _db: TestDb,
}

impl Accounts for Sql {
    type Creds = SqlStore;
    type Keys = SqlStore;

    fn creds(&self) -> Arc<SqlStore> {
        Arc::new(self.store.clone())
    }
    fn keys(&self) -> Arc<SqlStore> {
        Arc::new(self.store.clone())
    }
    async fn add_user(&self, name: &str, password: &str, roles: &[&str]) {
        self.store.add_user(name, password).await.unwrap();
        self.set_roles(name, roles).await;
    }
    async fn set_roles(&self, name: &str, roles: &[&str]) {
        assert!(
            self.store
                .set_roles(name, roles.iter().copied())
                .await
                .unwrap()
        );
    }
    async fn set_disabled(&self, name: &str, disabled: bool) {
        assert!(self.store.set_disabled(name, disabled).await.unwrap());
    }
}

async fn postgres() -> Sql {
    let db = TestDb::postgres().await;
    Sql {
        store: db.open().await,
        _db: db,
    }
}

async fn sqlite() -> Sql {
    let db = TestDb::sqlite();
    Sql {
        store: db.open().await,
        _db: db,
    }
}

/// Each suite test, once per database.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod postgres_suite {
            $(#[tokio::test]
            async fn $name() {
                crate::accounts_suite::$name(crate::postgres().await).await;
            })*
        }
        mod sqlite_suite {
            $(#[tokio::test]
            async fn $name() {
                crate::accounts_suite::$name(crate::sqlite().await).await;
            })*
        }
    };
}

suite!(
    keys_are_created_listed_exchanged_and_revoked,
    a_key_carries_at_most_its_roles,
    keys_of_a_disabled_user_stop_working,
    another_users_key_is_not_found,
    an_expired_key_is_refused,
    a_wrong_key_costs_what_a_wrong_password_costs,
    bad_key_requests_get_clear_errors,
    password_logins_through_the_store,
    kit_keys_refresh_with_their_roles_and_revoking_ends_their_session,
    kit_keys_of_a_disabled_owner_stop,
    kit_another_users_key_is_not_found,
    kit_password_change_ends_the_other_sessions,
    kit_password_change_keeps_only_the_callers_session,
    kit_password_change_without_a_session_list_ends_every_session,
);

/// Each database-only test, once per database.
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod postgres_db {
            $(#[tokio::test]
            async fn $name() {
                crate::$name(crate::TestDb::postgres().await).await;
            })*
        }
        mod sqlite_db {
            $(#[tokio::test]
            async fn $name() {
                crate::$name(crate::TestDb::sqlite()).await;
            })*
        }
    };
}

both!(
    users_and_keys_survive_a_restart,
    migrations_run_once_and_are_versioned,
    a_changed_migration_is_refused,
    prefixes_keep_stores_apart,
    the_management_api,
    a_weak_hash_is_upgraded_in_the_database,
    the_dummy_follows_the_costliest_stored_hash,
    an_api_key_exchange_is_one_lookup_with_its_owner,
    the_second_factor_store,
    second_factor_claims_are_atomic_across_instances,
    the_configured_database_is_migrated_with_its_user,
    the_example_server_keeps_keys_and_passwords_across_a_restart,
);

async fn login(store: &SqlStore, user: &str, password: &str) -> Option<String> {
    store
        .authenticate(&Credentials::new(user, password))
        .await
        .unwrap()
}

/// Users, roles and keys are in the database: a new pool (a restarted server) finds them, and
/// migrating again changes nothing.
async fn users_and_keys_survive_a_restart(db: TestDb) {
    let key = ApiKey::generate();
    {
        let store = db.open().await;
        store.add_user("alice", "wonderland").await.unwrap();
        store.set_roles("alice", ["admin"]).await.unwrap();
        let info = ApiKeyInfo {
            id: "k1".into(),
            subject: "alice".into(),
            name: "ci".into(),
            roles: Some(vec!["admin".into()]),
            created_at: 1_700_000_000,
            expires_at: Some(4_000_000_000),
            last_used_at: None,
        };
        store.create(&info, &key.hash()).await.unwrap();
        store.close().await;
    }
    let store = db.open().await;
    assert_eq!(store.migrate().await.unwrap(), 0);
    assert_eq!(
        login(&store, "alice", "wonderland").await.as_deref(),
        Some("alice")
    );
    let found = store.find_by_hash(&key.hash()).await.unwrap().unwrap();
    assert_eq!(found.key.id, "k1");
    assert_eq!(found.key.roles, Some(vec!["admin".to_owned()]));
    assert_eq!(found.key.expires_at, Some(4_000_000_000));
    let Some(Lookup::Found(owner)) = found.owner else {
        panic!("{:?}", found.owner)
    };
    assert_eq!(owner.extra_json(), Some(r#"{"roles":["admin"]}"#));
}

/// One version applied once, recorded with its checksum; a second run (or a second instance)
/// applies nothing.
async fn migrations_run_once_and_are_versioned(db: TestDb) {
    let store = db.open().await; // migrated once here
    assert_eq!(store.migrate().await.unwrap(), 0);
    assert_eq!(SqlStore::schema_version(), 2);
    // Two instances starting together: one migrates, the other waits and finds it done.
    let other = TestDb {
        place: match &db.place {
            Place::Postgres { schema } => Place::Postgres {
                schema: schema.clone(),
            },
            Place::Sqlite { dir } => Place::Sqlite { dir: dir.clone() },
        },
    };
    let fresh = SqlOptions::new().prefix("twin_");
    let (a, b) = tokio::join!(
        other.open_with(fresh.clone()),
        other.open_with(fresh.clone())
    );
    std::mem::forget(other); // `db` cleans up
    assert_eq!(a.migrate().await.unwrap(), 0);
    assert_eq!(b.migrate().await.unwrap(), 0);
    a.add_user("x", "y").await.unwrap();
    assert!(matches!(
        b.add_user("x", "z").await,
        Err(SqlError::UserExists)
    ));
}

/// A migration whose text differs from the one recorded as applied is refused at start-up,
/// and so is a database migrated by a newer build.
async fn a_changed_migration_is_refused(db: TestDb) {
    let store = db.open().await;
    store.add_user("alice", "pw").await.unwrap();
    let raw = raw(&db).await;
    raw.exec("UPDATE tjl_migrations SET checksum = 'abc' WHERE version = 1")
        .await;
    let err = store.migrate().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "migration: migration 1 (accounts) differs from the one applied to the database"
    );
    raw.exec(
        "INSERT INTO tjl_migrations (version, description, checksum, applied_at) \
         VALUES (99, 'future', 'x', 0)",
    )
    .await;
    raw.exec("DELETE FROM tjl_migrations WHERE version = 1")
        .await;
    let err = store.migrate().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "migration: the database has migration 99, which this build does not know: it was \
         migrated by a newer version"
    );
}

/// Two prefixes in one database are two stores; a bad prefix is refused.
async fn prefixes_keep_stores_apart(db: TestDb) {
    let a = db.open().await;
    let b = db.open_with(SqlOptions::new().prefix("other_")).await;
    a.add_user("alice", "a-pw").await.unwrap();
    b.add_user("alice", "b-pw").await.unwrap();
    assert!(login(&a, "alice", "a-pw").await.is_some());
    assert!(login(&a, "alice", "b-pw").await.is_none());
    assert!(login(&b, "alice", "b-pw").await.is_some());
    let tables = raw(&db).await.tables().await;
    for table in [
        "tjl_users",
        "tjl_user_roles",
        "tjl_api_keys",
        "tjl_migrations",
        "tjl_factor_users",
        "tjl_factor_recovery",
        "tjl_factor_devices",
        "tjl_factor_key_check",
        "other_users",
        "other_user_roles",
        "other_api_keys",
        "other_migrations",
    ] {
        assert!(tables.iter().any(|t| t == table), "{table} in {tables:?}");
    }
    for bad in ["Upper_", "1st_", "semi;colon", "sp ace", &"x".repeat(33)] {
        let err = SqlStore::connect("sqlite::memory:", SqlOptions::new().prefix(bad))
            .await
            .unwrap_err();
        assert!(matches!(err, SqlError::InvalidPrefix), "{bad}");
    }
    assert!(matches!(
        SqlStore::connect("mysql://localhost/x", SqlOptions::new())
            .await
            .unwrap_err(),
        SqlError::UnsupportedUrl
    ));
}

/// add, ensure, set password, disable/enable, roles, claims, remove — and what each refuses.
async fn the_management_api(db: TestDb) {
    let store = db.open().await;
    store.add_user("alice", "one").await.unwrap();
    assert!(matches!(
        store.add_user("alice", "two").await,
        Err(SqlError::UserExists)
    ));
    assert!(!store.ensure_user("alice", "two").await.unwrap());
    assert!(login(&store, "alice", "one").await.is_some(), "left alone");
    assert!(store.ensure_user("bob", "bob-pw").await.unwrap());
    assert!(login(&store, "bob", "bob-pw").await.is_some());

    assert!(store.set_password("alice", "two").await.unwrap());
    assert!(login(&store, "alice", "one").await.is_none());
    assert!(login(&store, "alice", "two").await.is_some());
    assert!(!store.set_password("nobody", "x").await.unwrap());

    assert!(
        store
            .set_roles("alice", ["viewer", "admin", "viewer"])
            .await
            .unwrap()
    );
    assert!(
        store
            .set_claims("alice", Some(r#"{ "tenant": "acme", "level": 3 }"#))
            .await
            .unwrap()
    );
    let Lookup::Found(p) = store.principal("alice").await.unwrap() else {
        panic!()
    };
    assert_eq!(
        p.extra_json(),
        Some(r#"{"roles":["admin","viewer"],"tenant":"acme","level":3}"#)
    );
    for bad in [r#"{"roles":["root"]}"#, r#"{"exp":1}"#, "[1]", "nope"] {
        assert!(
            matches!(
                store.set_claims("alice", Some(bad)).await,
                Err(SqlError::InvalidClaims(_))
            ),
            "{bad}"
        );
    }
    assert!(!store.set_roles("nobody", ["x"]).await.unwrap());
    assert!(!store.set_claims("nobody", None).await.unwrap());

    assert!(store.set_disabled("alice", true).await.unwrap());
    assert!(login(&store, "alice", "two").await.is_none());
    assert_eq!(store.principal("alice").await.unwrap(), Lookup::Refused);
    assert!(store.set_disabled("alice", false).await.unwrap());
    assert!(!store.set_disabled("nobody", true).await.unwrap());

    let users = store.users().await.unwrap();
    let names: Vec<(&str, bool, &[String])> = users
        .iter()
        .map(|u| (u.name.as_str(), u.disabled, u.roles.as_slice()))
        .collect();
    assert_eq!(
        names,
        [
            (
                "alice",
                false,
                &["admin".to_owned(), "viewer".to_owned()][..]
            ),
            ("bob", false, &[][..])
        ]
    );
    let alice: UserInfo = store.user("alice").await.unwrap().unwrap();
    assert!(alice.updated_at >= alice.created_at && alice.created_at > 1_700_000_000);
    assert_eq!(
        serde_json::to_value(&alice).unwrap()["roles"],
        serde_json::json!(["admin", "viewer"])
    );
    assert_eq!(store.user("nobody").await.unwrap(), None);

    // Removing a user takes its roles and keys along.
    let key = ApiKey::generate();
    let info = ApiKeyInfo {
        id: "k".into(),
        subject: "alice".into(),
        name: "k".into(),
        roles: None,
        created_at: 1,
        expires_at: None,
        last_used_at: None,
    };
    store.create(&info, &key.hash()).await.unwrap();
    assert!(store.remove_user("alice").await.unwrap());
    assert!(!store.remove_user("alice").await.unwrap());
    assert!(store.find_by_hash(&key.hash()).await.unwrap().is_none());
    assert!(login(&store, "alice", "two").await.is_none());
    assert_eq!(raw(&db).await.count("tjl_user_roles").await, 0);
    // A hash that is no Argon2id PHC string is refused on import.
    assert!(matches!(
        store.add_user_with_hash("carol", "plain").await,
        Err(SqlError::Hash(_))
    ));
}

/// A user imported with a weaker hash gets one of the configured parameters in its row at the
/// next successful login (never at a failed one).
async fn a_weak_hash_is_upgraded_in_the_database(db: TestDb) {
    let store = db.open().await;
    let weak = HashParams::new(1024, 1, 1).unwrap().hash("pw").unwrap();
    store.add_user_with_hash("alice", &weak).await.unwrap();
    let raw = raw(&db).await;
    assert!(login(&store, "alice", "wrong").await.is_none());
    assert_eq!(raw.hash_of("alice").await, weak);
    assert!(login(&store, "alice", "pw").await.is_some());
    let upgraded = raw.hash_of("alice").await;
    assert_ne!(upgraded, weak);
    assert_eq!(
        HashParams::of_phc(&upgraded).unwrap(),
        HashParams::default()
    );
    assert!(login(&store, "alice", "pw").await.is_some());
    assert_eq!(raw.hash_of("alice").await, upgraded, "once only");
}

/// The costliest stored hash (what an unknown name's dummy imitates) is read from the
/// database: a costlier user added by another process is found at the next refresh.
async fn the_dummy_follows_the_costliest_stored_hash(db: TestDb) {
    let store = db.open().await;
    store.add_user("alice", "pw").await.unwrap();
    let other_process = db.open().await;
    let costly = HashParams::new(32 * 1024, 3, 1).unwrap().hash("x").unwrap();
    other_process
        .add_user_with_hash("bob", &costly)
        .await
        .unwrap();
    let cheap = HashParams::new(8192, 1, 1).unwrap().hash("x").unwrap();
    other_process
        .add_user_with_hash("carol", &cheap)
        .await
        .unwrap();
    assert_eq!(raw(&db).await.costliest().await, costly);
    // The first login asks the database: the dummy takes bob's parameters.
    assert!(login(&store, "nobody", "x").await.is_none());
    assert_eq!(
        store.dummy_params().await.unwrap(),
        HashParams::of_phc(&costly).unwrap()
    );
    // Alone, alice's (the default parameters) would be the costliest.
    let alone = TestDb::sqlite();
    let store = alone.open().await;
    store.add_user("alice", "pw").await.unwrap();
    assert_eq!(
        store.dummy_params().await.unwrap(),
        HashParams::of_phc(&hash_password("x").unwrap()).unwrap()
    );
}

/// An exchange reads the key and its owner (state, roles, claims) in one query: the owner
/// comes back with the key.
async fn an_api_key_exchange_is_one_lookup_with_its_owner(db: TestDb) {
    let store = db.open().await;
    store.add_user("alice", "pw").await.unwrap();
    store.set_roles("alice", ["b", "a"]).await.unwrap();
    store
        .set_claims("alice", Some(r#"{"tenant":"acme"}"#))
        .await
        .unwrap();
    let key = ApiKey::generate();
    let info = ApiKeyInfo {
        id: "k1".into(),
        subject: "alice".into(),
        name: "ci".into(),
        roles: Some(vec!["a".into()]),
        created_at: 5,
        expires_at: None,
        last_used_at: None,
    };
    store.create(&info, &key.hash()).await.unwrap();
    let found = store.find_by_hash(&key.hash()).await.unwrap().unwrap();
    assert_eq!(found.key, info);
    let Some(Lookup::Found(owner)) = &found.owner else {
        panic!()
    };
    assert_eq!(
        owner.extra_json(),
        Some(r#"{"roles":["a","b"],"tenant":"acme"}"#)
    );
    store.set_disabled("alice", true).await.unwrap();
    let found = store.find_by_hash(&key.hash()).await.unwrap().unwrap();
    assert_eq!(found.owner, Some(Lookup::Refused));
    // A key of a subject the SQL store has no user for: the login asks its credential store.
    let stranger = ApiKey::generate();
    let mut other = info.clone();
    other.id = "k2".into();
    other.subject = "someone-else".into();
    store.create(&other, &stranger.hash()).await.unwrap();
    let found = store.find_by_hash(&stranger.hash()).await.unwrap().unwrap();
    assert_eq!(found.owner, None);
    store.touch("k2", 77).await.unwrap();
    assert_eq!(
        store.find_by_id("k2").await.unwrap().unwrap().last_used_at,
        Some(77)
    );
    assert!(
        store
            .find_by_hash(&ApiKey::generate().hash())
            .await
            .unwrap()
            .is_none()
    );
}

/// Plain SQL on the test's database, for checking what the store wrote.
enum Raw {
    Postgres(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

async fn raw(db: &TestDb) -> Raw {
    match &db.place {
        Place::Postgres { schema } => {
            let connect = PgConnectOptions::from_str(&postgres_url())
                .unwrap()
                .options([("search_path", schema.as_str())]);
            Raw::Postgres(
                PgPoolOptions::new()
                    .max_connections(1)
                    .connect_with(connect)
                    .await
                    .unwrap(),
            )
        }
        Place::Sqlite { dir } => Raw::Sqlite(
            sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.join("users.db").display()))
                .await
                .unwrap(),
        ),
    }
}

impl Raw {
    async fn exec(&self, sql: &str) {
        match self {
            Raw::Postgres(p) => {
                sqlx::query(sql).execute(p).await.unwrap();
            }
            Raw::Sqlite(p) => {
                sqlx::query(sql).execute(p).await.unwrap();
            }
        }
    }
    async fn text(&self, sql: &str) -> Vec<String> {
        match self {
            Raw::Postgres(p) => sqlx::query_scalar(sql).fetch_all(p).await.unwrap(),
            Raw::Sqlite(p) => sqlx::query_scalar(sql).fetch_all(p).await.unwrap(),
        }
    }
    async fn hash_of(&self, name: &str) -> String {
        self.text(&format!(
            "SELECT password_hash FROM tjl_users WHERE name = '{name}'"
        ))
        .await
        .remove(0)
    }
    async fn costliest(&self) -> String {
        self.text(
            "SELECT password_hash FROM tjl_users ORDER BY hash_work DESC, hash_memory DESC LIMIT 1",
        )
        .await
        .remove(0)
    }
    async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        match self {
            Raw::Postgres(p) => sqlx::query_scalar(&sql).fetch_one(p).await.unwrap(),
            Raw::Sqlite(p) => sqlx::query_scalar(&sql).fetch_one(p).await.unwrap(),
        }
    }
    async fn tables(&self) -> Vec<String> {
        match self {
            Raw::Postgres(_) => {
                self.text(
                    "SELECT table_name::text FROM information_schema.tables \
                     WHERE table_schema = current_schema()",
                )
                .await
            }
            Raw::Sqlite(_) => {
                self.text("SELECT name FROM sqlite_master WHERE type = 'table'")
                    .await
            }
        }
    }
}

/// The second factor's enrolments: setup, activation with recovery codes, steps and codes used
/// once, remembered devices, the key check, removal with the user — and all of it after a
/// restart.
async fn the_second_factor_store(db: TestDb) {
    let store = db.open().await;
    store.add_user("alice", "pw").await.unwrap();
    assert_eq!(store.load("alice").await.unwrap(), FactorRecord::default());
    assert!(
        !store.activate("alice", b"sealed", &[]).await.unwrap(),
        "nothing pending"
    );
    store
        .begin_setup("alice", b"first", u64::MAX)
        .await
        .unwrap();
    store
        .begin_setup("alice", b"sealed", 4_000_000_000)
        .await
        .unwrap();
    let record = store.load("alice").await.unwrap();
    assert_eq!(record.pending, Some((b"sealed".to_vec(), 4_000_000_000)));
    assert_eq!(record.secret, None);
    assert!(
        !store.activate("alice", b"first", &[]).await.unwrap(),
        "replaced"
    );
    assert!(
        store
            .activate("alice", b"sealed", &["h1".into(), "h2".into()])
            .await
            .unwrap()
    );
    let record = store.load("alice").await.unwrap();
    assert_eq!(record.secret.as_deref(), Some(&b"sealed"[..]));
    assert_eq!(record.pending, None);
    assert_eq!(record.recovery_codes_left, 2);

    assert!(store.claim_step("alice", 57_000_000).await.unwrap());
    assert!(!store.claim_step("alice", 57_000_000).await.unwrap());
    assert!(!store.claim_step("alice", 56_999_999).await.unwrap());
    assert!(store.claim_step("alice", 57_000_001).await.unwrap());
    assert!(!store.claim_step("nobody", 1).await.unwrap());
    assert!(store.use_recovery("alice", "h1").await.unwrap());
    assert!(!store.use_recovery("alice", "h1").await.unwrap());
    assert!(!store.use_recovery("alice", "h9").await.unwrap());
    assert_eq!(store.load("alice").await.unwrap().recovery_codes_left, 1);
    assert!(
        store
            .replace_recovery("alice", &["h3".into(), "h4".into(), "h5".into()])
            .await
            .unwrap()
    );
    assert!(
        !store
            .replace_recovery("nobody", &["x".into()])
            .await
            .unwrap()
    );
    assert_eq!(store.load("alice").await.unwrap().recovery_codes_left, 3);

    store
        .trust_device("alice", "d1", 2_000, 1_000)
        .await
        .unwrap();
    store
        .trust_device("nobody", "d1", 2_000, 1_000)
        .await
        .unwrap();
    assert!(store.is_trusted("alice", "d1", 1_999).await.unwrap());
    assert!(
        !store.is_trusted("alice", "d1", 2_000).await.unwrap(),
        "expired"
    );
    assert!(!store.is_trusted("alice", "d2", 1_000).await.unwrap());
    assert!(
        !store.is_trusted("nobody", "d1", 1_000).await.unwrap(),
        "unknown user"
    );

    assert_eq!(store.key_check(b"k1").await.unwrap(), b"k1");
    assert_eq!(
        store.key_check(b"k2").await.unwrap(),
        b"k1",
        "the first one stays"
    );

    // A restart keeps it all.
    store.close().await;
    let store = db.open().await;
    assert_eq!(store.load("alice").await.unwrap().recovery_codes_left, 3);
    assert!(!store.claim_step("alice", 57_000_001).await.unwrap());
    assert!(store.is_trusted("alice", "d1", 1_500).await.unwrap());
    store.forget_devices("alice").await.unwrap();
    assert!(!store.is_trusted("alice", "d1", 1_500).await.unwrap());

    // Removing the user removes its second factor; `remove` alone does too.
    store
        .trust_device("alice", "d1", 2_000, 1_000)
        .await
        .unwrap();
    assert!(store.remove_user("alice").await.unwrap());
    assert_eq!(store.load("alice").await.unwrap(), FactorRecord::default());
    let raw = raw(&db).await;
    for table in [
        "tjl_factor_users",
        "tjl_factor_recovery",
        "tjl_factor_devices",
    ] {
        assert_eq!(raw.count(table).await, 0, "{table}");
    }
    store.begin_setup("bob", b"s", u64::MAX).await.unwrap();
    assert!(store.activate("bob", b"s", &["r".into()]).await.unwrap());
    store.remove("bob").await.unwrap();
    assert_eq!(store.load("bob").await.unwrap(), FactorRecord::default());
    assert_eq!(raw.count("tjl_factor_recovery").await, 0);
}

/// Two instances (two pools on one database) claiming the same step, or spending the same
/// recovery code, at the same moment: one `true` between them, every time.
async fn second_factor_claims_are_atomic_across_instances(db: TestDb) {
    let a = db.open().await;
    let b = db.open().await;
    a.begin_setup("alice", b"s", u64::MAX).await.unwrap();
    let codes: Vec<String> = (0..20).map(|i| format!("code{i}")).collect();
    assert!(a.activate("alice", b"s", &codes).await.unwrap());
    for step in 1..=20u64 {
        let (x, y) = tokio::join!(a.claim_step("alice", step), b.claim_step("alice", step));
        assert_eq!(
            u8::from(x.unwrap()) + u8::from(y.unwrap()),
            1,
            "step {step}"
        );
    }
    for code in &codes {
        let (x, y) = tokio::join!(a.use_recovery("alice", code), b.use_recovery("alice", code));
        assert_eq!(u8::from(x.unwrap()) + u8::from(y.unwrap()), 1, "{code}");
    }
}

impl TestDb {
    /// The URL of this database, as `CORE_API_AUTH_DATABASE` would name it.
    fn url(&self) -> String {
        match &self.place {
            Place::Postgres { schema } => {
                format!("{}?options=-c%20search_path%3D{schema}", postgres_url())
            }
            Place::Sqlite { dir } => format!("sqlite://{}", dir.join("users.db").display()),
        }
    }
}

/// `CORE_API_AUTH_DATABASE`: the store is migrated and the configured user created when
/// missing; a second start leaves its (changed) password alone; a URL of another database is
/// refused when the configuration is read; `Debug` never shows a password.
async fn the_configured_database_is_migrated_with_its_user(db: TestDb) {
    let url = db.url();
    let config = |password: &str| {
        let password = password.to_owned();
        let url = url.clone();
        CoreAuthConfig::default()
            .with_lookup(move |k| match k {
                "CORE_API_AUTH_ENABLE" => Some("true".into()),
                "CORE_API_AUTH_USERNAME" => Some("admin".into()),
                "CORE_API_AUTH_PASSWORD" => Some(password.clone()),
                "CORE_API_AUTH_DATABASE" => Some(url.clone()),
                _ => None,
            })
            .unwrap()
    };
    let store = config("datarhei").sql_store().await.unwrap().unwrap();
    assert_eq!(
        login(&store, "admin", "datarhei").await.as_deref(),
        Some("admin")
    );
    assert!(store.set_password("admin", "changed").await.unwrap());
    store.close().await;
    let store = config("datarhei").sql_store().await.unwrap().unwrap();
    assert!(login(&store, "admin", "datarhei").await.is_none());
    assert!(login(&store, "admin", "changed").await.is_some());

    for bad in ["mysql://x/y", "users.db", "http://db"] {
        let err = CoreAuthConfig::default()
            .with_lookup(|k| (k == "CORE_API_AUTH_DATABASE").then(|| bad.to_owned()))
            .unwrap_err();
        assert_eq!(err, ConfigError::InvalidDatabase, "{bad}");
    }
    let secret = CoreAuthConfig::default()
        .with_lookup(|k| {
            (k == "CORE_API_AUTH_DATABASE")
                .then(|| "postgres://u:hunter2@db.internal:5432/x".into())
        })
        .unwrap();
    let shown = format!("{:?}", secret.database.unwrap());
    assert_eq!(shown, "DatabaseUrl(postgres://db.internal:5432)");
}

/// The example server with `CORE_API_AUTH_DATABASE` (this test's own schema or file): the
/// configured user is created in the database, owns an API key, turns the second factor on and
/// changes its password through the app's routes; the app built again over the same database
/// (a restart: new pool, new stores) still exchanges the key, lists it, takes the changed
/// password only, and asks for the second factor (a recovery code passes).
async fn the_example_server_keeps_keys_and_passwords_across_a_restart(db: TestDb) {
    use accounts_suite::{change_password, create, exchange, list, password_login};
    use common::{INVALID_CREDENTIALS, Req, spawn_router};
    use serde_json::json;

    let url = db.url();
    let config = CoreAuthConfig::default()
        .with_lookup(move |k| match k {
            "CORE_API_AUTH_ENABLE" => Some("true".into()),
            "CORE_API_AUTH_USERNAME" => Some("admin".into()),
            "CORE_API_AUTH_PASSWORD" => Some("datarhei".into()),
            "CORE_API_AUTH_JWT_SECRET" => Some("0123456789abcdef0123456789abcdef".into()),
            "CORE_API_AUTH_LOGIN_FAILURE_DELAY" => Some("0".into()),
            "CORE_API_AUTH_DATABASE" => Some(url.clone()),
            "CORE_API_AUTH_TOTP" => Some("true".into()),
            "CORE_API_AUTH_TOTP_KEY" => {
                Some("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f".into())
            }
            _ => None,
        })
        .unwrap();
    let first = spawn_router(common::core_server::app_from_env(&config).await.unwrap()).await;
    let reply = password_login(first, "admin", "datarhei").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let admin = reply.json()["access_token"].as_str().unwrap().to_owned();
    let reply = create(first, &admin, json!({ "name": "backup job" })).await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    let id = reply.json()["id"].as_str().unwrap().to_owned();
    let key = reply.json()["key"].as_str().unwrap().to_owned();
    assert_eq!(exchange(first, &key).await.status, 200);
    let reply = Req::post("/api/v3/auth/totp/setup")
        .bearer(&admin)
        .send(first)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let secret = reply.json()["secret"].as_str().unwrap().to_owned();
    let reply = Req::post("/api/v3/auth/totp/enable")
        .bearer(&admin)
        .json(json!({ "code": totp(&secret, common::now()) }).to_string())
        .send(first)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let recovery = reply.json()["recovery_codes"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = change_password(
        first,
        &admin,
        json!({ "password": "datarhei", "new_password": "a much longer password" }),
    )
    .await;
    assert_eq!((reply.status, reply.text()), (204, ""));

    // A restart: the app built again over the same database.
    let second = spawn_router(common::core_server::app_from_env(&config).await.unwrap()).await;
    let reply = password_login(second, "admin", "datarhei").await;
    assert_eq!((reply.status, reply.text()), (401, INVALID_CREDENTIALS));
    password_login(second, "admin", "a much longer password")
        .await
        .assert_error(401, "TOTP code required");
    let reply = Req::post("/api/login")
        .json(
            json!({
                "username": "admin",
                "password": "a much longer password",
                "totp_code": recovery,
            })
            .to_string(),
        )
        .send(second)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let admin = reply.json()["access_token"].as_str().unwrap().to_owned();
    let reply = exchange(second, &key).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let token = reply.json()["access_token"].as_str().unwrap().to_owned();
    // The app's ring: Core's key from the configured user, password and secret.
    let claims = config
        .jwt_config()
        .unwrap()
        .build()
        .unwrap()
        .verify(&token, tower_jwt_login::TokenUse::Access)
        .unwrap();
    assert_eq!(claims.subject(), "admin");
    assert_eq!(
        claims.extra_json(),
        Some(format!("{{\"api_key\":\"{id}\"}}").as_str())
    );
    let listed = list(second, &admin).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json()[0]["id"], id.as_str());
    assert_eq!(listed.json()[0]["name"], "backup job");
    assert!(listed.json()[0]["last_used_at"].as_u64().is_some());
}

/// RFC 6238 written out from RFC 4226 §5.3 over `hmac` and `sha1` directly, independent of the
/// crate's implementation.
fn totp(secret_base32: &str, unix_time: u64) -> String {
    use hmac::{Hmac, Mac};
    let secret = data_encoding::BASE32_NOPAD
        .decode(secret_base32.as_bytes())
        .unwrap();
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(&secret).unwrap();
    mac.update(&(unix_time / 30).to_be_bytes());
    let tag = mac.finalize().into_bytes();
    let offset = (tag[19] & 0x0f) as usize;
    let value = u32::from_be_bytes(tag[offset..offset + 4].try_into().unwrap()) & 0x7fff_ffff;
    format!("{:06}", value % 1_000_000)
}
