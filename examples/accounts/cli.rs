//! The `accounts` command line: parsing, the commands on a [`SqlStore`], and their output.
//! `examples/accounts.rs` runs it on the process's arguments, environment and standard streams;
//! tests/accounts_cli.rs runs it on their own.

use std::fmt::Write as _;
use std::io::{BufRead, Write};

use tower_jwt_login::apikey::{ApiKey, ApiKeyInfo, ApiKeyStore};
use tower_jwt_login::config::{CoreAuthConfig, SessionBackend};
use tower_jwt_login::store::{SqlOptions, SqlStore};
use zeroize::Zeroizing;

/// The usage text (`accounts help`).
pub const USAGE: &str = "\
Manage the users and API keys of tower-jwt-login's SQL store.

usage: accounts <command>

commands:
  add-user NAME [--password-stdin]  add a user (no roles); the password is one line on stdin
  passwd NAME [--password-stdin]    set a user's password, read the same way (*)
  role NAME [ROLE]...               set a user's roles (none given: no roles)
  disable NAME                      refuse the user's logins, refreshes and API keys (*)
  enable NAME                       accept them again
  remove NAME                       remove the user, its roles, API keys and second factor (*)
  users                             list the users
  api-key create NAME KEYNAME [--expires-in SECS] [--role ROLE]...
                                    create an API key for NAME (roles: a subset of NAME's;
                                    none given: all of them) and print it, the only time
  api-key list NAME                 list NAME's API keys (never the keys themselves)
  api-key revoke NAME ID            revoke NAME's API key ID (with Redis: and end its sessions)
  help                              this text

environment:
  CORE_API_AUTH_DATABASE  postgres://... or sqlite:... (migrated first); required
  CORE_API_AUTH_SESSIONS  when it names the servers' Redis (redis://..., rediss://...,
                          redis+sentinel://...; needs --features redis), the commands marked
                          (*) also log the user out everywhere: every session ends and every
                          token issued before is refused on every instance (RedisSessionStore
                          end_all; CORE_API_AUTH_REDIS_PREFIX and the other Redis variables as
                          the servers have them). Without it sessions are not ended here: a
                          disabled or removed user cannot refresh, but tokens already issued
                          last until they expire (docs/accounts.md).

Passwords are never read from the command line. On a terminal the password is shown as typed.
Exit status: 0 done, 1 failed (no such user, database or Redis error), 2 usage error.
";

/// The longest API key lifetime accepted (ten years, as the key routes).
pub const MAX_KEY_LIFETIME: u64 = 10 * 365 * 24 * 3600;

/// The standard streams of one run.
pub struct Io<'a> {
    /// Standard input: passwords.
    pub input: &'a mut dyn BufRead,
    /// Standard output: results (a created key, the lists).
    pub out: &'a mut dyn Write,
    /// Standard error: prompts, notes, errors.
    pub err: &'a mut dyn Write,
    /// Whether standard input is a terminal (then a prompt is shown).
    pub terminal: bool,
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `help`.
    Help,
    /// `add-user NAME`.
    AddUser { name: String },
    /// `passwd NAME`.
    Passwd { name: String },
    /// `role NAME ROLE...`.
    Role { name: String, roles: Vec<String> },
    /// `disable NAME` / `enable NAME`.
    SetDisabled { name: String, disabled: bool },
    /// `remove NAME`.
    Remove { name: String },
    /// `users`.
    Users,
    /// `api-key create NAME KEYNAME [--expires-in SECS] [--role R]...`.
    KeyCreate {
        name: String,
        key_name: String,
        expires_in: Option<u64>,
        roles: Option<Vec<String>>,
    },
    /// `api-key list NAME`.
    KeyList { name: String },
    /// `api-key revoke NAME ID`.
    KeyRevoke { name: String, id: String },
}

impl Command {
    /// Whether the command ends the user's sessions when Redis is configured.
    fn logs_out(&self) -> Option<&str> {
        match self {
            Command::Passwd { name }
            | Command::Remove { name }
            | Command::SetDisabled {
                name,
                disabled: true,
            } => Some(name),
            _ => None,
        }
    }
}

/// Why a run failed: the message, and the exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A command line (or password) that cannot be run: exit status 2.
    Usage(String),
    /// The command failed: exit status 1.
    Failed(String),
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Failed(_) => 1,
        }
    }
}

fn usage(why: impl Into<String>) -> Failure {
    Failure::Usage(why.into())
}

fn failed(why: impl std::fmt::Display) -> Failure {
    Failure::Failed(why.to_string())
}

/// A user name from the command line: not empty, no control characters.
fn user_name(arg: &str) -> Result<String, Failure> {
    if arg.is_empty() || arg.chars().any(char::is_control) {
        return Err(usage(format!(
            "invalid user name {arg:?}: it must not be empty nor hold control characters"
        )));
    }
    Ok(arg.to_owned())
}

/// Parses the arguments (without the program's name).
pub fn parse(args: &[String]) -> Result<Command, Failure> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        [] => Err(usage("no command given")),
        ["help" | "--help" | "-h"] => Ok(Command::Help),
        ["add-user", name, rest @ ..] | ["passwd", name, rest @ ..] => {
            match rest {
                [] | ["--password-stdin"] => {}
                [other, ..] => {
                    return Err(usage(format!(
                        "unexpected argument {other:?}: passwords are read from stdin, never \
                         from the command line"
                    )));
                }
            }
            let name = user_name(name)?;
            Ok(if args[0] == "add-user" {
                Command::AddUser { name }
            } else {
                Command::Passwd { name }
            })
        }
        ["role", name, roles @ ..] => {
            let mut roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
            if let Some(bad) = roles.iter().find(|r| r.is_empty() || r.starts_with('-')) {
                return Err(usage(format!("invalid role {bad:?}")));
            }
            roles.sort();
            roles.dedup();
            Ok(Command::Role {
                name: user_name(name)?,
                roles,
            })
        }
        ["disable", name] => Ok(Command::SetDisabled {
            name: user_name(name)?,
            disabled: true,
        }),
        ["enable", name] => Ok(Command::SetDisabled {
            name: user_name(name)?,
            disabled: false,
        }),
        ["remove", name] => Ok(Command::Remove {
            name: user_name(name)?,
        }),
        ["users"] => Ok(Command::Users),
        ["api-key", "create", name, key_name, rest @ ..] => {
            let key_name = key_name.trim();
            if key_name.is_empty()
                || key_name.chars().count() > 100
                || key_name.chars().any(char::is_control)
            {
                return Err(usage(
                    "invalid key name: 1 to 100 characters, no control characters",
                ));
            }
            let mut expires_in = None;
            let mut roles: Option<Vec<String>> = None;
            let mut rest = rest;
            loop {
                match rest {
                    [] => break,
                    ["--expires-in", secs, tail @ ..] => {
                        let secs = secs
                            .parse::<u64>()
                            .ok()
                            .filter(|s| (1..=MAX_KEY_LIFETIME).contains(s))
                            .ok_or_else(|| {
                                usage(format!(
                                    "invalid --expires-in {secs:?}: seconds, from 1 to \
                                     {MAX_KEY_LIFETIME}"
                                ))
                            })?;
                        expires_in = Some(secs);
                        rest = tail;
                    }
                    ["--role", role, tail @ ..] if !role.is_empty() => {
                        roles.get_or_insert_with(Vec::new).push((*role).to_owned());
                        rest = tail;
                    }
                    [other, ..] => {
                        return Err(usage(format!("unexpected argument {other:?}")));
                    }
                }
            }
            if let Some(roles) = &mut roles {
                roles.sort();
                roles.dedup();
            }
            Ok(Command::KeyCreate {
                name: user_name(name)?,
                key_name: key_name.to_owned(),
                expires_in,
                roles,
            })
        }
        ["api-key", "list", name] => Ok(Command::KeyList {
            name: user_name(name)?,
        }),
        ["api-key", "revoke", name, id] => Ok(Command::KeyRevoke {
            name: user_name(name)?,
            id: (*id).to_owned(),
        }),
        [command, ..] => Err(usage(format!(
            "unknown command or wrong arguments: {command:?}"
        ))),
    }
}

/// Runs one command line on the environment `env` (a variable's value, as `std::env::var`):
/// the exit status. Writes errors to `io.err` as `error: …`, nothing panics.
pub async fn run(args: &[String], env: impl Fn(&str) -> Option<String>, io: Io<'_>) -> u8 {
    let Io {
        input,
        out,
        err,
        terminal,
    } = io;
    let result = match parse(args) {
        Ok(Command::Help) => out
            .write_all(USAGE.as_bytes())
            .map_err(|e| failed(format!("writing to stdout: {e}"))),
        Ok(command) => execute(command, env, input, out, err, terminal).await,
        Err(e) => {
            let (Failure::Usage(why) | Failure::Failed(why)) = &e;
            let _ = writeln!(err, "error: {why}\n`accounts help` lists the commands");
            return e.code();
        }
    };
    match result {
        Ok(()) => 0,
        Err(failure) => {
            let (Failure::Usage(why) | Failure::Failed(why)) = &failure;
            let _ = writeln!(err, "error: {why}");
            failure.code()
        }
    }
}

/// Where "log out everywhere" goes: nowhere, or the servers' Redis.
enum Logout {
    /// No Redis sessions configured.
    None,
    #[cfg(feature = "redis")]
    Redis(tower_jwt_login::session::Sessions),
}

async fn logout_target(config: &CoreAuthConfig) -> Result<Logout, Failure> {
    match &config.sessions {
        SessionBackend::Redis(_) => {
            #[cfg(feature = "redis")]
            {
                // The servers' lifetimes bound how long the revocations are kept.
                let jwt = config
                    .jwt_config()
                    .and_then(|c| c.build())
                    .map_err(|e| failed(format!("CORE_API_AUTH_JWT_*: {e}")))?;
                match config.connect_sessions(&jwt).await {
                    Ok(Some(sessions)) => Ok(Logout::Redis(sessions)),
                    Ok(None) => Ok(Logout::None),
                    Err(e) => Err(failed(format!("Redis sessions: {e}"))),
                }
            }
            #[cfg(not(feature = "redis"))]
            Err(usage(
                "CORE_API_AUTH_SESSIONS names Redis, but this build cannot end sessions there: \
                 run with --features sql,redis (or unset CORE_API_AUTH_SESSIONS to change the \
                 account without ending its sessions)",
            ))
        }
        _ => Ok(Logout::None),
    }
}

async fn execute(
    command: Command,
    env: impl Fn(&str) -> Option<String>,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
    terminal: bool,
) -> Result<(), Failure> {
    let config = CoreAuthConfig::default()
        .with_lookup(&env)
        .map_err(|e| usage(e.to_string()))?;
    let Some(url) = &config.database else {
        return Err(usage(
            "CORE_API_AUTH_DATABASE is not set: give the database, e.g. \
             postgres://postgres@127.0.0.1/test or sqlite://users.db",
        ));
    };
    // Redis first: a command that should log a user out changes nothing when it cannot.
    let logout = if command.logs_out().is_some() || matches!(command, Command::KeyRevoke { .. }) {
        logout_target(&config).await?
    } else {
        Logout::None
    };
    // A password is read before the database is touched.
    let password = match &command {
        Command::AddUser { name } | Command::Passwd { name } => {
            Some(read_password(name, input, err, terminal)?)
        }
        _ => None,
    };
    let store = SqlStore::connect_and_migrate(url.expose(), SqlOptions::new())
        .await
        .map_err(|e| failed(format!("CORE_API_AUTH_DATABASE: {e}")))?;
    let result = command_on(
        &store,
        &command,
        password.as_ref().map(|p| p.as_str()),
        out,
        err,
    )
    .await;
    if result.is_ok()
        && let Some(name) = command.logs_out()
    {
        match &logout {
            #[cfg(feature = "redis")]
            Logout::Redis(sessions) => {
                sessions.end_all(name).await.map_err(|e| {
                    failed(format!(
                        "the account was changed, but its sessions were not ended: {e}"
                    ))
                })?;
                say(
                    out,
                    format_args!("ended the sessions of {name} on every instance"),
                )?;
            }
            Logout::None => {
                let _ = writeln!(
                    err,
                    "note: the sessions of {name} were not ended (no Redis sessions \
                     configured: CORE_API_AUTH_SESSIONS); see docs/accounts.md"
                );
            }
        }
    }
    // A revoked key's sessions: ended at once when the store can find them (their refreshes
    // are refused anyway).
    #[cfg(feature = "redis")]
    if result.is_ok()
        && let (Command::KeyRevoke { name, id }, Logout::Redis(sessions)) = (&command, &logout)
    {
        match sessions.end_by_key(name, id).await {
            Ok(n) => say(out, format_args!("ended {n} session(s) of the key"))?,
            Err(tower_jwt_login::session::SessionError::Unsupported) => {
                let _ = writeln!(
                    err,
                    "note: the session store cannot list sessions: the key's sessions end at \
                     their next refresh"
                );
            }
            Err(e) => {
                return Err(failed(format!(
                    "the key was revoked, but its sessions were not ended: {e}"
                )));
            }
        }
    }
    store.close().await;
    result
}

fn say(out: &mut dyn Write, line: std::fmt::Arguments<'_>) -> Result<(), Failure> {
    writeln!(out, "{line}").map_err(|e| failed(format!("writing to stdout: {e}")))
}

fn no_user(name: &str) -> Failure {
    failed(format!("no such user: {name}"))
}

async fn command_on(
    store: &SqlStore,
    command: &Command,
    password: Option<&str>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), Failure> {
    let db = |e: tower_jwt_login::store::SqlError| failed(e);
    match command {
        Command::Help => Ok(()),
        Command::AddUser { name } => {
            match store.add_user(name, password.unwrap_or_default()).await {
                Ok(()) => say(out, format_args!("added user {name}")),
                Err(tower_jwt_login::store::SqlError::UserExists) => {
                    Err(failed(format!("user {name} exists")))
                }
                Err(e) => Err(db(e)),
            }
        }
        Command::Passwd { name } => {
            if !store
                .set_password(name, password.unwrap_or_default())
                .await
                .map_err(db)?
            {
                return Err(no_user(name));
            }
            say(out, format_args!("changed the password of {name}"))
        }
        Command::Role { name, roles } => {
            if !store
                .set_roles(name, roles.iter().cloned())
                .await
                .map_err(db)?
            {
                return Err(no_user(name));
            }
            say(
                out,
                format_args!("roles of {name}: {}", list_or(roles, "(none)")),
            )
        }
        Command::SetDisabled { name, disabled } => {
            if !store.set_disabled(name, *disabled).await.map_err(db)? {
                return Err(no_user(name));
            }
            let state = if *disabled { "disabled" } else { "enabled" };
            say(out, format_args!("{state} {name}"))
        }
        Command::Remove { name } => {
            if !store.remove_user(name).await.map_err(db)? {
                return Err(no_user(name));
            }
            say(out, format_args!("removed {name}"))
        }
        Command::Users => {
            let users = store.users().await.map_err(db)?;
            if users.is_empty() {
                return say(out, format_args!("no users"));
            }
            let mut rows = vec![vec![
                "NAME".to_owned(),
                "STATE".to_owned(),
                "ROLES".to_owned(),
                "CREATED".to_owned(),
            ]];
            for user in users {
                rows.push(vec![
                    user.name,
                    if user.disabled { "disabled" } else { "enabled" }.to_owned(),
                    list_or(&user.roles, "-"),
                    utc(user.created_at),
                ]);
            }
            write_table(out, &rows)
        }
        Command::KeyCreate {
            name,
            key_name,
            expires_in,
            roles,
        } => {
            let user = store
                .user(name)
                .await
                .map_err(db)?
                .ok_or_else(|| no_user(name))?;
            if let Some(roles) = roles
                && let Some(missing) = roles.iter().find(|r| !user.roles.contains(r))
            {
                return Err(failed(format!(
                    "{name} does not hold the role {missing}: a key's roles are a subset of \
                     its owner's ({})",
                    list_or(&user.roles, "none")
                )));
            }
            let key = ApiKey::generate();
            let info =
                ApiKeyInfo::fresh(name.as_str(), key_name.as_str(), roles.clone(), *expires_in);
            store.create(&info, &key.hash()).await.map_err(db)?;
            // The key alone on stdout (`KEY=$(accounts api-key create …)`), the rest on stderr.
            let _ = writeln!(
                err,
                "created API key {} ({key_name}) of {name}, roles {}, expires {}; the key \
                 below is shown this once",
                info.id,
                roles
                    .as_ref()
                    .map_or_else(|| "(all)".to_owned(), |r| list_or(r, "-")),
                info.expires_at.map_or_else(|| "never".to_owned(), utc),
            );
            say(out, format_args!("{}", key.expose_secret()))
        }
        Command::KeyList { name } => {
            if store.user(name).await.map_err(db)?.is_none() {
                return Err(no_user(name));
            }
            let keys = store.list(name).await.map_err(db)?;
            if keys.is_empty() {
                return say(out, format_args!("{name} has no API keys"));
            }
            let mut rows = vec![
                ["ID", "NAME", "ROLES", "CREATED", "EXPIRES", "LAST USED"]
                    .map(str::to_owned)
                    .to_vec(),
            ];
            for key in keys {
                rows.push(vec![
                    key.id,
                    key.name,
                    key.roles
                        .as_ref()
                        .map_or_else(|| "(all)".to_owned(), |r| list_or(r, "-")),
                    utc(key.created_at),
                    key.expires_at.map_or_else(|| "never".to_owned(), utc),
                    key.last_used_at.map_or_else(|| "never".to_owned(), utc),
                ]);
            }
            write_table(out, &rows)
        }
        Command::KeyRevoke { name, id } => {
            if !store.revoke(name, id).await.map_err(db)? {
                return Err(failed(format!("{name} has no API key {id}")));
            }
            say(out, format_args!("revoked API key {id} of {name}"))
        }
    }
}

/// `a,b` or `empty` for none.
fn list_or(items: &[String], empty: &str) -> String {
    if items.is_empty() {
        empty.to_owned()
    } else {
        items.join(",")
    }
}

/// Rows in columns two spaces apart (the last column unpadded).
fn write_table(out: &mut dyn Write, rows: &[Vec<String>]) -> Result<(), Failure> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let width = widths.get(c).copied().unwrap_or(0);
                let _ = write!(line, "{cell:<width$}  ");
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    out.write_all(text.as_bytes())
        .map_err(|e| failed(format!("writing to stdout: {e}")))
}

/// Reads the password: one line of `input` (prompted on `err` when `input` is a terminal).
fn read_password(
    name: &str,
    input: &mut dyn BufRead,
    err: &mut dyn Write,
    terminal: bool,
) -> Result<Zeroizing<String>, Failure> {
    if terminal {
        let _ = write!(err, "password for {name} (shown as typed): ");
        let _ = err.flush();
    }
    let mut line = Zeroizing::new(String::new());
    let read = input
        .read_line(&mut line)
        .map_err(|e| usage(format!("reading the password from stdin: {e}")))?;
    if read == 0 {
        return Err(usage("no password on stdin (one line is read)"));
    }
    let password = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
    if password.is_empty() {
        return Err(usage("empty password"));
    }
    Ok(password)
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub fn utc(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
