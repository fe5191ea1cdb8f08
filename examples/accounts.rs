//! Manage the users and API keys of the SQL store from a shell: the admin side of
//! `CORE_API_AUTH_DATABASE` (docs/accounts.md).
//!
//! ```text
//! export CORE_API_AUTH_DATABASE=postgres://postgres@127.0.0.1/test   # or sqlite://users.db
//! echo 'wonderland' | cargo run --features sql --example accounts -- add-user alice
//! cargo run --features sql --example accounts -- role alice admin editor
//! cargo run --features sql --example accounts -- users
//! cargo run --features sql --example accounts -- api-key create alice ci --expires-in 86400
//! cargo run --features sql --example accounts -- help
//! ```
//!
//! The database is migrated first. Passwords are one line on stdin, never an argument. With
//! `--features sql,redis` and `CORE_API_AUTH_SESSIONS=redis://…` (the servers' Redis),
//! `passwd`, `disable` and `remove` also log the user out everywhere. Exit status: 0 done,
//! 1 failed, 2 usage error. The commands are in examples/accounts/cli.rs (tested by
//! tests/accounts_cli.rs).

#[path = "accounts/cli.rs"]
mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    let io = cli::Io {
        input: &mut stdin.lock(),
        out: &mut std::io::stdout().lock(),
        err: &mut std::io::stderr().lock(),
        terminal,
    };
    ExitCode::from(cli::run(&args, |k| std::env::var(k).ok(), io).await)
}
