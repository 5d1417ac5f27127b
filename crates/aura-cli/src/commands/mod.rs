//! One module per command group.

mod bootstrap;
mod db;
mod dev;
mod lint;
mod replica;

use std::process::ExitCode;

use crate::cli::Command;

/// Runs a parsed command; `Err` is the one-line message for stderr.
pub async fn run(command: Command) -> Result<ExitCode, String> {
    match command {
        Command::Db(cmd) => db::run(cmd).await,
        Command::Dev(cmd) => dev::run(cmd).await,
    }
}
