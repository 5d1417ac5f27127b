//! How the command reports failure: one line on stderr, exit code 1.

use std::process::ExitCode;

/// Prints `error: <message>` (first line only) to stderr and returns exit code 1.
pub fn fail(message: &str) -> ExitCode {
    let line = message.lines().next().unwrap_or("failed");
    eprintln!("error: {line}");
    ExitCode::from(1)
}
