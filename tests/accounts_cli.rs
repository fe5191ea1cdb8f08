//! The `accounts` example's command line (examples/accounts/cli.rs) against the real
//! PostgreSQL (127.0.0.1:5432, a database of its own per test, dropped after;
//! `TJL_TEST_POSTGRES` names another server) and SQLite (a temporary file): every command's
//! exact output and exit status, and its effect seen through a `SqlStore` on the same database
//! (logins, roles, an API key exchanged at the login). With the `redis` feature, `passwd`,
//! `disable` and `remove` end the user's sessions in Redis (127.0.0.1:6379, a prefix of its own).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/accounts/cli.rs"]
#[allow(dead_code)]
mod cli;

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use sqlx::postgres::PgPoolOptions;
use tower::ServiceExt;
use tower_jwt_login::apikey::{ApiKey, ApiKeyStore};
use tower_jwt_login::login::LoginService;
use tower_jwt_login::store::{CredentialStore, Credentials, Lookup, SqlOptions, SqlStore};
use tower_jwt_login::{JwtConfig, JwtKey};

const NOTE: &str = "(no Redis sessions configured: CORE_API_AUTH_SESSIONS); see docs/accounts.md";

fn postgres_url() -> String {
    std::env::var("TJL_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn unique() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let mut random = [0u8; 4];
    getrandom::getrandom(&mut random).unwrap();
    let random: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}_{}_{random}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// One run of the command line: (exit status, stdout, stderr).
async fn run(args: &[&str], env: &HashMap<&str, String>, stdin: &str) -> (u8, String, String) {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let mut input = Cursor::new(stdin.as_bytes().to_vec());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let io = cli::Io {
        input: &mut input,
        out: &mut out,
        err: &mut err,
        terminal: false,
    };
    let code = cli::run(&args, |k| env.get(k).cloned(), io).await;
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

fn ok(out: &str) -> (u8, String, String) {
    (0, out.to_owned(), String::new())
}

fn fails(code: u8, err: &str) -> (u8, String, String) {
    (code, String::new(), err.to_owned())
}

/// A PostgreSQL database of its own, dropped with the guard.
struct PgDatabase {
    name: String,
}

impl PgDatabase {
    async fn create() -> Self {
        let name = format!("tjl_cli_{}", unique());
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&postgres_url())
            .await
            .expect("PostgreSQL on 127.0.0.1:5432 (`.ci/run` starts it)");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        PgDatabase { name }
    }

    fn url(&self) -> String {
        let base = postgres_url();
        let server = base.rsplit_once('/').map_or(base.as_str(), |(s, _)| s);
        format!("{server}/{}", self.name)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
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
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&pool)
                        .await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}

fn sqlite_url() -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("tjl-cli-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("users.db").display());
    (dir, url)
}

async fn login(store: &SqlStore, name: &str, password: &str) -> Option<String> {
    store
        .authenticate(&Credentials::new(name, password))
        .await
        .unwrap()
}

/// Every command on the database at `url`, with exact outputs, checked through a store of its
/// own on the same database.
async fn every_command(url: &str) {
    let env = HashMap::from([("CORE_API_AUTH_DATABASE", url.to_owned())]);

    // The first run migrates an empty database.
    assert_eq!(run(&["users"], &env, "").await, ok("no users\n"));
    let store = SqlStore::connect(url, SqlOptions::new()).await.unwrap();

    assert_eq!(
        run(&["add-user", "alice"], &env, "wonderland\n").await,
        ok("added user alice\n")
    );
    assert_eq!(
        login(&store, "alice", "wonderland").await.as_deref(),
        Some("alice")
    );
    assert_eq!(
        run(&["add-user", "alice"], &env, "other\n").await,
        fails(1, "error: user alice exists\n")
    );
    assert_eq!(login(&store, "alice", "other").await, None);
    // A CR LF line end is not part of the password; nothing after the first line is read.
    assert_eq!(
        run(
            &["add-user", "bob", "--password-stdin"],
            &env,
            "hunter2\r\nignored\n"
        )
        .await,
        ok("added user bob\n")
    );
    assert_eq!(
        login(&store, "bob", "hunter2").await.as_deref(),
        Some("bob")
    );

    // Roles: sorted, duplicates dropped; none given removes them.
    assert_eq!(
        run(&["role", "alice", "editor", "admin", "admin"], &env, "").await,
        ok("roles of alice: admin,editor\n")
    );
    let Lookup::Found(alice) = store.principal("alice").await.unwrap() else {
        panic!("alice is a user")
    };
    assert_eq!(alice.extra_json(), Some(r#"{"roles":["admin","editor"]}"#));
    assert_eq!(run(&["role", "bob", "viewer"], &env, "").await.0, 0);
    assert_eq!(
        run(&["role", "bob"], &env, "").await,
        ok("roles of bob: (none)\n")
    );
    let Lookup::Found(bob) = store.principal("bob").await.unwrap() else {
        panic!("bob is a user")
    };
    assert_eq!(bob.extra_json(), None);
    assert_eq!(
        run(&["role", "carol", "admin"], &env, "").await,
        fails(1, "error: no such user: carol\n")
    );

    let users = store.users().await.unwrap();
    let (a, b) = (cli::utc(users[0].created_at), cli::utc(users[1].created_at));
    assert_eq!(
        run(&["users"], &env, "").await,
        ok(&format!(
            "NAME   STATE    ROLES         CREATED\n\
             alice  enabled  admin,editor  {a}\n\
             bob    enabled  -             {b}\n"
        ))
    );

    // passwd: the new password works, the old no longer; the note says sessions stay.
    assert_eq!(
        run(&["passwd", "alice"], &env, "looking-glass\n").await,
        (
            0,
            "changed the password of alice\n".to_owned(),
            format!("note: the sessions of alice were not ended {NOTE}\n")
        )
    );
    assert_eq!(login(&store, "alice", "wonderland").await, None);
    assert_eq!(
        login(&store, "alice", "looking-glass").await.as_deref(),
        Some("alice")
    );
    assert_eq!(
        run(&["passwd", "carol"], &env, "x\n").await,
        fails(1, "error: no such user: carol\n")
    );

    // disable / enable.
    assert_eq!(
        run(&["disable", "bob"], &env, "").await,
        (
            0,
            "disabled bob\n".to_owned(),
            format!("note: the sessions of bob were not ended {NOTE}\n")
        )
    );
    assert_eq!(store.principal("bob").await.unwrap(), Lookup::Refused);
    assert_eq!(login(&store, "bob", "hunter2").await, None);
    assert_eq!(
        run(&["users"], &env, "").await,
        ok(&format!(
            "NAME   STATE     ROLES         CREATED\n\
             alice  enabled   admin,editor  {a}\n\
             bob    disabled  -             {b}\n"
        ))
    );
    assert_eq!(run(&["enable", "bob"], &env, "").await, ok("enabled bob\n"));
    assert_eq!(
        login(&store, "bob", "hunter2").await.as_deref(),
        Some("bob")
    );
    assert_eq!(
        run(&["disable", "carol"], &env, "").await,
        fails(1, "error: no such user: carol\n")
    );

    // api-key create: the key alone on stdout, what it is on stderr; kept as its hash.
    let (code, out, err) = run(
        &[
            "api-key",
            "create",
            "alice",
            "ci",
            "--expires-in",
            "3600",
            "--role",
            "admin",
        ],
        &env,
        "",
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let text = out.strip_suffix('\n').unwrap();
    let key = ApiKey::parse(text).expect("a key of the crate's format");
    let found = store.find_by_hash(&key.hash()).await.unwrap().unwrap();
    let info = found.key;
    assert_eq!(
        (
            info.subject.as_str(),
            info.name.as_str(),
            info.roles.clone()
        ),
        ("alice", "ci", Some(vec!["admin".to_owned()]))
    );
    assert_eq!(info.expires_at, Some(info.created_at + 3600));
    assert_eq!(info.id.len(), 16);
    assert_eq!(
        err,
        format!(
            "created API key {} (ci) of alice, roles admin, expires {}; the key below is shown \
             this once\n",
            info.id,
            cli::utc(info.created_at + 3600)
        )
    );

    // The key is exchanged at the login for a pair of alice's, restricted to the key's roles.
    let jwt = JwtConfig::new(JwtKey::random()).build().unwrap();
    let exchange = LoginService::new(jwt.clone(), store.clone()).api_keys(store.clone());
    let res = exchange
        .oneshot(
            Request::post("/api/login")
                .header(AUTHORIZATION, format!("Bearer {text}"))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let pair: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let claims = jwt
        .verify(
            pair["access_token"].as_str().unwrap(),
            tower_jwt_login::TokenUse::Access,
        )
        .unwrap();
    assert_eq!(claims.subject(), "alice");
    assert!(claims.has_role("admin") && !claims.has_role("editor"));

    // A key without roles or expiry: all the owner's roles, never expires.
    let (code, out, err) = run(&["api-key", "create", "alice", "  backup job "], &env, "").await;
    assert_eq!(code, 0, "{err}");
    let second = ApiKey::parse(out.trim_end()).unwrap();
    let second = store
        .find_by_hash(&second.hash())
        .await
        .unwrap()
        .unwrap()
        .key;
    assert_eq!(
        (second.name.as_str(), second.roles.clone()),
        ("backup job", None)
    );
    assert_eq!(
        err,
        format!(
            "created API key {} (backup job) of alice, roles (all), expires never; the key \
             below is shown this once\n",
            second.id
        )
    );

    assert_eq!(
        run(
            &["api-key", "create", "alice", "x", "--role", "root"],
            &env,
            ""
        )
        .await,
        fails(
            1,
            "error: alice does not hold the role root: a key's roles are a subset of its \
             owner's (admin,editor)\n"
        )
    );
    assert_eq!(
        run(&["api-key", "create", "carol", "x"], &env, "").await,
        fails(1, "error: no such user: carol\n")
    );

    // The list (oldest first; keys of the same second by id), with the exchange's last use.
    let keys = store.list("alice").await.unwrap();
    assert_eq!(keys.len(), 2);
    let mut expected =
        "ID                NAME        ROLES  CREATED               EXPIRES               LAST USED\n"
            .to_owned();
    for k in &keys {
        let (name, roles, expires, used) = if k.id == info.id {
            let used = cli::utc(k.last_used_at.expect("the exchange recorded its use"));
            (
                "ci        ",
                "admin",
                cli::utc(info.created_at + 3600),
                used,
            )
        } else {
            assert_eq!(k.last_used_at, None);
            (
                "backup job",
                "(all)",
                "never               ".to_owned(),
                "never".to_owned(),
            )
        };
        let created = cli::utc(k.created_at);
        expected.push_str(&format!(
            "{}  {name}  {roles}  {created}  {expires}  {used}\n",
            k.id
        ));
    }
    assert_eq!(
        run(&["api-key", "list", "alice"], &env, "").await,
        ok(&expected)
    );
    let id1 = &info.id;
    assert_eq!(
        run(&["api-key", "list", "bob"], &env, "").await,
        ok("bob has no API keys\n")
    );
    assert_eq!(
        run(&["api-key", "list", "carol"], &env, "").await,
        fails(1, "error: no such user: carol\n")
    );

    // Revocation: only the owner's key, then gone.
    assert_eq!(
        run(&["api-key", "revoke", "bob", id1], &env, "").await,
        fails(1, &format!("error: bob has no API key {id1}\n"))
    );
    assert_eq!(
        run(&["api-key", "revoke", "alice", id1], &env, "").await,
        ok(&format!("revoked API key {id1} of alice\n"))
    );
    assert!(store.find_by_hash(&key.hash()).await.unwrap().is_none());

    // remove: the user and its keys.
    assert_eq!(
        run(&["remove", "alice"], &env, "").await,
        (
            0,
            "removed alice\n".to_owned(),
            format!("note: the sessions of alice were not ended {NOTE}\n")
        )
    );
    assert_eq!(store.principal("alice").await.unwrap(), Lookup::Refused);
    assert!(store.list("alice").await.unwrap().is_empty());
    assert_eq!(
        run(&["remove", "alice"], &env, "").await,
        fails(1, "error: no such user: alice\n")
    );
    assert_eq!(
        run(&["users"], &env, "").await,
        ok(&format!(
            "NAME  STATE    ROLES  CREATED\nbob   enabled  -      {b}\n"
        ))
    );
    store.close().await;
}

#[tokio::test]
async fn every_command_on_postgres() {
    let db = PgDatabase::create().await;
    every_command(&db.url()).await;
}

#[tokio::test]
async fn every_command_on_sqlite() {
    let (dir, url) = sqlite_url();
    every_command(&url).await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Usage errors (exit status 2) are found before anything is read or changed.
#[tokio::test]
async fn usage_errors_exit_2_and_change_nothing() {
    let (dir, url) = sqlite_url();
    let env = HashMap::from([("CORE_API_AUTH_DATABASE", url.clone())]);
    let hint = "`accounts help` lists the commands\n";
    for (args, why) in [
        (&[][..], "no command given".to_owned()),
        (
            &["frobnicate"][..],
            "unknown command or wrong arguments: \"frobnicate\"".to_owned(),
        ),
        (
            &["disable"][..],
            "unknown command or wrong arguments: \"disable\"".to_owned(),
        ),
        (
            &["users", "extra"][..],
            "unknown command or wrong arguments: \"users\"".to_owned(),
        ),
        (
            &["add-user", "alice", "--password", "secret"][..],
            "unexpected argument \"--password\": passwords are read from stdin, never from the \
             command line"
                .to_owned(),
        ),
        (
            &["passwd", "alice", "secret"][..],
            "unexpected argument \"secret\": passwords are read from stdin, never from the \
             command line"
                .to_owned(),
        ),
        (
            &["add-user", ""][..],
            "invalid user name \"\": it must not be empty nor hold control characters".to_owned(),
        ),
        (
            &["role", "alice", "--admin"][..],
            "invalid role \"--admin\"".to_owned(),
        ),
        (
            &["api-key", "create", "alice", "ci", "--expires-in", "0"][..],
            "invalid --expires-in \"0\": seconds, from 1 to 315360000".to_owned(),
        ),
        (
            &["api-key", "create", "alice", "ci", "--expires-in", "soon"][..],
            "invalid --expires-in \"soon\": seconds, from 1 to 315360000".to_owned(),
        ),
        (
            &["api-key", "create", "alice", "ci", "--role"][..],
            "unexpected argument \"--role\"".to_owned(),
        ),
        (
            &["api-key", "create", "alice", " "][..],
            "invalid key name: 1 to 100 characters, no control characters".to_owned(),
        ),
        (
            &["api-key", "revoke", "alice"][..],
            "unknown command or wrong arguments: \"api-key\"".to_owned(),
        ),
    ] {
        assert_eq!(
            run(args, &env, "wonderland\n").await,
            fails(2, &format!("error: {why}\n{hint}")),
            "{args:?}"
        );
    }
    // The database was not even created.
    assert!(!dir.join("users.db").exists());

    // Passwords: one non-empty line.
    assert_eq!(
        run(&["add-user", "alice"], &env, "").await,
        fails(2, "error: no password on stdin (one line is read)\n")
    );
    assert_eq!(
        run(&["add-user", "alice"], &env, "\n").await,
        fails(2, "error: empty password\n")
    );
    assert!(!dir.join("users.db").exists());

    // The environment.
    assert_eq!(
        run(&["users"], &HashMap::new(), "").await,
        fails(
            2,
            "error: CORE_API_AUTH_DATABASE is not set: give the database, e.g. \
             postgres://postgres@127.0.0.1/test or sqlite://users.db\n"
        )
    );
    let mysql = HashMap::from([("CORE_API_AUTH_DATABASE", "mysql://localhost/x".to_owned())]);
    let (code, out, err) = run(&["users"], &mysql, "").await;
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(
        err.starts_with(
            "error: CORE_API_AUTH_DATABASE must be a postgres://, postgresql:// or sqlite: URL"
        ),
        "{err}"
    );

    // Help: on stdout, status 0.
    assert_eq!(run(&["help"], &env, "").await, ok(cli::USAGE));
    let _ = std::fs::remove_dir_all(dir);
}

/// A database that does not answer is a failure (status 1) with the reason, not a panic.
#[tokio::test]
async fn an_unreachable_database_fails_with_status_1() {
    let env = HashMap::from([(
        "CORE_API_AUTH_DATABASE",
        "postgres://postgres@127.0.0.1:1/test".to_owned(),
    )]);
    let (code, out, err) = run(&["users"], &env, "").await;
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(
        err.starts_with("error: CORE_API_AUTH_DATABASE: database error: "),
        "{err}"
    );
    assert!(err.ends_with('\n') && err.lines().count() == 1, "{err}");
}

/// On a terminal the password is prompted for on stderr (and still read from stdin).
#[tokio::test]
async fn a_terminal_gets_a_prompt() {
    let (dir, url) = sqlite_url();
    let args: Vec<String> = ["add-user", "alice"].map(str::to_owned).to_vec();
    let mut input = Cursor::new(b"wonderland\n".to_vec());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let io = cli::Io {
        input: &mut input,
        out: &mut out,
        err: &mut err,
        terminal: true,
    };
    let code = cli::run(
        &args,
        |k| (k == "CORE_API_AUTH_DATABASE").then(|| url.clone()),
        io,
    )
    .await;
    assert_eq!(
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap()
        ),
        (
            0,
            "added user alice\n".to_owned(),
            "password for alice (shown as typed): ".to_owned()
        )
    );
    let store = SqlStore::connect(&url, SqlOptions::new()).await.unwrap();
    assert_eq!(
        login(&store, "alice", "wonderland").await.as_deref(),
        Some("alice")
    );
    store.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn dates_are_utc() {
    assert_eq!(cli::utc(0), "1970-01-01T00:00:00Z");
    assert_eq!(cli::utc(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(cli::utc(1_700_000_000), "2023-11-14T22:13:20Z");
    assert_eq!(cli::utc(4_102_444_799), "2099-12-31T23:59:59Z");
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;
    use tower_jwt_login::redis::RedisOptions;
    use tower_jwt_login::session::{
        KeyTag, NewSession, RedisSessionStore, RefreshVerdict, SessionError, SessionStore,
    };

    /// `passwd`, `disable` and `remove` end every session of the user in the servers' Redis;
    /// `enable` and the other commands touch no session.
    #[tokio::test]
    async fn passwd_disable_and_remove_log_the_user_out_everywhere() {
        let (dir, url) = sqlite_url();
        let prefix = format!("tjl-cli-test-{}:", unique());
        let env = HashMap::from([
            ("CORE_API_AUTH_DATABASE", url),
            (
                "CORE_API_AUTH_SESSIONS",
                "redis://127.0.0.1:6379".to_owned(),
            ),
            ("CORE_API_AUTH_REDIS_PREFIX", prefix.clone()),
        ]);
        // A server's store on the same Redis and prefix.
        let jwt = JwtConfig::new(JwtKey::random()).build().unwrap();
        let server = RedisSessionStore::connect(
            "redis://127.0.0.1:6379",
            RedisOptions::new().prefix(prefix),
            &jwt,
        )
        .await
        .expect("Redis on 127.0.0.1:6379");
        let far = cli_now() + 3600;

        // One user per command: a subject's "log out everywhere" also refuses its sessions
        // started within the same second.
        for (user, command, out) in [
            ("alice", "passwd", "changed the password of alice\n"),
            ("bob", "disable", "disabled bob\n"),
            ("carol", "remove", "removed carol\n"),
        ] {
            assert_eq!(
                run(&["add-user", user], &env, "wonderland\n").await,
                ok(&format!("added user {user}\n"))
            );
            let sid = format!("sid-{user}");
            server
                .start(NewSession::new(&sid, user, "jti", far))
                .await
                .unwrap();
            // Commands that do not log out leave the session alone.
            assert_eq!(run(&["role", user, "viewer"], &env, "").await.0, 0);
            assert_eq!(
                run(&["enable", user], &env, "").await,
                ok(&format!("enabled {user}\n"))
            );
            assert_eq!(
                server.refresh(&sid, user, "jti", None).await.unwrap(),
                RefreshVerdict::Live,
                "{user}"
            );
            assert_eq!(
                run(&[command, user], &env, "looking-glass\n").await,
                ok(&format!(
                    "{out}ended the sessions of {user} on every instance\n"
                )),
            );
            assert_eq!(
                server.refresh(&sid, user, "jti", None).await.unwrap(),
                RefreshVerdict::Ended,
                "{command}"
            );
        }

        // api-key revoke ends the sessions the key started, when the store can list them;
        // a store that cannot says so, and the key's tokens stop at their next refresh.
        assert_eq!(
            run(&["add-user", "dave"], &env, "wonderland\n").await,
            ok("added user dave\n")
        );
        let (code, _, err) = run(&["api-key", "create", "dave", "ci"], &env, "").await;
        assert_eq!(code, 0, "{err}");
        let id = err
            .strip_prefix("created API key ")
            .and_then(|rest| rest.split(' ').next())
            .unwrap()
            .to_owned();
        server
            .start(
                NewSession::new("sid-dave-key", "dave", "jti", far).api_key(Some(KeyTag {
                    id: &id,
                    name: "ci",
                })),
            )
            .await
            .unwrap();
        server
            .start(NewSession::new("sid-dave-password", "dave", "jti", far))
            .await
            .unwrap();
        let (code, out, err) = run(&["api-key", "revoke", "dave", &id], &env, "").await;
        assert_eq!(code, 0, "{err}");
        let revoked = format!("revoked API key {id} of dave\n");
        match server.list("dave").await {
            Ok(_) => {
                assert_eq!(
                    (out, err),
                    (
                        format!("{revoked}ended 1 session(s) of the key\n"),
                        String::new()
                    )
                );
                assert_eq!(
                    server
                        .refresh("sid-dave-key", "dave", "jti", None)
                        .await
                        .unwrap(),
                    RefreshVerdict::Ended
                );
            }
            Err(SessionError::Unsupported) => assert_eq!(
                (out, err),
                (
                    revoked,
                    "note: the session store cannot list sessions: the key's sessions end at \
                     their next refresh\n"
                        .to_owned()
                )
            ),
            Err(e) => panic!("{e}"),
        }
        // The password session goes on.
        assert_eq!(
            server
                .refresh("sid-dave-password", "dave", "jti", None)
                .await
                .unwrap(),
            RefreshVerdict::Live
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    fn cli_now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }
}

#[cfg(not(feature = "redis"))]
#[tokio::test]
async fn redis_sessions_without_the_redis_feature_refuse_to_log_out() {
    let (dir, url) = sqlite_url();
    let env = HashMap::from([
        ("CORE_API_AUTH_DATABASE", url),
        (
            "CORE_API_AUTH_SESSIONS",
            "redis://127.0.0.1:6379".to_owned(),
        ),
    ]);
    assert_eq!(
        run(&["disable", "alice"], &env, "").await,
        fails(
            2,
            "error: CORE_API_AUTH_SESSIONS names Redis, but this build cannot end sessions \
             there: run with --features sql,redis (or unset CORE_API_AUTH_SESSIONS to change \
             the account without ending its sessions)\n"
        )
    );
    assert!(!dir.join("users.db").exists());
    let _ = std::fs::remove_dir_all(dir);
}
