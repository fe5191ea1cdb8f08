//! Calls a Core-protocol API as a logged-in client: `TokenSource` + `LoginClientLayer` on
//! hyper-util's HTTP/1 client.
//!
//! ```text
//! cargo run --features client --example login_client -- \
//!     --url http://127.0.0.1:8080 --username admin GET /api/v3/process
//! ```
//!
//! The password comes from `CORE_PASSWORD`, else the first line of stdin, and is read only when
//! a login is needed. Prints the status line and the body; exits with 1 when the status is 400
//! or above.
//!
//! - `--refresh-first` refreshes the access token before the call (logging in first when there
//!   is nothing to refresh);
//! - `--save FILE` writes the token state after the call (JSON, file mode 0600): into a new
//!   file beside it, created exclusively, then renamed over FILE, so a symlink or a file
//!   someone else prepared at FILE is replaced, never written through;
//! - `--resume FILE` starts from a saved state instead of logging in. With `--username` too, the
//!   client can log in again when the saved tokens no longer work, and asks for the password
//!   only then; without, it fails then.
//!
//! Tokens and the password are never printed.

use std::fs::OpenOptions;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, ServiceExt};
use tower_jwt_login::client::{Credentials, TokenSource, TokenState};

const USAGE: &str = "usage: login_client --url URL [--username NAME] [--refresh-first] \
                     [--save FILE] [--resume FILE] METHOD PATH";

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Default)]
struct Args {
    url: Option<String>,
    username: Option<String>,
    refresh_first: bool,
    save: Option<PathBuf>,
    resume: Option<PathBuf>,
    method: Option<String>,
    path: Option<String>,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args::default();
    fn value(it: &mut dyn Iterator<Item = String>, flag: &str) -> Result<String, String> {
        it.next().ok_or_else(|| format!("{flag} needs a value"))
    }
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--url" => args.url = Some(value(&mut it, "--url")?),
            "--username" => args.username = Some(value(&mut it, "--username")?),
            "--refresh-first" => args.refresh_first = true,
            "--save" => args.save = Some(value(&mut it, "--save")?.into()),
            "--resume" => args.resume = Some(value(&mut it, "--resume")?.into()),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ if args.method.is_none() => args.method = Some(arg),
            _ if args.path.is_none() => args.path = Some(arg),
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    Ok(args)
}

/// `CORE_PASSWORD`, else one line of stdin (prompting when it is a terminal). Called when a
/// login is needed, and only then.
fn password() -> Result<String, Error> {
    if let Ok(password) = std::env::var("CORE_PASSWORD") {
        return Ok(password);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("password: ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err("no password: set CORE_PASSWORD or give it on stdin".into());
    }
    Ok(password)
}

/// Writes `state` to `path`, readable by the owner only: into a fresh file in the same
/// directory, created exclusively with mode 0600 (an existing file or symlink at that name
/// makes the open fail rather than be followed), then renamed over `path` (which replaces a
/// symlink there instead of writing through it).
fn save(path: &Path, state: &TokenState) -> Result<(), Error> {
    let mut json = serde_json::to_vec(state)?;
    json.push(b'\n');
    let name = path
        .file_name()
        .ok_or_else(|| format!("{}: not a file name", path.display()))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let temp = dir.join(format!(
        ".{}.{:016x}.tmp",
        name.to_string_lossy(),
        rand::random::<u64>()
    ));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&temp)
        .map_err(|e| format!("{}: {e}", temp.display()))?;
    let written = file.write_all(&json).and_then(|()| file.sync_all());
    drop(file);
    let written = written.and_then(|()| std::fs::rename(&temp, path));
    if let Err(e) = written {
        // Best effort: the error that matters is the one reported.
        let _ = std::fs::remove_file(&temp);
        return Err(format!("{}: {e}", path.display()).into());
    }
    Ok(())
}

async fn run(args: Args) -> Result<bool, Error> {
    let url = args.url.ok_or(USAGE)?;
    let method: Method = args.method.ok_or(USAGE)?.parse()?;
    let path = args.path.ok_or(USAGE)?;
    if args.username.is_none() && args.resume.is_none() {
        return Err(format!("give --username or --resume\n{USAGE}").into());
    }

    let mut builder = TokenSource::builder(&url);
    if let Some(username) = args.username {
        // Asked for when a login is needed: never while saved tokens still work.
        builder = builder.credentials_on_demand(move || {
            let username = username.clone();
            async move {
                let password = tokio::task::spawn_blocking(password).await??;
                Ok::<_, Error>(Credentials::password(username, password))
            }
        });
    }
    if let Some(file) = &args.resume {
        let text = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let state: TokenState = serde_json::from_slice(&text)
            .map_err(|e| format!("{}: not a saved token state: {e}", file.display()))?;
        builder = builder.state(state);
    }
    let source = builder.build()?;
    if args.refresh_first {
        source.refresh().await?;
    }

    let http: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let client = source.layer().layer(http);
    let req = Request::builder()
        .method(method)
        .uri(format!("{}{path}", source.url()))
        .body(Full::default())?;
    let res = client.oneshot(req).await?;
    let status = res.status();
    let body = res.into_body().collect().await?.to_bytes();
    println!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let mut stdout = std::io::stdout();
    stdout.write_all(&body)?;
    if !body.ends_with(b"\n") {
        stdout.write_all(b"\n")?;
    }

    if let Some(file) = &args.save {
        match source.export() {
            Some(state) => save(file, &state)?,
            None => return Err("no token state to save".into()),
        }
    }
    Ok(status.as_u16() < 400)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("login_client: {e}");
            ExitCode::FAILURE
        }
    }
}
