//! Helpers shared by the CLI's integration tests.

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
