//! `aura`: drive Aura's database (`aura db …`) and the local development cluster
//! (`aura dev …`). Errors are one line on stderr with a non-zero exit code.

mod cli;
mod commands;
mod lint;
mod local_default;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_tracing(cli.verbose);
    // A typo must not silently leave a setting at its default.
    for unknown in aura_db::vars::unknown_in_env() {
        eprintln!("warning: {unknown}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return output::fail(&format!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(commands::run(cli.command)) {
        Ok(code) => code,
        Err(message) => output::fail(&message),
    }
}

/// Logs go to stderr, `warn` and up unless `-v` or `RUST_LOG` say otherwise. No event of
/// ours carries a secret.
fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info,aura_db=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
