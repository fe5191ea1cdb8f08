//! accounts: a password login through `SqlStore` on PostgreSQL against the same login through
//! the in-memory `Argon2Store`, with the same Argon2id parameters and the same `LoginService`
//! (what the database adds to a login that Argon2 dominates); and an API-key exchange
//! (`POST /api/login` with `Authorization: Bearer tjl_…`, no body, no Argon2) with the keys in
//! PostgreSQL, in SQLite and in `MemoryApiKeyStore`.
//!
//! PostgreSQL is `TJL_BENCH_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`), in a
//! schema of the bench's own, dropped at the end; when it does not answer, the bench says so and
//! measures nothing.
//!
//! `cargo bench --features sql --bench accounts`

mod common;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BatchSize, Criterion};
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{Request, StatusCode};
use http_body_util::Full;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tower::Service;

use tower_jwt_login::apikey::{ApiKey, ApiKeyInfo, ApiKeyStore, MemoryApiKeyStore};
use tower_jwt_login::login::LoginService;
use tower_jwt_login::store::{Argon2Store, HashParams, SqlOptions, SqlStore};

fn postgres_url() -> String {
    std::env::var("TJL_BENCH_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn login_request() -> Request<Full<Bytes>> {
    let body = format!(
        "{{\"username\":\"{}\",\"password\":\"{}\"}}",
        common::USER,
        common::PASSWORD
    );
    Request::post("/api/login")
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn key_request(key: &str) -> Request<Full<Bytes>> {
    Request::post("/api/login")
        .header(AUTHORIZATION, format!("Bearer {key}"))
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// A key of the bench user's, created in `store`: its text.
async fn make_key<K: ApiKeyStore>(store: &K) -> String {
    let key = ApiKey::generate();
    let info = ApiKeyInfo {
        id: format!("bench{}", std::process::id()),
        subject: common::USER.to_owned(),
        name: "bench".to_owned(),
        roles: None,
        created_at: common::now(),
        expires_at: None,
        last_used_at: None,
    };
    store.create(&info, &key.hash()).await.unwrap();
    key.expose_secret().to_owned()
}

/// A PostgreSQL schema of the bench's own; `None` when PostgreSQL does not answer.
async fn postgres_schema() -> Result<(String, PgConnectOptions), String> {
    let url = postgres_url();
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(3))
        .connect(&url)
        .await
        .map_err(|e| format!("PostgreSQL at {url} does not answer ({e})"))?;
    let schema = format!("tjl_bench_{}", std::process::id());
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .execute(&admin)
        .await
        .map_err(|e| format!("creating schema {schema}: {e}"))?;
    admin.close().await;
    let connect = PgConnectOptions::from_str(&url)
        .map_err(|e| e.to_string())?
        .options([("search_path", schema.as_str())]);
    Ok((schema, connect))
}

async fn drop_schema(schema: &str) {
    if let Ok(admin) = PgPoolOptions::new()
        .max_connections(1)
        .connect(&postgres_url())
        .await
    {
        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&admin)
            .await;
        admin.close().await;
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (schema, connect) = match rt.block_on(postgres_schema()) {
        Ok(found) => found,
        Err(why) => {
            eprintln!("accounts bench skipped: {why}");
            return;
        }
    };
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c, &rt, connect);
    rt.block_on(drop_schema(&schema));
    c.final_summary();
}

fn bench(c: &mut Criterion, rt: &tokio::runtime::Runtime, connect: PgConnectOptions) {
    let jwt = common::jwt();
    // The same parameters on both sides (argon2's defaults: 19 MiB, 2 passes, 1 lane).
    let params = HashParams::default();
    eprintln!(
        "Argon2id m={} KiB t={} p={}",
        params.memory_kib(),
        params.iterations(),
        params.parallelism()
    );

    let (sql, sqlite, sqlite_dir) = rt.block_on(async {
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(connect)
            .await
            .unwrap();
        let sql = SqlStore::postgres(pool, SqlOptions::new().hash_params(params)).unwrap();
        sql.migrate().await.unwrap();
        sql.ensure_user(common::USER, common::PASSWORD)
            .await
            .unwrap();
        let dir = std::env::temp_dir().join(format!("tjl-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("accounts.db").display());
        let sqlite = SqlStore::connect_and_migrate(&url, SqlOptions::new().hash_params(params))
            .await
            .unwrap();
        sqlite
            .ensure_user(common::USER, common::PASSWORD)
            .await
            .unwrap();
        (sql, sqlite, dir)
    });
    let memory = Arc::new(
        Argon2Store::new()
            .hash_params(params)
            .with_password(common::USER, common::PASSWORD)
            .unwrap(),
    );

    let mut login_sql = LoginService::new(jwt.clone(), sql.clone());
    let mut login_memory = LoginService::new(jwt.clone(), memory.clone());

    let memory_keys = MemoryApiKeyStore::new();
    let (pg_key, sqlite_key, memory_key) = rt.block_on(async {
        (
            make_key(&sql).await,
            make_key(&sqlite).await,
            make_key(&memory_keys).await,
        )
    });
    let mut exchange_pg = LoginService::new(jwt.clone(), sql.clone()).api_keys(sql.clone());
    let mut exchange_sqlite =
        LoginService::new(jwt.clone(), sqlite.clone()).api_keys(sqlite.clone());
    let mut exchange_memory = LoginService::new(jwt.clone(), memory).api_keys(memory_keys);

    // Every path answers a pair before it is timed (the first exchange records the key's use).
    for res in [
        rt.block_on(login_sql.call(login_request())).unwrap(),
        rt.block_on(login_memory.call(login_request())).unwrap(),
        rt.block_on(exchange_pg.call(key_request(&pg_key))).unwrap(),
        rt.block_on(exchange_sqlite.call(key_request(&sqlite_key)))
            .unwrap(),
        rt.block_on(exchange_memory.call(key_request(&memory_key)))
            .unwrap(),
    ] {
        assert_eq!(res.status(), StatusCode::OK);
    }

    // Argon2id costs tens of milliseconds by design: few samples.
    let mut group = c.benchmark_group("accounts-login");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("LoginService Argon2Store", |b| {
        b.iter_batched(
            login_request,
            |req| rt.block_on(login_memory.call(req)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("LoginService SqlStore PostgreSQL", |b| {
        b.iter_batched(
            login_request,
            |req| rt.block_on(login_sql.call(req)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();

    let mut group = c.benchmark_group("accounts-api-key");
    group.bench_function("exchange MemoryApiKeyStore", |b| {
        b.iter_batched(
            || key_request(&memory_key),
            |req| rt.block_on(exchange_memory.call(req)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("exchange SqlStore PostgreSQL", |b| {
        b.iter_batched(
            || key_request(&pg_key),
            |req| rt.block_on(exchange_pg.call(req)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("exchange SqlStore SQLite", |b| {
        b.iter_batched(
            || key_request(&sqlite_key),
            |req| rt.block_on(exchange_sqlite.call(req)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();

    rt.block_on(async {
        sql.close().await;
        sqlite.close().await;
    });
    let _ = std::fs::remove_dir_all(sqlite_dir);
}
