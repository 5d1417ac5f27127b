//! Helpers shared by the CLI's integration tests (not every test file uses each).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

/// Standard output or error as text, for assertions and their messages.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// How many migrations `aura db migrate` says it applied: its `applied <version>_<name>
/// (<time> ms)` lines, not the summary.
pub fn applied_count(stdout: &str) -> usize {
    stdout
        .lines()
        .filter(|l| l.starts_with("applied ") && l.ends_with(" ms)"))
        .count()
}

/// Standard output then standard error, for assertion messages.
pub fn both(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

/// The workspace root (where `migrations/` and `scripts/` are).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
